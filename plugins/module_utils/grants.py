# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgcdc.clickpipes contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the replication role may read: schema USAGE, table SELECT and default privileges, set-based."""

from __future__ import annotations

from ansible_collections.pgcdc.clickpipes.plugins.module_utils.connection import ClickPipesError, fetch_dicts, oid_array
from ansible_collections.pgcdc.clickpipes.plugins.module_utils.plan import Plan

try:
    from psycopg2 import sql
except ImportError:  # reported by connection.connect
    sql = None

SHOWN_NAMES = 20

SCHEMAS_WITHOUT_USAGE = """
SELECT s AS schema, has_schema_privilege(current_user, s, 'USAGE WITH GRANT OPTION') AS admin_can_grant
  FROM unnest(%(schemas)s::text[]) AS s
 WHERE NOT has_schema_privilege(%(user)s, s, 'USAGE')
 ORDER BY s
"""

TABLE_PRIVILEGES = """
SELECT c.oid, n.nspname AS schema, c.relname AS name,
       quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS qualified,
       has_table_privilege(%(user)s, c.oid, 'SELECT') AS can_select,
       has_table_privilege(current_user, c.oid, 'SELECT WITH GRANT OPTION') AS admin_can_grant
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.oid = ANY(%(oids)s::oid[])
 ORDER BY n.nspname, c.relname
"""

# A default ACL applies when it is for the owner in the schema or for the owner in every schema (namespace 0),
# granting SELECT on tables to the user or to PUBLIC.
DEFAULT_PRIVILEGES = """
SELECT p.owner, p.schema,
       EXISTS (SELECT 1 FROM pg_default_acl d, aclexplode(d.defaclacl) AS acl
                WHERE d.defaclrole = to_regrole(quote_ident(p.owner))
                  AND d.defaclnamespace IN (0, to_regnamespace(quote_ident(p.schema)))
                  AND d.defaclobjtype = 'r'
                  AND acl.privilege_type = 'SELECT'
                  AND acl.grantee IN (0, to_regrole(quote_ident(%(user)s)))) AS granted,
       pg_has_role(current_user, p.owner, %(membership)s) AS admin_can_set
  FROM unnest(%(owners)s::text[], %(schemas)s::text[]) AS p(owner, schema)
 ORDER BY p.owner, p.schema
"""


def shorten(names):
    shown = ', '.join(names[:SHOWN_NAMES])
    return shown + (' and %d more' % (len(names) - SHOWN_NAMES) if len(names) > SHOWN_NAMES else '')


def default_privilege_pairs(scope, relations, admin, user):
    """(owner, schema) pairs whose future tables the user must be able to read: the owners of the ``relations`` (the
    tables and their partitions), of the tables left out of the scope, and the admin, in each schema of a schema scope.
    Tables named one by one are the whole scope: tables created later stay unreadable."""
    if scope.explicit:
        return []
    pairs = set((table['owner'], table['schema']) for table in list(relations) + scope.left_out if table['schema'] in scope.schemas)
    pairs.update((admin, schema) for schema in scope.schemas)
    return sorted(pair for pair in pairs if pair[0] != user)


def read_state(cursor, user, user_exists, scope, relations, pairs, server_major):
    """What is missing, as lists, for the schemas of ``scope``, the ``relations`` to read and the default privilege
    ``pairs``. A role that does not exist yet (check mode) has what PUBLIC has."""
    subject = user if user_exists else 'public'
    membership = 'USAGE' if server_major >= 16 else 'MEMBER'
    return dict(
        schemas=fetch_dicts(cursor, SCHEMAS_WITHOUT_USAGE, dict(schemas=scope.schemas, user=subject)),
        tables=fetch_dicts(cursor, TABLE_PRIVILEGES, dict(user=subject, oids=oid_array(relation['oid'] for relation in relations))),
        default_privileges=fetch_dicts(cursor, DEFAULT_PRIVILEGES, dict(
            user=user, membership=membership, owners=[owner for owner, _schema in pairs], schemas=[schema for _owner, schema in pairs])),
    )


def missing(state):
    """The privileges still to grant: schemas, tables (facts) and {owner: [schemas]}."""
    tables = [table for table in state['tables'] if not table['can_select']]
    owners = {}
    for pair in state['default_privileges']:
        if not pair['granted']:
            owners.setdefault(pair['owner'], []).append(pair['schema'])
    return [row['schema'] for row in state['schemas']], tables, owners


def refuse_what_admin_cannot_grant(state, tables, admin):
    """Refuse, naming every problem, before anything is sent (PostgreSQL only warns when a GRANT of a schema grants
    nothing: the run would never converge)."""
    problems = []
    schemas = [row['schema'] for row in state['schemas'] if not row['admin_can_grant']]
    if schemas:
        problems.append('it cannot grant USAGE on schema(s) %s: only the schema\'s owner (or a role holding USAGE WITH '
                        'GRANT OPTION) can; run as the owner, or have it GRANT USAGE ON SCHEMA ... TO %s WITH GRANT OPTION'
                        % (', '.join(schemas), admin))
    not_grantable = [table['qualified'] for table in tables if not table['admin_can_grant']]
    if not_grantable:
        problems.append('it cannot grant SELECT on %s: only the owner of a table (or a member of the owning role, or a role '
                        'holding SELECT WITH GRANT OPTION) can; run as the owner, or GRANT <owner role> TO %s'
                        % (shorten(not_grantable), admin))
    not_settable = sorted(set(pair['owner'] for pair in state['default_privileges'] if not pair['granted'] and not pair['admin_can_set']))
    if not_settable:
        problems.append('it cannot set default privileges for role(s) %s, which own tables in scope: that needs membership '
                        'in the role; GRANT %s TO %s, or set default_privileges: false and grant tables created later yourself'
                        % (', '.join(not_settable), not_settable[0], admin))
    if problems:
        raise ClickPipesError('The admin login %s cannot give the replication user what it needs: %s. Nothing was applied.'
                              % (admin, '; '.join(problems)))


def plan_grants(user, schemas, tables, owners):
    plan = Plan()
    role = sql.Identifier(user)
    if schemas:
        plan.add(sql.SQL('GRANT USAGE ON SCHEMA {} TO {}').format(sql.SQL(', ').join(map(sql.Identifier, schemas)), role),
                 'granting USAGE on schema(s) %s to %s' % (', '.join(schemas), user))
    if tables:
        plan.add(sql.SQL('GRANT SELECT ON TABLE {} TO {}').format(
            sql.SQL(', ').join(sql.Identifier(table['schema'], table['name']) for table in tables), role),
            'granting SELECT on %d table(s) to %s' % (len(tables), user), relations=[table['oid'] for table in tables])
    for owner in sorted(owners):
        plan.add(sql.SQL('ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT SELECT ON TABLES TO {}').format(
            sql.Identifier(owner), sql.SQL(', ').join(map(sql.Identifier, owners[owner])), role),
            'setting default privileges for tables %s creates later' % owner)
    return plan
