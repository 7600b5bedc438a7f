"""Managed-provider admins (non-superuser), admins that do not own the tables, and all-or-nothing transactions."""

from __future__ import annotations

import psycopg2
import psycopg2.extras
import pytest

from playbook import run_playbook
from support import fresh_roles, login, prepare_tasks, snapshot

OWNED_TABLES = """
CREATE SCHEMA shop AUTHORIZATION app;
CREATE TABLE shop.orders (id int PRIMARY KEY, note text);
CREATE TABLE shop.customers (id int PRIMARY KEY);
ALTER TABLE shop.orders OWNER TO app;
ALTER TABLE shop.customers OWNER TO app;
"""


pytestmark = pytest.mark.usefixtures(fresh_roles.__name__)


def create_owned_tables(pg, database):
    pg.execute(OWNED_TABLES, dbname=database)


def test_managed_like_admin_prepares_with_explicit_tables(pg, database, managed_admin):
    create_owned_tables(pg, database)
    if pg.major < 16:
        # PostgreSQL 15 and older: only a superuser can create a REPLICATION role; providers do it in their console.
        refused = run_playbook(prepare_tasks(user='cp_managed')[:1], module_defaults=login(pg, database, **managed_admin))
        assert refused.rc != 0
        assert 'provider console' in refused.result('user')['msg'] and 'Nothing was applied' in refused.result('user')['msg']
        pg.execute("CREATE ROLE cp_managed LOGIN REPLICATION PASSWORD 'from-the-console'", dbname=database)
    run = run_playbook(prepare_tasks(user='cp_managed', password='from-the-console', schemas=['shop']),
                       module_defaults=login(pg, database, **managed_admin))
    assert run.rc == 0, run.stdout
    assert run.result('publication')['publication']['tables'] == ['shop.customers', 'shop.orders']
    assert run.result('publication')['publication']['owner'] == managed_admin['user']
    default_owners = [entry['owner'] for entry in run.result('grants')['grants']['default_privileges']]
    assert default_owners == sorted(['app', managed_admin['user']])
    again = run_playbook(prepare_tasks(user='cp_managed', password='from-the-console', schemas=['shop']),
                         module_defaults=login(pg, database, **managed_admin))
    assert [again.result(name)['changed'] for name in ('user', 'grants', 'publication')] == [False, False, False]


@pytest.mark.parametrize('mode', ['all_tables', 'schemas'])
def test_managed_like_admin_gets_a_clear_refusal_for_superuser_only_modes(pg, database, managed_admin, mode):
    if mode == 'schemas' and pg.major < 15:
        pytest.skip('FOR TABLES IN SCHEMA exists from PostgreSQL 15 (the version gate is tested below)')
    create_owned_tables(pg, database)
    before = snapshot(pg, database)
    run = run_playbook([dict(name='p', **{'pgcdc.clickpipes.publication': dict(name='p', mode=mode, schemas=['shop'])})],
                       module_defaults=login(pg, database, **managed_admin))
    assert run.rc != 0
    message = run.result('p')['msg']
    assert 'superuser' in message and 'mode: tables' in message and 'Nothing was applied' in message
    assert snapshot(pg, database) == before


def test_schemas_mode_needs_postgres_15(pg, database):
    if pg.major >= 15:
        pytest.skip('only older servers refuse FOR TABLES IN SCHEMA')
    run = run_playbook([dict(name='p', **{'pgcdc.clickpipes.publication': dict(name='p', mode='schemas')})],
                       module_defaults=login(pg, database))
    assert run.rc != 0 and 'PostgreSQL 15 or later' in run.result('p')['msg']


def test_admin_that_does_not_own_the_tables_is_told_what_to_grant(pg, database, foreign_admin):
    create_owned_tables(pg, database)
    pg.execute("CREATE ROLE cp_foreign LOGIN REPLICATION PASSWORD 'x'", dbname=database)
    before = snapshot(pg, database)
    defaults = login(pg, database, **foreign_admin)
    grants = run_playbook(prepare_tasks(user='cp_foreign', schemas=['shop'])[1:2], module_defaults=defaults)
    assert grants.rc != 0
    assert 'cannot grant SELECT' in grants.result('grants')['msg'] and 'GRANT <owner role> TO %s' % foreign_admin['user'] in grants.result('grants')['msg']
    publication = run_playbook(prepare_tasks(user='cp_foreign', schemas=['shop'])[2:], module_defaults=defaults)
    assert publication.rc != 0
    assert 'ownership of the table' in publication.result('publication')['msg'] and 'GRANT app TO' in publication.result('publication')['msg']
    assert snapshot(pg, database) == before


