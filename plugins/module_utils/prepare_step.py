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
    run_writing_steps,
    server_major,
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
    wanted = params['publication_operations']
    return (params['publication_exact'] or params['publication_mode'] != 'tables'
            or (wanted is not None and set(operations) != set(wanted)))


def to_write(params, preflight):
    """The writing modules to start: those the preflight found something for (all of them without a preflight)."""
    if preflight is None:
        return [name for name, _module, _key in WRITERS]
    pending = set(item['fix']['module'] for item in preflight['findings'] if item['status'] != 'ok' and fixed_by_run(item, params))
    if options_differ(params, preflight):
        pending.add('publication')
    return [name for name, _module, _key in WRITERS if name in pending]


def replication_login_fixed(item, params):
    """A failed replication login is fixed by the run when the role lacked an attribute the run gives it, or its
    password is rotated."""
    observed = item['observed'] or ''
    if 'password authentication failed' in observed:
        return params['update_password'] == 'always'
    return any(phrase in observed for phrase in ('REPLICATION attribute', 'replication role', 'not permitted to log in'))


# Findings a writing module fixes only with an option the user chose; it fixes any other finding it manages.
def operations_fixed(item, params):
    """Missing insert or update (an error), or delete (a warning): fixed only when publication_operations asks for them."""
    needed = {'insert', 'update'} if item['status'] == 'error' else {'delete'}
    return needed <= set(params['publication_operations'] or ())


FIXED_WITH_OPTION = dict(
    row_level_security=lambda item, params: bool(params.get('bypass_rls')),
    publication_operations=operations_fixed,
    publication_scope=lambda item, params: params['publication_exact'],
    # prepare_source has no option for it: an existing publication keeps its publish_via_partition_root.
    publication_partition_root=lambda item, params: False,
    replication_connection=replication_login_fixed,
    # The check gives SQL where the publication module publishes the chunk schemas (PostgreSQL 15+); FOR ALL TABLES
    # covers them on any version.
    hypertable_chunks=lambda item, params: bool(item['fix']['sql']) or params['publication_mode'] == 'all_tables',
)


def fixed_by_run(item, params):
    """Whether the writing modules of this run fix a finding that is not ok."""
    if item['fix']['module'] is None:
        return False
    condition = FIXED_WITH_OPTION.get(item['id'])
    return condition is None or condition(item, params)


def unfixable(preflight, params):
    """The preflight's errors this run cannot fix: while there is one, nothing is written."""
    return [item['id'] for item in preflight['findings'] if item['status'] == 'error' and not fixed_by_run(item, params)]


def write(call, conn, names, provider):
    """Run the writing modules ``names`` on ``conn`` in one transaction (read-only in check mode): each decides what it
    needs before the first statement is sent, so that a refusal anywhere sends nothing and a failure applies nothing.
    Only a publication that adds more tables than one transaction can lock commits its batches one by one (see
    publications.TABLES_PER_TRANSACTION)."""
    if not names:
        return {}
    args = writer_args(call.params)
    args['replication_user']['provider'] = provider  # how the replication privilege is given follows it
    shared = dict((name, call.params[name]) for name in write_argument_spec())
    steps = []
    for name, module, _key in WRITERS:
        if name in names:
            validated = ArgumentSpecValidator(module.argument_spec()).validate(dict(shared, **args[name]))
            steps.append((name, module, ModuleCall(validated.validated_parameters, call.check_mode, call.diff)))
    progress = dict(decided=[], applied={})

    def converge(conn, cursor):
        progress.update(decided=[], applied={})
        decisions = []
        for name, module, sub_call in steps:
            del sub_call.warnings[:]
            extra = dict(user_planned='replication_user' in names) if module is grants_step else {}
            decisions.append((name, module.decide(sub_call, conn, cursor, **extra)))
            progress['decided'].append(name)
        for name, planned in decisions:
            if not call.check_mode:
                planned.apply(cursor)
            progress['applied'][name] = planned.plan.queries(conn)
        return dict((name, planned.result(cursor)) for name, planned in decisions)

    try:
        return run_writing_steps(call.params, call.check_mode, [module.lock_key(sub_call.params) for _name, module, sub_call in steps],
                                 converge, conn)
    except ClickPipesError as exc:
        exc.result.update(failed_steps(exc, progress, steps))
        raise
    finally:
        for _name, _module, sub_call in steps:
            for message in sub_call.warnings:
                call.warn(message)


