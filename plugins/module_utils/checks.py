# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgcdc.clickpipes contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The check catalogue: from gathered facts to one finding per check id, never stopping at the first problem.

Fix SQL here is advice shown to a person (identifiers always double-quoted); nothing here is executed.
"""

from __future__ import annotations

from ansible_collections.pgcdc.clickpipes.plugins.module_utils import hypertables, providers, roles
from ansible_collections.pgcdc.clickpipes.plugins.module_utils.grants import shorten

CHECK_IDS = (
    'server_version', 'primary', 'wal_level', 'max_wal_senders', 'max_replication_slots', 'max_slot_wal_keep_size',
    'wal_sender_timeout', 'idle_replication_slot_timeout', 'logical_slots_health',
    'user_exists', 'user_login', 'user_replication', 'user_least_privilege', 'replication_connection', 'schema_usage',
    'table_select', 'default_privileges', 'row_level_security',
    'publication_exists', 'publication_tables', 'publication_scope', 'publication_operations',
    'publication_partition_root', 'hypertable_chunks', 'replica_identity', 'toast_columns', 'table_names', 'table_persistence',
    'pooler', 'ssl', 'provider',
)
STATUSES = ('ok', 'warning', 'error', 'skipped')
FAIL_LEVELS = dict(error=('error',), warning=('error', 'warning'), never=())

# Minor releases with the logical decoding "invalid memory alloc request size" bug.
BUGGY_RELEASES = (170005, 160009, 150013, 140018, 130021)
GB = 1024 ** 3
DEFAULT_WAL_KEEP_TARGET = 100 * GB
MIN_SENDER_TIMEOUT_MS = 5 * 60 * 1000

# The writing module that manages what a check looks at; the other checks need a person (or the settings task).
MANAGED_CHECKS = dict(
    replication_user=('user_exists', 'user_login', 'user_replication', 'replication_connection', 'row_level_security'),
    replication_grants=('schema_usage', 'table_select', 'default_privileges'),
    publication=('publication_exists', 'publication_tables', 'publication_scope', 'publication_operations',
                 'publication_partition_root', 'hypertable_chunks'),
)
MANAGED_BY = dict((check_id, module) for module, check_ids in MANAGED_CHECKS.items() for check_id in check_ids)
EMIT_CHOICES = ('all', 'manual', 'modules', 'none')
# Fix SQL is advice for a person: a few runnable statements and a count of the rest keep results small at 50,000 tables.
MAX_FIX_STATEMENTS = 10
TABLES_PER_STATEMENT = 100


def ident(name):
    return '"%s"' % name.replace('"', '""')


def finding(check_id, status, message, observed=None, expected=None, sql=None, manual=None, restart=False, managed=True):
    """One check's result; ``managed=False`` when no writing module could fix this finding of a managed check."""
    sql = list(sql or [])
    return dict(id=check_id, status=status, message=message, observed=observed, expected=expected,
                fix=dict(sql=sql[:MAX_FIX_STATEMENTS], sql_omitted=max(0, len(sql) - MAX_FIX_STATEMENTS),
                         manual=list(manual or []), restart=restart, module=MANAGED_BY.get(check_id) if managed else None))


def per_tables(template, names):
    """One statement per TABLES_PER_STATEMENT names; ``template`` has one %s for the comma-separated names."""
    return [template % ', '.join(names[start:start + TABLES_PER_STATEMENT]) for start in range(0, len(names), TABLES_PER_STATEMENT)]


def skipped(check_id, reason, managed=True):
    """A check not run; ``managed=False`` when no writing module could change that (a version, a missing input)."""
    return finding(check_id, 'skipped', 'Not checked: %s.' % reason, observed=reason, managed=managed)


def manual_step(ctx, step, current=None, target=None):
    return dict(step, provider=ctx.provider, current=current, target=target)


class Context:
    """The facts plus what the user asked for, with small helpers the checks share."""

    def __init__(self, facts, user, publication, wal_keep_target=DEFAULT_WAL_KEEP_TARGET):
        self.facts = facts
        self.user = user
        self.publication_name = publication
        self.provider = facts['provider']
        self.server = facts['server']
        self.major = facts['server']['major']
        self.settings = facts['settings']
        self.role = facts['user']
        self.privileges = facts.get('privileges')
        self.publication = facts['publication']
        self.scope = facts['scope']
        self.wal_keep_target = wal_keep_target

    def setting(self, name):
        return (self.settings.get(name) or {}).get('setting')

    def amount(self, name):
        return (self.settings.get(name) or {}).get('amount')

    def setting_fix(self, check_id, sql, restart, current=None, target=None):
        """SQL for a self-hosted server, a console step for a managed one; whether a restart follows."""
        step = providers.setting_step(self.provider, check_id, target, restart)
        if step:
            return dict(manual=[manual_step(self, step, current, target)], restart=step['restart'])
        manual = [manual_step(self, providers.step('Restart PostgreSQL so %s takes effect.' % check_id, 'the server',
                                                   restart=True), current, target)] if restart else []
        return dict(sql=sql, manual=manual, restart=restart)


def human_bytes(amount):
    if amount is None:
        return 'unknown'
    if amount < 0:
        return 'unlimited (-1)'
    for unit, size in (('TB', 1024 ** 4), ('GB', GB), ('MB', 1024 ** 2), ('kB', 1024)):
        if amount >= size:
            return '%g%s' % (round(amount / size, 1), unit)
    return '%dB' % amount


