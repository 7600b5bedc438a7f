"""Self-test of the test harness: real clusters, standby, PgBouncer and helper roles."""

from __future__ import annotations

import contextlib
import os
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
