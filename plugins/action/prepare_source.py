# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgcdc.clickpipes contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs the prepare_source module in the worker process when the task runs locally (see plugin_utils/local_module.py)."""

from __future__ import annotations

from ansible_collections.pgcdc.clickpipes.plugins.modules import prepare_source
from ansible_collections.pgcdc.clickpipes.plugins.plugin_utils.local_module import LocalModuleAction


class ActionModule(LocalModuleAction):
    module = prepare_source
