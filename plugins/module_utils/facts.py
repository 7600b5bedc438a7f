# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgcdc.clickpipes contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Everything source_check reads, gathered read-only with one set-based query per kind of fact."""

from __future__ import annotations

from ansible_collections.pgcdc.clickpipes.plugins.module_utils import grants, hypertables, providers, publications, roles, scope as scopes
from ansible_collections.pgcdc.clickpipes.plugins.module_utils.connection import (
    ClickPipesError,
    connect,
    fetch_dicts,
    fetch_one,
    oid_array,
    server_major,
)

try:
    import psycopg2.extras
except ImportError:  # reported by connection.connect
    psycopg2 = None

SETTINGS = ('wal_level', 'max_wal_senders', 'max_replication_slots', 'max_slot_wal_keep_size', 'wal_sender_timeout',
            'idle_replication_slot_timeout', 'port')

SERVER = """
SELECT current_setting('server_version_num')::int AS version_num,
       current_setting('server_version') AS version,
       pg_is_in_recovery() AS in_recovery,
       current_database() AS database,
       current_user AS current_role,
       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser,
       (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()) AS ssl,
       ARRAY(SELECT name FROM unnest(%(functions)s::text[]) AS name WHERE to_regproc('pg_catalog.' || name) IS NOT NULL)
         AS provider_functions,
       ARRAY(SELECT extname::text FROM pg_extension WHERE extname = ANY(%(extensions)s::text[])) AS provider_extensions,
       (SELECT count(*) FROM pg_stat_replication)::int AS wal_senders_in_use
"""

SETTING_VALUES = """
SELECT name, setting, unit, pending_restart FROM pg_settings WHERE name = ANY(%(names)s::text[])
"""

# current_setting() also sees settings no loaded library defines (placeholders), which pg_settings hides.
PROVIDER_SETTINGS = """
SELECT name, current_setting(name, true) AS setting, NULL::text AS unit, false AS pending_restart FROM unnest(%(names)s::text[]) AS name
"""

SLOTS = """
SELECT slot_name AS name, slot_type AS type, plugin, database, active, {wal_status} AS wal_status,
       pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END,
                       restart_lsn)::bigint AS retained_bytes
  FROM pg_replication_slots ORDER BY slot_name
"""

WAL_RATE = """
SELECT wal_bytes::bigint AS wal_bytes, extract(epoch FROM now() - stats_reset)::float8 AS seconds FROM pg_stat_wal
"""

# Only the tables the user cannot read or can write come back, by oid: the caller has their names, and reading
# pg_class again for them costs more than the few it names.
USER_TABLE_PRIVILEGES = """
SELECT oid, can_select, can_write FROM (
       SELECT r.oid,
              has_table_privilege(%(user)s, r.oid, 'SELECT') AS can_select,
              has_table_privilege(%(user)s, r.oid, 'INSERT, UPDATE, DELETE, TRUNCATE') AS can_write
         FROM unnest(%(oids)s::oid[]) AS r(oid)) AS t
 WHERE NOT can_select OR can_write
"""

# The tables (of those given) whose every column is stored inline: no column may be stored out of line (TOAST). They
# are usually the few (most tables have a text column), and only their oids come back: the caller has the rest, and at
# 10,000 tables reading pg_class and sorting names again costs more than the test itself.
INLINE_ONLY = """
SELECT r.oid FROM unnest(%(oids)s::oid[]) AS r(oid)
 WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a
                    WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attlen = -1 AND a.attstorage <> 'p')
"""

# A WAL rate measured over less than an hour says little about a day.
MIN_WAL_RATE_SECONDS = 3600

UNIT_BYTES = {'B': 1, 'kB': 1024, '8kB': 8192, 'MB': 1024 ** 2, 'GB': 1024 ** 3, 'TB': 1024 ** 4}
UNIT_MILLISECONDS = {'ms': 1, 's': 1000, 'min': 60000, 'h': 3600000, 'd': 86400000}


