#!/usr/bin/env python
"""Real PostgreSQL clusters, streaming standbys and PgBouncer for tests, on 127.0.0.1 only.

Importable (``import pgcluster`` with tests/harness on sys.path) and a command-line tool::

    python tests/harness/pgcluster.py install 12 15 18
    python tests/harness/pgcluster.py install-extension 16 timescaledb
    python tests/harness/pgcluster.py start --major 15 --state-dir DIR [--port N] [--set name=value ...] [--tls]
    python tests/harness/pgcluster.py pgbouncer --state-dir DIR [--port 6432]
    python tests/harness/pgcluster.py admin --state-dir DIR --dbname DB [--kind managed|foreign] [--name ROLE]
    python tests/harness/pgcluster.py status|stop|destroy --state-dir DIR

Every cluster lives in its own directory (``data/``, ``socket/``, ``server.log``,
``cluster.json``). Objects started through the API are stopped and removed at interpreter
exit (set ``PGCDC_KEEP=1`` to keep their directories); CLI clusters live until ``stop``.
A state dir of the CLI holds one cluster and optionally one PgBouncer in front of it.

With ``tls`` (``start --tls``) the server has a self-signed certificate for CN=localhost
(``server.crt``/``server.key`` in its data dir, made with ``openssl``) and ``ssl = on``:
clients connect with ``sslmode=require`` (or ``verify-full`` with the certificate as root).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import encrypt_password

from pginstall import (CLIENT_BIN, DEBIAN_PACKAGES, PGBOUNCER, HarnessError, chown_to_server, ensure_debian_packages, install,
                       make_server_dir, run, server_env, server_user)

__all__ = [
    'Cluster', 'HarnessError', 'PgBouncer', 'create_database', 'create_foreign_admin', 'create_managed_like_admin',
    'create_subscriber', 'drop_database', 'install', 'install_extension', 'parse_majors', 'start_cluster', 'start_pgbouncer',
    'start_standby', 'wait_for',
]

HOST = '127.0.0.1'
SUPERUSER = 'postgres'
OPENSSL = Path('/usr/bin/openssl')
DEBIAN_PACKAGES.setdefault('openssl', OPENSSL)  # for ensure_debian_packages('openssl') (TLS clusters)
TLS_SETTINGS = {'ssl': True, 'ssl_cert_file': 'server.crt', 'ssl_key_file': 'server.key'}  # paths relative to the data dir
DEFAULT_SETTINGS = {
    'wal_level': 'logical',
    'max_wal_senders': 10,
    'max_replication_slots': 10,
    'password_encryption': 'scram-sha-256',
    'log_statement': 'all',
    'logging_collector': False,
    'log_line_prefix': '%m [%p] %q%u@%d ',
    'fsync': False,
    'shared_buffers': '16MB',
}
PG_HBA = """\
# Written by the pgcdc test harness.
local all all trust
local replication all trust
host all all 127.0.0.1/32 scram-sha-256
host replication all 127.0.0.1/32 scram-sha-256
"""
STARTED = []  # every Cluster / PgBouncer started by this process, oldest first (for failure reports)
_LIVE = []  # the ones still to stop at exit


def wait_for(predicate, timeout=30, interval=0.2, ignore=(), message=None):
    """Call ``predicate`` until it returns a true value and return that value.

    Exceptions listed in ``ignore`` count as "not yet". Raises TimeoutError after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = predicate()
            if result:
                return result
        except ignore:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(message or 'condition not met within %ss: %r' % (timeout, predicate))
        time.sleep(interval)


