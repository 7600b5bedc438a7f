# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgcdc.clickpipes contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connecting to PostgreSQL and turning its errors into messages that say what to do."""

from __future__ import annotations

import contextlib
import re

try:
    import psycopg2
    import psycopg2.extensions
    import psycopg2.extras
except ImportError:  # connect() says how to install it
    psycopg2 = None

APPLICATION_NAME = 'pgcdc.clickpipes'
MINIMUM_SERVER_VERSION = 120000
# Catalog queries over tens of thousands of tables cross the planner's JIT cost threshold, and compiling them takes
# longer than running them.
NO_JIT = 'SET LOCAL jit = off'
# unique_violation, duplicate_object: another session created the object since this transaction read the catalog.
CREATED_MEANWHILE = ('23505', '42710')
DURATION = re.compile(r'^\s*\d+(\.\d+)?\s*(us|ms|s|min|h|d)?\s*$')


class ClickPipesError(Exception):
    """An error whose message is meant for the person running the playbook; ``result`` goes with the failure.
    ``committed`` tells that a batch of the failed run had been committed before it."""

    committed = False

    def __init__(self, message, **result):
        super().__init__(message)
        self.result = result


def connection_argument_spec():
    return dict(
        login_host=dict(type='str', default=''),
        login_port=dict(type='int', default=5432),
        login_user=dict(type='str', default=''),
        login_password=dict(type='raw', default='', no_log=True),
        login_db=dict(type='str', default=''),
        ssl_mode=dict(type='str', default='prefer', choices=['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']),
        ca_cert=dict(type='path'),
        connect_timeout=dict(type='int', default=10),
        connect_params=dict(type='dict', default={}, no_log=True),
    )


def write_argument_spec():
    spec = connection_argument_spec()
    spec['lock_timeout'] = dict(type='str', default='10s')
    return spec


def require_text(value, option):
    """Secrets must be strings: YAML would silently turn 0123 into 83 or a mapping into its repr."""
    if value is not None and not isinstance(value, str):
        raise ClickPipesError('%s must be a string (got a value of type %s): quote it in YAML, and keep secrets in a '
                              'vault or a lookup.' % (option, type(value).__name__))
    return value


def libpq_params(params, user=None, password=None):
    """The libpq keyword arguments for the module's connection options, as another user when given."""
    require_text(params['login_password'], 'login_password')
    kwargs = dict(
        host=params['login_host'],
        port=params['login_port'],
        user=params['login_user'] if user is None else user,
        password=params['login_password'] if password is None else password,
        dbname=params['login_db'],
        sslmode=params['ssl_mode'],
        sslrootcert=params.get('ca_cert'),
        connect_timeout=params['connect_timeout'],
        application_name=APPLICATION_NAME,
    )
    kwargs.update(params.get('connect_params') or {})
    return dict((key, value) for key, value in kwargs.items() if value not in (None, ''))


def describe_target(params, user=None):
    host = params['login_host'] or 'the default host'
    return '%s:%s as %s' % (host, params['login_port'], (user or params['login_user'] or 'the default user'))


def connect(params, user=None, password=None, **extra):
    """Open a connection (autocommit off) or raise ClickPipesError with a message that says what to do."""
    if psycopg2 is None:
        raise ClickPipesError('psycopg2 is required on the host that runs the module: pip install psycopg2-binary')
    kwargs = libpq_params(params, user, password)
    kwargs.update(extra)
    try:
        conn = psycopg2.connect(**kwargs)
    except psycopg2.Error as exc:
        raise ClickPipesError('Could not connect to %s: %s. %s' % (
            describe_target(params, user), first_line(exc), connection_hint(exc)), unreachable=True)
    if conn.server_version < MINIMUM_SERVER_VERSION:
        version = conn.server_version
        conn.close()
        raise ClickPipesError('PostgreSQL %s is too old: ClickPipes needs PostgreSQL 12 or later. Upgrade the server first.'
                              % format_version(version))
    return conn


def connection_hint(exc):
    text = str(exc)
    if 'password authentication failed' in text or 'no password supplied' in text:
        return 'Check the user name and password.'
    if 'no pg_hba.conf entry' in text:
        return 'Allow this client in pg_hba.conf (or the provider\'s IP allow list).'
    if 'does not exist' in text:
        return 'Check login_db and login_user.'
    if 'timeout expired' in text or 'Connection refused' in text or 'could not translate host name' in text:
        return 'Check login_host and login_port, and that the server accepts connections from here.'
    if 'SSL' in text or 'ssl' in text:
        return 'Check ssl_mode and ca_cert.'
    return ''


def first_line(exc):
    """The server's (or libpq's) message without the libpq noise around it."""
    diag = getattr(exc, 'diag', None)
    primary = getattr(diag, 'message_primary', None)
    if primary:
        detail = getattr(diag, 'message_detail', None)
        return primary + (' (%s)' % detail if detail else '')
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1] if lines else exc.__class__.__name__


