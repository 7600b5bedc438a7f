# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgcdc.clickpipes contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Builds the report of a prepare_source result on the controller, writes it, and publishes its summary (set_stats)."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.pgcdc.clickpipes.plugins.plugin_utils import report as reports

ARGUMENT_SPEC = dict(
    result_var=dict(type='str', default='clickpipes_result'),
    report_dir=dict(type='path', default=''),
    settings_changed=dict(type='list', elements='str', default=[]),
)


NOTHING_RAN = ('%s holds a prepare_source result that checked nothing and wrote nothing: no phase ran (with the roles, '
               'the tags selected none of preflight, prepare, verify). Run without --tags, with your own tag on the '
               'include_role, or with --tags preflight,report to look without changing anything.')


class ActionModule(ActionBase):
    """Runs in the worker: the report is an output of the run, so writing it never counts as a change."""

    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        # Read as registered, not templated: a result holds thousands of values, and templating them costs each host
        # several milliseconds of CPU.
        source = task_vars.get(args['result_var'])
        if not isinstance(source, dict) or source.get('skipped'):
            return dict(result, skipped=True, skip_reason='%s holds no prepare_source result, so there is nothing to report.'
                        % args['result_var'])
        if ran_nothing(source):
            raise AnsibleActionFail(NOTHING_RAN % args['result_var'])
        report = reports.build(task_vars['inventory_hostname'], source, args['settings_changed'])
        if args['report_dir'] and not self._task.check_mode:
            try:
                result['files'] = reports.write(report, args['report_dir'])
            except OSError as exc:
                raise AnsibleActionFail('Could not write the report to %s: %s. Set report_dir (clickpipes_report_dir in '
                                        'the roles) to a folder this user can write.' % (args['report_dir'], exc.strerror or exc))
        result.update(report, changed=False, ansible_stats=dict(
            data=dict(clickpipes={report['host']: reports.summary(report)}), per_host=False, aggregate=True))
        if report['unreachable']:
            # The roles let the unreachable result through (ignore_unreachable) to write this report: the host is
            # unreachable from here on, as it was.
            result.update(unreachable=True, msg=report['failure'])
        return result


def ran_nothing(source):
    """Whether a prepare_source result neither checked nor wrote anything (no phase was selected), nor failed."""
    return not (source.get('failed') or source.get('unreachable') or 'findings' in source or source.get('modules_run'))
