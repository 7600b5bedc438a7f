# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgcdc.clickpipes contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connecting to PostgreSQL and turning its errors into messages that say what to do."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading

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
LOCK_NOT_AVAILABLE = '55P03'
BOUNDS = ("SELECT set_config('lock_timeout', %(lock_timeout)s, true), "
          "set_config('statement_timeout', %(statement_timeout)s, true)")
SHOWN_BLOCKERS = 5
INTERRUPTS = frozenset((signal.SIGINT, signal.SIGTERM))
# A catalog read takes ACCESS SHARE locks at most, which only ACCESS EXCLUSIVE conflicts with: the sessions holding it
# on a relation of this database, or queued for it ahead of the read. The read cannot tell which relation it waited for.
READ_BLOCKERS = """
SELECT l.pid, l.relation::regclass::text AS relation, l.mode, CASE WHEN l.granted THEN 'holds' ELSE 'waits for' END AS verb,
       a.usename AS user_name, a.application_name, a.state, date_trunc('second', now() - a.xact_start)::text AS held_for
  FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock' AND l.pid <> pg_backend_pid()
   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
 ORDER BY l.granted DESC, a.xact_start
 LIMIT %(limit)s
"""
DURATION = re.compile(r'^\s*\d+(\.\d+)?\s*(us|ms|s|min|h|d)?\s*$')


class ClickPipesError(Exception):
    """An error whose message is meant for the person running the playbook; ``result`` goes with the failure.
    ``committed`` tells that a batch of the failed run had been committed before it."""

    committed = False
    committed_queries = ()

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
        lock_timeout=dict(type='str', default='10s'),
        statement_timeout=dict(type='str', default='2min'),
    )


def write_argument_spec():
    return connection_argument_spec()


def check_bounds(params):
    """Refuse a lock_timeout or statement_timeout the server would not take, before anything is read."""
    for option in ('lock_timeout', 'statement_timeout'):
        check_duration(params[option], option)


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
    if code == LOCK_NOT_AVAILABLE:
        return ('Timed out waiting for a lock while %s (%s): another session holds a conflicting lock. Re-run when it '
                'has finished, or raise lock_timeout.' % (doing, message))
    if code == '57014':
        return ('A statement was cancelled while %s (%s): it ran longer than statement_timeout, or someone cancelled '
                'it. Re-run the task, or raise statement_timeout.' % (doing, message))
    if code in ('57P01', '57P02', '57P03') or isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)) and not code:
        return ('The connection to the server was lost while %s (%s). Nothing was applied: the transaction was rolled '
                'back. Re-run the task.' % (doing, message))
    return 'PostgreSQL refused %s: %s%s' % (doing, message, '' if message.endswith('.') else '.')


def describe_blockers(cursor, query, params):
    """Who holds the locks a statement waited for, as ``query`` finds them (read after rolling the failed transaction
    back, in a short transaction of its own: the diagnosis must not hang either)."""
    try:
        cursor.connection.rollback()
        cursor.execute("SET LOCAL statement_timeout = '5s'")
        blockers = fetch_dicts(cursor, query, dict(params, limit=SHOWN_BLOCKERS))
        cursor.connection.rollback()
    except Exception:  # pylint: disable=broad-except
        return ''
    if not blockers:
        return 'The lock was released since.'
    return 'Held by: %s.' % '; '.join(
        'pid %(pid)s %(verb)s %(mode)s on %(relation)s (user %(user_name)s, application "%(application_name)s", '
        '%(state)s, transaction open for %(held_for)s)' % blocker for blocker in blockers)


def read_failure_message(conn, exc):
    """The message for a failed catalog read; after a lock timeout, it names the sessions that can block a read."""
    message = sql_error_message(exc, 'reading the catalog')
    if getattr(exc, 'pgcode', None) == LOCK_NOT_AVAILABLE:
        with contextlib.closing(conn.cursor()) as cursor:
            message += ' ' + describe_blockers(cursor, READ_BLOCKERS, {})
    return message


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
def read_transaction(conn, bounds):
    """A read-only transaction, always rolled back, in which no statement waits for a lock longer than
    ``bounds['lock_timeout']`` nor runs longer than ``bounds['statement_timeout']``: catalog functions such as
    pg_partition_tree lock the tables they read, and a migration's ACCESS EXCLUSIVE lock would hold them forever."""
    cursor = conn.cursor()
    try:
        cursor.execute('SET TRANSACTION READ ONLY; ' + NO_JIT + '; ' + BOUNDS, bounds)
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
        with cancel_on_interrupt(conn):
            yield conn
    finally:
        conn.close()