def format_version(version_num):
    return '%d.%d' % (version_num // 10000, version_num % 10000)


def server_major(conn):
    return conn.server_version // 10000


def sql_error_message(exc, doing):
    """A message for an error raised by a statement, naming what the module was doing."""
    code = getattr(exc, 'pgcode', None)
    message = first_line(exc)
    if code == '53200':
        return ('PostgreSQL ran out of lock table space while %s (%s): one transaction cannot lock that many tables '
                'with this max_locks_per_transaction.' % (doing, message))
    if code == '55P03':
        return ('Timed out waiting for a lock while %s (%s): another session holds a conflicting lock. Re-run when it '
                'has finished, or raise lock_timeout.' % (doing, message))
    if code in ('57P01', '57P02', '57P03') or isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)) and not code:
        return ('The connection to the server was lost while %s (%s). Nothing was applied: the transaction was rolled '
                'back. Re-run the task.' % (doing, message))
    return 'PostgreSQL refused %s: %s' % (doing, message)


def lock_transaction(cursor, lock_key, lock_timeout):
    """Serialise this transaction with other runs on the same object, then bound every lock wait."""
    cursor.execute("SET LOCAL lock_timeout = '5min'; " + NO_JIT)
    cursor.execute('SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))', ['pgcdc.clickpipes:' + lock_key])
    cursor.execute('SELECT set_config(%s, %s, true)', ['lock_timeout', lock_timeout])


@contextlib.contextmanager
def write_transaction(conn, lock_key, lock_timeout):
    """One transaction serialised with other runs on the same object; rolled back on any error.

    The advisory lock is taken before anything is read, so a plan is always made from the state
    the previous run committed, and two pipelines preparing one source at once both succeed.
    """
    cursor = conn.cursor()
    try:
        lock_transaction(cursor, lock_key, lock_timeout)
        yield cursor
        conn.commit()
    except BaseException:
        with contextlib.suppress(Exception):
            conn.rollback()
        raise
    finally:
        with contextlib.suppress(Exception):
            cursor.close()


@contextlib.contextmanager
def read_transaction(conn):
    """A read-only transaction, always rolled back."""
    cursor = conn.cursor()
    try:
        cursor.execute('SET TRANSACTION READ ONLY; ' + NO_JIT)
        yield cursor
    finally:
        with contextlib.suppress(Exception):
            conn.rollback()
        with contextlib.suppress(Exception):
            cursor.close()


def current_role(cursor):
    """The role the session acts as (PlanetScale's login name carries a branch suffix the role lacks)."""
    cursor.execute('SELECT current_user')
    return cursor.fetchone()[0]


def fetch_dicts(cursor, query, params=None):
    cursor.execute(query, params)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def oid_array(oids):
    """Oids as one array literal for ``%(name)s::oid[]``: the server reads '{1,2,...}' much faster than ARRAY[1, 2, ...]."""
    return '{%s}' % ','.join('%d' % oid for oid in oids)


def fetch_one(cursor, query, params=None):
    rows = fetch_dicts(cursor, query, params)
    return rows[0] if rows else None


def check_duration(value, option):
    if not DURATION.match(value or ''):
        raise ClickPipesError('%s %r is not a PostgreSQL duration: write a number with a unit, such as 10s, 500ms or 2min.'
                              % (option, value))
    return value


def refuse_standby(cursor, params):
    cursor.execute('SELECT pg_is_in_recovery()')
    if cursor.fetchone()[0]:
        raise ClickPipesError('%s is a standby (read-only): roles, grants and publications are made on the primary. '
                              'Point login_host at the primary (writer) endpoint.' % describe_target(params))


@contextlib.contextmanager
def session(params, conn=None):
    """``conn`` when given (left open: its owner closes it), else a new connection, closed on the way out."""
    if conn is not None:
        yield conn
        return
    conn = connect(params)
    try:
        yield conn
    finally:
        conn.close()


def run_writing_module(call, lock_key, converge, conn=None):
    """Run ``converge(call, conn, cursor)`` in one transaction (read-only in check mode) and return its result, on
    ``conn`` when given (left open), else on a connection of its own.

    Advisory locks only serialise runs within one database, but roles belong to the whole server: a run on another
    database can create the same role first. Then the plan is made again from what that run committed, once (never
    after a batch of this run was committed: its result would not tell).
    """
    check_duration(call.params['lock_timeout'], 'lock_timeout')
    with session(call.params, conn) as conn:
        try:
            with read_transaction(conn) as cursor:
                refuse_standby(cursor, call.params)
            for attempt in range(2):
                try:
                    return converge_once(call, conn, lock_key, converge)
                except ClickPipesError as exc:
                    created_meanwhile = getattr(exc.__cause__, 'pgcode', None) in CREATED_MEANWHILE
                    if attempt or not created_meanwhile or exc.committed:
                        raise
                    del call.warnings[:]
        except psycopg2.Error as exc:
            raise ClickPipesError(sql_error_message(exc, 'reading the catalog') + ' Nothing was applied.') from exc


def converge_once(call, conn, lock_key, converge):
    if call.check_mode:
        transaction = read_transaction(conn)
    else:
        transaction = write_transaction(conn, lock_key, call.params['lock_timeout'])
    with transaction as cursor:
        return converge(call, conn, cursor)
