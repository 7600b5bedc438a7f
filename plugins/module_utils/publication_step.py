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
from ansible_collections.pgcdc.clickpipes.plugins.module_utils import hypertables, publications as pubs, scope as scopes
from ansible_collections.pgcdc.clickpipes.plugins.module_utils.plan import Plan, Planned, converging

try:
    from psycopg2 import sql
except ImportError:  # reported by connection.connect
    sql = None


def validate(params, major):
    """Conflicting options first (whatever the server), then what this server's version allows."""
    if params['mode'] != 'tables' and params['tables']:
        raise ClickPipesError('tables is only used with mode: tables; mode %s publishes %s.' % (
            params['mode'], 'whole schemas' if params['mode'] == 'schemas' else 'every table'))
    if params['mode'] == 'schemas' and not params['schemas']:
        raise ClickPipesError('mode: schemas needs at least one schema in schemas.')
    if params['mode'] == 'schemas' and major < 15:
        raise ClickPipesError('mode: schemas (FOR TABLES IN SCHEMA) needs PostgreSQL 15 or later; this server is %d. '
                              'Use mode: tables.' % major)
    if params['publish_via_partition_root'] and major < 13:
        raise ClickPipesError('publish_via_partition_root needs PostgreSQL 13 or later; this server is %d.' % major)
    if params['operations'] is not None and not {'insert', 'update'} <= set(params['operations']):
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


FUTURE_TABLES_WARNING = (
    'Publication %(name)s publishes UPDATE and DELETE of every table created later %(what)s: from the moment such a '
    'table exists without a primary key (or another replica identity), PostgreSQL rejects the application\'s UPDATE '
    'and DELETE on it. Give every new table a primary key, or use mode: tables.')