def failed_steps(exc, progress, steps):
    """What a failed write leaves: nothing, or (when a publication batch was committed) the steps applied before it and
    the publication's committed batches. The failed module is the first not decided, or else the first not applied."""
    committed = {}
    if exc.committed:
        committed = dict((name, dict(changed=bool(queries), queries=queries)) for name, queries in progress['applied'].items())
        committed['publication'] = dict(changed=True, queries=list(exc.committed_queries))
    names = [name for name, _module, _call in steps]
    done = progress['applied'] if len(progress['decided']) == len(names) else progress['decided']
    failed = next((name for name in names if name not in done), None)
    return dict(outcome(None, [], committed), modules_run=names[:names.index(failed) + 1] if failed else names,
                failed_module=failed)


def blocked_message(preflight, blocked):
    findings = [item for item in preflight['findings'] if item['id'] in blocked]
    lines = ['This source cannot be a ClickPipes CDC source until this is fixed; nothing was changed.']
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


def predict(result, params, written):
    """Check mode: mark the findings the planned statements fix (``fix.planned``); ``summary.ready`` then says whether
    the run would leave the source ready."""
    planning = set(name for name, item in written.items() if item['changed'])
    for item in result['findings']:
        if item['status'] in ('warning', 'error') and item['fix']['module'] in planning and fixed_by_run(item, params):
            item['fix']['planned'] = True
    remaining = [item for item in result['findings'] if item['status'] == 'error' and not item['fix'].get('planned')]
    result['summary'] = dict(result['summary'], ready=not remaining)


def run(call):
    params = call.params
    checking = check_args(params)
    check_step.validate(checking)
    phases = params['phases']
    if not phases:
        return outcome(None, [], {})
    with session(params) as conn:
        preflight = check_step.examine(checking, conn) if 'preflight' in phases else None
        blocked = unfixable(preflight, params) if preflight else []
        names = [] if params['check_only'] or blocked or 'prepare' not in phases else to_write(params, preflight)
        try:
            if 'prepare' in phases and not params['check_only']:
                publication_step.validate(dict(writer_args(params)['publication'], publish_via_partition_root=None),
                                          server_major(conn))
            written = write(call, conn, names, preflight['provider'] if preflight else params['provider'])
        except ClickPipesError as exc:
            if preflight is not None:
                exc.result = dict(preflight, **exc.result)
            raise
        changed = any(item['changed'] for item in written.values())
        verify = 'verify' in phases and (preflight is None or (changed and not call.check_mode))
        final = check_step.examine(checking, conn) if verify else preflight
    result = outcome(final, blocked, written)
    if final is None:
        return result
    if call.check_mode:
        predict(result, params, written)
    for line in checks.warning_lines(final['findings'], final['provider'], final['clickpipes_connection']['user']):
        call.warn(line)
    if blocked and not params['check_only']:
        raise ClickPipesError(blocked_message(preflight, blocked), **result)
    failing = [item for item in checks.failing(final['findings'], params['fail_on']) if not item['fix'].get('planned')]
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
        publication_operations=dict(type='list', elements='str', choices=list(publications.OPERATIONS)),
        publication_exact=dict(type='bool', default=False),
        allow_missing_replica_identity=dict(type='bool', default=False),
        check_only=dict(type='bool', default=False),
        phases=dict(type='list', elements='str', choices=list(PHASES), default=list(PHASES)),
    )
    return spec