def port_is_free(port) -> bool:
    """True when 127.0.0.1:port can be bound."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def parse_majors(text) -> list:
    """'12 15,18' -> [12, 15, 18]."""
    return [int(item) for item in re.split(r'[\s,]+', text.strip()) if item]


def _conf_value(value) -> str:
    """Render a postgresql.conf value; strings already in single quotes are kept as given."""
    if isinstance(value, bool):
        return 'on' if value else 'off'
    if isinstance(value, (int, float)):
        return str(value)
    value = str(value)
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value
    return "'%s'" % value.replace("'", "''")


def _conninfo_string(params) -> str:
    """libpq keyword/value string from a dict (values quoted)."""
    return ' '.join("%s='%s'" % (key, str(val).replace('\\', '\\\\').replace("'", "\\'")) for key, val in params.items())


def _tail(path, lines=40) -> str:
    try:
        return ''.join(Path(path).read_text(errors='replace').splitlines(True)[-lines:])
    except OSError:
        return ''


def _alive(pid) -> bool:
    """True when process ``pid`` exists and is not a zombie (our daemons' reaper may be slow)."""
    try:
        with open('/proc/%d/stat' % pid) as stat:
            return stat.read().rpartition(')')[2].split()[0] != 'Z'
    except OSError:
        return False


def _connect(params, overrides):
    """Autocommit psycopg2 connection from libpq keywords; ``overrides`` win, None values are dropped."""
    params = dict(params, connect_timeout=10)
    params.update(overrides)
    conn = psycopg2.connect(**{key: value for key, value in params.items() if value is not None})
    conn.autocommit = True
    return conn


def _track(obj):
    STARTED.append(obj)
    _LIVE.append(obj)
    return obj


def _new_base(name) -> Path:
    return make_server_dir(tempfile.mkdtemp(prefix='pgcdc-%s-' % name))


def _remove_tree(path):
    if not os.environ.get('PGCDC_KEEP'):
        shutil.rmtree(str(path), ignore_errors=True)


@atexit.register
def _cleanup():
    """Stop (and remove) everything the API started and nobody stopped."""
    while _LIVE:
        obj = _LIVE.pop()
        try:
            obj.destroy()
        except Exception as exc:  # keep stopping the others
            print('pgcluster: could not stop %r: %s' % (obj, exc), file=sys.stderr)


class Cluster:
    """One PostgreSQL cluster in its own directory; see :func:`start_cluster`."""

    def __init__(self, major, base_dir, port=None, password=None, settings=None, name=None, superuser=SUPERUSER, tls=False):
        self.major = int(major)
        self.base_dir = Path(base_dir)
        self.name = name or 'pg%d' % self.major
        self.host = HOST
        self.auto_port = port is None
        self.port = int(port or free_port())
        self.superuser = superuser
        self.password = password or secrets.token_hex(16)
        self.settings = dict(settings or {})
        self.tls = bool(tls)
        self.admins = {}  # role -> password, for roles made by create_*_admin
        self.bin_dir = install(self.major) / 'bin'

    def __repr__(self):
        return '<Cluster %s PG%d %s:%d>' % (self.name, self.major, self.host, self.port)

    datadir = property(lambda self: self.base_dir / 'data')
    socket_dir = property(lambda self: self.base_dir / 'socket')
    log_path = property(lambda self: self.base_dir / 'server.log')
    state_path = property(lambda self: self.base_dir / 'cluster.json')
    cert_path = property(lambda self: self.datadir / TLS_SETTINGS['ssl_cert_file'])
    key_path = property(lambda self: self.datadir / TLS_SETTINGS['ssl_key_file'])

    # -- state -------------------------------------------------------------------------------
    @classmethod
    def load(cls, base_dir) -> Cluster:
        """The cluster whose ``cluster.json`` is in ``base_dir``."""
        state = json.loads((Path(base_dir) / 'cluster.json').read_text())
        cluster = cls(state['major'], base_dir, port=state['port'], password=state['password'],
                      settings=state['settings'], name=state['name'], superuser=state['superuser'], tls=state.get('tls', False))
        cluster.admins.update(state.get('admins', {}))
        return cluster

    def save(self):
        state = dict(major=self.major, port=self.port, password=self.password, settings=self.settings,
                     name=self.name, superuser=self.superuser, tls=self.tls, admins=self.admins)
        self.state_path.touch(mode=0o600)
        self.state_path.write_text(json.dumps(state, indent=2) + '\n')

    def info(self) -> dict:
        """What the CLI prints: host, port, superuser, password, major, datadir, log_path, tls, ssl_cert."""
        return dict(host=self.host, port=self.port, superuser=self.superuser, password=self.password,
                    major=self.major, datadir=str(self.datadir), log_path=str(self.log_path), tls=self.tls,
                    ssl_cert=str(self.cert_path) if self.tls else None)

    def write_config(self):
        """Write ``pgcdc.conf`` (included last by postgresql.conf): defaults, settings, port."""
        values = dict(listen_addresses=HOST, unix_socket_directories=str(self.socket_dir))
        values.update(DEFAULT_SETTINGS)
        if self.tls:
            values.update(TLS_SETTINGS)
        values.update(self.settings)
        values['port'] = self.port
        lines = ['%s = %s' % (key, _conf_value(value)) for key, value in values.items()]
        path = self.datadir / 'pgcdc.conf'
        path.write_text('# Written by the pgcdc test harness; edit through Cluster.set_setting().\n' + '\n'.join(lines) + '\n')
        chown_to_server(path)

    # -- life cycle --------------------------------------------------------------------------
    def init(self) -> Cluster:
        """initdb (UTF8, locale C), write pg_hba.conf and config, start, set the superuser password."""
        make_server_dir(self.base_dir)
        make_server_dir(self.socket_dir)
        run([self.bin_dir / 'initdb', '-D', self.datadir, '-U', self.superuser, '-E', 'UTF8', '--locale=C',
             '--auth-local=trust', '--auth-host=scram-sha-256'], as_server=True, timeout=300)
        (self.datadir / 'pg_hba.conf').write_text(PG_HBA)
        with open(str(self.datadir / 'postgresql.conf'), 'a') as conf:
            conf.write("\ninclude = 'pgcdc.conf'\n")
        if self.tls:
            self.make_certificate()
        self.write_config()
        self.save()
        self.start()
        # No password yet: log in through the Unix socket (trust).
        socket_login = dict(host=str(self.socket_dir), port=self.port, user=self.superuser, dbname='postgres')
        with contextlib.closing(_connect(socket_login, {})) as conn:
            with conn.cursor() as cur:
                verifier = encrypt_password(self.password, self.superuser, conn, 'scram-sha-256')
                cur.execute(sql.SQL('ALTER ROLE {} PASSWORD {}').format(sql.Identifier(self.superuser), sql.Literal(verifier)))
        return self

    def make_certificate(self):
        """Write a self-signed certificate for CN=localhost (and 127.0.0.1) and its key into the data dir.

        Kept when present. The server user owns both; the key is readable by it only, as the server demands.
        """
        if self.cert_path.exists() and self.key_path.exists():
            return
        ensure_debian_packages('openssl')
        run([OPENSSL, 'req', '-new', '-x509', '-nodes', '-days', '3650', '-newkey', 'rsa:2048', '-subj', '/CN=localhost',
             '-addext', 'subjectAltName=DNS:localhost,IP:%s' % HOST, '-keyout', self.key_path, '-out', self.cert_path],
            as_server=True, timeout=120)
        self.key_path.chmod(0o600)
        self.cert_path.chmod(0o644)

    def _pg_ctl(self, *args, check=True):
        # HOME is the cluster's directory: the server's own libpq (CREATE SUBSCRIPTION, walreceiver) looks for
        # ~/.postgresql/postgresql.crt when the publisher offers TLS and fails on a HOME it may not read (root's).
        env = dict(server_env(), HOME=str(self.base_dir))
        return run([self.bin_dir / 'pg_ctl', '-D', self.datadir] + list(args), as_server=True, check=check, timeout=120, env=env)

    def is_running(self) -> bool:
        return self.datadir.is_dir() and self._pg_ctl('status', check=False).returncode == 0

    def start(self) -> Cluster:
        """Start (no-op when running); an automatically chosen port that got taken is replaced."""
        for _attempt in range(5):
            if self.is_running():
                return self
            log_size = self.log_path.stat().st_size if self.log_path.exists() else 0
            proc = self._pg_ctl('-l', self.log_path, '-w', '-t', '60', 'start', check=False)
            if proc.returncode == 0:
                return self
            with open(str(self.log_path), errors='replace') as log:
                log.seek(log_size)
                new_log = log.read()
            if not (self.auto_port and 'could not bind' in new_log):
                raise HarnessError('%r did not start:\n%s\n--- %s ---\n%s' % (self, proc.stdout, self.log_path, new_log[-4000:]))
            self.port = free_port()
            self.write_config()
            self.save()
        raise HarnessError('%r: no free port found' % self)

    def stop(self):
        if self.is_running():
            self._pg_ctl('-m', 'fast', '-w', '-t', '60', 'stop')

    def restart(self) -> Cluster:
        if not self.is_running():
            return self.start()
        proc = self._pg_ctl('-l', self.log_path, '-m', 'fast', '-w', '-t', '60', 'restart', check=False)
        if proc.returncode != 0:
            raise HarnessError('%r did not restart:\n%s\n--- %s ---\n%s' % (self, proc.stdout, self.log_path, _tail(self.log_path)))
        return self

    def reload(self):
        """Reload the configuration and wait until new sessions see it."""
        before = self.query('SELECT pg_conf_load_time()')[0][0]
        self._pg_ctl('reload')
        wait_for(lambda: self.query('SELECT pg_conf_load_time()')[0][0] > before, timeout=10)

    def destroy(self):
        """Stop and remove the cluster directory."""
        self.stop()
        if self in _LIVE:
            _LIVE.remove(self)
        _remove_tree(self.base_dir)

    def set_setting(self, name, value, restart=False):
        """Set ``name = value`` in the harness config, then reload (or restart)."""
        self.settings[name] = value
        self.write_config()
        self.save()
        if restart:
            self.restart()
        else:
            self.reload()

    # -- SQL -------------------------------------------------------------------------------
    def conninfo(self, user=None, password=None, dbname='postgres') -> dict:
        """libpq keyword arguments; the password of the superuser and harness admins is filled in."""
        user = user or self.superuser
        if password is None:
            password = self.password if user == self.superuser else self.admins.get(user)
        params = dict(host=self.host, port=self.port, user=user, dbname=dbname)
        if password is not None:
            params['password'] = password
        return params

    def connect(self, user=None, password=None, dbname='postgres', **kwargs):
        """An autocommit psycopg2 connection (extra keyword arguments go to psycopg2.connect)."""
        return _connect(self.conninfo(user, password, dbname), kwargs)

    def execute(self, statement, params=None, dbname='postgres'):
        """Run one statement as the superuser (in its own connection)."""
        with contextlib.closing(self.connect(dbname=dbname)) as conn, conn.cursor() as cur:
            cur.execute(statement, params)

    def query(self, statement, params=None, dbname='postgres') -> list:
        """Rows (tuples) of one query run as the superuser."""
        with contextlib.closing(self.connect(dbname=dbname)) as conn, conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall()

    def read_log(self) -> str:
        return self.log_path.read_text(errors='replace') if self.log_path.exists() else ''


def start_cluster(major, settings=None, name=None, port=None, tls=False) -> Cluster:
    """initdb and start a new cluster of ``major`` in a temp dir; ``settings`` override the defaults.

    ``tls``: a self-signed server certificate (CN=localhost) and ``ssl = on``, for ``sslmode=require`` clients.
    """
    name = name or 'pg%d' % int(major)
    cluster = Cluster(major, _new_base(name), port=port, settings=settings, name=name, tls=tls)
    try:
        cluster.init()
    except BaseException:
        cluster.destroy()
        raise
    return _track(cluster)


def create_subscriber(major, **kwargs) -> Cluster:
    """A second, independent cluster (where CREATE SUBSCRIPTION runs)."""
    kwargs.setdefault('name', 'pg%d_subscriber' % int(major))
    return start_cluster(major, **kwargs)


# -- standby -----------------------------------------------------------------------------------
_SKIP_FILES = ('postmaster.pid', 'postmaster.opts', 'backup_label', 'tablespace_map', 'standby.signal', 'recovery.signal')
_EMPTY_DIRS = ('pg_replslot', 'pg_dynshmem', 'pg_notify', 'pg_serial', 'pg_snapshots', 'pg_stat_tmp', 'pg_subtrans')
_WAL_FILE = re.compile(r'^([0-9A-F]{24}|[0-9A-F]{8}\.history)$')


def _copy_datadir(src: Path, dst: Path):
    """Copy a running cluster's data directory the way the backup docs say (no WAL, no runtime files)."""
    for dirpath, dirnames, filenames in os.walk(str(src)):
        rel = os.path.relpath(dirpath, str(src))
        os.makedirs(os.path.join(str(dst), rel), mode=0o700, exist_ok=True)
        top = rel.split(os.sep)[0]
        if top in _EMPTY_DIRS:
            dirnames[:] = []
            continue
        dirnames[:] = [name for name in dirnames if not name.startswith('pgsql_tmp')]
        for name in filenames:
            if top == 'pg_wal' or name.startswith('pgsql_tmp') or (rel == '.' and name in _SKIP_FILES):
                continue
            with contextlib.suppress(FileNotFoundError):  # dropped meanwhile: WAL replay handles it
                shutil.copy2(os.path.join(dirpath, name), os.path.join(str(dst), rel, name))


def _lowlevel_backup(primary: Cluster, dst: Path):
    """Consistent copy of ``primary`` with the non-exclusive low-level backup API (no pg_basebackup)."""
    new_api = primary.major >= 15
    with contextlib.closing(primary.connect()) as conn, conn.cursor() as cur:
        cur.execute('SELECT pg_backup_start(%s, true)' if new_api else 'SELECT pg_start_backup(%s, true, false)', ['pgcdc standby'])
        try:
            _copy_datadir(primary.datadir, dst)
        finally:
            cur.execute('SELECT labelfile, spcmapfile FROM %s(false)' % ('pg_backup_stop' if new_api else 'pg_stop_backup'))
            labelfile, spcmapfile = cur.fetchone()
    (dst / 'backup_label').write_text(labelfile)
    if spcmapfile:
        (dst / 'tablespace_map').write_text(spcmapfile)
    wal = primary.datadir / 'pg_wal'
    for name in os.listdir(str(wal)):  # WAL written until now, so replay does not depend on the primary keeping it
        if _WAL_FILE.match(name):
            with contextlib.suppress(FileNotFoundError):
                shutil.copy2(str(wal / name), str(dst / 'pg_wal' / name))
    chown_to_server(dst, recursive=True)
    dst.chmod(0o700)


def start_standby(primary: Cluster, name=None, method=None, timeout=60) -> Cluster:
    """Start a streaming hot standby of ``primary`` and wait until it streams.

    ``method`` 'basebackup' (default for majors <= 15, Debian's pg_basebackup 15 with -R) or
    'lowlevel' (default for 16+: pg_backup_start/stop and a file copy, then standby.signal and
    primary_conninfo). The standby's ``application_name`` (row in pg_stat_replication) is ``name``.
    """
    name = name or '%s_standby' % primary.name
    method = method or ('basebackup' if primary.major <= 15 else 'lowlevel')
    standby = Cluster(primary.major, _new_base(name), password=primary.password, settings=primary.settings,
                      name=name, superuser=primary.superuser, tls=primary.tls)  # the copy has the certificate too
    source = _conninfo_string(dict(host=primary.host, port=primary.port, user=primary.superuser,
                                   password=primary.password, application_name=name))
    try:
        if method == 'basebackup':
            run([CLIENT_BIN / 'pg_basebackup', '-d', source, '-D', standby.datadir, '-R', '-X', 'stream', '-c', 'fast'],
                as_server=True, timeout=600)
            # -R also wrote a primary_conninfo with every option libpq 15 knows (PG12 rejects channel_binding):
            # keep its standby.signal, set a minimal primary_conninfo in pgcdc.conf instead.
            auto_conf = standby.datadir / 'postgresql.auto.conf'
            auto_conf.write_text(''.join(line for line in auto_conf.read_text().splitlines(True)
                                         if not line.startswith('primary_conninfo')))
        elif method == 'lowlevel':
            _lowlevel_backup(primary, standby.datadir)
            (standby.datadir / 'standby.signal').touch()
            chown_to_server(standby.datadir / 'standby.signal')
        else:
            raise HarnessError('unknown standby method %r' % method)
        standby.settings['primary_conninfo'] = source
        make_server_dir(standby.socket_dir)
        standby.write_config()
        standby.save()
        standby.start()
        wait_for(lambda: standby.query('SELECT pg_is_in_recovery()')[0][0] and primary.query(
            "SELECT 1 FROM pg_stat_replication WHERE application_name = %s AND state = 'streaming'", [name]),
            timeout=timeout, ignore=(psycopg2.OperationalError,),
            message='%r does not stream from %r; see %s' % (standby, primary, standby.log_path))
    except BaseException:
        standby.destroy()
        raise
    return _track(standby)


# -- PgBouncer ---------------------------------------------------------------------------------
class PgBouncer:
    """Debian's PgBouncer (session pooling) in front of a cluster.

    Any role of the cluster logs in with its real password, also roles created later: clients
    authenticate with SCRAM against the secret PgBouncer reads through ``auth_query`` (as the
    superuser), and PgBouncer reuses the client's SCRAM keys to log in to the server.
    """

    def __init__(self, cluster: Cluster, base_dir, port=None):
        self.cluster = cluster
        self.base_dir = Path(base_dir)
        self.host = HOST
        self.auto_port = port is None
        self.port = int(port or free_port())

    def __repr__(self):
        return '<PgBouncer %s:%d -> %r>' % (self.host, self.port, self.cluster)

    ini_path = property(lambda self: self.base_dir / 'pgbouncer.ini')
    log_path = property(lambda self: self.base_dir / 'pgbouncer.log')
    pid_path = property(lambda self: self.base_dir / 'pgbouncer.pid')

    def write_config(self):
        userlist = self.base_dir / 'userlist.txt'
        userlist.touch(mode=0o600)
        userlist.write_text('"%s" "%s"\n' % (self.cluster.superuser, self.cluster.password))
        self.ini_path.write_text('\n'.join([
            '[databases]',
            '* = host=%s port=%d' % (self.cluster.host, self.cluster.port),
            '[pgbouncer]',
            'listen_addr = %s' % self.host,
            'listen_port = %d' % self.port,
            'unix_socket_dir =',
            'pool_mode = session',
            'auth_type = scram-sha-256',
            'auth_file = %s' % userlist,
            'auth_user = %s' % self.cluster.superuser,
            'auth_query = SELECT usename, passwd FROM pg_shadow WHERE usename = $1',
            'admin_users = %s' % self.cluster.superuser,
            'ignore_startup_parameters = extra_float_digits',
            'logfile = %s' % self.log_path,
            'pidfile = %s' % self.pid_path,
        ] + ([  # a TLS cluster's pooler offers TLS too (with the cluster's certificate), as providers' poolers do
            'client_tls_sslmode = allow',
            'client_tls_cert_file = %s' % self.cluster.cert_path,
            'client_tls_key_file = %s' % self.cluster.key_path,
        ] if self.cluster.tls else [])) + '\n')
        chown_to_server(userlist)
        chown_to_server(self.ini_path)

    def pid(self):
        """PID of the running PgBouncer, or None."""
        try:
            pid = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def _accepts(self):
        with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), timeout=1):
            return True
        return False

    def _wait_ready(self, log_offset, timeout=30):
        """True once PgBouncer runs and accepts connections, False when it logged a FATAL error."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pid() and self._accepts():
                return True
            if 'FATAL' in self.read_log()[log_offset:]:
                return False
            time.sleep(0.1)
        return False

    def start(self) -> PgBouncer:
        """Start in the background (no-op when running) and wait until it accepts connections."""
        for _attempt in range(5):
            if self.pid():
                return self
            self.write_config()
            log_offset = len(self.read_log())
            run([PGBOUNCER, '-d', self.ini_path], as_server=True, timeout=60)
            if self._wait_ready(log_offset):
                return self
            if not (self.auto_port and 'Address already in use' in self.read_log()[log_offset:]):
                break
            self.port = free_port()
        raise HarnessError('%r did not start:\n%s' % (self, _tail(self.log_path)))

    def stop(self):
        pid = self.pid()
        if pid:
            os.kill(pid, signal.SIGTERM)
            wait_for(lambda: not _alive(pid), timeout=30, interval=0.05)

    def destroy(self):
        self.stop()
        if self in _LIVE:
            _LIVE.remove(self)
        _remove_tree(self.base_dir)

    def conninfo(self, user=None, password=None, dbname='postgres') -> dict:
        """libpq keyword arguments for a connection through PgBouncer."""
        params = self.cluster.conninfo(user, password, dbname)
        params.update(host=self.host, port=self.port)
        return params

    def connect(self, user=None, password=None, dbname='postgres', **kwargs):
        """An autocommit psycopg2 connection through PgBouncer."""
        return _connect(self.conninfo(user, password, dbname), kwargs)

    def read_log(self) -> str:
        return self.log_path.read_text(errors='replace') if self.log_path.exists() else ''


def start_pgbouncer(cluster: Cluster, port=6432) -> PgBouncer:
    """PgBouncer for ``cluster`` on 127.0.0.1:port (a free port when ``port`` is taken or None)."""
    if port is not None and not port_is_free(port):
        port = None
    try:
        return _start_pgbouncer(cluster, port)
    except HarnessError:
        if port is None:
            raise
        # Another test process took the port between the check and the bind.
        return _start_pgbouncer(cluster, None)


def _start_pgbouncer(cluster, port):
    bouncer = PgBouncer(cluster, _new_base('pgbouncer'), port)
    try:
        bouncer.start()
    except BaseException:
        bouncer.destroy()
        raise
    return _track(bouncer)


# -- fixtures helpers --------------------------------------------------------------------------
EXTENSIONS_DIR = Path(__file__).resolve().parent / 'extensions'


def install_extension(major, name):
    """Copy the extension ``name`` of tests/harness/extensions (control file and SQL scripts: imitations of provider
    extensions that cannot be installed here) into the share dir of PostgreSQL ``major``; CREATE EXTENSION then works."""
    target = _extension_dir(major)
    for source in sorted((EXTENSIONS_DIR / name).iterdir()):
        destination = target / source.name
        if not destination.exists() or destination.read_bytes() != source.read_bytes():
            shutil.copyfile(str(source), str(destination))
            destination.chmod(0o644)
    return target


def _extension_dir(major) -> Path:
    """Where PostgreSQL ``major`` looks for extension files: the share dir next to its bin dir (the npm packages),
    or Debian's /usr/share/postgresql/<major>."""
    root = install(major)
    for candidate in (root / 'share' / 'postgresql' / 'extension', Path('/usr/share/postgresql/%d/extension' % int(major))):
        if (candidate / 'plpgsql.control').is_file():
            return candidate
    raise HarnessError('no extension directory (with plpgsql.control) found for PostgreSQL %d under %s' % (int(major), root))


