# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test-only callback: record every task result as one JSON line.

Used by tests/integration/playbook.py. It is an aggregate (not stdout)
callback, so the default stdout callback keeps printing Ansible's usual human
output at any verbosity.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: pgcdc_results
type: aggregate
short_description: Write task results as JSON lines for the integration tests
description:
  - Appends one JSON object per task result (ok, changed, failed, skipped,
    unreachable) to the file named by the E(PGCDC_RESULTS_FILE) environment
    variable. Does nothing when it is unset.
  - Each line has C(host), C(task), C(status) and C(result) (the result as a
    playbook would see it, internal C(_ansible_*) keys removed, C(diff),
    C(warnings) and C(invocation) kept; C(failed), C(skipped) or
    C(unreachable) set to true for such results, as in a registered variable).
requirements:
  - Enabled through C(ANSIBLE_CALLBACKS_ENABLED=pgcdc_results).
"""

import json
import os

from ansible.plugins.callback import CallbackBase
from ansible.vars.clean import module_response_deepcopy, strip_internal_keys


def _task_result_parts(result):
    """Return (host name, task name, result mapping) on any ansible-core >= 2.16."""
    # ansible-core 2.19 added public `host`/`task`/`result` properties; older cores only have the underscored ones.
    host = getattr(result, 'host', None) or result._host  # pylint: disable=protected-access
    task = getattr(result, 'task', None) or result._task  # pylint: disable=protected-access
    data = result.result if hasattr(type(result), 'result') else result._result  # pylint: disable=protected-access
    return host.get_name(), task.get_name(), data


class CallbackModule(CallbackBase):
    """Append task results to $PGCDC_RESULTS_FILE as JSON lines."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'pgcdc_results'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._path = os.environ.get('PGCDC_RESULTS_FILE')

    def _plain(self, data):
        """Return data as plain JSON-compatible values, the way a playbook sees them."""
        try:
            # ansible-core >= 2.19: the same transformation the stdout callbacks use. Wrapping the result
            # keeps its top-level diff/warnings/exception, which _dump_results drops for screen output.
            view = self._dump_results({'result': data}, keep_invocation=True, serialize=False)['result']
        except TypeError:  # older cores: no `serialize` parameter
            view = strip_internal_keys(module_response_deepcopy(data))
        return json.loads(json.dumps(view, default=str, sort_keys=True))

    def _record(self, status, result):
        if not self._path:
            return
        host, task, data = _task_result_parts(result)
        plain = self._plain(data)
        if status != 'ok':
            # as a registered variable shows it (the callback's copy of a skipped result lacks `skipped`)
            plain.setdefault(status, True)
        line = json.dumps({'host': host, 'task': task, 'status': status, 'result': plain}, sort_keys=True)
        with open(self._path, 'a', encoding='utf-8') as results_file:
            results_file.write(line + '\n')

    def v2_runner_on_ok(self, result):
        self._record('ok', result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record('failed', result)

    def v2_runner_on_skipped(self, result):
        self._record('skipped', result)

    def v2_runner_on_unreachable(self, result):
        self._record('unreachable', result)
