"""Google Cloud SQL, AlloyDB and Azure Flexible Server imitated with real parts: each provider's fingerprint settings
(set on the cluster), its admin role owning the tables, and a non-superuser admin with CREATEROLE (REPLICATION on 16
and later) that is a member of it; PgBouncer on Azure's pooler port 6432.

What stock PostgreSQL cannot imitate: these providers let their admins give REPLICATION on every major, stock 15 and
older only a superuser. The admin pre-check trusts the membership, so on 15 and older the server itself refuses the
CREATE ROLE ... REPLICATION: the run fails on that statement with the server's message, applies nothing, and a
REPLICATION role made beforehand (as the provider would let the admin) lets the same admin prepare the rest.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import pgcluster
from conftest import MAJORS
from playbook import run_playbook
from support import LogWindow, fresh_roles, login, snapshot

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'tools'))
import document_providers  # noqa: E402  (needs the sys.path entry above)

providers = document_providers.registry()

pytestmark = pytest.mark.usefixtures(fresh_roles.__name__, 'edge_majors_only')

PASSWORD = 'pw-not-secret'
# Each shape: the settings the provider's servers define, and its admin role.
SHAPES = dict(
    cloudsql=({'cloudsql.logical_decoding': 'on', 'cloudsql.iam_authentication': 'off'}, 'cloudsqlsuperuser'),
    alloydb=({'alloydb.logical_decoding': 'on', 'alloydb.enable_pglogical': 'on', 'alloydb.iam_authentication': 'off'},
             'alloydbsuperuser'),
    azure=({'azure.extensions': 'pgcrypto,uuid-ossp', 'azure.accepted_password_auth_method': 'md5,scram-sha-256'},
           'azure_pg_admin'),
)
# Logical decoding off: Cloud SQL and AlloyDB set wal_level from their flags; Azure has wal_level in Server parameters.
DECODING_OFF = dict(
    cloudsql={'cloudsql.logical_decoding': 'off', 'wal_level': 'replica'},
    alloydb={'alloydb.logical_decoding': 'off', 'alloydb.enable_pglogical': 'off', 'wal_level': 'replica'},
    azure={'azure.extensions': 'pgcrypto', 'wal_level': 'replica'},
)
AZURE_PGBOUNCER_PORT = 6432


@pytest.fixture(scope='module')
def shapes(pg):
    """One cluster per shape, of the major under test, started when a test first asks for it."""
    started = {}

    def shape(provider_id):
        if provider_id not in started:
            started[provider_id] = pgcluster.start_cluster(pg.major, settings=SHAPES[provider_id][0], name=provider_id)
        return started[provider_id]

    yield shape
    for cluster in started.values():
        cluster.destroy()


def provider_database(cluster, name, admin_role, owner_sql='CREATE TABLE orders (id int PRIMARY KEY, note text)'):
    """A database whose tables the provider's admin role owns, and dict(user, password) of an admin in that role."""
    pgcluster.drop_database(cluster, name)
    pgcluster.create_database(cluster, name)
    admin = pgcluster.create_managed_like_admin(cluster, name, name='%s_admin' % admin_role, owner_role=admin_role)
    cluster.execute(owner_sql, dbname=name)
    cluster.execute('ALTER TABLE orders OWNER TO "%s"' % admin_role, dbname=name)
    return admin


def drop_user(cluster, name='clickpipes_user'):
    for dbname in [row[0] for row in cluster.query("SELECT datname FROM pg_database WHERE datallowconn AND datname <> 'template1'")]:
        if cluster.query('SELECT 1 FROM pg_roles WHERE rolname = %s', [name]):
            cluster.execute('DROP OWNED BY "%s"' % name, dbname=dbname)
    cluster.execute('DROP ROLE IF EXISTS "%s"' % name)


def prepare(cluster, database, admin, check=False, port=None, **options):
    defaults = login(cluster, database, user=admin['user'], password=admin['password'])
    if port:
        defaults['group/pgcdc.clickpipes.clickpipes']['login_port'] = port
    task = dict(name='prepare', ignore_errors=True, **{'pgcdc.clickpipes.prepare_source': dict(dict(password=PASSWORD), **options)})
    run = run_playbook([task], module_defaults=defaults, check=check)
    assert PASSWORD not in run.stdout
    return run.result('prepare')


def by_id(result):
    return dict((item['id'], item) for item in result['findings'])


def nothing_written(cluster, database, window, before):
    assert window.write_statements() == [], 'the run wrote before refusing'
    assert snapshot(cluster, database) == before