def create_database(cluster: Cluster, name, owner=None):
    """CREATE DATABASE name [OWNER owner]."""
    stmt = sql.SQL('CREATE DATABASE {}').format(sql.Identifier(name))
    if owner:
        stmt += sql.SQL(' OWNER {}').format(sql.Identifier(owner))
    cluster.execute(stmt)
    return name


def drop_database(cluster: Cluster, name):
    """Drop a database even when in use: drops its subscriptions and logical slots, ends its sessions."""
    if not cluster.query('SELECT 1 FROM pg_database WHERE datname = %s', [name]):
        return
    subscriptions = cluster.query('SELECT s.subname FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid '
                                  'WHERE d.datname = %s', [name])
    for (subname,) in subscriptions:
        ident = sql.Identifier(subname)
        for stmt in ('ALTER SUBSCRIPTION {} DISABLE', 'ALTER SUBSCRIPTION {} SET (slot_name = NONE)', 'DROP SUBSCRIPTION {}'):
            cluster.execute(sql.SQL(stmt).format(ident), dbname=name)
    drop = sql.SQL('DROP DATABASE IF EXISTS {}').format(sql.Identifier(name))
    if cluster.major >= 13:
        drop += sql.SQL(' WITH (FORCE)')

    def attempt():
        cluster.execute('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()', [name])
        cluster.execute('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = %s AND NOT active', [name])
        cluster.execute(drop)
        return True

    wait_for(attempt, timeout=30, ignore=(psycopg2.errors.ObjectInUse,))