class Converger:
    """Decides, from the current state, the statements that make the publication what the user asked for."""

    def __init__(self, params, conn, cursor):
        self.params = params
        self.cursor = cursor
        self.major = server_major(conn)
        self.admin = current_role(cursor)
        self.plan = Plan()
        self.exposed = []
        self.warnings = []
        self.hypertables = []
        self.schemas = []

    def run(self, publication):
        params = self.params
        validate(params, self.major)
        operations = self.operations(publication)
        relations, partitioned = scope_relations(self.cursor, params, self.major)
        self.schemas = self.published_schemas(relations)
        via_root = params['publish_via_partition_root']
        fresh = publication is None or (params['exact'] and publication['all_tables'] != (params['mode'] == 'all_tables'))
        if via_root is None and fresh and partitioned and self.major >= 13:
            via_root = True
        if publication is not None and publication['all_tables'] != (params['mode'] == 'all_tables') and not params['exact']:
            self.refuse_or_keep(publication)
        if fresh:
            self.create(publication, relations, operations, via_root)
        else:
            if not publication['all_tables']:
                self.extend(publication, relations)
            self.set_options(publication, operations, via_root)
            if self.plan:
                pubs.refuse_unless_owner(publication, self.admin)
        publishes_changes = bool({'update', 'delete'} & set(operations))
        had_changes = not fresh and bool({'update', 'delete'} & set(publication['operations']))
        if publishes_changes and params['mode'] != 'tables':
            self.warnings.append(FUTURE_TABLES_WARNING % dict(name=params['name'], what='in schema(s) %s' % ', '.join(
                params['schemas']) if params['mode'] == 'schemas' else 'in the database'))
        if publishes_changes and not params['allow_missing_replica_identity']:
            exposed = self.exposed if had_changes else self.published_after(publication, relations, fresh)
            pubs.refuse_missing_identity(self.cursor, exposed, params['name'])
        return self.predict(publication, relations, operations, via_root, fresh)

    def published_schemas(self, relations):
        """The schemas published as a whole: those of mode schemas, and from PostgreSQL 15 the chunk schemas of the
        hypertables in scope (a list of chunks would miss those created later; before 15 the hypertable_chunks check
        says what to do)."""
        if self.params['mode'] == 'all_tables' or self.major < hypertables.SCHEMA_PUBLICATION_MAJOR:
            return list(self.params['schemas']) if self.params['mode'] == 'schemas' else []
        self.hypertables = hypertables.in_scope(self.cursor, relations)
        own = list(self.params['schemas']) if self.params['mode'] == 'schemas' else []
        return own + [schema for schema in hypertables.chunk_schemas(self.hypertables) if schema not in own]

    def refuse_unless_may_publish(self, schemas):
        """Before a statement that publishes ``schemas`` as a whole is planned."""
        if self.params['mode'] == 'tables':
            pubs.refuse_unless_may_publish_chunks(self.cursor, self.hypertables, schemas)
        else:
            pubs.refuse_unless_may_publish_schemas(self.cursor, self.params['mode'])

    def operations(self, publication):
        """The operations asked for; unset, those of the existing publication (a running ClickPipe relies on them), or
        all of them for a new one."""
        wanted = self.params['operations']
        if wanted is None:
            wanted = publication['operations'] if publication is not None else pubs.OPERATIONS
        return [op for op in pubs.OPERATIONS if op in wanted]

    def refuse_or_keep(self, publication):
        """An existing FOR ALL TABLES publication already covers any scope: kept as it is. A list cannot become FOR ALL
        TABLES without a drop, which a running ClickPipe would not survive."""
        params = self.params
        if publication['all_tables']:
            self.warnings.append('Publication %s is FOR ALL TABLES: it already publishes the tables in scope and is kept '
                                 'as it is. Set exact: true to replace it by a list of tables or schemas (drop and '
                                 'create in one transaction; a running ClickPipe must then be resynced).' % params['name'])
            return
        raise ClickPipesError(
            'Publication %s publishes a list of tables or schemas; making it FOR ALL TABLES means dropping and recreating '
            'it. Set exact: true to do that (in one transaction), or use another publication name.' % params['name'])

    def create(self, publication, relations, operations, via_root):
        params = self.params
        if params['mode'] == 'all_tables' or self.schemas:
            self.refuse_unless_may_publish(self.schemas)
        if publication is None:
            pubs.refuse_unless_can_create(self.cursor, self.admin)
        else:
            pubs.refuse_unless_owner(publication, self.admin)
            pubs.drop(self.plan, params['name'])
        if params['mode'] == 'tables':
            pubs.refuse_what_admin_cannot_add(self.cursor, relations, self.admin)
        pubs.create(self.plan, params['name'], params['mode'], relations, self.schemas, operations, via_root, self.major)
        self.exposed = relations

    def extend(self, publication, relations):
        params, name = self.params, self.params['name']
        missing = [schema for schema in self.schemas if schema not in publication['schemas']]
        if params['mode'] == 'tables':
            members = set(member['oid'] for member in publication['members'])
            extra_schemas = [schema for schema in publication['schemas'] if schema not in self.schemas]
            if params['exact'] and (members != set(r['oid'] for r in relations) or extra_schemas):
                self.exposed = [r for r in relations if r['oid'] not in members]
                pubs.refuse_what_admin_cannot_add(self.cursor, self.exposed, self.admin)
                pubs.set_tables(self.plan, name, relations, publication['members'], extra_schemas)
            else:
                self.exposed = pubs.uncovered(self.cursor, publication, relations, self.major)
                if self.exposed:
                    pubs.refuse_what_admin_cannot_add(self.cursor, self.exposed, self.admin)
                    pubs.add_tables(self.plan, name, self.exposed)
            if missing:
                self.add_schemas(missing)
        elif params['mode'] == 'schemas':
            self.exposed = [r for r in relations if r['schema'] in missing]
            if params['exact'] and (set(publication['schemas']) != set(self.schemas) or publication['members']):
                self.refuse_unless_may_publish(self.schemas)
                pubs.alter(self.plan, name, sql.SQL('SET TABLES IN SCHEMA {}').format(pubs.schema_list(self.schemas)),
                           'setting the schemas of publication %s' % name, hint=pubs.SUPERUSER_ONLY_HINT)
            elif missing:
                self.add_schemas(missing)

    def add_schemas(self, schemas):
        name = self.params['name']
        self.refuse_unless_may_publish(schemas)
        pubs.alter(self.plan, name, sql.SQL('ADD TABLES IN SCHEMA {}').format(pubs.schema_list(schemas)),
                   'adding schema(s) %s to publication %s' % (', '.join(schemas), name), hint=pubs.SUPERUSER_ONLY_HINT)

    def set_options(self, publication, operations, via_root):
        """Only the options asked for explicitly: what an existing publication sends is what a running ClickPipe gets."""
        changes = publication['operations'] != operations
        changes = changes or (via_root is not None and self.major >= 13 and publication['via_root'] != via_root)
        if changes:
            pubs.alter(self.plan, self.params['name'],
                       sql.SQL('SET ({})').format(pubs.with_options(operations, via_root, self.major)),
                       'setting the options of publication %s' % self.params['name'])

    def published_after(self, publication, relations, fresh):
        """Every relation the publication will publish after the run (operations were widened or it is new)."""
        if fresh or self.params['exact'] or self.params['mode'] == 'all_tables':
            return relations
        members = scopes.table_facts(self.cursor, [m['oid'] for m in publication['members']])
        if publication['all_tables']:
            members = pubs.tables_in(self.cursor)
        elif publication['schemas']:
            members += pubs.tables_in(self.cursor, publication['schemas'])
        seen = set(r['oid'] for r in relations)
        return list(relations) + [m for m in members if m['oid'] not in seen]

    def predict(self, publication, relations, operations, via_root, fresh):
        params = self.params
        kept_all_tables = not fresh and publication['all_tables']
        state = dict(exists=True, name=params['name'], owner=self.admin if fresh else publication['owner'],
                     all_tables=params['mode'] == 'all_tables' or kept_all_tables, operations=operations)
        state['publish_via_partition_root'] = bool(via_root) if via_root is not None or fresh else publication['via_root']
        if self.major < 13:
            state['publish_via_partition_root'] = False
        if state['all_tables']:
            state.update(schemas=[], tables=[])
        elif fresh or params['exact']:
            state.update(schemas=list(self.schemas), tables=pubs.qualified_names(relations) if params['mode'] == 'tables' else [])
        else:
            added = self.exposed if params['mode'] == 'tables' else []
            state.update(schemas=sorted(set(publication['schemas']) | set(self.schemas)),
                         tables=pubs.qualified_names(publication['members'] + list(added)))
        return state