def setting_amount(row):
    """A numeric setting in bytes or milliseconds (None when it is not numeric); -1 and 0 stay as they are."""
    if row is None:
        return None
    try:
        value = int(row['setting'])
    except (TypeError, ValueError):
        return None
    if value <= 0:
        return value
    unit = row.get('unit')
    return value * UNIT_BYTES.get(unit, UNIT_MILLISECONDS.get(unit, 1))


def read_settings(cursor):
    rows = fetch_dicts(cursor, SETTING_VALUES, dict(names=list(SETTINGS)))
    rows += fetch_dicts(cursor, PROVIDER_SETTINGS, dict(names=list(providers.FINGERPRINT_SETTINGS)))
    return dict((row['name'], dict(row, amount=setting_amount(row))) for row in rows)


def wal_rate(cursor, major):
    if major < 14:
        return None
    row = fetch_one(cursor, WAL_RATE)
    if not row or not row['seconds'] or row['seconds'] < MIN_WAL_RATE_SECONDS:
        return None
    return dict(bytes_per_day=int(row['wal_bytes'] / row['seconds'] * 86400), measured_seconds=int(row['seconds']))


def probe_replication(params, user=None, password=None):
    """Open a replication=database connection and run IDENTIFY_SYSTEM; returns (ok, detail)."""
    try:
        conn = connect(params, user=user, password=password,
                       connection_factory=psycopg2.extras.LogicalReplicationConnection)
    except ClickPipesError as exc:
        return False, str(exc)
    try:
        cursor = conn.cursor()
        cursor.execute('IDENTIFY_SYSTEM')
        row = cursor.fetchone()
        return True, 'IDENTIFY_SYSTEM answered (system %s, timeline %s)' % (row[0], row[1])
    except psycopg2.Error as exc:
        return False, 'IDENTIFY_SYSTEM failed: %s' % str(exc).strip()
    finally:
        conn.close()


POOLER_REFUSAL = 'unsupported startup parameter'


def pooler_facts(params, settings, user_probe=None):
    """What tells a pooler apart from a direct connection: host name, ports, and whether a walsender starts.

    The user's replication probe already tells when a walsender answered it or a pooler refused it; only otherwise
    (no password, a wrong one, no such user yet) does the admin open one more replication connection.
    """
    if user_probe and (user_probe[0] or POOLER_REFUSAL in user_probe[1]):
        reached, detail = user_probe
    else:
        reached, detail = probe_replication(params)
    server_port = (settings.get('port') or {}).get('amount')
    return dict(
        host=params['login_host'], port=params['login_port'], server_port=server_port,
        pgbouncer=not reached and POOLER_REFUSAL in detail)


def read_server(cursor):
    return fetch_one(cursor, SERVER, dict(functions=list(providers.FINGERPRINT_FUNCTIONS),
                                          extensions=list(providers.FINGERPRINT_EXTENSIONS)))


def fingerprint(server, settings, host):
    return providers.fingerprint(settings, server['provider_functions'], server['provider_extensions'], host)


def detect_provider(cursor, host):
    """The provider the source looks like (provider: auto), for a module that gathers no other facts."""
    return fingerprint(read_server(cursor), read_settings(cursor), host)