def _login_role(cluster: Cluster, name, attributes):
    """Create or alter LOGIN role ``name`` with ``attributes``; its password is stable per cluster object."""
    password = cluster.admins.get(name) or secrets.token_hex(16)
    with contextlib.closing(cluster.connect()) as conn, conn.cursor() as cur:
        cur.execute('SELECT 1 FROM pg_roles WHERE rolname = %s', [name])
        verb = 'ALTER' if cur.fetchone() else 'CREATE'
        verifier = encrypt_password(password, name, conn, 'scram-sha-256')
        cur.execute(sql.SQL('{} ROLE {} LOGIN NOSUPERUSER {} PASSWORD {}').format(
            sql.SQL(verb), sql.Identifier(name), sql.SQL(attributes), sql.Literal(verifier)))
    cluster.admins[name] = password
    return dict(user=name, password=password)


def create_managed_like_admin(cluster: Cluster, dbname, name='managed_admin', owner_role='app') -> dict:
    """Imitate a managed provider's admin for ``dbname``; returns dict(user, password).

    The admin is LOGIN, not superuser, CREATEROLE, CREATEDB (and REPLICATION on 16+), has CREATE on
    the database and is a member of ``owner_role`` (NOLOGIN, the role owning the tables; it gets
    USAGE and CREATE on schema public of the database). Idempotent; roles are cluster-wide.
    """
    attributes = 'CREATEROLE CREATEDB' + (' REPLICATION' if cluster.major >= 16 else '')
    creds = _login_role(cluster, name, attributes)
    owner, admin, db = sql.Identifier(owner_role), sql.Identifier(name), sql.Identifier(dbname)
    if not cluster.query('SELECT 1 FROM pg_roles WHERE rolname = %s', [owner_role]):
        cluster.execute(sql.SQL('CREATE ROLE {} NOLOGIN').format(owner))
    options = ' WITH INHERIT TRUE, SET TRUE' if cluster.major >= 16 else ''
    cluster.execute(sql.SQL('GRANT {} TO {}' + options).format(owner, admin))
    cluster.execute(sql.SQL('GRANT CREATE ON DATABASE {} TO {}').format(db, admin))
    cluster.execute(sql.SQL('GRANT USAGE, CREATE ON SCHEMA public TO {}').format(owner), dbname=dbname)
    return creds


