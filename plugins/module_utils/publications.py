# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgcdc.clickpipes contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The publication: its state, which tables it covers, and the statements that converge it safely."""

from __future__ import annotations

from ansible_collections.pgcdc.clickpipes.plugins.module_utils.connection import ClickPipesError, fetch_dicts, fetch_one, oid_array
from ansible_collections.pgcdc.clickpipes.plugins.module_utils import providers
from ansible_collections.pgcdc.clickpipes.plugins.module_utils.grants import shorten
from ansible_collections.pgcdc.clickpipes.plugins.module_utils.scope import identity_problem, partitions, table_facts

try:
    from psycopg2 import sql
except ImportError:  # reported by connection.connect
    sql = None

OPERATIONS = ('insert', 'update', 'delete', 'truncate')
# One ALTER PUBLICATION locks every table it names until commit; PostgreSQL's default lock table holds a few
# thousand locks in all, so long lists are added this many tables per transaction (each batch atomic).
TABLES_PER_TRANSACTION = 1000

PUBLICATION = """
SELECT p.oid, p.pubname AS name, pg_get_userbyid(p.pubowner) AS owner, p.puballtables AS all_tables,
       p.pubinsert, p.pubupdate, p.pubdelete, p.pubtruncate, {via_root} AS via_root,
       pg_has_role(current_user, p.pubowner, 'USAGE') AS admin_owns
  FROM pg_publication p WHERE p.pubname = %(name)s
"""

MEMBERS = """
SELECT c.oid, n.nspname AS schema, c.relname AS name, quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS qualified
  FROM pg_publication_rel pr JOIN pg_class c ON c.oid = pr.prrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE pr.prpubid = %(pub)s ORDER BY n.nspname, c.relname
"""

MEMBER_SCHEMAS = """
SELECT n.nspname AS name FROM pg_publication_namespace pn JOIN pg_namespace n ON n.oid = pn.pnnspid
 WHERE pn.pnpubid = %(pub)s ORDER BY n.nspname
"""

MEMBER_COUNT = "SELECT count(*)::int AS count FROM pg_publication_rel WHERE prpubid = %(pub)s"

# A relation is covered when it, or a partitioned table above it, is a member, or (PostgreSQL 15+) the schema of
# one of those is. Most relations are published directly: that test comes first, then their own schema, ancestors
# (partitions) last. NOT IN (a hashed subplan) rather than NOT EXISTS: right after a large CREATE PUBLICATION the
# statistics still say pg_publication_rel is empty, and the anti join the planner then picks is quadratic in the
# number of tables. pg_partition_ancestors lists nothing for a table that is not a partition.
UNCOVERED = """
SELECT r.oid FROM unnest(%(oids)s::oid[]) AS r(oid)
 WHERE r.oid NOT IN (SELECT pr.prrelid FROM pg_publication_rel pr WHERE pr.prpubid = %(pub)s)
   {own_schema}
   AND NOT EXISTS (
       SELECT 1 FROM pg_partition_ancestors(r.oid) AS up JOIN pg_class c ON c.oid = up.relid
        WHERE EXISTS (SELECT 1 FROM pg_publication_rel pr WHERE pr.prpubid = %(pub)s AND pr.prrelid = up.relid)
              {schema_member})
"""
OWN_SCHEMA = """AND (SELECT c.relnamespace FROM pg_class c WHERE c.oid = r.oid) NOT IN (
       SELECT pn.pnnspid FROM pg_publication_namespace pn WHERE pn.pnpubid = %(pub)s)"""
SCHEMA_MEMBER = 'OR EXISTS (SELECT 1 FROM pg_publication_namespace pn WHERE pn.pnpubid = %(pub)s AND pn.pnnspid = c.relnamespace)'

ALL_TABLES_IN = """
SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relpersistence = 'p'
   AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%%'
   AND (%(schemas)s::text[] IS NULL OR n.nspname = ANY(%(schemas)s::text[]))
"""

ADMIN_CAN_ADD = """
SELECT c.oid, pg_has_role(current_user, c.relowner, 'USAGE') AS admin_owns
  FROM pg_class c WHERE c.oid = ANY(%(oids)s::oid[])
"""

CAN_CREATE = "SELECT has_database_privilege(current_database(), 'CREATE') AS can_create"

# FOR TABLES IN SCHEMA and FOR ALL TABLES: a superuser, or a member of a provider's role that may (providers.py).
MAY_PUBLISH_SCHEMAS = """
SELECT rolsuper OR EXISTS (SELECT 1 FROM pg_roles r
                            WHERE r.rolname = ANY(%(roles)s::text[]) AND pg_has_role(current_user, r.oid, 'MEMBER')) AS may
  FROM pg_roles WHERE rolname = current_user
"""

SUPERUSER_ONLY_HINT = (
    'FOR ALL TABLES and FOR TABLES IN SCHEMA need a superuser in stock PostgreSQL (a provider may also allow members of '
    '%s). Use mode: tables (the default): it lists the tables explicitly and works for an admin that owns them.'
    % ' or '.join(providers.SCHEMA_PUBLISHING_ROLES))


