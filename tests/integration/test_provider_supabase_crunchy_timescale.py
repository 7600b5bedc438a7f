"""Supabase, Crunchy Bridge and Timescale, imitated with real parts.

- Supabase: a TLS cluster with the fingerprint setting supautils.privileged_extensions and Supabase's API roles, a table
  under row-level security; the Supavisor pooler as real PgBouncer on 6543 and as a *.pooler.supabase.com host name
  (libpq hostaddr to 127.0.0.1).
- Crunchy Bridge: a TLS cluster reached as p.<id>.db.postgresbridge.com (hostaddr); it has no setting to fingerprint.
- Timescale: tests/harness/extensions/timescaledb, an imitation of the extension (TimescaleDB itself cannot be
  installed here): its catalog, and chunk tables in _timescaledb_internal that inherit from the hypertable and are
  created as rows arrive. Timescale Cloud as a *.tsdb.cloud.timescale.com host name with wal_level = replica.

Only the Timescale cases depend on the major (FOR TABLES IN SCHEMA exists from 15): they run on every major of
PGCDC_MAJORS, the others once, on the newest.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import yaml

from conftest import MAJORS
from playbook import run_playbook, run_playbook_file
from support import snapshot

import pgcluster

NEWEST = max(MAJORS)

ENGINE = 'pgcdc.clickpipes.source : Check the source, create what it lacks (user, grants, publication), check again'

SUPABASE_SETTINGS = {'supautils.privileged_extensions': 'pg_stat_statements,pgcrypto,vector'}
SUPABASE_DIRECT = 'db.abcdefghijklmnop.supabase.co'
SUPAVISOR_HOST = 'aws-0-eu-west-1.pooler.supabase.com'
CRUNCHY_HOST = 'p.vhbykmxaknfa5kbqpzbpiyagqa.db.postgresbridge.com'
TIMESCALE_CLOUD_HOST = 'x1y2z3abcd.q5r6s7t8u9.tsdb.cloud.timescale.com'
PASSWORD = 'cp-secret-Supa'

# Supabase's API roles and a table under row-level security, as Supabase projects have them.
SUPABASE_TABLES = """
DO $$ BEGIN CREATE ROLE anon NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
DO $$ BEGIN CREATE ROLE authenticated NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
CREATE TABLE public.profiles (id int PRIMARY KEY, owner text NOT NULL, bio text);
ALTER TABLE public.profiles ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON public.profiles FOR SELECT TO authenticated USING (owner = current_user);
INSERT INTO public.profiles SELECT g, 'user' || g, 'bio ' || g FROM generate_series(1, 20) g;
"""
PLAIN_TABLES = """
CREATE TABLE public.orders (id int PRIMARY KEY, item text);
INSERT INTO public.orders SELECT g, 'item ' || g FROM generate_series(1, 10) g;
"""
HYPERTABLE = """
CREATE EXTENSION timescaledb;
CREATE TABLE public.metrics (ts timestamptz NOT NULL, device int NOT NULL, value float8, PRIMARY KEY (ts, device));
SELECT create_hypertable('public.metrics', 'ts');
INSERT INTO public.metrics VALUES ('2026-01-01 10:00+00', 1, 1.5), ('2026-01-02 10:00+00', 1, 2.5);
"""
CHUNKS = ("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
          "WHERE n.nspname = '_timescaledb_internal' AND c.relkind = 'r' ORDER BY 1")


def role_vars(cluster, database, reports, **extra):
    variables = dict(clickpipes_login_host=cluster.host, clickpipes_login_port=cluster.port,
                     clickpipes_login_user=cluster.superuser, clickpipes_login_password=cluster.password,
                     clickpipes_login_db=database, clickpipes_password=PASSWORD, clickpipes_report_dir=str(reports))
    variables.update(extra)
    return variables


def through_hostaddr(host):
    """A provider-shaped host name that reaches the loopback server: libpq connects to hostaddr, TLS checks the name."""
    return dict(clickpipes_login_host=host, clickpipes_connect_params=dict(hostaddr='127.0.0.1'))


def run_role(role, variables):
    return run_playbook([dict(name='Prepare', vars=variables, **{'ansible.builtin.include_role': dict(name='pgcdc.clickpipes.%s' % role)})])


def report(reports, host='localhost'):
    return json.loads((reports / ('%s.json' % host)).read_text())


def finding(document, check_id):
    return next(item for item in document['findings'] if item['id'] == check_id)


def fresh_database(cluster, name):
    pgcluster.drop_database(cluster, name)
    return pgcluster.create_database(cluster, name)


def shape(cluster):
    """Yield a provider-shaped cluster kept for the module; after each test its databases and the replication user go."""
    yield cluster
    cluster.destroy()


def clean(cluster):
    for (name,) in cluster.query("SELECT datname FROM pg_database WHERE NOT datistemplate AND datname <> 'postgres'"):
        pgcluster.drop_database(cluster, name)
    cluster.execute('DROP ROLE IF EXISTS clickpipes_user')


@pytest.fixture(scope='module')
def supabase_cluster():
    yield from shape(pgcluster.start_cluster(NEWEST, settings=SUPABASE_SETTINGS, name='supabase%d' % NEWEST, tls=True))


@pytest.fixture(scope='module')
def crunchy_cluster():
    yield from shape(pgcluster.start_cluster(NEWEST, name='crunchy%d' % NEWEST, tls=True))


@pytest.fixture(scope='module')
def replica_cluster():
    """wal_level = replica: Crunchy Bridge with logical replication turned off, Timescale Cloud."""
    pgcluster.install_extension(NEWEST, 'timescaledb')
    yield from shape(pgcluster.start_cluster(NEWEST, settings={'wal_level': 'replica'}, name='replica%d' % NEWEST, tls=True))


@pytest.fixture(scope='module')
def newest_subscriber():
    cluster = pgcluster.create_subscriber(NEWEST)
    yield cluster
    cluster.destroy()


@pytest.fixture(scope='module')
def timescale_cluster(pg):
    pgcluster.install_extension(pg.major, 'timescaledb')
    yield from shape(pgcluster.start_cluster(pg.major, name='timescale%d' % pg.major, tls=True))


@pytest.fixture
def supabase(supabase_cluster):
    yield supabase_cluster
    clean(supabase_cluster)


@pytest.fixture
def timescale(timescale_cluster):
    yield timescale_cluster
    clean(timescale_cluster)


@pytest.fixture
def crunchy(crunchy_cluster):
    yield crunchy_cluster
    clean(crunchy_cluster)


@pytest.fixture
def replica(replica_cluster):
    yield replica_cluster
    clean(replica_cluster)


def subscribe_and_wait(source, subscriber, database, connection, table, count, target_sql):
    """CREATE SUBSCRIPTION with the connection details the run reported; wait for ``count`` rows of ``table``."""
    pgcluster.create_database(subscriber, database)
    try:
        subscriber.execute(target_sql, dbname=database)
        subscriber.execute(
            "CREATE SUBSCRIPTION sub CONNECTION 'host=%s hostaddr=127.0.0.1 port=%d dbname=%s user=%s password=%s sslmode=require' "
            "PUBLICATION %s WITH (slot_name = 'sub_%s')"
            % (connection['host'], connection['port'], connection['database'], connection['user'], PASSWORD,
               connection['publication'], database),
            dbname=database)
        try:
            pgcluster.wait_for(lambda: subscriber.query('SELECT count(*) FROM %s' % table, dbname=database) == [(count,)], timeout=60)
        finally:
            subscriber.execute('DROP SUBSCRIPTION sub', dbname=database)
    finally:
        pgcluster.drop_database(subscriber, database)


# Supabase -------------------------------------------------------------------------------------------------------------

def test_supabase_role_gives_bypassrls_by_default_so_rows_under_rls_reach_a_subscriber(supabase, newest_subscriber, tmp_path):
    database = fresh_database(supabase, 'supa_rls')
    supabase.execute(SUPABASE_TABLES, dbname=database)
    run = run_role('supabase', role_vars(supabase, database, tmp_path, **through_hostaddr(SUPABASE_DIRECT)))
    assert run.rc == 0, run
    assert supabase.query("SELECT rolbypassrls, rolreplication FROM pg_roles WHERE rolname = 'clickpipes_user'") == [(True, True)]
    document = report(tmp_path)
    assert (document['provider'], document['connection']['source_type']) == ('supabase', 'supabase')
    assert finding(document, 'row_level_security')['status'] == 'ok'
    assert 'supabase_ipv6' in [notice.get('id') for notice in document['notices']]
    assert 'IPv6' in run.stderr  # the warnings
    subscribe_and_wait(supabase, newest_subscriber, database, document['connection'], 'public.profiles', 20,
                       'CREATE TABLE public.profiles (id int PRIMARY KEY, owner text NOT NULL, bio text)')


def test_supabase_role_leaves_bypassrls_alone_when_told_and_rls_then_stops_the_run(supabase, tmp_path):
    database = fresh_database(supabase, 'supa_norls')
    supabase.execute(SUPABASE_TABLES, dbname=database)
    run = run_role('supabase', role_vars(supabase, database, tmp_path, clickpipes_bypass_rls=False, clickpipes_fail_on='error'))
    assert run.rc != 0
    assert finding(report(tmp_path), 'row_level_security')['status'] == 'error'
    assert supabase.query("SELECT rolbypassrls FROM pg_roles WHERE rolname = 'clickpipes_user'") in ([], [(False,)])


@pytest.mark.parametrize('pooler', ['pgbouncer_6543', 'supavisor_host'])
def test_supavisor_is_refused_before_anything_is_written_with_the_direct_host_to_use(supabase, tmp_path, pooler):
    database = fresh_database(supabase, 'supa_pooler')
    supabase.execute(PLAIN_TABLES, dbname=database)
    variables = role_vars(supabase, database, tmp_path)
    bouncer = None
    if pooler == 'pgbouncer_6543':
        if not pgcluster.port_is_free(6543):
            pytest.skip('port 6543 is taken: Supavisor\'s port cannot be imitated now')
        bouncer = pgcluster.start_pgbouncer(supabase, port=6543)
        assert bouncer.port == 6543
        # PgBouncer here speaks no TLS; the role's TLS default would refuse it before the pooler check.
        variables.update(clickpipes_login_port=bouncer.port, clickpipes_ssl_mode='prefer')
    else:
        variables.update(through_hostaddr(SUPAVISOR_HOST))
    try:
        before = snapshot(supabase, database)
        run = run_role('supabase', variables)
        assert run.rc != 0
        assert snapshot(supabase, database) == before
        pooler_finding = finding(report(tmp_path), 'pooler')
        assert pooler_finding['status'] == 'error'
        assert ('6543' if bouncer else 'Supavisor pooler host') in pooler_finding['message']
        assert 'db.<project_ref>.supabase.co' in pooler_finding['fix']['manual'][0]['what']
        assert 'db.<project_ref>.supabase.co' in run.stdout
    finally:
        if bouncer:
            bouncer.destroy()


def test_supabase_wal_retention_step_is_the_cli_and_says_it_restarts(supabase, tmp_path):
    if supabase.major < 13:
        pytest.skip('max_slot_wal_keep_size exists from PostgreSQL 13')
    database = fresh_database(supabase, 'supa_wal')
    supabase.execute(PLAIN_TABLES, dbname=database)
    run = run_role('supabase', role_vars(supabase, database, tmp_path, clickpipes_check_only=True, clickpipes_fail_on='never'))
    assert run.rc == 0, run
    step = finding(report(tmp_path), 'max_slot_wal_keep_size')['fix']['manual'][0]
    assert 'supabase --experimental postgres-config update' in step['what'] and 'max_slot_wal_keep_size=' in step['what']
    assert step['restart'] is True and 'restarts the database' in step['caution']


# Crunchy Bridge -------------------------------------------------------------------------------------------------------

def test_crunchy_bridge_role_prepares_and_a_subscriber_receives_data(crunchy, newest_subscriber, tmp_path):
    database = fresh_database(crunchy, 'crunchy')
    crunchy.execute(PLAIN_TABLES, dbname=database)
    run = run_role('crunchybridge', role_vars(crunchy, database, tmp_path, **through_hostaddr(CRUNCHY_HOST)))
    assert run.rc == 0, run
    document = report(tmp_path)
    assert (document['provider'], document['connection']['source_type']) == ('crunchybridge', 'crunchybridge')
    assert finding(document, 'provider')['observed'] == 'crunchybridge'
    assert 'crunchybridge_static_ips' in [notice.get('id') for notice in document['notices']]
    again = run_role('crunchybridge', role_vars(crunchy, database, tmp_path, **through_hostaddr(CRUNCHY_HOST)))
    assert again.rc == 0 and not again.result(ENGINE)['changed'], again
    subscribe_and_wait(crunchy, newest_subscriber, database, document['connection'], 'public.orders', 10,
                       'CREATE TABLE public.orders (id int PRIMARY KEY, item text)')


def test_crunchy_bridge_without_logical_decoding_says_it_is_on_by_default_and_writes_nothing(replica, tmp_path):
    database = fresh_database(replica, 'crunchy')
    replica.execute(PLAIN_TABLES, dbname=database)
    before = snapshot(replica, database)
    run = run_role('crunchybridge', role_vars(replica, database, tmp_path, **through_hostaddr(CRUNCHY_HOST)))
    assert run.rc != 0
    assert snapshot(replica, database) == before
    step = finding(report(tmp_path), 'wal_level')['fix']['manual'][0]
    assert 'on by default' in step['what'] and step['where'].startswith('Crunchy Bridge dashboard')


# Timescale ------------------------------------------------------------------------------------------------------------

def stream(cluster, database, slot, tmp_path, action):
    """Run ``action`` while a pgoutput slot of the replication user exists; the bytes streamed for the publication."""
    env = dict(os.environ, PGPASSWORD=PASSWORD, PGSSLMODE='require')
    base = ['/usr/lib/postgresql/15/bin/pg_recvlogical', '-h', cluster.host, '-p', str(cluster.port), '-U', 'clickpipes_user',
            '-d', database, '-S', slot]
    subprocess.run(base + ['--create-slot', '-P', 'pgoutput'], env=env, check=True, capture_output=True, timeout=60)
    try:
        action()
        end = cluster.query('SELECT pg_current_wal_lsn()::text', dbname=database)[0][0]
        output = tmp_path / ('%s.bin' % slot)
        subprocess.run(base + ['--start', '--endpos', end, '-o', 'proto_version=1', '-o', 'publication_names=clickpipes_publication',
                               '-f', str(output), '--no-loop'], env=env, check=True, capture_output=True, timeout=60)
        return output.read_bytes()
    finally:
        cluster.execute("SELECT pg_drop_replication_slot('%s')" % slot, dbname=database)


def test_timescale_publication_covers_the_chunk_schema_and_streams_chunks_created_later(timescale, tmp_path):
    database = fresh_database(timescale, 'ts_chunks')
    timescale.execute(HYPERTABLE, dbname=database)
    variables = role_vars(timescale, database, tmp_path)
    run = run_role('timescale', variables)
    if timescale.major < 15:
        # No FOR TABLES IN SCHEMA: the run stops before writing and says what follows chunks there.
        assert run.rc != 0
        chunks = finding(report(tmp_path), 'hypertable_chunks')
        assert chunks['status'] == 'error' and 'all_tables' in chunks['fix']['manual'][0]['what']
        assert timescale.query("SELECT count(*) FROM pg_publication", dbname=database) == [(0,)]
        return
    assert run.rc == 0, run
    document = report(tmp_path)
    assert (document['provider'], document['connection']['source_type']) == ('timescale', 'tigerdata')
    assert finding(document, 'hypertable_chunks')['status'] == 'ok'
    assert timescale.query("SELECT n.nspname FROM pg_publication_namespace pn JOIN pg_namespace n ON n.oid = pn.pnnspid",
                           dbname=database) == [('_timescaledb_internal',)]
    again = run_role('timescale', variables)
    assert again.rc == 0 and not again.result(ENGINE)['changed'], again

    def new_day():
        timescale.execute("INSERT INTO public.metrics VALUES ('2026-03-01 10:00+00', 7, 42.0)", dbname=database)
    data = stream(timescale, database, 'ts_later', tmp_path, new_day)
    chunks = [name for (name,) in timescale.query(CHUNKS, dbname=database)]
    assert len(chunks) == 3
    assert chunks[-1].encode() in data, 'the chunk created after the run was not streamed'


def test_timescale_chunks_need_a_superuser_admin_and_nothing_is_applied_without(timescale, tmp_path):
    if timescale.major < 15:
        pytest.skip('before PostgreSQL 15 no publication follows chunks by schema (the test above covers the refusal)')
    database = fresh_database(timescale, 'ts_managed')
    timescale.execute(HYPERTABLE, dbname=database)
    admin = pgcluster.create_managed_like_admin(timescale, database, name='tsdbadmin')
    timescale.execute('ALTER TABLE public.metrics OWNER TO app', dbname=database)
    if timescale.major < 16:
        timescale.execute("CREATE ROLE clickpipes_user LOGIN REPLICATION PASSWORD '%s'" % PASSWORD)
    before = snapshot(timescale, database)
    run = run_role('timescale', role_vars(timescale, database, tmp_path, clickpipes_login_user=admin['user'],
                                          clickpipes_login_password=admin['password']))
    assert run.rc != 0
    assert 'only publishing those schemas as a whole (TABLES IN SCHEMA) follows them, and that needs a superuser' in run.stdout
    assert 'Nothing was applied' in run.stdout
    assert snapshot(timescale, database) == before


def test_timescale_all_tables_follows_chunks_before_15(timescale, tmp_path):
    database = fresh_database(timescale, 'ts_all')
    timescale.execute(HYPERTABLE, dbname=database)
    run = run_role('timescale', role_vars(timescale, database, tmp_path, clickpipes_publication_mode='all_tables'))
    assert run.rc == 0, run
    assert finding(report(tmp_path), 'hypertable_chunks')['status'] == 'ok'


def test_timescale_cloud_must_be_snapshot_only_and_nothing_is_written(replica, tmp_path):
    database = fresh_database(replica, 'tsdb')
    replica.execute(HYPERTABLE, dbname=database)
    before = snapshot(replica, database)
    run = run_role('timescale', role_vars(replica, database, tmp_path, **through_hostaddr(TIMESCALE_CLOUD_HOST)))
    assert run.rc != 0
    assert snapshot(replica, database) == before
    document = report(tmp_path)
    wal_level = finding(document, 'wal_level')
    assert wal_level['status'] == 'error' and 'Initial load only' in wal_level['message']
    assert any('Initial load only' in notice['what'] for notice in document['notices'])
    assert 'Initial load only' in run.stdout
    assert 'Initial load only' in (tmp_path / 'localhost.md').read_text()


# auto -----------------------------------------------------------------------------------------------------------------

def test_auto_fingerprints_each_shape_in_one_prepare_run(supabase, crunchy, replica, tmp_path):
    hosts = {}
    for host, cluster, extra, tables in (('supa', supabase, through_hostaddr(SUPABASE_DIRECT), PLAIN_TABLES),
                                         ('crunchy', crunchy, through_hostaddr(CRUNCHY_HOST), PLAIN_TABLES),
                                         ('tsdb', replica, {}, HYPERTABLE)):
        database = fresh_database(cluster, 'auto_%s' % host)
        cluster.execute(tables, dbname=database)
        hosts[host] = dict(role_vars(cluster, database, tmp_path, clickpipes_ssl_mode='require', clickpipes_check_only=True,
                                     clickpipes_fail_on='never'), **extra)
    inventory = tmp_path / 'inventory.yml'
    inventory.write_text(yaml.safe_dump(dict(clickpipes_sources=dict(hosts=hosts))))
    run = run_playbook_file('pgcdc.clickpipes.prepare', inventory=str(inventory))
    assert run.rc == 0, run
    found = dict((host, (report(tmp_path, host)['provider'], report(tmp_path, host)['connection']['source_type'])) for host in hosts)
    assert found == dict(supa=('supabase', 'supabase'), crunchy=('crunchybridge', 'crunchybridge'), tsdb=('timescale', 'tigerdata'))
