"""Self-test of the test harness: real clusters, standby, PgBouncer and helper roles."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import uuid

import psycopg2
import pytest

import pgcluster


def scalar(cluster, statement, params=None, dbname='postgres'):
    return cluster.query(statement, params, dbname=dbname)[0][0]


def test_cluster_runs_requested_major(pg):
    assert int(scalar(pg, 'SHOW server_version_num')) // 10000 == pg.major
    assert pg.bin_dir == pgcluster.install(pg.major) / 'bin'


def test_server_is_not_root(pg):
    postmaster = int((pg.datadir / 'postmaster.pid').read_text().split()[0])
    with contextlib.closing(pg.connect()) as conn, conn.cursor() as cur:
        cur.execute('SELECT pg_backend_pid()')
        for pid in (postmaster, cur.fetchone()[0]):
            assert os.stat('/proc/%d' % pid).st_uid != 0


def test_defaults_and_log(pg):
    settings = dict(pg.query("SELECT name, setting FROM pg_settings WHERE name IN "
                             "('wal_level', 'listen_addresses', 'password_encryption', 'fsync', 'log_statement')"))
    assert settings == {'wal_level': 'logical', 'listen_addresses': '127.0.0.1', 'password_encryption': 'scram-sha-256',
                        'fsync': 'off', 'log_statement': 'all'}
    marker = 'harness-%s' % uuid.uuid4().hex
    pg.execute('SELECT %s', [marker])
    assert marker in pg.read_log()
    with pytest.raises(psycopg2.OperationalError, match='password authentication failed'):
        pg.connect(password='wrong')


def test_custom_settings(make_cluster):
    cluster = make_cluster(settings={'wal_level': 'replica', 'neon.endpoint_id': "'ep-x'"})
    assert scalar(cluster, 'SHOW wal_level') == 'replica'
    assert scalar(cluster, "SELECT current_setting('neon.endpoint_id')") == 'ep-x'
    cluster.set_setting('log_min_duration_statement', '250ms')
    assert scalar(cluster, 'SHOW log_min_duration_statement') == '250ms'
    cluster.set_setting('wal_level', 'logical', restart=True)
    assert scalar(cluster, 'SHOW wal_level') == 'logical'


def test_managed_admin(pg, database, managed_admin):
    rolsuper, rolcreaterole, rolreplication = pg.query(
        'SELECT rolsuper, rolcreaterole, rolreplication FROM pg_roles WHERE rolname = %s', [managed_admin['user']])[0]
    assert (rolsuper, rolcreaterole, rolreplication) == (False, True, pg.major >= 16)
    assert scalar(pg, "SELECT pg_has_role(%s, 'app', 'USAGE')", [managed_admin['user']])
    with contextlib.closing(pg.connect(dbname=database, **managed_admin)) as conn, conn.cursor() as cur:
        cur.execute('CREATE TABLE admin_made (id int PRIMARY KEY)')
        cur.execute('SET ROLE app')
        cur.execute('CREATE TABLE app_owned (id int PRIMARY KEY)')
    owners = dict(pg.query("SELECT relname, pg_get_userbyid(relowner) FROM pg_class WHERE relname IN ('admin_made', 'app_owned')",
                           dbname=database))
    assert owners == {'admin_made': managed_admin['user'], 'app_owned': 'app'}
    other = pgcluster.create_database(pg, database + '_2')
    try:
        assert pgcluster.create_managed_like_admin(pg, other) == managed_admin
        pg.connect(dbname=other, **managed_admin).close()
    finally:
        pgcluster.drop_database(pg, other)


def test_foreign_admin(pg, database, foreign_admin):
    assert not scalar(pg, "SELECT pg_has_role(%s, 'app', 'MEMBER')", [foreign_admin['user']])
    assert scalar(pg, 'SELECT rolcreaterole AND NOT rolsuper FROM pg_roles WHERE rolname = %s', [foreign_admin['user']])
    with contextlib.closing(pg.connect(dbname=database, **foreign_admin)) as conn, conn.cursor() as cur:
        cur.execute("SELECT has_database_privilege(current_database(), 'CREATE')")
        assert cur.fetchone()[0]


def test_drop_database_with_open_session(pg):
    name = pgcluster.create_database(pg, 'db_busy_%s' % uuid.uuid4().hex[:6])
    conn = pg.connect(dbname=name)
    pgcluster.drop_database(pg, name)
    conn.close()
    assert not pg.query('SELECT 1 FROM pg_database WHERE datname = %s', [name])


def test_pgbouncer_accepts_roles_created_later(pg, pgbouncer, database):
    role, password = 'late_%s' % uuid.uuid4().hex[:8], uuid.uuid4().hex
    pg.execute('CREATE ROLE %s LOGIN PASSWORD %%s' % role, [password])
    try:
        with contextlib.closing(pgbouncer.connect(user=role, password=password, dbname=database)) as conn, conn.cursor() as cur:
            cur.execute('SELECT current_user, current_database(), inet_server_port()')
            assert cur.fetchone() == (role, database, pg.port)
        with pytest.raises(psycopg2.OperationalError, match='SASL authentication failed'):
            pgbouncer.connect(user=role, password='wrong', dbname=database)
        with pytest.raises(psycopg2.OperationalError, match='unsupported startup parameter: replication'):
            pgbouncer.connect(user=role, password=password, dbname=database, replication='database')
    finally:
        pg.execute('DROP ROLE %s' % role)


def test_standby_streams(pg, standby):
    assert scalar(standby, 'SELECT pg_is_in_recovery()')
    assert pg.query("SELECT state FROM pg_stat_replication WHERE application_name = %s", [standby.name]) == [('streaming',)]
    table = 'standby_probe_%s' % uuid.uuid4().hex[:6]
    pg.execute('CREATE TABLE %s AS SELECT 42 AS answer' % table)
    try:
        assert pgcluster.wait_for(lambda: standby.query('SELECT to_regclass(%s) IS NOT NULL', [table])[0][0], timeout=15)
    finally:
        pg.execute('DROP TABLE %s' % table)


def test_subscriber_receives_changes(pg, subscriber, database):
    assert subscriber.port != pg.port and subscriber.datadir != pg.datadir
    system_id = 'SELECT system_identifier FROM pg_control_system()'
    assert scalar(subscriber, system_id) != scalar(pg, system_id)
    assert int(scalar(subscriber, 'SHOW server_version_num')) // 10000 == pg.major
    pg.execute('CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1); CREATE PUBLICATION pub FOR TABLE items',
               dbname=database)
    pgcluster.create_database(subscriber, database)
    try:
        conninfo = ' '.join('%s=%s' % item for item in pg.conninfo(dbname=database).items())
        subscriber.execute('CREATE TABLE items (id int PRIMARY KEY)', dbname=database)
        subscriber.execute("CREATE SUBSCRIPTION sub CONNECTION '%s' PUBLICATION pub" % conninfo, dbname=database)
        assert pgcluster.wait_for(lambda: subscriber.query('SELECT count(*) FROM items', dbname=database) == [(1,)])
        pg.execute('INSERT INTO items VALUES (2)', dbname=database)
        assert pgcluster.wait_for(lambda: subscriber.query('SELECT count(*) FROM items', dbname=database) == [(2,)])
    finally:
        pgcluster.drop_database(subscriber, database)


@pytest.fixture
def tls_cluster(pg):
    """A cluster of ``pg``'s major with a self-signed certificate and ssl = on."""
    cluster = pgcluster.start_cluster(pg.major, name='pg%d_tls' % pg.major, tls=True)
    yield cluster
    cluster.destroy()