@pytest.mark.parametrize('provider_id', list(SHAPES))
def test_auto_fingerprints_and_prepares_each_shape(pg, shapes, provider_id):
    cluster = shapes(provider_id)
    admin_role = SHAPES[provider_id][1]
    admin = provider_database(cluster, 'shop', admin_role)
    drop_user(cluster)
    provider = providers.get(provider_id)
    before, window = snapshot(cluster, 'shop'), LogWindow(cluster)
    result = prepare(cluster, 'shop', admin)
    assert result['provider'] == provider_id and result['clickpipes_connection']['source_type'] == provider.source_type
    assert by_id(result)['provider']['status'] == 'ok'
    notices = set(step['id'] for step in result['manual_steps'] if step['status'] == 'notice')
    assert notices == set(item['id'] for item in provider.notices)
    if pg.major < provider.min_major:
        # AlloyDB runs PostgreSQL 14 and later: refused before anything is written, with the version in the message.
        assert result['failed'] and result['blocked'] == ['server_version'], result
        assert 'from PostgreSQL 14' in by_id(result)['server_version']['message']
        nothing_written(cluster, 'shop', window, before)
        return
    if pg.major < 16:
        # Stock PostgreSQL: what the provider lets its admin do, the server refuses; nothing is applied.
        assert result['failed'] and result['blocked'] == [], result
        assert 'creating role clickpipes_user' in result['msg'] and 'superuser' in result['msg'], result['msg']
        assert 'Nothing was applied' in result['msg'] and result['changes'] == dict(user=[], grants=[], publication=[])
        assert snapshot(cluster, 'shop') == before
        assert any('CREATE ROLE "clickpipes_user"' in line for line in window.write_statements()), 'the server refused it'
        # As the provider lets its admin: the role with REPLICATION, made here by the superuser.
        cluster.execute("CREATE ROLE clickpipes_user LOGIN REPLICATION PASSWORD '%s'" % PASSWORD)
        result = prepare(cluster, 'shop', admin)
    assert not result.get('failed') and result['summary']['ready'], result
    assert by_id(result)['replication_connection']['status'] == 'ok'
    assert cluster.query("SELECT rolreplication FROM pg_roles WHERE rolname = 'clickpipes_user'") == [(True,)]
    again = prepare(cluster, 'shop', admin)
    assert not again.get('failed') and not again['changed'] and again['summary']['ready']


@pytest.mark.parametrize('provider_id', list(DECODING_OFF))
def test_logical_decoding_off_blocks_with_the_console_step(provider_id):
    provider = providers.get(provider_id)
    # Alike on every major: once, on the newest under test (15, always installed, when all are older than AlloyDB's 14).
    cluster = pgcluster.start_cluster(max(MAJORS + [15]), settings=DECODING_OFF[provider_id], name=provider_id + '_off')
    try:
        admin = provider_database(cluster, 'shop', provider.replication_admin_roles[0])
        before, window = snapshot(cluster, 'shop'), LogWindow(cluster)
        predicted = prepare(cluster, 'shop', admin, check=True)
        result = prepare(cluster, 'shop', admin)
        assert result['provider'] == provider_id and result['failed'] and result['blocked'] == ['wal_level'], result
        assert predicted['blocked'] == ['wal_level'], 'check mode predicts the refusal'
        wal = by_id(result)['wal_level']
        flags = ', '.join('%s = off' % name for name in provider.decoding_settings)
        assert wal['observed'] == ('replica (%s)' % flags if flags else 'replica')
        step, = wal['fix']['manual']
        assert (step['what'], step['where'], step['restart']) == (provider.setting_steps['wal_level']['what'], provider.parameters, True)
        assert all(name in step['what'] for name in provider.decoding_settings or ['wal_level']) and wal['fix']['sql'] == []
        assert step['what'] in result['msg']
        nothing_written(cluster, 'shop', window, before)
    finally:
        cluster.destroy()


@pytest.fixture
def azure_pgbouncer(pg, pgbouncer):
    """PgBouncer on 6432 in front of ``pg``: the session's when it got that port, else one of this test's once the port
    is free (another process on this machine may hold it for a while)."""
    if pgbouncer.port == AZURE_PGBOUNCER_PORT:
        yield pgbouncer
        return
    pgcluster.wait_for(lambda: pgcluster.port_is_free(AZURE_PGBOUNCER_PORT), timeout=120,
                       message='port %d stayed taken: this test needs it' % AZURE_PGBOUNCER_PORT)
    bouncer = pgcluster.start_pgbouncer(pg, AZURE_PGBOUNCER_PORT)
    try:
        assert bouncer.port == AZURE_PGBOUNCER_PORT, 'port %d was taken again' % AZURE_PGBOUNCER_PORT
        yield bouncer
    finally:
        bouncer.destroy()


@pytest.mark.parametrize('provider', ['auto', 'azure'])
def test_azure_builtin_pgbouncer_is_refused_before_writing(pg, database, azure_pgbouncer, provider):
    """Azure's built-in PgBouncer listens on 6432 of the server's own host name: real PgBouncer there, in front of an
    Azure-shaped database (its fingerprint setting and admin role)."""
    pgbouncer = azure_pgbouncer
    pg.execute('ALTER DATABASE "%s" SET azure.extensions = \'pgcrypto\'' % database)
    admin = pgcluster.create_managed_like_admin(pg, database, name='azure_admin', owner_role='azure_pg_admin')
    pg.execute('CREATE TABLE orders (id int PRIMARY KEY); ALTER TABLE orders OWNER TO azure_pg_admin', dbname=database)
    before, window = snapshot(pg, database), LogWindow(pg)
    result = prepare(pg, database, admin, port=pgbouncer.port, provider=provider)
    assert result['provider'] == 'azure' and result['failed'] and 'pooler' in result['blocked'], result
    pooler = by_id(result)['pooler']
    assert 'Azure\'s built-in PgBouncer' in pooler['message']
    assert 'port 5432' in pooler['fix']['manual'][0]['what']
    nothing_written(pg, database, window, before)
