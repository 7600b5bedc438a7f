# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgcdc.clickpipes contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The publication module: create or extend the publication of the tables in scope, in one transaction."""

from __future__ import annotations

from ansible_collections.pgcdc.clickpipes.plugins.module_utils.connection import (
    ClickPipesError,
    current_role,
    lock_transaction,
    run_writing_module,
    server_major,
    write_argument_spec,
)
from ansible_collections.pgcdc.clickpipes.plugins.module_utils import publications as pubs, roles, scope as scopes
from ansible_collections.pgcdc.clickpipes.plugins.module_utils.plan import Plan

try:
    from psycopg2 import sql
except ImportError:  # reported by connection.connect
    sql = None


def validate(params, major):
    """Conflicting options first (whatever the server), then what this server's version allows."""
    if params['mode'] != 'tables' and params['tables']:
        raise ClickPipesError('tables is only used with mode: tables; mode %s publishes %s.' % (
            params['mode'], 'whole schemas' if params['mode'] == 'schemas' else 'every table'))
    if params['mode'] == 'schemas' and major < 15:
        raise ClickPipesError('mode: schemas (FOR TABLES IN SCHEMA) needs PostgreSQL 15 or later; this server is %d. '
                              'Use mode: tables.' % major)
    if params['publish_via_partition_root'] and major < 13:
        raise ClickPipesError('publish_via_partition_root needs PostgreSQL 13 or later; this server is %d.' % major)
    if not {'insert', 'update'} <= set(params['operations']):
        raise ClickPipesError('ClickPipes needs insert and update in operations (got %s).' % ', '.join(params['operations']))


def scope_relations(cursor, params, major):
    """The relations the publication must cover, with their facts, and whether one is partitioned."""
    if params['mode'] == 'tables':
        scope = scopes.resolve(cursor, params['schemas'], params['tables'])
        scope.require_sound()
        return scopes.published_relations(cursor, scope, major), any(t['kind'] == 'p' for t in scope.tables)
    if params['mode'] == 'schemas':
        missing = scopes.resolve(cursor, params['schemas'], []).missing_schemas
        if missing:
            raise ClickPipesError('Schemas not found: %s.' % ', '.join(missing))
        relations = pubs.tables_in(cursor, params['schemas'])
    else:
        relations = pubs.tables_in(cursor)
    return relations, any(t['kind'] == 'p' for t in relations)