def gather(params, conn, cursor):
    """All facts the checks need, as plain data."""
    major = server_major(conn)
    server = read_server(cursor)
    server['major'] = major
    settings = read_settings(cursor)
    detected = fingerprint(server, settings, params['login_host'])
    provider = detected if params['provider'] == 'auto' else params['provider']
    slot_query = SLOTS.format(wal_status='wal_status' if major >= 13 else 'NULL::text')
    facts = dict(server=server, settings=settings, detected_provider=detected, provider=provider,
                 slots=fetch_dicts(cursor, slot_query), wal_rate=wal_rate(cursor, major))

    scope = scopes.resolve(cursor, params['schemas'], params['tables'])
    relations = scopes.published_relations(cursor, scope, major)
    facts['scope'] = scope
    facts['partitioned'] = [t['qualified'] for t in scope.tables if t['kind'] == 'p']
    published = set(r['oid'] for r in relations)
    # Partitioned tables below the top have no identity that matters to anyone: rows live in the leaves.
    checked = relations + [t for t in scopes.partitions(cursor, scope.tables) if t['oid'] not in published and t['kind'] != 'p']
    problems = [(t['qualified'], scopes.identity_problem(t)) for t in checked]
    facts['identity_problems'] = [(name, problem) for name, problem in problems if problem]
    facts['toast'] = toast_tables(cursor, relations)
    facts['dotted'] = [t['qualified'] for t in scope.tables if '.' in t['schema'] or '.' in t['name']]

    publication = publications.read_state(cursor, params['publication'], major, members=False)
    facts['publication'] = publication
    facts['unpublished'] = [r['qualified'] for r in publications.uncovered(cursor, publication, relations, major)]
    facts['hypertables'] = hypertables.in_scope(cursor, scope.tables)

    role = roles.read_role(cursor, params['user'])
    facts['user'] = role
    replication_role = providers.get(provider).replication_role
    facts['replication_grant'] = roles.read_replication_grant(cursor, replication_role, role) if replication_role else None
    if role is not None:
        readable = scopes.readable_relations(cursor, scope)
        facts['privileges'] = user_privileges(cursor, params['user'], scope, readable, server['current_role'], role)
    # A role that does not exist cannot log in: no probe (a failed SCRAM login costs both sides a connection).
    if params['password'] and role is not None:
        login = providers.clickpipes_login(params['user'], provider, params['login_user'])
        facts['replication_connection'] = probe_replication(params, user=login, password=params['password'])
    facts['pooler'] = pooler_facts(params, settings, facts.get('replication_connection'))
    return facts


def toast_tables(cursor, relations):
    """The relations with a TOAST-able column and no REPLICA IDENTITY FULL, as qualified names sorted by schema and
    name: the order ORDER BY nspname, relname gives, since catalog names sort bytewise (collation "C")."""
    candidates = [relation for relation in relations if relation['identity'] != 'f']
    inline = set(row['oid'] for row in fetch_dicts(cursor, INLINE_ONLY, dict(oids=oid_array(r['oid'] for r in candidates))))
    return publications.qualified_names([relation for relation in candidates if relation['oid'] not in inline])


def table_privileges(cursor, user, relations):
    """The relations the user cannot read or can write, with ``can_select`` and ``can_write``, sorted by quoted name
    bytewise (as ORDER BY on it sorts: quote_ident keeps the C collation of catalog names)."""
    rows = dict((row['oid'], row) for row in fetch_dicts(cursor, USER_TABLE_PRIVILEGES, dict(
        user=user, oids=oid_array(relation['oid'] for relation in relations))))
    found = [dict(rows[relation['oid']], qualified=relation['qualified']) for relation in relations if relation['oid'] in rows]
    return sorted(found, key=lambda table: table['qualified'])


def user_privileges(cursor, user, scope, relations, admin, role):
    """What the user can read and write; the default privileges are the pairs replication_grants sets."""
    tables = table_privileges(cursor, user, relations)
    pairs = grants.default_privilege_pairs(scope, relations, admin, user)
    default_acl = fetch_dicts(cursor, grants.DEFAULT_PRIVILEGES, dict(
        user=user, membership='MEMBER', owners=[owner for owner, _schema in pairs], schemas=[schema for _owner, schema in pairs]))
    return dict(
        schemas_without_usage=[row['schema'] for row in fetch_dicts(cursor, grants.SCHEMAS_WITHOUT_USAGE, dict(schemas=scope.schemas, user=user))],
        tables_without_select=[t['qualified'] for t in tables if not t['can_select']],
        writable_tables=[t['qualified'] for t in tables if t['can_write']],
        default_privileges_missing=[(row['owner'], row['schema']) for row in default_acl if not row['granted']],
        owned_tables=roles.owned_tables(cursor, role),
    )
