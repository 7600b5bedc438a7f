# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgcdc.clickpipes contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs the publication module in the worker process when the task runs locally (see plugin_utils/local_module.py)."""

from __future__ import annotations

from ansible_collections.pgcdc.clickpipes.plugins.modules import publication
from ansible_collections.pgcdc.clickpipes.plugins.plugin_utils.local_module import LocalModuleAction


class ActionModule(LocalModuleAction):
    module = publication