def create_foreign_admin(cluster: Cluster, dbname, name='foreign_admin') -> dict:
    """An admin that does not own the tables: LOGIN, CREATEROLE (REPLICATION on 16+), CREATE on ``dbname``."""
    creds = _login_role(cluster, name, 'CREATEROLE' + (' REPLICATION' if cluster.major >= 16 else ''))
    cluster.execute(sql.SQL('GRANT CREATE ON DATABASE {} TO {}').format(sql.Identifier(dbname), sql.Identifier(name)))
    return creds


# -- command line ------------------------------------------------------------------------------
def _state_base(state_dir) -> Path:
    """Where the CLI keeps the cluster of ``state_dir``: ``DIR/pg``, or a /tmp dir when the server user cannot enter DIR."""
    state_dir = Path(state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    inside = state_dir / 'pg'
    fallback = Path(tempfile.gettempdir()) / ('pgcdc-state-%s' % hashlib.sha1(str(state_dir).encode()).hexdigest()[:12])
    for base in (inside, fallback):
        if (base / 'cluster.json').exists():
            return base
    if server_user() is None or run(['test', '-x', state_dir], as_server=True, check=False).returncode == 0:
        return inside
    return fallback


def _bouncer(cluster: Cluster, base: Path, port=None) -> PgBouncer:
    """The CLI's PgBouncer of the cluster in ``base`` (its files in ``base/pgbouncer``; port kept in pgbouncer.json)."""
    state = base / 'pgbouncer' / 'pgbouncer.json'
    saved = json.loads(state.read_text()) if state.exists() else {}
    return PgBouncer(cluster, base / 'pgbouncer', port or saved.get('port'))


def _bouncer_info(bouncer: PgBouncer) -> dict:
    return dict(host=bouncer.host, port=bouncer.port, log_path=str(bouncer.log_path), running=bool(bouncer.pid()))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='pgcluster.py', description='PostgreSQL test clusters for pgcdc.clickpipes')
    commands = parser.add_subparsers(dest='command', required=True)
    cmd = commands.add_parser('install', help='install server binaries, pgbouncer and the client; print the bin dirs')
    cmd.add_argument('majors', nargs='+', type=int)
    cmd = commands.add_parser('install-extension', help='copy an extension of tests/harness/extensions into a major\'s share dir')
    cmd.add_argument('major', type=int)
    cmd.add_argument('name')
    cmd = commands.add_parser('start', help='start (or create) the cluster of a state dir; print its JSON')
    cmd.add_argument('--major', type=int)
    cmd.add_argument('--port', type=int)
    cmd.add_argument('--set', dest='settings', action='append', default=[], metavar='NAME=VALUE')
    cmd.add_argument('--tls', action='store_true', help='self-signed certificate (CN=localhost) and ssl = on')
    cmd = commands.add_parser('pgbouncer', help='start PgBouncer in front of the running cluster of a state dir; print its JSON')
    cmd.add_argument('--port', type=int, help='default: 6432 when free, else a free port')
    cmd = commands.add_parser('admin', help='create a database (when missing) and a harness admin for it; print dict(user, password)')
    cmd.add_argument('--dbname', required=True)
    cmd.add_argument('--kind', choices=('managed', 'foreign'), default='managed',
                     help='managed: create_managed_like_admin (tables owned by --owner-role); foreign: create_foreign_admin')
    cmd.add_argument('--name', help='role name (default: managed_admin or foreign_admin)')
    cmd.add_argument('--owner-role', default='app')
    for name, text in (('stop', 'stop the cluster (and its PgBouncer)'), ('status', 'print JSON with "running"; exit 3 when stopped'),
                       ('destroy', 'stop the cluster (and its PgBouncer) and remove their files')):
        commands.add_parser(name, help=text)
    for cmd in commands.choices.values():
        if cmd.prog.split()[-1] not in ('install', 'install-extension'):
            cmd.add_argument('--state-dir', required=True)
    args = parser.parse_args(argv)

    if args.command == 'install':
        for major in args.majors:
            print(install(major) / 'bin')
        return 0
    if args.command == 'install-extension':
        print(install_extension(args.major, args.name))
        return 0
    base = _state_base(args.state_dir)
    exists = (base / 'cluster.json').exists()
    if args.command == 'start':
        settings = dict(item.split('=', 1) for item in args.settings)
        if exists:
            cluster = Cluster.load(base)
            if args.major and args.major != cluster.major:
                parser.error('%s holds a PostgreSQL %d cluster' % (args.state_dir, cluster.major))
            if not cluster.is_running():
                cluster.settings.update(settings)
                if args.port:
                    cluster.port, cluster.auto_port = args.port, False
                if args.tls and not cluster.tls:
                    cluster.tls = True
                    cluster.make_certificate()
                cluster.write_config()
                cluster.save()
                cluster.start()
        else:
            cluster = Cluster(args.major or 15, make_server_dir(base), port=args.port, settings=settings, name='pgcdc', tls=args.tls)
            cluster.init()
        print(json.dumps(cluster.info()))
        return 0
    if not exists:
        if args.command == 'status':
            print(json.dumps({'running': False}))
            return 3
        if args.command in ('pgbouncer', 'admin'):
            parser.error('%s holds no cluster; run start first' % args.state_dir)
        return 0
    cluster = Cluster.load(base)
    bouncer = _bouncer(cluster, base)
    if args.command == 'status':
        running = cluster.is_running()
        info = dict(cluster.info(), running=running)
        if bouncer.base_dir.exists():
            info['pgbouncer'] = _bouncer_info(bouncer)
        print(json.dumps(info))
        return 0 if running else 3
    if args.command == 'pgbouncer':
        if not bouncer.pid():
            if args.port or (bouncer.auto_port and port_is_free(6432)):
                bouncer = _bouncer(cluster, base, args.port or 6432)
            make_server_dir(bouncer.base_dir)
            bouncer.start()
            (bouncer.base_dir / 'pgbouncer.json').write_text(json.dumps(dict(port=bouncer.port)) + '\n')
        print(json.dumps(_bouncer_info(bouncer)))
        return 0
    if args.command == 'admin':
        if not cluster.query('SELECT 1 FROM pg_database WHERE datname = %s', [args.dbname]):
            create_database(cluster, args.dbname)
        if args.kind == 'managed':
            creds = create_managed_like_admin(cluster, args.dbname, name=args.name or 'managed_admin', owner_role=args.owner_role)
        else:
            creds = create_foreign_admin(cluster, args.dbname, name=args.name or 'foreign_admin')
        cluster.save()  # keeps the admin's password: the next call returns the same one
        print(json.dumps(creds))
        return 0
    bouncer.stop()
    cluster.stop()
    if args.command == 'destroy':
        shutil.rmtree(str(base))
    return 0


if __name__ == '__main__':
    sys.exit(main())
