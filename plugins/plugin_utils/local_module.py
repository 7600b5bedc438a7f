# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgcdc.clickpipes contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a module of this collection inside Ansible's worker process when the task runs on the controller.

Executing a module starts a new Python that imports Ansible's module code again: about 0.2 s per task,
more than the SQL of a prepared source takes, and most of the CPU of a run over many sources. When
the connection is local, nothing is run as another user or with another environment, and the
interpreter would be this one, the module's logic runs here instead: after the same JSON round trip
of its arguments, the same argument validation and, on its result, the same no_log masking and
JSON round trip as a module's. Otherwise the module is executed as usual.
"""

from __future__ import annotations

import json
import os
import sys

from ansible import constants as C
from ansible.module_utils.common.arg_spec import ModuleArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values
from ansible.module_utils.errors import UnsupportedError
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.utils.vars import merge_hash

from ansible_collections.pgcdc.clickpipes.plugins.module_utils import connection
from ansible_collections.pgcdc.clickpipes.plugins.module_utils.call import ModuleCall, outcome

try:
    from ansible.module_utils.common.json import Direction, get_module_decoder, get_module_encoder
except ImportError:  # ansible-core < 2.19 has no public module serialization: such runs execute the module
    get_module_encoder = None

display = Display()
AUTO_INTERPRETERS = (None, '', 'auto', 'auto_silent', 'auto_legacy', 'auto_legacy_silent')
PROFILE = 'legacy'


def round_trip(value, direction):
    """``value`` as the other side of a module's JSON pipe reads it (vaulted and tagged values become plain)."""
    return json.loads(json.dumps(value, cls=get_module_encoder(PROFILE, direction)), cls=get_module_decoder(PROFILE, direction))


def mask_secrets(result, secrets):
    """``remove_values``, only when a secret occurs in the result: it copies every value (50 ms for a result naming
    10,000 tables). JSON escapes each character on its own, so a secret inside any string, key or number of the result
    is inside the result's JSON text, escaped the same way."""
    try:
        text = json.dumps(result, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        return remove_values(result, secrets)
    if any(json.dumps(secret, ensure_ascii=False)[1:-1] in text for secret in secrets):
        return remove_values(result, secrets)
    return result


def as_unreachable(result):
    """A result that failed to open the admin connection (marked by connection.connect) counts as unreachable, as
    Ansible's exit code 4 promises: Ansible looks at ``failed`` before ``unreachable``, so ``failed`` goes."""
    if result.get('unreachable'):
        result.pop('failed', None)
    return result


def python_environment(path):
    """The binary a Python path runs and its virtual environment (found beside the path, not beside the binary)."""
    folder = os.path.dirname(os.path.abspath(path))
    venv = next((candidate for candidate in (folder, os.path.dirname(folder))
                 if os.path.isfile(os.path.join(candidate, 'pyvenv.cfg'))), None)
    return os.path.realpath(path), venv


class LocalModuleAction(ActionBase):
    """The action of a module whose file provides ``argument_spec()`` and ``run(call)``."""

    _supports_check_mode = True
    _supports_async = True
    module = None

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        if self._runs_here(task_vars or {}):
            display.vvv('%s runs in the worker process (local connection, this Python)' % self._task.action)
            return as_unreachable(merge_hash(result, self._run_here()))
        wrap_async = self._task.async_val and not self._connection.has_native_async
        result = merge_hash(result, self._execute_module(task_vars=task_vars, wrap_async=wrap_async))
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)  # pylint: disable=protected-access
        return as_unreachable(result)

    def _runs_here(self, task_vars):
        if get_module_encoder is None or connection.psycopg2 is None:
            return False
        if self._connection.transport != 'local' or self._task.delegate_to or self._play_context.become:
            return False
        # A task timeout is a signal, which Python cannot handle while libpq waits for the server.
        if self._task.async_val or self._task.timeout or any(self._task.environment or []):
            return False
        interpreter = task_vars.get('ansible_python_interpreter')
        if interpreter is None:
            interpreter = C.config.get_config_value('INTERPRETER_PYTHON', variables=task_vars)
        interpreter = self._templar.template(interpreter)
        return interpreter in AUTO_INTERPRETERS or python_environment(interpreter) == python_environment(sys.executable)

    def _run_here(self):
        args = round_trip(dict(self._task.args), Direction.CONTROLLER_TO_MODULE)
        validation = ModuleArgumentSpecValidator(self.module.argument_spec()).validate(args)
        params = validation.validated_parameters
        call = ModuleCall(params, check_mode=self._task.check_mode, diff=self._task.diff)
        if validation.errors.errors:
            failed, result = True, dict(msg=self._validation_message(validation))
        else:
            failed, result = outcome(self.module.run, call)
        result['invocation'] = dict(module_args=params)
        if failed:
            result['failed'] = True
        if call.warnings:
            result['warnings'] = call.warnings
        # Unlike a module's, the warnings are plain strings here, so masking reaches them too.
        masked = mask_secrets(result, validation._no_log_values)  # pylint: disable=protected-access
        return round_trip(masked, Direction.MODULE_TO_CONTROLLER)

    def _validation_message(self, validation):
        if isinstance(validation.errors[0], UnsupportedError):
            return 'Unsupported parameters for (%s) module: %s' % (self._task.action, validation.errors.msg)
        return validation.errors.msg
