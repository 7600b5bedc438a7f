"""Amazon RDS and Aurora, imitated with real parts (tests/harness/rds_shape.py): replication through GRANT rds_replication,
never ALTER ROLE ... REPLICATION, proven by a real replication login and a subscriber; the checks and console steps; the
endpoints refused before anything is written."""

from __future__ import annotations

import contextlib
import copy
import json
import re
import uuid

import psycopg2
import psycopg2.extras
import pytest

import pgcluster
import rds_shape
from playbook import run_playbook, run_playbook_file
from support import HOSTILE_PASSWORD, LogWindow, login, snapshot
from test_playbooks import source_vars, write_inventory

PASSWORD = 'pw-rds-not-secret'
USER = 'clickpipes_user'
SOURCE_TYPES = dict(rds='rdspostgres', aurora='aurorapostgres')
GRANT = 'GRANT "rds_replication" TO "%s"' % USER


pytestmark = pytest.mark.usefixtures('edge_majors_only')


@pytest.fixture(scope='module')
def rds(pg):
    """An RDS-shaped cluster of the major of ``pg``, with the rds_replication stand-in running."""
    cluster = pgcluster.start_cluster(pg.major, settings=rds_shape.settings(), name='rds%d' % pg.major)
    with rds_shape.ControlPlane(cluster):
        yield cluster
    cluster.destroy()


class Shape:
    """One RDS- or Aurora-shaped database of the rds cluster, with its master user (not a superuser)."""

    def __init__(self, cluster, provider):
        self.cluster = cluster
        self.provider = provider
        self.database = pgcluster.create_database(cluster, 'db_%s_%s' % (provider, uuid.uuid4().hex[:8]))
        self.admin = rds_shape.make_admin_roles(cluster, self.database, aurora=provider == 'aurora')
        cluster.execute('CREATE TABLE orders (id int PRIMARY KEY, note text); ALTER TABLE orders OWNER TO app;'
                        "INSERT INTO orders SELECT i, 'row ' || i FROM generate_series(1, 20) AS i", dbname=self.database)

    def defaults(self, **connection):
        defaults = login(self.cluster, self.database, self.admin['user'], self.admin['password'])
        defaults['group/pgcdc.clickpipes.clickpipes'].update(connection)
        return defaults

    def run(self, module='prepare_source', check=False, diff=False, connection=None, **options):
        options.setdefault('provider', self.provider)
        if module in ('prepare_source', 'source_check'):
            options.setdefault('password', PASSWORD)
        task = dict(name='step', ignore_errors=True, **{'pgcdc.clickpipes.' + module: options})
        return run_playbook([task], module_defaults=self.defaults(**(connection or {})), check=check, diff=diff).result('step')

    def admin_statements(self, window):
        return [line for line in window.write_statements() if '%s@' % self.admin['user'] in line]

    def drop(self):
        pgcluster.drop_database(self.cluster, self.database)
        self.cluster.execute('DROP ROLE IF EXISTS %s' % USER)


@pytest.fixture(params=['rds', 'aurora'])
def shape(rds, request):
    made = Shape(rds, request.param)
    yield made
    made.drop()


@pytest.fixture
def rds_only(rds):
    made = Shape(rds, 'rds')
    yield made
    made.drop()


def by_id(result):
    return dict((item['id'], item) for item in result['findings'])


def subscribe_and_receive(source, subscriber, connection):
    """A subscriber logs in as the replication user with the reported connection details and receives the rows."""
    pgcluster.create_database(subscriber, source.database)
    try:
        subscriber.execute('CREATE TABLE orders (id int PRIMARY KEY, note text)', dbname=source.database)
        conninfo = "host=%s hostaddr=127.0.0.1 port=%d dbname=%s user=%s password=%s" % (
            connection['host'], connection['port'], connection['database'], connection['user'], PASSWORD)
        subscriber.execute("CREATE SUBSCRIPTION %s CONNECTION '%s' PUBLICATION %s" % (
            source.database, conninfo, connection['publication']), dbname=source.database)
        pgcluster.wait_for(lambda: subscriber.query('SELECT count(*) FROM orders', dbname=source.database) == [(20,)], timeout=60)
        source.cluster.execute("INSERT INTO orders VALUES (21, 'new'); UPDATE orders SET note = 'changed' WHERE id = 1;"
                               'DELETE FROM orders WHERE id = 2', dbname=source.database)
        query = "SELECT count(*), count(*) FILTER (WHERE note = 'changed'), count(*) FILTER (WHERE id = 2) FROM orders"
        pgcluster.wait_for(lambda: subscriber.query(query, dbname=source.database) == [(20, 1, 0)], timeout=60)
    finally:
        pgcluster.drop_database(subscriber, source.database)