class Converger:
    """Decides, from the current state, the statements that make the publication what the user asked for."""

    def __init__(self, params, conn, cursor):
        self.params = params
        self.cursor = cursor
        self.major = server_major(conn)
        self.admin = current_role(cursor)
        self.plan = Plan()
        self.exposed = []

    def run(self, publication):
        params = self.params
        validate(params, self.major)
        operations = [op for op in pubs.OPERATIONS if op in params['operations']]
        relations, partitioned = scope_relations(self.cursor, params, self.major)
        via_root = params['publish_via_partition_root']
        if via_root is None and partitioned and self.major >= 13:
            via_root = True
        recreate = publication is not None and publication['all_tables'] != (params['mode'] == 'all_tables')
        if recreate and not params['exact']:
            raise ClickPipesError(
                'Publication %s is %s; making it %s means dropping and recreating it. Set exact: true to do that (in one '
                'transaction), or use another publication name.' % (
                    params['name'], 'FOR ALL TABLES' if publication['all_tables'] else 'a list of tables or schemas',
                    'FOR ALL TABLES' if params['mode'] == 'all_tables' else 'a list of tables or schemas'))
        if publication is None or recreate:
            self.create(publication, relations, operations, via_root)
        else:
            pubs.refuse_unless_owner(publication, self.admin)
            self.extend(publication, relations)
            self.set_options(publication, operations, via_root)
        publishes_changes = bool({'update', 'delete'} & set(operations))
        had_changes = publication is not None and not recreate and bool({'update', 'delete'} & set(publication['operations']))
        if publishes_changes and not params['allow_missing_replica_identity']:
            exposed = self.exposed if had_changes else self.published_after(publication, relations, recreate)
            pubs.refuse_missing_identity(self.cursor, exposed, params['name'])
        return self.predict(publication, relations, operations, via_root, recreate)

    def create(self, publication, relations, operations, via_root):
        params = self.params
        if publication is None:
            pubs.refuse_unless_can_create(self.cursor, self.admin)
        else:
            pubs.refuse_unless_owner(publication, self.admin)
            pubs.drop(self.plan, params['name'])
        if params['mode'] == 'tables':
            pubs.refuse_what_admin_cannot_add(self.cursor, relations, self.admin)
        pubs.create(self.plan, params['name'], params['mode'], relations, params['schemas'], operations, via_root, self.major)
        self.exposed = relations

    def extend(self, publication, relations):
        params, name = self.params, self.params['name']
        if params['mode'] == 'tables':
            members = set(member['oid'] for member in publication['members'])
            if params['exact'] and (members != set(r['oid'] for r in relations) or publication['schemas']):
                self.exposed = [r for r in relations if r['oid'] not in members]
                pubs.refuse_what_admin_cannot_add(self.cursor, self.exposed, self.admin)
                pubs.set_tables(self.plan, name, relations, publication['members'], publication['schemas'])
                return
            self.exposed = pubs.uncovered(self.cursor, publication, relations, self.major)
            if self.exposed:
                pubs.refuse_what_admin_cannot_add(self.cursor, self.exposed, self.admin)
                pubs.add_tables(self.plan, name, self.exposed)
        elif params['mode'] == 'schemas':
            missing = [schema for schema in params['schemas'] if schema not in publication['schemas']]
            self.exposed = [r for r in relations if r['schema'] in missing]
            if params['exact'] and (set(publication['schemas']) != set(params['schemas']) or publication['members']):
                pubs.alter(self.plan, name, sql.SQL('SET TABLES IN SCHEMA {}').format(pubs.schema_list(params['schemas'])),
                           'setting the schemas of publication %s' % name, hint=pubs.SUPERUSER_ONLY_HINT)
            elif missing:
                pubs.alter(self.plan, name, sql.SQL('ADD TABLES IN SCHEMA {}').format(pubs.schema_list(missing)),
                           'adding schema(s) %s to publication %s' % (', '.join(missing), name), hint=pubs.SUPERUSER_ONLY_HINT)

    def set_options(self, publication, operations, via_root):
        changes = publication['operations'] != operations
        changes = changes or (via_root is not None and self.major >= 13 and publication['via_root'] != via_root)
        if changes:
            pubs.alter(self.plan, self.params['name'],
                       sql.SQL('SET ({})').format(pubs.with_options(operations, via_root, self.major)),
                       'setting the options of publication %s' % self.params['name'])

    def published_after(self, publication, relations, recreate):
        """Every relation the publication will publish after the run (operations were widened or it is new)."""
        if publication is None or recreate or self.params['exact'] or self.params['mode'] == 'all_tables':
            return relations
        members = scopes.table_facts(self.cursor, [m['oid'] for m in publication['members']])
        if publication['schemas']:
            members += pubs.tables_in(self.cursor, publication['schemas'])
        seen = set(r['oid'] for r in relations)
        return list(relations) + [m for m in members if m['oid'] not in seen]

    def predict(self, publication, relations, operations, via_root, recreate):
        params = self.params
        fresh = publication is None or recreate
        state = dict(exists=True, name=params['name'], owner=self.admin if fresh else publication['owner'],
                     all_tables=params['mode'] == 'all_tables', operations=operations)
        state['publish_via_partition_root'] = bool(via_root) if via_root is not None or fresh else publication['via_root']
        if self.major < 13:
            state['publish_via_partition_root'] = False
        if params['mode'] == 'all_tables':
            state.update(schemas=[], tables=[])
        elif fresh or params['exact']:
            state.update(schemas=list(params['schemas']) if params['mode'] == 'schemas' else [],
                         tables=pubs.qualified_names(relations) if params['mode'] == 'tables' else [])
        else:
            added = self.exposed if params['mode'] == 'tables' else []
            state.update(schemas=sorted(set(publication['schemas']) | (set(params['schemas']) if params['mode'] == 'schemas' else set())),
                         tables=pubs.qualified_names(publication['members'] + list(added)))
        return state


def converge(call, conn, cursor):
    params = call.params
    scopes.check_identifier(params['name'], 'publication')
    major = server_major(conn)
    publication = pubs.read_state(cursor, params['name'], major)
    if params['state'] == 'absent':
        plan = Plan()
        if publication is not None:
            pubs.refuse_unless_owner(publication, current_role(cursor))
            pubs.drop(plan, params['name'])
        predicted = dict(exists=False)
    else:
        converger = Converger(params, conn, cursor)
        predicted = converger.run(publication)
        plan = converger.plan
        if call.check_mode and params['mode'] != 'tables' and not roles.read_role(cursor, current_role(cursor))['superuser']:
            call.warn('mode %s needs a superuser in stock PostgreSQL; the real run may be refused.' % params['mode'])
    queries = plan.queries(conn)
    after = predicted
    if not call.check_mode:
        plan.apply(cursor, lambda cur: lock_transaction(cur, lock_key(params), params['lock_timeout']))
        after = pubs.public_state(pubs.read_state(cursor, params['name'], major))
    result = dict(changed=bool(plan), queries=queries, publication=after)
    if call.diff:
        result['diff'] = dict(before=pubs.public_state(publication), after=after)
    return result


def lock_key(params):
    return 'publication:' + params['name']


def argument_spec():
    spec = write_argument_spec()
    spec.update(scopes.SCOPE_ARGUMENT_SPEC)
    spec.update(
        name=dict(type='str', required=True),
        mode=dict(type='str', choices=['tables', 'schemas', 'all_tables'], default='tables'),
        operations=dict(type='list', elements='str', choices=list(pubs.OPERATIONS), default=list(pubs.OPERATIONS)),
        publish_via_partition_root=dict(type='bool'),
        exact=dict(type='bool', default=False),
        allow_missing_replica_identity=dict(type='bool', default=False),
        state=dict(type='str', choices=['present', 'absent'], default='present'),
    )
    return spec


def run(call, conn=None):
    return run_writing_module(call, lock_key(call.params), converge, conn)
