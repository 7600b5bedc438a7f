# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgcdc.clickpipes contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The replication role: its state (from pg_roles, never pg_authid) and the statements that converge it."""

from __future__ import annotations

from ansible_collections.pgcdc.clickpipes.plugins.module_utils.connection import (
    ClickPipesError,
    connect,
    fetch_dicts,
    fetch_one,
)
from ansible_collections.pgcdc.clickpipes.plugins.module_utils.plan import Plan
from ansible_collections.pgcdc.clickpipes.plugins.module_utils import providers

try:
    from psycopg2 import sql
    from psycopg2.extensions import encrypt_password
except ImportError:  # reported by connection.connect
    sql = encrypt_password = None

PASSWORD_PLACEHOLDER = "'********'"

PASSWORD_WARNING_DAYS = 30
# VALID UNTIL: past it, PostgreSQL refuses every password login as the role, and tells the client only that the password
# failed. Shown in UTC; 'infinity' and no VALID UNTIL at all never expire.
ROLE_STATE = """
SELECT oid, rolname AS name, rolcanlogin AS login, rolreplication AS replication, rolbypassrls AS bypass_rls,
       rolconnlimit AS connection_limit, rolsuper AS superuser, rolcreaterole AS create_role, rolcreatedb AS create_db,
       CASE WHEN isfinite(rolvaliduntil) THEN to_char(rolvaliduntil AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"')
            ELSE rolvaliduntil::text END AS valid_until,
       coalesce(rolvaliduntil < now(), false) AS password_expired,
       coalesce(rolvaliduntil < now() + make_interval(days => %(warning_days)s), false) AS password_expires_soon
  FROM pg_roles WHERE rolname = %(name)s
"""

# From the owner's side (pg_shdepend's index), not by scanning pg_class: the bootstrap superuser, whose objects are not
# recorded there, is never the replication user (it is the admin).
OWNED_TABLES = """
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS qualified
  FROM pg_shdepend d JOIN pg_class c ON c.oid = d.objid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE d.refclassid = 'pg_authid'::regclass AND d.refobjid = %(oid)s AND d.deptype = 'o' AND d.classid = 'pg_class'::regclass
   AND d.dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND c.relkind IN ('r', 'p')
 ORDER BY 1 LIMIT 5
"""

# What the admin may do to roles. pg_has_role's ADMIN OPTION test follows membership, as ALTER ROLE does.
ADMIN_RIGHTS = """
SELECT rolsuper AS superuser, rolcreaterole AS create_role, rolreplication AS replication, rolbypassrls AS bypass_rls,
       %(oid)s::oid IS NOT NULL AND pg_has_role(current_user, %(oid)s::oid, 'MEMBER WITH ADMIN OPTION') AS admin_of_role,
       EXISTS (SELECT 1 FROM pg_roles a WHERE a.rolname = ANY(%(replication_admin_roles)s::text[])
                                          AND pg_has_role(current_user, a.oid, 'MEMBER')) AS replication_admin
  FROM pg_roles WHERE rolname = current_user
"""

# A provider's replication role (RDS: rds_replication): whether it exists, whether the user is a member (directly or
# through other roles), and whether the admin may grant it (ADMIN OPTION, held directly or through a role it belongs to).
REPLICATION_GRANT = """
SELECT g.oid IS NOT NULL AS exists,
       CASE WHEN g.oid IS NULL OR %(member)s::oid IS NULL THEN false ELSE pg_has_role(%(member)s::oid, g.oid, 'MEMBER') END AS member,
       CASE WHEN g.oid IS NULL THEN false ELSE pg_has_role(current_user, g.oid, 'MEMBER WITH ADMIN OPTION') END AS grantable
  FROM (SELECT to_regrole(%(name)s)::oid AS oid) AS g
"""

WAL_SENDERS = """
SELECT pid FROM pg_stat_activity WHERE usename = %(name)s AND backend_type = 'walsender' ORDER BY pid
"""

OWNED_OBJECTS = """
SELECT count(*) AS owned FROM pg_shdepend
 WHERE refclassid = 'pg_authid'::regclass AND refobjid = %(oid)s AND deptype = 'o'
   AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
"""

REPLICATION_PRIVILEGE_HINT = (
    'Granting REPLICATION needs a superuser on PostgreSQL 15 and older, and on 16 and later an admin that has '
    'CREATEROLE and REPLICATION itself. On a managed provider, create the role with REPLICATION in the provider '
    'console or API (Neon: Roles page or API; PlanetScale: pscale role create --with-replication), then re-run: '
    'the module only checks a role that is already right.')


