# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgcdc.clickpipes contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The role a playbook runs for a clickpipes_provider value, from the provider registry (docs: provider_role.yml)."""

from __future__ import annotations

from ansible_collections.pgcdc.clickpipes.plugins.module_utils import providers


def provider_role(provider_id):
    """The collection's role for ``provider_id``; pgcdc.clickpipes.source for auto, generic and unknown values (the
    role's argument validation names the valid ones)."""
    return providers.get(provider_id).role


class FilterModule:
    def filters(self):
        return dict(provider_role=provider_role)