def recommended_wal_keep(ctx):
    """At least the target (default 100GB) and three times the measured daily WAL, in whole GB."""
    rate = ctx.facts.get('wal_rate')
    wanted = max(ctx.wal_keep_target, 3 * rate['bytes_per_day'] if rate else 0)
    return -(-wanted // GB) * GB


# Server -----------------------------------------------------------------------------------------------------------

def check_server_version(ctx):
    version = ctx.server['version_num']
    observed = ctx.server['version']
    minimum = providers.get(ctx.provider).min_major
    if ctx.major < minimum:
        return finding('server_version', 'error', '%s supports ClickPipes CDC from PostgreSQL %d; this is %s.' % (
            providers.display_name(ctx.provider), minimum, observed), observed, '%d or later' % minimum,
            manual=[manual_step(ctx, providers.UPGRADE_STEP, observed, '%d or later' % minimum)], restart=True)
    if version in BUGGY_RELEASES:
        return finding('server_version', 'warning', 'PostgreSQL %s has a logical decoding bug ("invalid memory alloc request '
                       'size") that can stop a ClickPipe.' % observed, observed, 'another minor release of the same major',
                       manual=[manual_step(ctx, providers.UPGRADE_STEP, observed, 'the next minor release')], restart=True)
    return finding('server_version', 'ok', 'PostgreSQL %s is supported.' % observed, observed, '12 or later')


def check_primary(ctx):
    if ctx.server['in_recovery']:
        return finding('primary', 'error', 'This server is a standby: the publication and the user must be made on the '
                       'primary, and ClickPipes must connect to it.', 'standby (in recovery)', 'primary',
                       manual=[manual_step(ctx, providers.primary_step(ctx.provider), 'standby', 'primary')])
    return finding('primary', 'ok', 'Connected to the primary.', 'primary', 'primary')


def with_decoding_settings(ctx, value):
    """A wal_level value with the provider's own settings that turn logical decoding on (RDS: rds.logical_replication)."""
    names = providers.get(ctx.provider).decoding_settings
    shown = ', '.join('%s = %s' % (name, ctx.setting(name) or 'not set') for name in names)
    return '%s (%s)' % (value, shown) if shown else value


def check_wal_level(ctx):
    value = ctx.setting('wal_level')
    observed = with_decoding_settings(ctx, value)
    if value == 'logical':
        return finding('wal_level', 'ok', 'wal_level is logical.', observed, 'logical')
    snapshot_only = providers.snapshot_only(ctx.facts['pooler']['host'])
    if snapshot_only:
        return finding('wal_level', 'error', 'wal_level is %s and %s: the ClickPipe must be "Initial load only" (a one-time '
                       'copy of the tables, no CDC).' % (observed, snapshot_only), observed, 'logical',
                       manual=[manual_step(ctx, providers.SNAPSHOT_ONLY_STEP, observed, 'Initial load only')])
    fix = ctx.setting_fix('wal_level', ['ALTER SYSTEM SET wal_level = logical'], True, observed, 'logical')
    return finding('wal_level', 'error', 'wal_level is %s: logical decoding, and so CDC, needs logical.' % observed,
                   observed, 'logical', **fix)


def check_max_wal_senders(ctx):
    value = int(ctx.setting('max_wal_senders') or 0)
    free = value - ctx.server['wal_senders_in_use']
    observed = '%d (%d in use)' % (value, ctx.server['wal_senders_in_use'])
    fix = ctx.setting_fix('max_wal_senders', ['ALTER SYSTEM SET max_wal_senders = 10'], True, value, 10)
    if value < 2 or free < 1:
        return finding('max_wal_senders', 'error', 'No WAL sender is free for ClickPipes (max_wal_senders %s).' % observed,
                       observed, 'at least 2, with one free', **fix)
    if value < 10:
        return finding('max_wal_senders', 'warning', 'max_wal_senders is %d; ClickHouse recommends 10.' % value,
                       observed, '10', **fix)
    return finding('max_wal_senders', 'ok', 'max_wal_senders is %s.' % observed, observed, '10 or more, one free')


def check_max_replication_slots(ctx):
    value = int(ctx.setting('max_replication_slots') or 0)
    used = len(ctx.facts['slots'])
    observed = '%d (%d in use)' % (value, used)
    fix = ctx.setting_fix('max_replication_slots', ['ALTER SYSTEM SET max_replication_slots = 10'], True, value, 10)
    if value - used < 1:
        return finding('max_replication_slots', 'error', 'No replication slot is free: each ClickPipe needs one (%s). '
                       'Raise the setting or drop unused slots.' % observed, observed, 'one free slot', **fix)
    if value < 4:
        return finding('max_replication_slots', 'warning', 'max_replication_slots is %d; at least 4 is recommended.' % value,
                       observed, '4 or more', **fix)
    return finding('max_replication_slots', 'ok', 'max_replication_slots is %s.' % observed, observed, '4 or more, one free')


def check_max_slot_wal_keep_size(ctx):
    if ctx.major < 13:
        return skipped('max_slot_wal_keep_size', 'the setting exists from PostgreSQL 13')
    amount = ctx.amount('max_slot_wal_keep_size')
    rate = ctx.facts.get('wal_rate')
    recommended = recommended_wal_keep(ctx)
    observed = human_bytes(amount)
    if rate:
        observed += '; about %s of WAL per day (pg_stat_wal over %d h)' % (
            human_bytes(rate['bytes_per_day']), rate['measured_seconds'] // 3600)
    expected = 'at least %s (two days of WAL or more, 2-3x the daily peak)' % human_bytes(recommended)
    target = '%dGB' % (recommended // GB)
    fix = ctx.setting_fix('max_slot_wal_keep_size', ["ALTER SYSTEM SET max_slot_wal_keep_size = '%s'" % target,
                                                     'SELECT pg_reload_conf()'], False, observed, target)
    if amount is not None and amount < 0:
        return finding('max_slot_wal_keep_size', 'warning', 'max_slot_wal_keep_size is unlimited: a stalled ClickPipe can '
                       'fill the disk with WAL.', observed, expected, **fix)
    if amount is None or amount < recommended:
        return finding('max_slot_wal_keep_size', 'warning', 'max_slot_wal_keep_size is %s: a ClickPipe paused longer than '
                       'that loses its slot and needs a resync.' % human_bytes(amount), observed, expected, **fix)
    return finding('max_slot_wal_keep_size', 'ok', 'max_slot_wal_keep_size is %s.' % human_bytes(amount), observed, expected)


def check_wal_sender_timeout(ctx):
    amount = ctx.amount('wal_sender_timeout')
    observed = '%s%s' % (ctx.setting('wal_sender_timeout'), (ctx.settings.get('wal_sender_timeout') or {}).get('unit') or '')
    if amount and 0 < amount < MIN_SENDER_TIMEOUT_MS:
        fix = ctx.setting_fix('wal_sender_timeout', ["ALTER ROLE %s SET wal_sender_timeout = '5min'" % ident(ctx.user)],
                              False, observed, '5min')
        return finding('wal_sender_timeout', 'warning', 'wal_sender_timeout is %s: large transactions can make the WAL '
                       'sender time out.' % observed, observed, '0 or at least 5min', **fix)
    return finding('wal_sender_timeout', 'ok', 'wal_sender_timeout is %s.' % observed, observed, '0 or at least 5min')


def check_idle_replication_slot_timeout(ctx):
    if ctx.major < 18:
        return skipped('idle_replication_slot_timeout', 'the setting exists from PostgreSQL 18')
    amount = ctx.amount('idle_replication_slot_timeout')
    observed = '%s%s' % (ctx.setting('idle_replication_slot_timeout'), (ctx.settings.get('idle_replication_slot_timeout') or {}).get('unit') or '')
    if amount:
        fix = ctx.setting_fix('idle_replication_slot_timeout', ['ALTER SYSTEM SET idle_replication_slot_timeout = 0',
                                                                'SELECT pg_reload_conf()'], False, observed, '0')
        return finding('idle_replication_slot_timeout', 'warning', 'idle_replication_slot_timeout is %s: a ClickPipe paused '
                       'longer loses its slot.' % observed, observed, '0 (off)', **fix)
    return finding('idle_replication_slot_timeout', 'ok', 'idle_replication_slot_timeout is off.', observed, '0 (off)')


def slot_problem(slot):
    if slot['wal_status'] in ('lost', 'unreserved'):
        return slot['wal_status']
    return None if slot['active'] else 'inactive'


def check_logical_slots_health(ctx):
    slots = [slot for slot in ctx.facts['slots'] if slot['type'] == 'logical']
    unhealthy = [slot for slot in slots if slot_problem(slot)]
    observed = '%d logical slot(s)' % len(slots)
    if unhealthy:
        described = ', '.join('%s (%s, retains %s)' % (slot['name'], slot_problem(slot), human_bytes(slot['retained_bytes']))
                              for slot in unhealthy)
        sql = ["SELECT pg_drop_replication_slot('%s')" % slot['name'].replace("'", "''") for slot in unhealthy]
        return finding('logical_slots_health', 'warning', 'Logical slots that are inactive or past their WAL limit retain '
                       'WAL: %s. Drop the ones no ClickPipe uses.' % described, observed + ': ' + described,
                       'every logical slot active', sql=sql)
    return finding('logical_slots_health', 'ok', 'No inactive or lost logical slot.', observed, 'every logical slot active')


# Replication user ---------------------------------------------------------------------------------------------------

def user_missing(ctx, check_id):
    return skipped(check_id, 'role %s does not exist' % ctx.user)


def check_user_exists(ctx):
    grant = ctx.facts.get('replication_grant')
    if ctx.role is None and grant:
        return finding('user_exists', 'error', 'Role %s does not exist.' % ctx.user, 'missing',
                       'a LOGIN role, member of %s' % grant['name'],
                       sql=["CREATE ROLE %s WITH LOGIN PASSWORD '<password>'" % ident(ctx.user), grant_sql(grant, ctx.user)])
    if ctx.role is None:
        return finding('user_exists', 'error', 'Role %s does not exist.' % ctx.user, 'missing', 'a LOGIN REPLICATION role',
                       sql=["CREATE ROLE %s WITH LOGIN REPLICATION PASSWORD '<password>'" % ident(ctx.user)])
    return finding('user_exists', 'ok', 'Role %s exists.' % ctx.user, 'present', 'present')


def extend_password_sql(user):
    return "ALTER ROLE %s VALID UNTIL 'infinity'" % ident(user)


def password_expired_message(role):
    """Why no password logs in as ``role``: the server refuses them all, and tells the client only that one failed."""
    return ('The password of role %s expired on %s (VALID UNTIL): PostgreSQL refuses every password login as %s, '
            'whatever the password, so ClickPipes cannot connect. Run %s (or give a later date), then re-run.'
            % (role['name'], role['valid_until'], role['name'], extend_password_sql(role['name'])))


def check_user_login(ctx):
    if ctx.role is None:
        return user_missing(ctx, 'user_login')
    if not ctx.role['login']:
        return finding('user_login', 'error', 'Role %s cannot log in.' % ctx.user, 'NOLOGIN', 'LOGIN',
                       sql=['ALTER ROLE %s WITH LOGIN' % ident(ctx.user)])
    observed = 'LOGIN, VALID UNTIL %s' % ctx.role['valid_until'] if ctx.role['valid_until'] else 'LOGIN'
    if ctx.role['password_expired']:
        return finding('user_login', 'error', password_expired_message(ctx.role), observed,
                       'LOGIN, a password that has not expired', sql=[extend_password_sql(ctx.user)], managed=False)
    if ctx.role['password_expires_soon']:
        return finding(
            'user_login', 'warning', 'The password of role %s expires on %s (VALID UNTIL): ClickPipes stops replicating '
            'then. Run %s (or give a later date).' % (ctx.user, ctx.role['valid_until'], extend_password_sql(ctx.user)),
            observed, 'LOGIN, a password valid for more than %d days' % roles.PASSWORD_WARNING_DAYS,
            sql=[extend_password_sql(ctx.user)], managed=False)
    return finding('user_login', 'ok', 'Role %s can log in.' % ctx.user, observed, 'LOGIN')


def grant_sql(grant, user):
    return 'GRANT %s TO %s' % (ident(grant['name']), ident(user))


def replication_grant_finding(ctx, grant):
    """On a provider with a replication role (RDS and Aurora: rds_replication), membership in it is what counts."""
    expected = 'member of %s' % grant['name']
    provider = providers.display_name(ctx.provider)
    if not grant['exists']:
        return finding('user_replication', 'error', 'Role %s does not exist, so this source is not %s: the replication '
                       'privilege cannot be given the way %s gives it.' % (grant['name'], provider, provider),
                       'no role %s' % grant['name'], expected, managed=False, manual=[manual_step(ctx, providers.step(
                           'Set clickpipes_provider to the source\'s provider, or to auto.', 'the inventory'))])
    if grant['member']:
        return finding('user_replication', 'ok', 'Role %s is a member of %s, which gives it replication rights on %s.' % (
            ctx.user, grant['name'], provider), expected, expected)
    return finding('user_replication', 'error', 'Role %s is not a member of %s: on %s membership gives what the REPLICATION '
                   'attribute gives elsewhere (the admin cannot give the attribute).' % (ctx.user, grant['name'], provider),
                   'not a member of %s' % grant['name'], expected, sql=[grant_sql(grant, ctx.user)])


def check_user_replication(ctx):
    if ctx.role is None:
        return user_missing(ctx, 'user_replication')
    grant = ctx.facts.get('replication_grant')
    if grant:
        return replication_grant_finding(ctx, grant)
    if not ctx.role['replication']:
        step = providers.user_step(ctx.provider)
        return finding('user_replication', 'error', 'Role %s lacks the REPLICATION attribute (it is not inherited through '
                       'role membership).' % ctx.user, 'NOREPLICATION', 'REPLICATION',
                       sql=['ALTER ROLE %s WITH REPLICATION' % ident(ctx.user)],
                       manual=[manual_step(ctx, step, 'NOREPLICATION', 'REPLICATION')] if step else [])
    return finding('user_replication', 'ok', 'Role %s has REPLICATION.' % ctx.user, 'REPLICATION', 'REPLICATION')


def check_user_least_privilege(ctx):
    if ctx.role is None:
        return user_missing(ctx, 'user_least_privilege')
    owned = ctx.privileges['owned_tables']
    if owned:
        return finding('user_least_privilege', 'error', 'Role %s owns %s: the owner can write, alter and drop them. '
                       'ClickPipes must log in as a role of its own that only reads.' % (ctx.user, shorten(owned)),
                       'owns %s' % shorten(owned), 'LOGIN, REPLICATION and read access only', managed=False,
                       manual=[manual_step(ctx, providers.step('Name another role in clickpipes_user (for example '
                                                               'clickpipes_user); the owner stays as it is.', 'the inventory'))])
    excess = [name for key, name in (('superuser', 'SUPERUSER'), ('create_role', 'CREATEROLE'), ('create_db', 'CREATEDB'))
              if ctx.role[key]]
    writable = ctx.privileges['writable_tables']
    sql = ['ALTER ROLE %s WITH %s' % (ident(ctx.user), ' '.join('NO' + name for name in excess))] if excess else []
    if writable:
        excess.append('write privileges on %s' % shorten(writable))
        sql += per_tables('REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON TABLE %%s FROM %s' % ident(ctx.user), writable)
    if excess:
        return finding('user_least_privilege', 'warning', 'Role %s has more than it needs: %s.' % (ctx.user, '; '.join(excess)),
                       '; '.join(excess), 'LOGIN, REPLICATION and read access only', sql=sql)
    return finding('user_least_privilege', 'ok', 'Role %s has no privilege beyond reading.' % ctx.user,
                   'read access only', 'LOGIN, REPLICATION and read access only')


GIVE_REPLICATION = 'Give the role REPLICATION (ALTER ROLE ... WITH REPLICATION, or the provider console).'
# What a failed replication login means, by a phrase of the server's (or libpq's) answer.
REPLICATION_FAILURES = (
    ('password authentication failed', 'The password does not log in as this user: give the password the role has, or '
                                       'rotate it (replication_user with update_password: always).'),
    ('unsupported startup parameter', 'The endpoint is a connection pooler: connect to the database directly.'),
    ('REPLICATION attribute', GIVE_REPLICATION),
    ('must be superuser or replication role', GIVE_REPLICATION),
    ('no pg_hba.conf entry', 'Allow the user in pg_hba.conf (replication connections match ordinary database entries) or '
                             'the provider\'s IP allow list.'),
)


def replication_failure_step(detail, grant_statement=None):
    """What to do about a failed replication login; ``grant_statement`` gives replication rights on a provider with a
    replication role."""
    for phrase, advice in REPLICATION_FAILURES:
        if phrase in detail:
            if grant_statement and advice == GIVE_REPLICATION:
                return 'Run %s: on this provider membership gives replication rights.' % grant_statement
            return advice
    return ('Check that the role has LOGIN and REPLICATION, that pg_hba.conf allows it, and that the endpoint is the '
            'database itself, not a pooler.')


def check_replication_connection(ctx):
    if ctx.role is None:
        return user_missing(ctx, 'replication_connection')
    probe = ctx.facts.get('replication_connection')
    if probe is None:
        return skipped('replication_connection', 'no password of the replication user was given', managed=False)
    ok, detail = probe
    if ok:
        return finding('replication_connection', 'ok', 'A replication connection as %s works.' % ctx.user, detail, 'IDENTIFY_SYSTEM answers')
    if ctx.role['password_expired']:
        return finding('replication_connection', 'error', 'A replication connection as %s fails: its password expired on '
                       '%s (user_login says what to run).' % (ctx.user, ctx.role['valid_until']), detail,
                       'IDENTIFY_SYSTEM answers', sql=[extend_password_sql(ctx.user)], managed=False)
    grant = ctx.facts.get('replication_grant')
    step = providers.step(replication_failure_step(detail, grant_sql(grant, ctx.user) if grant else None),
                          'the server, the provider console or the inventory')
    return finding('replication_connection', 'error', 'A replication connection as %s fails: %s' % (ctx.user, detail), detail,
                   'IDENTIFY_SYSTEM answers', manual=[manual_step(ctx, step)])


def check_schema_usage(ctx):
    if ctx.role is None:
        return user_missing(ctx, 'schema_usage')
    missing = ctx.privileges['schemas_without_usage']
    if missing:
        return finding('schema_usage', 'error', 'Role %s lacks USAGE on schema(s) %s.' % (ctx.user, ', '.join(missing)),
                       ', '.join(missing), 'USAGE on every schema in scope',
                       sql=['GRANT USAGE ON SCHEMA %s TO %s' % (', '.join(map(ident, missing)), ident(ctx.user))])
    return finding('schema_usage', 'ok', 'Role %s can use every schema in scope.' % ctx.user, ', '.join(ctx.scope.schemas),
                   'USAGE on every schema in scope')


def check_table_select(ctx):
    if ctx.role is None:
        return user_missing(ctx, 'table_select')
    missing = ctx.privileges['tables_without_select']
    if missing:
        return finding('table_select', 'error', 'Role %s cannot read %d table(s): %s.' % (ctx.user, len(missing), shorten(missing)),
                       shorten(missing), 'SELECT on every table in scope',
                       sql=per_tables('GRANT SELECT ON TABLE %%s TO %s' % ident(ctx.user), missing))
    return finding('table_select', 'ok', 'Role %s can read every table in scope.' % ctx.user,
                   '%d table(s)' % len(ctx.scope.tables), 'SELECT on every table in scope')


def check_default_privileges(ctx):
    if ctx.role is None:
        return user_missing(ctx, 'default_privileges')
    if ctx.scope.explicit:
        return finding('default_privileges', 'ok', 'The tables in scope are named one by one: tables created later are not '
                       'in scope, so none is made readable in advance.', 'not needed (explicit table list)',
                       'default privileges only for a schema scope')
    missing = ctx.privileges['default_privileges_missing']
    if missing:
        pairs = ['%s in %s' % (owner, schema) for owner, schema in missing]
        sql = ['ALTER DEFAULT PRIVILEGES FOR ROLE %s IN SCHEMA %s GRANT SELECT ON TABLES TO %s' % (ident(owner), ident(schema), ident(ctx.user))
               for owner, schema in missing]
        return finding('default_privileges', 'warning', 'Tables created later by %s will not be readable by %s.' % (
            ', '.join(pairs), ctx.user), ', '.join(pairs), 'default privileges for every table owner', sql=sql)
    return finding('default_privileges', 'ok', 'Tables created later by the owners of the tables in scope will be readable.',
                   'set', 'default privileges for every table owner')


def check_row_level_security(ctx):
    tables = [table['qualified'] for table in ctx.scope.tables if table['row_security']]
    role = ctx.role or dict(bypass_rls=False, superuser=False)
    if tables and not (role['bypass_rls'] or role['superuser']):
        return finding('row_level_security', 'error', 'Row-level security on %s can hide rows from %s: the initial load '
                       'would silently miss them. Give the role BYPASSRLS (clickpipes_bypass_rls: true in the roles, '
                       'bypass_rls: true in the modules), or a policy that shows it every row and skip this check.'
                       % (shorten(tables), ctx.user), shorten(tables), 'BYPASSRLS when a table in scope has RLS',
                       sql=['ALTER ROLE %s WITH BYPASSRLS' % ident(ctx.user)])
    return finding('row_level_security', 'ok', 'Row-level security hides no row from %s.' % ctx.user,
                   '%d table(s) with RLS' % len(tables), 'BYPASSRLS when a table in scope has RLS')


# Publication and tables -----------------------------------------------------------------------------------------------

def check_publication_exists(ctx):
    if ctx.publication is None:
        return finding('publication_exists', 'error', 'Publication %s does not exist.' % ctx.publication_name, 'missing', 'present',
                       sql=['CREATE PUBLICATION %s FOR TABLE <tables>' % ident(ctx.publication_name)])
    return finding('publication_exists', 'ok', 'Publication %s exists.' % ctx.publication_name, 'present', 'present')


def check_publication_tables(ctx):
    problems = ctx.scope.problems()
    if problems or not ctx.scope.tables:
        text = '; '.join(problems) or 'no table in scope (schemas %s)' % ', '.join(ctx.scope.schemas)
        return finding('publication_tables', 'error', 'The replication scope does not match the database: %s.' % text, text,
                       'every table in scope exists', managed=False)
    if ctx.publication is None:
        return skipped('publication_tables', 'publication %s does not exist' % ctx.publication_name)
    missing = ctx.facts['unpublished']
    if missing:
        return finding('publication_tables', 'error', '%d table(s) in scope are not published: %s.' % (len(missing), shorten(missing)),
                       shorten(missing), 'every table in scope published',
                       sql=per_tables('ALTER PUBLICATION %s ADD TABLE %%s' % ident(ctx.publication_name), missing))
    return finding('publication_tables', 'ok', 'Every table in scope is published.', '%d table(s)' % len(ctx.scope.tables),
                   'every table in scope published')


def check_publication_scope(ctx):
    if ctx.publication is None:
        return skipped('publication_scope', 'publication %s does not exist' % ctx.publication_name)
    if ctx.publication['all_tables']:
        return finding('publication_scope', 'warning', 'Publication %s is FOR ALL TABLES: every table\'s changes are decoded '
                       'and sent, which costs WAL decoding and ClickPipes traffic.' % ctx.publication_name, 'FOR ALL TABLES',
                       'a list of tables or schemas', sql=[
                           'DROP PUBLICATION %s' % ident(ctx.publication_name),
                           'CREATE PUBLICATION %s FOR TABLE <tables>' % ident(ctx.publication_name)])
    return finding('publication_scope', 'ok', 'Publication %s lists its tables or schemas.' % ctx.publication_name,
                   'tables or schemas', 'a list of tables or schemas')


def check_publication_operations(ctx):
    if ctx.publication is None:
        return skipped('publication_operations', 'publication %s does not exist' % ctx.publication_name)
    operations = ctx.publication['operations']
    observed = ', '.join(operations) or 'nothing'
    wanted = [op for op in ('insert', 'update', 'delete', 'truncate') if op in operations or op in ('insert', 'update', 'delete')]
    sql = ["ALTER PUBLICATION %s SET (publish = '%s')" % (ident(ctx.publication_name), ', '.join(wanted))]
    if not {'insert', 'update'} <= set(operations):
        return finding('publication_operations', 'error', 'Publication %s does not publish %s.' % (
            ctx.publication_name, ' and '.join(op for op in ('insert', 'update') if op not in operations)),
            observed, 'insert, update, delete', sql=sql)
    if 'delete' not in operations:
        return finding('publication_operations', 'warning', 'Publication %s does not publish delete: rows deleted in '
                       'PostgreSQL stay in ClickHouse.' % ctx.publication_name, observed, 'insert, update, delete', sql=sql)
    return finding('publication_operations', 'ok', 'Publication %s publishes %s.' % (ctx.publication_name, observed),
                   observed, 'insert, update, delete')


def check_publication_partition_root(ctx):
    if ctx.major < 13:
        return skipped('publication_partition_root', 'publish_via_partition_root exists from PostgreSQL 13', managed=False)
    if ctx.publication is None:
        return skipped('publication_partition_root', 'publication %s does not exist' % ctx.publication_name)
    partitioned = ctx.facts['partitioned']
    via_root = ctx.publication['via_root']
    if partitioned and not via_root:
        return finding('publication_partition_root', 'warning', 'Partitioned table(s) %s are published without '
                       'publish_via_partition_root: changes arrive per partition.' % shorten(partitioned), 'false', 'true',
                       sql=['ALTER PUBLICATION %s SET (publish_via_partition_root = true)' % ident(ctx.publication_name)])
    return finding('publication_partition_root', 'ok', 'publish_via_partition_root suits the tables in scope.',
                   str(via_root).lower(), 'true when a table in scope is partitioned')


def check_hypertable_chunks(ctx):
    found = ctx.facts['hypertables']
    expected = 'the chunk schema published as a whole (TABLES IN SCHEMA) or FOR ALL TABLES'
    if not found:
        return finding('hypertable_chunks', 'ok', 'No TimescaleDB hypertable is in scope.', 'none', expected)
    names = shorten([hypertable['qualified'] for hypertable in found])
    missing = hypertables.uncovered_schemas(ctx.publication, found)
    if not missing:
        return finding('hypertable_chunks', 'ok', 'Publication %s covers the chunks of hypertable(s) %s, also those '
                       'created later.' % (ctx.publication_name, names), names, expected)
    message = ('Hypertable(s) %s keep their rows in chunk tables in schema(s) %s, which publication %s does not publish as a '
               'whole: ClickPipes would miss their changes (a list of chunks misses every chunk created later).'
               % (names, ', '.join(missing), ctx.publication_name))
    # The publication module publishes the chunk schemas from PostgreSQL 15; before, only FOR ALL TABLES covers them
    # (prepare_source: publication_mode all_tables), which is why no SQL is given there.
    if ctx.major >= hypertables.SCHEMA_PUBLICATION_MAJOR:
        schemas = ', '.join(map(ident, missing))
        sql = ['ALTER PUBLICATION %s ADD TABLES IN SCHEMA %s' % (ident(ctx.publication_name), schemas)] if ctx.publication else [
            'CREATE PUBLICATION %s FOR TABLE <tables>, TABLES IN SCHEMA %s' % (ident(ctx.publication_name), schemas)]
        return finding('hypertable_chunks', 'error', message, names, expected, sql=sql)
    step = providers.step('Publish every table (clickpipes_publication_mode: all_tables, as a superuser), or upgrade to '
                          'PostgreSQL %d or later, where the chunk schema can be published (FOR TABLES IN SCHEMA).'
                          % hypertables.SCHEMA_PUBLICATION_MAJOR, 'the inventory, or the server')
    return finding('hypertable_chunks', 'error', message, names, expected,
                   manual=[manual_step(ctx, step, 'chunks not covered', expected)])


def check_replica_identity(ctx):
    problems = ctx.facts['identity_problems']
    if problems:
        names = ['%s (%s)' % pair for pair in problems]
        return finding('replica_identity', 'error', '%d table(s) have no usable replica identity: %s. ClickPipes cannot '
                       'replicate their updates and deletes.' % (len(names), shorten(names)), shorten(names),
                       'a primary key, REPLICA IDENTITY FULL or USING INDEX',
                       sql=['ALTER TABLE %s REPLICA IDENTITY FULL' % name for name, _problem in problems])
    return finding('replica_identity', 'ok', 'Every table in scope has a usable replica identity.',
                   '%d table(s)' % len(ctx.scope.tables), 'a primary key, REPLICA IDENTITY FULL or USING INDEX')


def check_toast_columns(ctx):
    tables = ctx.facts['toast']
    if tables:
        return finding('toast_columns', 'warning', '%d table(s) have columns that may be stored out of line (TOAST) without '
                       'REPLICA IDENTITY FULL: unchanged values of those columns arrive empty on UPDATE and DELETE unless '
                       'ClickPipes fills them in: %s.' % (len(tables), shorten(tables)), shorten(tables),
                       'REPLICA IDENTITY FULL on tables with TOAST-able columns',
                       sql=['ALTER TABLE %s REPLICA IDENTITY FULL' % name for name in tables])
    return finding('toast_columns', 'ok', 'No table in scope has TOAST-able columns without REPLICA IDENTITY FULL.', 'none',
                   'REPLICA IDENTITY FULL on tables with TOAST-able columns')


def check_table_names(ctx):
    dotted = ctx.facts['dotted']
    if dotted:
        return finding('table_names', 'error', 'ClickPipes cannot replicate tables whose schema or name contains a dot: %s.'
                       % shorten(dotted), shorten(dotted), 'no dot in schema or table names',
                       manual=[manual_step(ctx, providers.step('Rename the table or schema so it has no dot.', 'the application\'s migrations'))])
    return finding('table_names', 'ok', 'No schema or table name in scope contains a dot.', 'none', 'no dot in names')


def check_table_persistence(ctx):
    named = ctx.scope.persistence_problems()
    if named:
        return finding('table_persistence', 'error', 'PostgreSQL cannot publish %s: logical replication only sees tables '
                       'written to the WAL.' % shorten(named), shorten(named), 'permanent (logged) tables',
                       sql=['ALTER TABLE %s SET LOGGED' % table['qualified'] for table in ctx.scope.unpublishable])
    left_out = [table['qualified'] for table in ctx.scope.left_out]
    if left_out:
        return finding('table_persistence', 'warning', 'UNLOGGED table(s) %s are left out of the scope: PostgreSQL cannot '
                       'publish them, so ClickPipes will not see them.' % shorten(left_out), shorten(left_out),
                       'permanent (logged) tables', sql=['ALTER TABLE %s SET LOGGED' % name for name in left_out])
    return finding('table_persistence', 'ok', 'Every table in scope is written to the WAL.', 'permanent', 'permanent (logged) tables')


# Connection -----------------------------------------------------------------------------------------------------------

def pooler_reason(ctx, pooler):
    """Why the endpoint is no direct connection to the primary (None when it looks like one)."""
    refused = providers.refused_endpoint(ctx.provider, pooler['host'], pooler['port'])
    if refused:
        return refused
    if pooler['pgbouncer']:
        return 'the endpoint refused a replication connection the way PgBouncer does'
    if pooler['server_port'] and pooler['server_port'] != pooler['port'] and pooler['port'] == 6432:
        return 'port 6432 (PgBouncer\'s default) forwards to a server listening on %s' % pooler['server_port']
    return None


def check_pooler(ctx):
    pooler = ctx.facts['pooler']
    endpoint = '%s:%s' % (pooler['host'] or 'default host', pooler['port'])
    reason = pooler_reason(ctx, pooler)
    manual = [manual_step(ctx, providers.pooler_step(ctx.provider), endpoint, 'the direct endpoint')]
    if reason:
        return finding('pooler', 'error', '%s is not a direct connection to the database: %s. CDC needs one.' % (endpoint, reason),
                       endpoint, 'a direct connection', manual=manual)
    if (ctx.provider == 'generic' and pooler['server_port'] and pooler['server_port'] != pooler['port']):
        return finding('pooler', 'warning', '%s forwards to a server listening on port %s: make sure it is a plain TCP '
                       'forward, not a pooler.' % (endpoint, pooler['server_port']), endpoint, 'a direct connection', manual=manual)
    return finding('pooler', 'ok', '%s is a direct connection.' % endpoint, endpoint, 'a direct connection')


def check_ssl(ctx):
    if ctx.server['ssl']:
        return finding('ssl', 'ok', 'The connection is encrypted (TLS).', 'TLS', 'TLS')
    return finding('ssl', 'warning', 'The connection is not encrypted; ClickPipes uses TLS by default and managed providers '
                   'require it.', 'no TLS', 'TLS', manual=[manual_step(ctx, providers.step(
                       'Enable TLS on the server and connect with ssl_mode: verify-full.', 'the server configuration'))])


def check_provider(ctx, requested):
    detected = ctx.facts['detected_provider']
    name = providers.display_name(detected)
    grant = ctx.facts.get('replication_grant')
    if grant is not None and not grant['exists']:
        return finding('provider', 'error', 'The run takes this source for %s, which gives replication through role %s, but '
                       'there is no such role here: it is not %s, and the replication user could not get replication.' % (
                           providers.display_name(ctx.provider), grant['name'], providers.display_name(ctx.provider)),
                       detected, ctx.provider, manual=[manual_step(ctx, providers.step(
                           'Set clickpipes_provider to the source\'s provider, or auto.', 'the inventory'))])
    if detected == 'generic' and requested != 'auto' and not providers.get(requested).identifiable():
        return finding('provider', 'ok', '%s shows no setting of its own: taken as asked (the host name did not tell).'
                       % providers.display_name(requested), detected, requested)
    if requested not in ('auto', detected):
        return finding('provider', 'warning', 'The source looks like %s, but %s was asked for.' % (
            name, providers.display_name(requested)), detected, requested,
            manual=[manual_step(ctx, providers.step('Use the role that matches the provider, or set clickpipes_provider: auto.', 'the inventory'))])
    return finding('provider', 'ok', 'The source is %s.' % name, detected, requested)


CHECKS = dict((name[len('check_'):], function) for name, function in list(globals().items()) if name.startswith('check_'))


def run_checks(ctx, requested_provider, skip=()):
    """One finding per check id, in catalogue order; ids in ``skip`` are reported as skipped, never as passed."""
    findings = []
    for check_id in CHECK_IDS:
        if check_id in skip:
            findings.append(skipped(check_id, 'skipped on request (skip_checks)'))
        elif check_id == 'provider':
            findings.append(check_provider(ctx, requested_provider))
        else:
            findings.append(CHECKS[check_id](ctx))
    return findings


def summarize(findings):
    counts = dict((status, 0) for status in STATUSES)
    for item in findings:
        counts[item['status']] += 1
    counts['ready'] = counts['error'] == 0
    return counts


def error_ids(findings):
    return [item['id'] for item in findings if item['status'] == 'error']


def pending_modules(findings):
    """The writing modules with something to do: those managing a finding that is not ok, in the order of the checks."""
    modules = []
    for item in findings:
        module = item['fix']['module']
        if item['status'] != 'ok' and module and module not in modules:
            modules.append(module)
    return modules


def failing(findings, fail_on):
    return [item for item in findings if item['status'] in FAIL_LEVELS[fail_on]]


def manual_steps(findings, provider, login='<user>'):
    """Every manual step of the findings that are not ok, then the provider's standing notices."""
    steps = []
    for item in findings:
        if item['status'] in ('warning', 'error'):
            steps.extend(dict(step, id=item['id'], status=item['status']) for step in item['fix']['manual'])
    for notice in providers.notices(provider, login):
        steps.append(dict(notice, provider=provider, status='notice', current=None, target=None))
    return steps


def describe_step(step):
    """One line for a manual step, as a warning or a report line."""
    parts = ['[%s] %s' % (step['provider'], step['what'])]
    if step.get('id') and step.get('status') != 'notice':
        parts[0] = '[%s] %s (%s): %s' % (step['provider'], step['id'], step['status'], step['what'])
    parts.append('Where: %s.' % step['where'])
    if step.get('current') is not None or step.get('target') is not None:
        parts.append('Now %s, needed %s.' % (step.get('current'), step.get('target')))
    if step.get('restart'):
        parts.append('This restarts the server.')
    if step.get('caution'):
        parts.append(step['caution'])
    return ' '.join(parts)


def warning_lines(findings, provider, login='<user>', which='all'):
    """What a person must see on screen: each warning or error once, with its manual steps or SQL, then the notices.

    ``which`` splits them between two checks of one run: ``manual`` (what no writing module manages, and the notices)
    before the writing modules, ``modules`` (what they manage) after them.
    """
    lines = []
    for item in findings:
        if item['status'] not in ('warning', 'error') or not shown(item, which):
            continue
        if item['fix']['manual']:
            lines.extend(describe_step(dict(step, id=item['id'], status=item['status'])) for step in item['fix']['manual'])
            continue
        line = '[%s] %s (%s): %s' % (provider, item['id'], item['status'], item['message'])
        more = len(item['fix']['sql']) - 1 + item['fix']['sql_omitted']
        if item['fix']['sql']:
            line += ' Fix: %s%s' % (item['fix']['sql'][0], ' (and %d more)' % more if more else '')
        lines.append(line)
    if which in ('all', 'manual'):
        lines.extend(describe_step(step) for step in manual_steps([], provider, login))
    return lines


def shown(item, which):
    managed = item['fix']['module'] is not None
    return which == 'all' or (which == 'manual' and not managed) or (which == 'modules' and managed)