def decide(call, conn, cursor):
    """What the publication needs (read only): a Planned."""
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
        for message in converger.warnings:
            call.warn(message)
    queries = plan.queries(conn)

    def result(cursor):
        after = predicted if call.check_mode else pubs.public_state(pubs.read_state(cursor, params['name'], major))
        outcome = dict(changed=bool(plan), queries=queries, publication=after)
        if call.diff:
            outcome['diff'] = dict(before=pubs.public_state(publication), after=after)
        return outcome
    return Planned(plan, result, lambda cur: lock_transaction(cur, lock_key(params), params['lock_timeout']))


converge = converging(decide)


def lock_key(params):
    return 'publication:' + params['name']


def argument_spec():
    spec = write_argument_spec()
    spec.update(scopes.SCOPE_ARGUMENT_SPEC)
    spec.update(
        name=dict(type='str', required=True),
        mode=dict(type='str', choices=['tables', 'schemas', 'all_tables'], default='tables'),
        operations=dict(type='list', elements='str', choices=list(pubs.OPERATIONS)),
        publish_via_partition_root=dict(type='bool'),
        exact=dict(type='bool', default=False),
        allow_missing_replica_identity=dict(type='bool', default=False),
        state=dict(type='str', choices=['present', 'absent'], default='present'),
    )
    return spec


def run(call, conn=None):
    return run_writing_module(call, lock_key(call.params), converge, conn)