def test_tls_cluster(tls_cluster):
    cluster = tls_cluster
    assert cluster.tls and scalar(cluster, 'SHOW ssl') == 'on'
    ssl_in_use = 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'
    with contextlib.closing(cluster.connect(sslmode='require')) as conn, conn.cursor() as cur:
        cur.execute(ssl_in_use)
        assert cur.fetchone() == (True,)
    # The certificate is for localhost and 127.0.0.1: it verifies as its own root.
    with contextlib.closing(cluster.connect(sslmode='verify-full', sslrootcert=str(cluster.cert_path))) as conn, conn.cursor() as cur:
        cur.execute(ssl_in_use)
        assert cur.fetchone() == (True,)
    with contextlib.closing(cluster.connect(sslmode='disable')) as conn, conn.cursor() as cur:
        cur.execute(ssl_in_use)
        assert cur.fetchone() == (False,)
    assert oct(cluster.key_path.stat().st_mode & 0o777) == '0o600'


def test_tls_cluster_pgbouncer(tls_cluster):
    cluster = tls_cluster
    bouncer = pgcluster.start_pgbouncer(cluster, port=None)
    try:
        with contextlib.closing(bouncer.connect(sslmode='require')) as conn, conn.cursor() as cur:
            assert conn.info.ssl_in_use
            cur.execute('SELECT inet_server_port()')
            assert cur.fetchone() == (cluster.port,)
    finally:
        bouncer.destroy()