def test_prepare_grants_rds_replication_and_a_subscriber_receives_data(shape, subscriber):
    before = snapshot(shape.cluster, shape.database)
    predicted = shape.run(check=True)
    assert not predicted.get('failed'), predicted['msg']
    assert snapshot(shape.cluster, shape.database) == before, 'check mode changed the catalog'
    assert predicted['changes']['user'] == ["CREATE ROLE \"%s\" WITH LOGIN PASSWORD '********'" % USER, GRANT]

    window = LogWindow(shape.cluster)
    applied = shape.run()
    assert not applied.get('failed'), applied['msg']
    assert applied['changes']['user'] == predicted['changes']['user']
    # The master user never asks for the attribute (only the control plane's superuser gives it).
    assert not [line for line in shape.admin_statements(window) if re.search(r'\bREPLICATION\b', line)], window.text()
    findings = by_id(applied)
    assert findings['user_replication']['status'] == 'ok'
    assert findings['user_replication']['observed'] == 'member of rds_replication'
    assert findings['replication_connection']['status'] == 'ok', findings['replication_connection']
    assert applied['summary']['ready'] is True and applied['provider'] == shape.provider
    assert applied['clickpipes_connection']['source_type'] == SOURCE_TYPES[shape.provider]
    notices = [step['id'] for step in applied['manual_steps'] if step['status'] == 'notice']
    assert notices == ['%s_static_ips' % shape.provider, '%s_iam_auth' % shape.provider]

    again = shape.run(provider='auto')
    assert not again.get('failed') and again['changed'] is False and again['provider'] == shape.provider, again
    subscribe_and_receive(shape, subscriber, applied['clickpipes_connection'])


def test_the_module_alone_fingerprints_the_grant_path(shape):
    predicted = shape.run('replication_user', check=True, name=USER, password=PASSWORD, provider='auto')
    assert predicted['queries'][1:] == [GRANT] and predicted['role']['replication_role'] == dict(name='rds_replication', member=True)
    applied = shape.run('replication_user', name=USER, password=PASSWORD, provider='auto', diff=True)
    assert applied['changed'] and applied['queries'] == predicted['queries'], applied
    assert applied['diff']['after']['replication_role'] == dict(name='rds_replication', member=True)
    assert shape.cluster.query("SELECT pg_has_role(%s, 'rds_replication', 'MEMBER')", [USER]) == [(True,)]
    again = shape.run('replication_user', name=USER, password=PASSWORD, provider='auto')
    assert again['changed'] is False and again['queries'] == []


def test_an_existing_user_outside_rds_replication_gets_the_grant_only(rds_only):
    rds_only.cluster.execute("CREATE ROLE %s LOGIN PASSWORD '%s'" % (USER, PASSWORD))
    checked = rds_only.run('source_check', fail_on='never')
    replication = by_id(checked)['user_replication']
    assert replication['status'] == 'error' and replication['observed'] == 'not a member of rds_replication'
    assert replication['fix']['sql'] == [GRANT] and replication['fix']['module'] == 'replication_user'
    login_probe = by_id(checked)['replication_connection']
    assert login_probe['status'] == 'error' and GRANT in login_probe['fix']['manual'][0]['what'], login_probe
    applied = rds_only.run()
    assert not applied.get('failed'), applied['msg']
    assert applied['changes']['user'] == [GRANT]
    assert by_id(applied)['replication_connection']['status'] == 'ok'