@contextlib.contextmanager
def cancel_on_interrupt(conn):
    """While it lasts, Ctrl-C (SIGINT) or SIGTERM cancels the statement ``conn`` is running, at once.

    A statement waiting for a lock blocks in libpq, where Python runs no signal handler: without this, Ansible's worker
    would only die once lock_timeout expired, and a killed client's backend would wait on. Python's own C handler
    writes each signal to the wakeup fd at once, whatever the main thread does; a thread reading it sends the cancel
    request. The statement then fails, and the signal's usual handler runs (Ansible's worker exits, a module raises
    KeyboardInterrupt). This costs nothing per statement, unlike a psycopg2 wait callback.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    previous_fd = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    # SIGTERM's default action ends the process without a cancel: let Python handle it (as an exit) while this lasts.
    previous_term = signal.getsignal(signal.SIGTERM)
    if previous_term == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, exit_on_signal)
    watcher = threading.Thread(target=cancel_when_signalled, args=(conn, read_end, previous_fd), daemon=True)
    watcher.start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous_fd)
        if previous_term == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.close(write_end)  # the watcher reads the end of the pipe and returns
        watcher.join()
        os.close(read_end)


def exit_on_signal(signum, frame):
    raise SystemExit(128 + signum)


def cancel_when_signalled(conn, read_end, previous_fd):
    while True:
        received = os.read(read_end, 64)
        if not received:
            return
        if previous_fd >= 0:
            with contextlib.suppress(OSError):
                os.write(previous_fd, received)
        if set(received) & INTERRUPTS:
            with contextlib.suppress(Exception):
                conn.cancel()


def run_writing_module(call, lock_key, converge, conn=None):
    """Run ``converge(call, conn, cursor)`` in one transaction (read-only in check mode) and return its result, on
    ``conn`` when given (left open), else on a connection of its own."""
    return run_writing_steps(call.params, call.check_mode, [lock_key], lambda conn, cursor: converge(call, conn, cursor),
                             conn, on_retry=call.warnings.clear)


def run_writing_steps(params, check_mode, lock_keys, converge, conn=None, on_retry=None):
    """Run ``converge(conn, cursor)`` in one transaction serialised on ``lock_keys`` (read-only in check mode).

    Advisory locks only serialise runs within one database, but roles belong to the whole server: a run on another
    database can create the same role first. Then the plan is made again from what that run committed, once (never
    after a batch of this run was committed: its result would not tell), after ``on_retry()``.
    """
    check_bounds(params)
    with session(params, conn) as conn:
        try:
            with read_transaction(conn, params) as cursor:
                refuse_standby(cursor, params)
            for attempt in range(2):
                try:
                    with steps_transaction(conn, lock_keys, params, check_mode) as cursor:
                        return converge(conn, cursor)
                except ClickPipesError as exc:
                    created_meanwhile = getattr(exc.__cause__, 'pgcode', None) in CREATED_MEANWHILE
                    if attempt or not created_meanwhile or exc.committed:
                        raise
                    if on_retry:
                        on_retry()
        except psycopg2.Error as exc:
            raise ClickPipesError(read_failure_message(conn, exc) + ' Nothing was applied.') from exc


@contextlib.contextmanager
def steps_transaction(conn, lock_keys, params, check_mode):
    """A read-only transaction in check mode, else a write transaction holding every advisory lock of ``lock_keys``
    (taken in that order: every caller names them in the same order)."""
    if check_mode:
        with read_transaction(conn, params) as cursor:
            yield cursor
        return
    with write_transaction(conn, lock_keys[0], params['lock_timeout']) as cursor:
        for key in lock_keys[1:]:
            lock_transaction(cursor, key, params['lock_timeout'])
        yield cursor