def test_cli_cluster_with_pgbouncer_and_admin(tmp_path, pg):
    def cli(*args):
        proc = pgcluster.run([sys.executable, pgcluster.__file__] + list(args) + ['--state-dir', tmp_path / 'state'], check=False)
        return proc.returncode, proc.stdout

    try:
        code, out = cli('start', '--major', str(pg.major), '--tls', '--set', 'wal_sender_timeout=90s')
        assert code == 0, out
        info = json.loads(out)
        assert info['tls'] and info['ssl_cert']
        params = dict(host=info['host'], port=info['port'], user=info['superuser'], password=info['password'], dbname='postgres')
        with contextlib.closing(psycopg2.connect(sslmode='require', **params)) as conn, conn.cursor() as cur:
            cur.execute("SELECT current_setting('wal_sender_timeout'), ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            assert cur.fetchone() == ('90s', True)
        code, out = cli('admin', '--dbname', 'shop')
        assert code == 0, out
        admin = json.loads(out)
        assert cli('admin', '--dbname', 'shop') == (0, out)  # same password on a second call
        code, out = cli('pgbouncer')
        assert code == 0, out
        bouncer = json.loads(out)
        assert bouncer['running'] and bouncer['port'] != info['port']
        assert cli('pgbouncer')[1] == out
        pooled = dict(params, port=bouncer['port'], dbname='shop', **admin)
        with contextlib.closing(psycopg2.connect(sslmode='require', **pooled)) as conn, conn.cursor() as cur:
            cur.execute('SELECT current_user, inet_server_port()')
            assert cur.fetchone() == (admin['user'], info['port'])
        code, out = cli('status')
        assert code == 0 and json.loads(out)['pgbouncer']['running'], out
        assert cli('stop')[0] == 0
        assert cli('status')[0] == 3
        with pytest.raises(psycopg2.OperationalError):
            psycopg2.connect(connect_timeout=3, **pooled)
    finally:
        cli('destroy')
        pg.execute('SELECT 1')  # the fixture cluster is untouched
    assert cli('status')[0] == 3


def test_subscriber_of_tls_cluster(tls_cluster, subscriber):
    """The subscriber's own libpq connects with sslmode=require (the server user's HOME is its cluster dir)."""
    tls_cluster.execute('CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1); CREATE PUBLICATION pub FOR TABLE items')
    name = pgcluster.create_database(subscriber, 'db_tls_sub_%s' % uuid.uuid4().hex[:6])
    try:
        conninfo = ' '.join('%s=%s' % item for item in tls_cluster.conninfo().items()) + ' sslmode=require'
        subscriber.execute('CREATE TABLE items (id int PRIMARY KEY)', dbname=name)
        subscriber.execute("CREATE SUBSCRIPTION sub CONNECTION '%s' PUBLICATION pub" % conninfo, dbname=name)
        assert pgcluster.wait_for(lambda: subscriber.query('SELECT count(*) FROM items', dbname=name) == [(1,)])
        assert tls_cluster.query("SELECT bool_and(s.ssl) FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)") == [(True,)]
    finally:
        pgcluster.drop_database(subscriber, name)