def test_a_failure_midway_applies_nothing(pg, database):
    """GRANT USAGE succeeds, then GRANT SELECT waits on a locked table and times out: the USAGE must be rolled back."""
    pg.execute('CREATE SCHEMA locked; CREATE TABLE locked.t (id int PRIMARY KEY);'
               "CREATE ROLE cp_locked LOGIN REPLICATION PASSWORD 'x'", dbname=database)
    blocker = pg.connect(dbname=database)
    blocker.autocommit = False
    try:
        blocker.cursor().execute('ALTER TABLE locked.t ADD COLUMN extra int')
        task = dict(name='grants', **{'pgcdc.clickpipes.replication_grants': dict(
            user='cp_locked', schemas=['locked'], default_privileges=False, lock_timeout='1s')})
        run = run_playbook([task], module_defaults=login(pg, database))
    finally:
        blocker.rollback()
        blocker.close()
    assert run.rc != 0
    assert 'Timed out waiting for a lock' in run.result('grants')['msg'] and 'Nothing was applied' in run.result('grants')['msg']
    assert pg.query("SELECT has_schema_privilege('cp_locked', 'locked', 'USAGE')", dbname=database) == [(False,)]
    assert run_playbook([task], module_defaults=login(pg, database)).rc == 0


def test_password_update_always_logs_in_to_compare(pg, database):
    task = dict(name='user', **{'pgcdc.clickpipes.replication_user': dict(name='cp_rotate', password='first', update_password='always')})
    assert run_playbook([task], module_defaults=login(pg, database)).result('user')['changed'] is True
    assert run_playbook([task], module_defaults=login(pg, database)).result('user')['changed'] is False
    task['pgcdc.clickpipes.replication_user']['password'] = 'second'
    rotated = run_playbook([task], module_defaults=login(pg, database))
    assert rotated.result('user')['changed'] is True
    conn = pg.connect(user='cp_rotate', password='second', dbname=database)
    conn.close()
    with pytest.raises(psycopg2.OperationalError):
        pg.connect(user='cp_rotate', password='first', dbname=database)


def test_user_attributes_and_absent(pg, database):
    module = 'pgcdc.clickpipes.replication_user'
    task = dict(name='user', **{module: dict(name='cp_attrs', password='x', bypass_rls=True, connection_limit=5)})
    created = run_playbook([task], module_defaults=login(pg, database))
    role = created.result('user')['role']
    assert (role['bypass_rls'], role['connection_limit'], role['login'], role['replication']) == (True, 5, True, True)
    task[module].update(bypass_rls=False, connection_limit=None)
    altered = run_playbook([task], module_defaults=login(pg, database), diff=True)
    assert altered.result('user')['queries'] == ['ALTER ROLE "cp_attrs" WITH NOBYPASSRLS']
    assert altered.result('user')['diff']['before']['bypass_rls'] is True
    pg.execute('CREATE TABLE kept (id int PRIMARY KEY); GRANT SELECT ON kept TO cp_attrs', dbname=database)
    stream = psycopg2.connect(connection_factory=psycopg2.extras.LogicalReplicationConnection,
                              **pg.conninfo(user='cp_attrs', password='x', dbname=database))
    try:
        absent = dict(name='absent', **{module: dict(name='cp_attrs', state='absent')})
        refused = run_playbook([absent], module_defaults=login(pg, database))
        assert refused.rc != 0 and 'active replication connection' in refused.result('absent')['msg']
        absent[module]['force'] = True
        forced = run_playbook([absent], module_defaults=login(pg, database))
        assert forced.rc == 0, forced.stdout
    finally:
        stream.close()
    assert pg.query("SELECT count(*) FROM pg_roles WHERE rolname = 'cp_attrs'", dbname=database) == [(0,)]