def read_role(cursor, name):
    return fetch_one(cursor, ROLE_STATE, dict(name=name, warning_days=PASSWORD_WARNING_DAYS))


def read_replication_grant(cursor, replication_role, role):
    """What the provider's replication role is to ``role`` and the admin: dict(name, exists, member, grantable)."""
    grant = fetch_one(cursor, REPLICATION_GRANT, dict(name=replication_role, member=role['oid'] if role else None))
    return dict(grant, name=replication_role)


def grant_replication_sql(replication_role, user):
    """The statement that gives ``user`` what REPLICATION gives, on a provider with a replication role."""
    return sql.SQL('GRANT {} TO {}').format(sql.Identifier(replication_role), sql.Identifier(user))


def public_state(role):
    """The part of the role's state that is shown to the user."""
    if role is None:
        return dict(exists=False)
    state = dict(role, exists=True)
    for internal in ('oid', 'password_expired', 'password_expires_soon'):
        state.pop(internal)
    return state


def password_works(params, name, password):
    """Whether ``name`` can log in with ``password`` right now (pg_authid is unreadable on managed providers)."""
    try:
        conn = connect(params, user=name, password=password, connect_timeout=min(params['connect_timeout'], 10))
    except ClickPipesError:
        return False
    conn.close()
    return True


def attribute_changes(role, want, grant=None):
    """The role options (as SQL keywords) needed so the role has what ``want`` asks for; with a provider's replication
    ``grant``, REPLICATION is left as it is (membership gives it)."""
    wanted_flags = [('login', 'LOGIN', True), ('replication', 'REPLICATION', None if grant else True),
                    ('bypass_rls', 'BYPASSRLS', want['bypass_rls'])]
    options = []
    for key, keyword, value in wanted_flags:
        if value is None or (role is not None and role[key] == value):
            continue
        options.append(sql.SQL(keyword if value else 'NO' + keyword))
    limit = want['connection_limit']
    if limit is not None and (role is None or role['connection_limit'] != limit):
        options.append(sql.SQL('CONNECTION LIMIT {}').format(sql.Literal(limit)))
    return options


def plan_present(conn, role, want, set_password, grant=None):
    """Statements that create or alter the role, then grant it the provider's replication role (``grant``, from
    read_replication_grant) when it is not a member; the password is hashed here, on the client."""
    plan = Plan()
    plan_attributes(plan, conn, role, want, set_password, grant)
    if grant and not grant['member']:
        plan.add(grant_replication_sql(grant['name'], want['name']), 'granting %s to %s' % (grant['name'], want['name']),
                 privilege_hint=grant_hint(grant['name']))
    return plan


def grant_hint(replication_role):
    return ('Granting %s needs ADMIN OPTION on it: on Amazon RDS and Aurora the master user has it through rds_superuser.'
            % replication_role)


def plan_attributes(plan, conn, role, want, set_password, grant):
    """Add the CREATE ROLE or ALTER ROLE statement, when the role lacks something ``want`` asks for."""
    options = attribute_changes(role, want, grant)
    password_option = None
    if set_password:
        verifier = encrypt_password(want['password'], want['name'], conn, 'scram-sha-256')
        password_option = sql.SQL('PASSWORD {}').format(sql.Literal(verifier))
    if role is not None and not options and password_option is None:
        return
    verb = 'CREATE ROLE {} WITH ' if role is None else 'ALTER ROLE {} WITH '
    statement = sql.SQL(verb).format(sql.Identifier(want['name'])) + sql.SQL(' ').join(options + ([password_option] if password_option else []))
    display = None
    if password_option is not None:
        shown = sql.SQL(verb).format(sql.Identifier(want['name'])) + sql.SQL(' ').join(options + [sql.SQL('PASSWORD ' + PASSWORD_PLACEHOLDER)])
        display = shown.as_string(conn)
    doing = ('creating role %s' if role is None else 'altering role %s') % want['name']
    plan.add(statement, doing, display=display, privilege_hint=REPLICATION_PRIVILEGE_HINT)


