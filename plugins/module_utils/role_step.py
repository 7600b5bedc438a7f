# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgcdc.clickpipes contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The replication_user module: create or update the replication role, in one transaction."""

from __future__ import annotations

from ansible_collections.pgcdc.clickpipes.plugins.module_utils.connection import (
    ClickPipesError,
    current_role,
    require_text,
    run_writing_module,
    server_major,
    write_argument_spec,
)
from ansible_collections.pgcdc.clickpipes.plugins.module_utils.plan import Planned, converging
from ansible_collections.pgcdc.clickpipes.plugins.module_utils.scope import check_identifier
from ansible_collections.pgcdc.clickpipes.plugins.module_utils import checks, facts, providers, roles


def predicted(role, want, state, grant=None):
    """The role's state once the plan has run, for check mode."""
    if state == 'absent':
        return dict(exists=False)
    after = roles.public_state(role) if role else dict(
        exists=True, name=want['name'], replication=False, bypass_rls=False, connection_limit=-1, superuser=False,
        create_role=False, create_db=False, valid_until=None)
    after.update(login=True)
    if grant:
        after['replication_role'] = dict(name=grant['name'], member=True)
    else:
        after['replication'] = True
    if want['bypass_rls'] is not None:
        after['bypass_rls'] = want['bypass_rls']
    if want['connection_limit'] is not None:
        after['connection_limit'] = want['connection_limit']
    return after


def replication_grant(cursor, params, role):
    """The provider's replication role as it stands (read_replication_grant), or None where REPLICATION is given."""
    provider = params['provider']
    if provider == 'auto':
        provider = facts.detect_provider(cursor, params['login_host'])
    name = providers.get(provider).replication_role
    if name is None:
        return None
    grant = roles.read_replication_grant(cursor, name, role)
    if not grant['exists']:
        raise ClickPipesError('Role %s does not exist, so this is not %s: set provider (clickpipes_provider) to the source\'s '
                              'provider, or auto. Nothing was applied.' % (name, providers.display_name(provider)))
    return grant


def described(role, grant):
    """The role's public state, with its membership in the provider's replication role where there is one."""
    state = roles.public_state(role)
    if grant and role is not None:
        state['replication_role'] = dict(name=grant['name'], member=grant['member'])
    return state


def read_state(cursor, name, grant):
    role = roles.read_role(cursor, name)
    return described(role, grant and roles.read_replication_grant(cursor, grant['name'], role))


def decide(call, conn, cursor):
    """What the role needs (read only): a Planned."""
    params = call.params
    check_identifier(params['name'], 'role')
    roles.refuse_reserved_name(params['name'])
    require_text(params['password'], 'password')
    if params['connection_limit'] is not None and params['connection_limit'] < -1:
        raise ClickPipesError('connection_limit must be -1 (no limit) or more, not %d.' % params['connection_limit'])
    if params['name'] == current_role(cursor):
        raise ClickPipesError('%s is the admin login itself. Give ClickPipes a role of its own (for example clickpipes_user): '
                              'it should only read.' % params['name'])
    role = roles.read_role(cursor, params['name'])
    grant = None
    if params['state'] == 'present':
        roles.refuse_table_owner(cursor, role)
        grant = replication_grant(cursor, params, role)
    if params['state'] == 'absent':
        statements = roles.plan_absent(cursor, role, params['force'])
    else:
        rotating = role is not None and params['password'] is not None and params['update_password'] == 'always'
        if rotating and role['password_expired']:
            # While it has expired, no password logs in, the right one neither: setting it again would change nothing,
            # on every run.
            raise ClickPipesError(checks.password_expired_message(role) + ' update_password: always cannot tell whether '
                                  'the password is right until then; nothing was changed.')
        set_password = params['password'] is not None and (
            role is None or (rotating and not roles.password_works(params, params['name'], params['password'])))
        if role is None and params['password'] is None:
            call.warn('Role %s is created without a password: ClickPipes cannot log in until one is set.' % params['name'])
        statements = roles.plan_present(conn, role, params, set_password, grant)
        if statements:
            alters = any(query.startswith('ALTER ROLE') for query in statements.queries(conn))
            roles.refuse_what_admin_cannot_do(cursor, role, params, server_major(conn), grant, alters)
    queries = statements.queries(conn)

    def result(cursor):
        after = predicted(role, params, params['state'], grant) if call.check_mode else read_state(cursor, params['name'], grant)
        outcome = dict(changed=bool(statements), queries=queries, role=after)
        if call.diff:
            outcome['diff'] = dict(before=described(role, grant), after=after)
        return outcome
    return Planned(statements, result)


converge = converging(decide)


def argument_spec():
    spec = write_argument_spec()
    spec.update(
        name=dict(type='str', required=True),
        password=dict(type='raw', no_log=True),
        update_password=dict(type='str', choices=['on_create', 'always'], default='on_create', no_log=False),
        bypass_rls=dict(type='bool'),
        connection_limit=dict(type='int'),
        state=dict(type='str', choices=['present', 'absent'], default='present'),
        force=dict(type='bool', default=False),
        provider=dict(type='str', choices=list(providers.CHOICES), default='auto'),
    )
    return spec


def lock_key(params):
    return 'role:' + params['name']


def run(call, conn=None):
    return run_writing_module(call, lock_key(call.params), converge, conn)