def test_a_missing_user_is_fixed_by_the_grant(rds_only):
    missing = by_id(rds_only.run('source_check', fail_on='never'))['user_exists']
    assert missing['fix']['sql'] == ["CREATE ROLE \"%s\" WITH LOGIN PASSWORD '<password>'" % USER, GRANT]


def test_an_admin_that_may_not_grant_rds_replication_is_refused_before_writing(rds_only):
    """A CREATEROLE admin outside rds_superuser: PostgreSQL 16 and later want ADMIN OPTION on rds_replication for the
    grant (refused before anything is sent); up to 15 CREATEROLE is enough."""
    outsider = pgcluster.create_foreign_admin(rds_only.cluster, rds_only.database, name='rds_outsider')
    rds_only.cluster.execute('ALTER ROLE rds_outsider NOREPLICATION; GRANT app TO rds_outsider')
    rds_only.admin = outsider
    window = LogWindow(rds_only.cluster)
    result = rds_only.run()
    if rds_only.cluster.major >= 16:
        assert result['failed'] and 'granting rds_replication needs ADMIN OPTION on it' in result['msg'], result['msg']
        assert 'rds_superuser' in result['msg'] and 'Nothing was applied' in result['msg']
        assert rds_only.admin_statements(window) == []
    else:
        assert not result.get('failed'), result['msg']
        assert GRANT in result['changes']['user']


def test_rds_on_a_source_without_rds_replication_is_refused(pg):
    database = pgcluster.create_database(pg, 'db_not_rds_%s' % uuid.uuid4().hex[:8])
    try:
        task = dict(name='user', ignore_errors=True, **{'pgcdc.clickpipes.replication_user': dict(
            name='cp_not_rds', password=PASSWORD, provider='rds')})
        result = run_playbook([task], module_defaults=login(pg, database)).result('user')
        assert result['failed'] and 'Role rds_replication does not exist' in result['msg'], result
        assert pg.query("SELECT count(*) FROM pg_roles WHERE rolname = 'cp_not_rds'") == [(0,)]
    finally:
        pgcluster.drop_database(pg, database)


def test_prepare_taking_a_plain_server_for_rds_is_blocked_before_writing(pg):
    """The preflight sees that rds_replication is missing: the provider check blocks the run, nothing is written."""
    database = pgcluster.create_database(pg, 'db_not_rds_%s' % uuid.uuid4().hex[:8])
    try:
        pg.execute('CREATE TABLE orders (id int PRIMARY KEY)', dbname=database)
        task = dict(name='prepare', ignore_errors=True, **{'pgcdc.clickpipes.prepare_source': dict(
            user='cp_not_rds', password=PASSWORD, provider='rds')})
        result = run_playbook([task], module_defaults=login(pg, database)).result('prepare')
        assert result['failed'] and 'provider' in result['blocked'], result
        assert 'rds_replication' in result['msg'] and result['modules_run'] == [], result
        assert pg.query("SELECT count(*) FROM pg_roles WHERE rolname = 'cp_not_rds'") == [(0,)]
        assert pg.query('SELECT count(*) FROM pg_publication', dbname=database) == [(0,)]
    finally:
        pgcluster.drop_database(pg, database)


@pytest.mark.parametrize('provider, group', [('rds', 'DB parameter group'), ('aurora', 'DB cluster parameter group')])
def test_logical_replication_off_gives_the_parameter_group_step(pg, provider, group):
    cluster = pgcluster.start_cluster(pg.major, settings=rds_shape.settings(logical_replication=False), name='rds_off')
    try:
        source = Shape(cluster, provider)
        result = source.run(fail_on='never')
        assert result['failed'] and 'wal_level' in result['blocked'], result['msg']
        wal = by_id(result)['wal_level']
        assert wal['observed'] == 'replica (rds.logical_replication = off)' and wal['fix']['restart'] is True
        step = wal['fix']['manual'][0]
        assert step['what'].startswith('Set rds.logical_replication to 1') and 'reboot' in step['what']
        assert group in step['where'] and wal['fix']['sql'] == []
        assert result['changes']['user'] == []
    finally:
        cluster.destroy()