def plan_absent(cursor, role, force):
    """Statements that drop the role; refuses while ClickPipes streams unless forced."""
    plan = Plan()
    if role is None:
        return plan
    senders = [row['pid'] for row in fetch_dicts(cursor, WAL_SENDERS, dict(name=role['name']))]
    if senders and not force:
        raise ClickPipesError(
            'Role %s has %d active replication connection(s) (pid %s): a ClickPipe is probably streaming from it. '
            'Pause or delete the ClickPipe first, or set force: true to terminate those connections.'
            % (role['name'], len(senders), ', '.join(str(pid) for pid in senders)))
    owned = fetch_one(cursor, OWNED_OBJECTS, dict(oid=role['oid']))['owned']
    if owned:
        raise ClickPipesError(
            'Role %s owns %d object(s) in this database; dropping it would need them dropped or reassigned. '
            'Run REASSIGN OWNED BY %s TO <another role> first.' % (role['name'], owned, role['name']))
    if senders:
        plan.add(sql.SQL('SELECT pg_terminate_backend(pid) FROM unnest({}::int[]) AS pid').format(sql.Literal(senders)),
                 'terminating the replication connections of %s' % role['name'])
    plan.add(sql.SQL('DROP OWNED BY {}').format(sql.Identifier(role['name'])), 'revoking the privileges of %s' % role['name'])
    plan.add(sql.SQL('DROP ROLE {}').format(sql.Identifier(role['name'])), 'dropping role %s' % role['name'],
             privilege_hint='Dropping a role needs CREATEROLE (and, on PostgreSQL 16 and later, ADMIN OPTION on it).')
    return plan


def owned_tables(cursor, role):
    """A few of the tables of this database that ``role`` owns."""
    return [row['qualified'] for row in fetch_dicts(cursor, OWNED_TABLES, dict(oid=role['oid']))] if role else []


def refuse_table_owner(cursor, role):
    """ClickPipes must only read: the owner of the application's tables can write, alter and drop them."""
    owned = owned_tables(cursor, role)
    if owned:
        raise ClickPipesError('%s owns tables of this database (%s): making it the LOGIN REPLICATION role ClickPipes uses '
                              'would give ClickPipes the right to change them. Give ClickPipes a role of its own (for example '
                              'clickpipes_user). Nothing was applied.' % (role['name'], ', '.join(owned)))


def refuse_what_admin_cannot_do(cursor, role, want, server_major, grant=None, alters=True):
    """Refuse, before anything is sent, what PostgreSQL would refuse the admin: creating or altering the role (CREATEROLE,
    and on 16 and later ADMIN OPTION on an existing role), and giving REPLICATION or BYPASSRLS (a superuser up to 15, an
    admin that has the attribute itself from 16). With a provider's replication ``grant`` (read_replication_grant),
    granting that role (ADMIN OPTION on it; up to 15 CREATEROLE is enough) takes the place of giving REPLICATION, and
    ``alters`` says whether the existing role itself is altered (a GRANT alone needs nothing on it)."""
    admin = fetch_one(cursor, ADMIN_RIGHTS, dict(oid=role['oid'] if role else None,
                                                 replication_admin_roles=list(providers.REPLICATION_ADMIN_ROLES)))
    if admin['superuser']:
        return
    # Cloud SQL, AlloyDB and Azure let members of their admin role give and keep REPLICATION on every major.
    provider_gives_replication = admin['replication_admin']
    reasons = []
    if not admin['create_role']:
        reasons.append('creating or altering a role needs CREATEROLE')
    elif role is not None and alters and server_major < 16 and (role['superuser'] or (role['replication'] and not provider_gives_replication)):
        reasons.append('altering role %s, which has REPLICATION, needs a superuser (PostgreSQL 15 and older)' % role['name'])
    elif role is not None and alters and server_major >= 16 and not admin['admin_of_role']:
        reasons.append('altering role %s needs ADMIN OPTION on it (PostgreSQL 16 and later): a superuser can GRANT %s TO '
                       '<admin> WITH ADMIN OPTION' % (role['name'], role['name']))
    if grant and not grant['member'] and not grant['grantable'] and (server_major >= 16 or not admin['create_role']):
        reasons.append('granting %s needs ADMIN OPTION on it' % grant['name'])
    for key, keyword in (('replication', 'REPLICATION'), ('bypass_rls', 'BYPASSRLS')):
        wanted = want.get(key, not grant) if key == 'replication' else want.get(key)
        if key == 'replication' and provider_gives_replication:
            continue
        if wanted and not (role and role[key]) and (server_major < 16 or not admin[key]):
            reasons.append('giving %s needs %s' % (keyword, 'a superuser' if server_major < 16 else 'an admin that has it'))
    if reasons:
        raise ClickPipesError('The admin login cannot prepare role %s: %s. %s Nothing was applied.' % (
            want['name'], '; '.join(reasons), grant_hint(grant['name']) if grant else REPLICATION_PRIVILEGE_HINT))


RESERVED_NAMES = ('public', 'none', 'current_user', 'current_role', 'session_user')


def refuse_reserved_name(name):
    if name in RESERVED_NAMES or name.startswith('pg_'):
        raise ClickPipesError('%s is reserved by PostgreSQL and cannot name a role: choose another name, for example '
                              'clickpipes_user.' % name)
