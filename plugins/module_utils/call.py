# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgcdc.clickpipes contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One call of a module's logic, whichever process runs it: the module's own, or Ansible's worker (see plugin_utils)."""

from __future__ import annotations

from ansible_collections.pgcdc.clickpipes.plugins.module_utils.connection import ClickPipesError


class ModuleCall:
    """The validated parameters, check and diff mode, and the warnings the logic gives."""

    def __init__(self, params, check_mode=False, diff=False):
        self.params = params
        self.check_mode = check_mode
        self.diff = diff
        self.warnings = []

    def warn(self, message):
        self.warnings.append(message)


def outcome(logic, call):
    """(failed, result) of ``logic(call)``: a ClickPipesError fails with its message and the result it carries."""
    try:
        return False, logic(call)
    except ClickPipesError as exc:
        return True, dict(exc.result, msg=str(exc))


def finish(module, logic):
    """Run ``logic`` for an AnsibleModule and exit with its result."""
    call = ModuleCall(module.params, module.check_mode, module._diff)  # pylint: disable=protected-access
    failed, result = outcome(logic, call)
    for message in call.warnings:
        module.warn(message)
    if failed:
        module.fail_json(**result)
    module.exit_json(**result)