ENDPOINTS = [
    ('rds', 'shop.proxy-abc123.eu-west-1.rds.amazonaws.com', 'RDS Proxy'),
    ('aurora', 'shop.cluster-ro-abc123.eu-west-1.rds.amazonaws.com', 'Aurora reader endpoint'),
]


@pytest.mark.parametrize('provider, host, what', ENDPOINTS, ids=['rds_proxy', 'aurora_reader'])
def test_proxy_and_reader_endpoints_are_refused_before_writing(rds, provider, host, what):
    source = Shape(rds, provider)
    try:
        before = snapshot(rds, source.database)
        window = LogWindow(rds)
        for provider_option in (provider, 'auto'):
            result = source.run(provider=provider_option, connection=dict(login_host=host, connect_params=dict(hostaddr='127.0.0.1')))
            assert result['failed'] and 'pooler' in result['blocked'], result['msg']
            assert what in by_id(result)['pooler']['message'] and 'nothing was changed' in result['msg']
            assert result['provider'] == provider
        assert source.admin_statements(window) == [] and snapshot(rds, source.database) == before
    finally:
        source.drop()


def test_a_replica_is_refused_as_the_primary(rds):
    source = Shape(rds, 'aurora')
    standby = pgcluster.start_standby(rds, name='aurora_replica')
    try:
        pgcluster.wait_for(lambda: standby.query('SELECT 1 FROM pg_database WHERE datname = %s', [source.database]), timeout=30)
        replica = copy.copy(source)
        replica.cluster = standby
        result = replica.run(provider='auto')
        assert result['failed'] and 'primary' in result['blocked'] and result['provider'] == 'aurora', result['msg']
        assert 'cluster (writer) endpoint' in by_id(result)['primary']['fix']['manual'][0]['what']
    finally:
        standby.destroy()
        source.drop()


def test_the_prepare_playbook_with_auto_takes_the_grant_path(rds, tmp_path):
    source = Shape(rds, 'aurora')
    try:
        reports = tmp_path / 'reports'
        variables = source_vars(rds, source.database, reports, clickpipes_login_user=source.admin['user'],
                                clickpipes_login_password=source.admin['password'], clickpipes_provider='auto')
        run = run_playbook_file('pgcdc.clickpipes.prepare', inventory=write_inventory(tmp_path / 'inventory.yml', {'aurora_shop': variables}))
        assert run.rc == 0, run.stdout + run.stderr
        report = json.loads((reports / 'aurora_shop.json').read_text())
        assert report['ready'] is True and report['provider'] == 'aurora', report
        assert report['connection']['source_type'] == 'aurorapostgres'
        assert report['changes']['user'][1:] == [GRANT]
        assert HOSTILE_PASSWORD not in run.stdout + run.stderr + (reports / 'aurora_shop.json').read_text()
    finally:
        source.drop()


def replication_login(cluster, database):
    """IDENTIFY_SYSTEM over a replication connection as the user: None, or why it failed."""
    try:
        conn = psycopg2.connect(connection_factory=psycopg2.extras.LogicalReplicationConnection,
                                **cluster.conninfo(USER, PASSWORD, database))
    except psycopg2.Error as exc:
        return str(exc)
    try:
        conn.cursor().execute('IDENTIFY_SYSTEM')
        return None
    finally:
        conn.close()


def test_the_control_plane_stand_in_follows_a_grant_made_alone(rds_only):
    """The polling half of the stand-in: a bare GRANT (no DDL an event trigger sees) and a REVOKE, by the master user."""
    cluster, admin = rds_only.cluster, rds_only.admin
    cluster.execute("CREATE ROLE %s LOGIN PASSWORD '%s'" % (USER, PASSWORD))
    assert 'replication' in replication_login(cluster, rds_only.database).lower()
    with contextlib.closing(cluster.connect(user=admin['user'], password=admin['password'])) as conn, conn.cursor() as cursor:
        cursor.execute('GRANT rds_replication TO %s' % USER)
        pgcluster.wait_for(lambda: replication_login(cluster, rds_only.database) is None, timeout=10)
        cursor.execute('REVOKE rds_replication FROM %s' % USER)
        pgcluster.wait_for(lambda: replication_login(cluster, rds_only.database) is not None, timeout=10)