def read_state(cursor, name, server_major, members=True):
    """The publication, or None; without ``members`` only their number (``member_count``) is read."""
    via_root = 'p.pubviaroot' if server_major >= 13 else 'false'
    publication = fetch_one(cursor, PUBLICATION.format(via_root=via_root), dict(name=name))
    if publication is None:
        return None
    publication['operations'] = [op for op in OPERATIONS if publication.pop('pub' + op)]
    if members:
        publication['members'] = fetch_dicts(cursor, MEMBERS, dict(pub=publication['oid']))
    else:
        publication['member_count'] = fetch_one(cursor, MEMBER_COUNT, dict(pub=publication['oid']))['count']
    publication['schemas'] = ([row['name'] for row in fetch_dicts(cursor, MEMBER_SCHEMAS, dict(pub=publication['oid']))]
                              if server_major >= 15 else [])
    return publication


def public_state(publication):
    """What is shown of a publication: its tables when read_state read them, otherwise their number (table_count)."""
    if publication is None:
        return dict(exists=False)
    state = dict(exists=True, name=publication['name'], owner=publication['owner'], all_tables=publication['all_tables'],
                 schemas=list(publication['schemas']), operations=list(publication['operations']),
                 publish_via_partition_root=publication['via_root'])
    if 'members' in publication:
        state['tables'] = qualified_names(publication['members'])
    else:
        state['table_count'] = publication['member_count']
    return state


def qualified_names(relations):
    """Quoted names in a stable order (catalog order depends on the database's collation)."""
    return [relation['qualified'] for relation in sorted(relations, key=lambda relation: (relation['schema'], relation['name']))]


def uncovered(cursor, publication, relations, server_major):
    """The relations the publication does not publish yet."""
    if publication is None:
        return list(relations)
    if publication['all_tables']:
        return []
    schemas = server_major >= 15
    query = UNCOVERED.format(own_schema=OWN_SCHEMA if schemas else '', schema_member=SCHEMA_MEMBER if schemas else '')
    missing = set(row['oid'] for row in fetch_dicts(cursor, query, dict(oids=oid_array(r['oid'] for r in relations), pub=publication['oid'])))
    return [relation for relation in relations if relation['oid'] in missing]


def tables_in(cursor, schemas=None):
    """Facts of every user table (in the given schemas), for the identity guard of schema and all-tables modes."""
    return table_facts(cursor, [row['oid'] for row in fetch_dicts(cursor, ALL_TABLES_IN, dict(schemas=schemas))])


def refuse_missing_identity(cursor, relations, publication_name):
    """Fail, naming every table, when publishing UPDATE/DELETE would make the application's writes fail. PostgreSQL
    checks the partition a row is in, never a partitioned table itself."""
    checked = list(relations) + partitions(cursor, relations)
    broken = []
    for table in checked:
        problem = identity_problem(table) if table['kind'] != 'p' else None
        if problem:
            broken.append('%s (%s)' % (table['qualified'], problem))
    if broken:
        raise ClickPipesError(
            'Refusing to publish UPDATE/DELETE of %s for %d table(s) without a usable replica identity: PostgreSQL '
            'would then reject the application\'s UPDATE and DELETE on them. Tables: %s. Fix each table (add a primary '
            'key, or ALTER TABLE ... REPLICA IDENTITY FULL, or REPLICA IDENTITY USING INDEX on a unique index of NOT NULL '
            'columns), leave it out of tables, or set allow_missing_replica_identity: true if the application never '
            'updates or deletes rows there.' % (publication_name, len(broken), shorten(broken)))


def refuse_what_admin_cannot_add(cursor, relations, admin):
    if not relations:
        return
    rows = fetch_dicts(cursor, ADMIN_CAN_ADD, dict(oids=oid_array(relation['oid'] for relation in relations)))
    cannot = set(row['oid'] for row in rows if not row['admin_owns'])
    if cannot:
        names = ['%s (owner %s)' % (r['qualified'], r['owner']) for r in relations if r['oid'] in cannot]
        owners = sorted(set(r['owner'] for r in relations if r['oid'] in cannot))
        raise ClickPipesError(
            'The admin login %s cannot add %s to a publication: that needs ownership of the table or membership in the '
            'role that owns it. GRANT %s TO %s, or run as the owner. Nothing was applied.'
            % (admin, shorten(names), ', '.join(owners), admin))


def refuse_unless_can_create(cursor, admin):
    if not fetch_one(cursor, CAN_CREATE)['can_create']:
        raise ClickPipesError('The admin login %s lacks CREATE on this database, which creating a publication needs. '
                              'GRANT CREATE ON DATABASE <db> TO %s.' % (admin, admin))


def refuse_unless_may_publish_schemas(cursor, mode):
    """Refuse before anything is sent what PostgreSQL refuses a non-superuser."""
    if not fetch_one(cursor, MAY_PUBLISH_SCHEMAS, dict(roles=list(providers.SCHEMA_PUBLISHING_ROLES)))['may']:
        raise ClickPipesError('mode %s needs a superuser here. %s Nothing was applied.' % (mode, SUPERUSER_ONLY_HINT))


