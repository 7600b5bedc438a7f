# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgcdc.clickpipes contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The prepare_source module: preflight, the writing steps the preflight asks for, and the verify, on one connection."""

from __future__ import annotations

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.pgcdc.clickpipes.plugins.module_utils import (
    check_step,
    checks,
    grants_step,
    publication_step,
    publications,
    role_step,
)
from ansible_collections.pgcdc.clickpipes.plugins.module_utils.call import ModuleCall
from ansible_collections.pgcdc.clickpipes.plugins.module_utils.connection import (
    ClickPipesError,
    check_duration,
    session,
    write_argument_spec,
)

PHASES = ('preflight', 'prepare', 'verify')
# The name each writing module's statements carry in ``changes`` (and in the role's report).
WRITERS = (('replication_user', role_step, 'user'), ('replication_grants', grants_step, 'grants'),
           ('publication', publication_step, 'publication'))


def writer_args(params):
    """Each writing module's options, from this module's."""
    scope = dict(schemas=params['schemas'], tables=params['tables'])
    return dict(
        replication_user=dict(name=params['user'], password=params['password'], update_password=params['update_password'],
                              bypass_rls=params['bypass_rls']),
        replication_grants=dict(scope, user=params['user']),
        publication=dict(scope, name=params['publication'], mode=params['publication_mode'],
                         operations=params['publication_operations'], exact=params['publication_exact'],
                         allow_missing_replica_identity=params['allow_missing_replica_identity']))


def check_args(params):
    """The check's options, from this module's: the run decides what fails, and shows its warnings once."""
    names = set(check_step.argument_spec()) - {'fail_on', 'emit_warnings'}
    return dict(((name, params[name]) for name in names), fail_on='never', emit_warnings='none')


def options_differ(params, preflight):
    """Whether the publication's options ask for what no check looks at."""
    operations = preflight['publication'].get('operations') or []
    return params['publication_exact'] or params['publication_mode'] != 'tables' or set(operations) != set(params['publication_operations'])


def to_write(params, preflight):
    """The writing modules to start: those the preflight found something for (all of them without a preflight)."""
    if preflight is None:
        return [name for name, _module, _key in WRITERS]
    pending = set(preflight['pending_modules'])
    if options_differ(params, preflight):
        pending.add('publication')
    return [name for name, _module, _key in WRITERS if name in pending]


def write(call, conn, names):
    """Run the writing modules ``names`` on ``conn``: their results by name, their warnings passed on."""
    args = writer_args(call.params)
    shared = dict((name, call.params[name]) for name in write_argument_spec())
    results = {}
    for name, module, _key in WRITERS:
        if name not in names:
            continue
        validated = ArgumentSpecValidator(module.argument_spec()).validate(dict(shared, **args[name]))
        sub_call = ModuleCall(validated.validated_parameters, call.check_mode, call.diff)
        try:
            results[name] = module.run(sub_call, conn)
        except ClickPipesError as exc:
            # The steps before this one committed: the failure says so.
            exc.result.update(outcome(None, [], results), modules_run=list(results) + [name])
            raise
        finally:
            for message in sub_call.warnings:
                call.warn(message)
    return results


def blocked_message(preflight, blocked):
    findings = [item for item in preflight['findings'] if item['id'] in blocked]
    lines = ['This source cannot be a ClickPipes CDC source until this is fixed by hand; nothing was changed.']
    waiting = preflight['server'].get('pending_restart') or []
    if waiting:
        lines.append('Set, waiting for a restart: %s. Restart PostgreSQL (the role never does), then re-run.' % ', '.join(waiting))
    for item in findings:
        lines.append('- %s: %s' % (item['id'], item['message']))
        lines.extend('  * ' + checks.describe_step(step) for step in item['fix']['manual'])
        lines.extend('  * SQL: ' + statement for statement in item['fix']['sql'])
    return '\n'.join(lines)


def failing_message(failing, fail_on):
    lines = ['The source is not ready for ClickPipes (fail_on: %s):' % fail_on]
    lines.extend('- %s %s: %s' % (item['status'], item['id'], item['message']) for item in failing)
    lines.append('The manual steps are printed as warnings above.')
    return '\n'.join(lines)


def outcome(final, blocked, written):
    """The final check's result (none without a check), and what this run wrote."""
    result = dict(final or {})
    result.update(changed=any(item['changed'] for item in written.values()), blocked=blocked, modules_run=list(written),
                  queries=[query for item in written.values() for query in item['queries']],
                  changes=dict((key, written[name]['queries'] if name in written else []) for name, _module, key in WRITERS))
    diffs = [dict(item['diff'], before_header=name, after_header=name) for name, item in written.items() if 'diff' in item]
    if diffs:
        result['diff'] = diffs
    return result


def run(call):
    params = call.params
    checking = check_args(params)
    check_step.validate(checking)
    check_duration(params['lock_timeout'], 'lock_timeout')
    phases = params['phases']
    if not phases:
        return outcome(None, [], {})
    with session(params) as conn:
        preflight = check_step.examine(checking, conn) if 'preflight' in phases else None
        blocked = checks.blocking(preflight['error_ids']) if preflight else []
        names = [] if params['check_only'] or blocked or 'prepare' not in phases else to_write(params, preflight)
        written = write(call, conn, names)
        verify = 'verify' in phases and (written or preflight is None)
        final = check_step.examine(checking, conn) if verify else preflight
    result = outcome(final, blocked, written)
    if final is None:
        return result
    for line in checks.warning_lines(final['findings'], final['provider'], final['clickpipes_connection']['user']):
        call.warn(line)
    if blocked and not params['check_only']:
        raise ClickPipesError(blocked_message(preflight, blocked), **result)
    failing = checks.failing(final['findings'], params['fail_on'])
    if failing:
        raise ClickPipesError(failing_message(failing, params['fail_on']), **result)
    return result


def argument_spec():
    spec = check_step.argument_spec()
    del spec['emit_warnings']
    spec.update(write_argument_spec())
    spec.update(
        update_password=dict(type='str', choices=['on_create', 'always'], default='on_create', no_log=False),
        bypass_rls=dict(type='bool'),
        publication_mode=dict(type='str', choices=['tables', 'schemas', 'all_tables'], default='tables'),
        publication_operations=dict(type='list', elements='str', choices=list(publications.OPERATIONS), default=list(publications.OPERATIONS)),
        publication_exact=dict(type='bool', default=False),
        allow_missing_replica_identity=dict(type='bool', default=False),
        check_only=dict(type='bool', default=False),
        phases=dict(type='list', elements='str', choices=list(PHASES), default=list(PHASES)),
    )
    return spec
