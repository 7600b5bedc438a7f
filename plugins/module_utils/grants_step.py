# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgcdc.clickpipes contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The replication_grants module: let the replication role read the tables in scope, now and after later migrations."""

from __future__ import annotations

from ansible_collections.pgcdc.clickpipes.plugins.module_utils.connection import (
    ClickPipesError,
    current_role,
    run_writing_module,
    server_major,
    write_argument_spec,
)
from ansible_collections.pgcdc.clickpipes.plugins.module_utils import grants, roles, scope as scopes
from ansible_collections.pgcdc.clickpipes.plugins.module_utils.plan import Planned, converging


def summary(schemas, tables, owners):
    return dict(schemas_without_usage=list(schemas), tables_without_select=[table['qualified'] for table in tables],
                owners_without_default_privileges=sorted(owners))


def decide(call, conn, cursor, user_planned=False):
    """What the user lacks (read only): a Planned. ``user_planned`` when an earlier step of the same transaction creates
    the user: a role that does not exist yet has what PUBLIC has."""
    params = call.params
    scopes.check_identifier(params['user'], 'role')
    user_exists = roles.read_role(cursor, params['user']) is not None
    if not user_exists and not (call.check_mode or user_planned):
        raise ClickPipesError('Role %s does not exist. Create it first with pgcdc.clickpipes.replication_user.' % params['user'])
    if not user_exists and not user_planned:
        call.warn('Role %s does not exist yet; check mode assumes an earlier task creates it.' % params['user'])
    scope = scopes.resolve(cursor, params['schemas'], params['tables'])
    scope.require_sound()
    major = server_major(conn)
    relations = scopes.readable_relations(cursor, scope)
    admin = current_role(cursor)
    pairs = grants.default_privilege_pairs(scope, relations, admin, params['user']) if params['default_privileges'] else []
    state = grants.read_state(cursor, params['user'], user_exists, scope, relations, pairs, major)
    schemas, tables, owners = grants.missing(state)
    grants.refuse_what_admin_cannot_grant(state, tables, admin)
    statements = grants.plan_grants(params['user'], schemas, tables, owners)
    owners_all = {}
    for pair in state['default_privileges']:
        owners_all.setdefault(pair['owner'], []).append(pair['schema'])
    outcome = dict(changed=bool(statements), queries=statements.queries(conn), grants=dict(
        schemas=scope.schemas, tables=[table['qualified'] for table in relations],
        default_privileges=[dict(owner=owner, schemas=owners_all[owner]) for owner in sorted(owners_all)]))
    if call.diff:
        outcome['diff'] = dict(before=summary(schemas, tables, owners), after=summary([], [], {}))
    return Planned(statements, lambda _cursor: outcome)


converge = converging(decide)


def argument_spec():
    spec = write_argument_spec()
    spec.update(scopes.SCOPE_ARGUMENT_SPEC)
    spec.update(
        user=dict(type='str', required=True),
        default_privileges=dict(type='bool', default=True),
    )
    return spec


def lock_key(params):
    return 'grants:' + params['user']


def run(call, conn=None):
    return run_writing_module(call, lock_key(call.params), converge, conn)