def refuse_unless_may_publish_chunks(cursor, hypertables, schemas):
    """A hypertable's chunks are published only with their schema as a whole, which PostgreSQL refuses a non-superuser."""
    if not fetch_one(cursor, MAY_PUBLISH_SCHEMAS, dict(roles=list(providers.SCHEMA_PUBLISHING_ROLES)))['may']:
        raise ClickPipesError(
            'Hypertable(s) %s keep their rows in chunk tables in schema(s) %s, created as data arrives: only publishing '
            'those schemas as a whole (TABLES IN SCHEMA) follows them, and that needs a superuser here. Run as a superuser, '
            'or leave the hypertables out of the scope. Nothing was applied.'
            % (shorten([hypertable['qualified'] for hypertable in hypertables]), ', '.join(schemas)))


def refuse_unless_owner(publication, admin):
    if publication is not None and not publication['admin_owns']:
        raise ClickPipesError('Publication %s is owned by %s; only its owner (or a member of that role) can change it. '
                              'Run as %s, or GRANT %s TO %s.' % (publication['name'], publication['owner'],
                                                                 publication['owner'], publication['owner'], admin))


def table_list(relations):
    return sql.SQL(', ').join(sql.Identifier(relation['schema'], relation['name']) for relation in relations)


def schema_list(schemas):
    return sql.SQL(', ').join(sql.Identifier(schema) for schema in schemas)


def with_options(operations, via_root, server_major):
    options = [sql.SQL('publish = {}').format(sql.Literal(', '.join(operations)))]
    if via_root is not None and server_major >= 13:
        options.append(sql.SQL('publish_via_partition_root = {}').format(sql.Literal(via_root)))
    return sql.SQL(', ').join(options)


def target_clause(mode, relations, schemas):
    """What the publication publishes; in mode tables, ``schemas`` are published as a whole next to the tables (the
    chunk schemas of hypertables)."""
    if mode == 'all_tables':
        return sql.SQL('FOR ALL TABLES')
    if mode == 'schemas':
        return sql.SQL('FOR TABLES IN SCHEMA {}').format(schema_list(schemas))
    clause = sql.SQL('FOR TABLE {}').format(table_list(relations))
    if schemas:
        clause += sql.SQL(', TABLES IN SCHEMA {}').format(schema_list(schemas))
    return clause


def create(plan, name, mode, relations, schemas, operations, via_root, server_major):
    """CREATE PUBLICATION; a long table list is added in batches, one transaction each, after the first."""
    hint = SUPERUSER_ONLY_HINT if mode != 'tables' or schemas else None
    first, rest = (relations[:TABLES_PER_TRANSACTION], relations[TABLES_PER_TRANSACTION:]) if mode == 'tables' else (relations, [])
    plan.add(sql.SQL('CREATE PUBLICATION {} {} WITH ({})').format(
        sql.Identifier(name), target_clause(mode, first, schemas), with_options(operations, via_root, server_major)),
        'creating publication %s' % name, privilege_hint=hint, relations=[r['oid'] for r in first])
    if rest:
        plan.commit_point()
        add_tables(plan, name, rest)


def add_tables(plan, name, relations):
    """ALTER PUBLICATION ... ADD TABLE, in batches of TABLES_PER_TRANSACTION committed one by one."""
    change_tables(plan, name, 'ADD', 'adding %d table(s) to publication %s', relations)


def change_tables(plan, name, verb, doing, relations):
    for start in range(0, len(relations), TABLES_PER_TRANSACTION):
        batch = relations[start:start + TABLES_PER_TRANSACTION]
        if start:
            plan.commit_point()
        alter(plan, name, sql.SQL(verb + ' TABLE {}').format(table_list(batch)), doing % (len(batch), name), relations=batch)


def set_tables(plan, name, relations, members, schemas):
    """Make the publication list exactly ``relations``: add what it lacks, then drop extra tables and schemas, in
    batches of TABLES_PER_TRANSACTION. Between batches it publishes more than asked, never less, so a running
    ClickPipe misses no change of a table it keeps."""
    member_oids = set(member['oid'] for member in members)
    wanted = set(relation['oid'] for relation in relations)
    missing = [relation for relation in relations if relation['oid'] not in member_oids]
    extra = [member for member in members if member['oid'] not in wanted]
    add_tables(plan, name, missing)
    if len(missing) + len(extra) > TABLES_PER_TRANSACTION:
        plan.commit_point()
    change_tables(plan, name, 'DROP', 'dropping %d table(s) from publication %s', extra)
    if schemas:
        alter(plan, name, sql.SQL('DROP TABLES IN SCHEMA {}').format(schema_list(schemas)),
              'dropping schema(s) %s from publication %s' % (', '.join(schemas), name), hint=SUPERUSER_ONLY_HINT)


def alter(plan, name, clause, doing, hint=None, relations=()):
    plan.add(sql.SQL('ALTER PUBLICATION {} ').format(sql.Identifier(name)) + clause, doing, privilege_hint=hint,
             relations=[r['oid'] for r in relations])


def drop(plan, name):
    plan.add(sql.SQL('DROP PUBLICATION {}').format(sql.Identifier(name)), 'dropping publication %s' % name)
