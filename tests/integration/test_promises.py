"""The promises of a prepare run, each on the case that once broke it: plan first and write all or nothing, one
definition of ready, exactly the scope readable, existing publications left as they are."""

from __future__ import annotations

import pytest

from playbook import run_playbook, run_playbook_file
from support import LogWindow, fresh_roles, login, snapshot
from test_playbooks import source_vars, write_inventory

pytestmark = pytest.mark.usefixtures(fresh_roles.__name__)

PASSWORD = 'pw-not-secret'


def prepare(pg, database, check=False, diff=False, **options):
    task = dict(name='prepare', ignore_errors=True, **{'pgcdc.clickpipes.prepare_source': dict(dict(password=PASSWORD), **options)})
    return run_playbook([task], module_defaults=login(pg, database), check=check, diff=diff).result('prepare')


def verify(pg, database, **options):
    return prepare(pg, database, check_only=True, **options)


def as_user(pg, database, statement):
    """Run ``statement`` as the replication user; its error message, or None."""
    conn = pg.connect(dbname=database, user='clickpipes_user', password=PASSWORD)
    try:
        conn.cursor().execute(statement)
        return None
    except Exception as exc:  # pylint: disable=broad-except
        return str(exc)
    finally:
        conn.close()


REFUSED_BEFORE_WRITING = [
    ('missing_table', 'CREATE TABLE orders (id int PRIMARY KEY)', dict(tables=['public.no_such_table']), 'publication_tables'),
    ('a_view_named', 'CREATE TABLE orders (id int PRIMARY KEY); CREATE VIEW recent AS SELECT * FROM orders',
     dict(tables=['orders', 'recent']), 'publication_tables'),
    ('missing_schema', 'CREATE TABLE orders (id int PRIMARY KEY)', dict(schemas=['public', 'nowhere']), 'publication_tables'),
    ('unlogged_named', 'CREATE TABLE orders (id int PRIMARY KEY); CREATE UNLOGGED TABLE cache (id int PRIMARY KEY)',
     dict(tables=['orders', 'cache']), 'table_persistence'),
    ('dotted_schema', 'CREATE SCHEMA "eu.sales"; CREATE TABLE "eu.sales".orders (id int PRIMARY KEY)',
     dict(schemas=['eu.sales']), 'table_names'),
    ('no_primary_key', 'CREATE TABLE orders (id int PRIMARY KEY); CREATE TABLE log (line text)', {}, 'replica_identity'),
    ('row_level_security', 'CREATE TABLE orders (id int PRIMARY KEY); ALTER TABLE orders ENABLE ROW LEVEL SECURITY', {},
     'row_level_security'),
]


@pytest.mark.parametrize('schema, options, check_id', [case[1:] for case in REFUSED_BEFORE_WRITING],
                         ids=[case[0] for case in REFUSED_BEFORE_WRITING])
def test_a_plan_that_cannot_succeed_writes_nothing(pg, database, schema, options, check_id):
    pg.execute(schema, dbname=database)
    before = snapshot(pg, database)
    result = prepare(pg, database, **options)
    assert result['failed'] and check_id in result['blocked'], result
    assert 'nothing was changed' in result['msg'] and result['changes'] == dict(user=[], grants=[], publication=[])
    if 'recent' in options.get('tables', []):
        assert 'recent (a view: ClickPipes replicates tables only)' in result['msg']
    assert snapshot(pg, database) == before
    predicted = prepare(pg, database, check=True, **options)
    assert predicted['failed'] and predicted['blocked'] == result['blocked'], 'check mode predicts the refusal'
    assert verify(pg, database, **options)['failed'], 'verify agrees'


def test_unlogged_tables_of_a_schema_scope_are_left_out_and_named(pg, database):
    pg.execute('CREATE TABLE orders (id int PRIMARY KEY); CREATE UNLOGGED TABLE cache (id int PRIMARY KEY)', dbname=database)
    result = prepare(pg, database)
    assert not result.get('failed'), result['msg']
    found = dict((item['id'], item) for item in result['findings'])['table_persistence']
    assert found['status'] == 'warning' and 'public.cache' in found['message']
    assert pg.query("SELECT tablename FROM pg_publication_tables", dbname=database) == [('orders',)]
    assert 'permission denied' in as_user(pg, database, 'SELECT FROM public.cache')


def test_an_existing_for_all_tables_publication_is_ready_for_prepare_and_verify(pg, database):
    pg.execute('CREATE TABLE orders (id int PRIMARY KEY); CREATE PUBLICATION clickpipes_publication FOR ALL TABLES', dbname=database)
    prepared = prepare(pg, database)
    assert not prepared.get('failed'), prepared['msg']
    assert any('FOR ALL TABLES' in warning for warning in prepared['warnings'])
    assert pg.query("SELECT puballtables FROM pg_publication", dbname=database) == [(True,)]
    again = prepare(pg, database)
    assert not again.get('failed') and again['changed'] is False and verify(pg, database)['summary']['ready'] is True


def test_schemas_mode_converges_and_an_existing_schema_publication_is_not_added_to(pg, database):
    if pg.major < 15:
        pytest.skip('FOR TABLES IN SCHEMA exists from PostgreSQL 15')
    pg.execute('CREATE TABLE orders (id int PRIMARY KEY); CREATE TABLE lines (id int PRIMARY KEY)', dbname=database)
    first = prepare(pg, database, publication_mode='schemas')
    assert not first.get('failed'), first['msg']
    assert any('created later' in warning for warning in first['warnings']), 'the run says what schemas mode publishes'
    again = prepare(pg, database, publication_mode='schemas')
    assert not again.get('failed') and again['changed'] is False, again
    pg.execute('CREATE PUBLICATION dba FOR TABLES IN SCHEMA public', dbname=database)
    add_only = prepare(pg, database, publication='dba')
    assert not add_only.get('failed') and add_only['changes']['publication'] == [], add_only


def test_schemas_mode_refuses_while_a_table_without_a_key_is_there(pg, database):
    if pg.major < 15:
        pytest.skip('FOR TABLES IN SCHEMA exists from PostgreSQL 15')
    pg.execute('CREATE TABLE orders (id int PRIMARY KEY); CREATE TABLE log (line text)', dbname=database)
    before = snapshot(pg, database)
    result = prepare(pg, database, publication_mode='schemas')
    assert result['failed'] and snapshot(pg, database) == before
    pg.execute('INSERT INTO log VALUES (1); UPDATE log SET line = 2; DELETE FROM log', dbname=database)


def test_check_mode_of_the_prepare_playbook_predicts_the_run(pg, database, tmp_path):
    pg.execute('CREATE TABLE orders (id int PRIMARY KEY)', dbname=database)
    inventory = write_inventory(tmp_path / 'inventory.yml', {'shop': source_vars(pg, database, tmp_path / 'reports')})
    before = snapshot(pg, database)
    predicted = run_playbook_file('pgcdc.clickpipes.prepare', inventory=inventory, check=True, diff=True)
    assert predicted.rc == 0, predicted
    assert 'changed=1' in predicted.stdout and '"exists": false' in predicted.stdout, 'the diff is shown'
    assert snapshot(pg, database) == before
    applied = run_playbook_file('pgcdc.clickpipes.prepare', inventory=inventory)
    assert applied.rc == 0, applied
    engine = 'pgcdc.clickpipes.source : Check the source, create what it lacks (user, grants, publication), check again'
    planned, done = predicted.result(engine, 'shop'), applied.result(engine, 'shop')
    assert planned['changed'] is True and any(query.startswith('CREATE PUBLICATION') for query in planned['queries'])
    assert [query for query in planned['queries'] if 'PASSWORD' not in query] == [
        query for query in done['queries'] if 'PASSWORD' not in query]
    assert sorted(item['id'] for item in planned['findings'] if item['fix'].get('planned')) == sorted(
        item['id'] for item in planned['findings'] if item['status'] == 'error')


def test_the_partitioned_root_is_readable_on_every_major(pg, database):
    pg.execute("CREATE TABLE events (id int, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);"
               "CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');"
               "INSERT INTO events VALUES (1, '2026-05-01')", dbname=database)
    result = prepare(pg, database)
    assert not result.get('failed'), result['msg']
    assert as_user(pg, database, 'SELECT * FROM public.events') is None


def test_a_partitioned_root_without_a_key_is_refused_for_what_clickpipes_needs(pg, database):
    if pg.major < 13:
        pytest.skip('PostgreSQL 12 publishes the partitions, never the partitioned table')
    pg.execute("CREATE TABLE events (id int, at date) PARTITION BY RANGE (at);"
               "CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');"
               "ALTER TABLE events_2026 ADD PRIMARY KEY (id, at)", dbname=database)
    result = prepare(pg, database)
    assert result['failed'] and result['blocked'] == ['replica_identity'], result
    assert 'ClickPipes cannot replicate' in result['msg'] and 'would then reject' not in result['msg']
    # What the refusal is not about: the application's writes work.
    pg.execute("INSERT INTO events VALUES (1, '2026-05-01'); UPDATE events SET id = 2; DELETE FROM events", dbname=database)


def test_named_tables_get_no_default_privileges(pg, database):
    pg.execute('CREATE TABLE orders (id int PRIMARY KEY)', dbname=database)
    result = prepare(pg, database, tables=['orders'])
    assert not result.get('failed'), result['msg']
    assert pg.query('SELECT count(*) FROM pg_default_acl', dbname=database) == [(0,)]
    pg.execute('CREATE TABLE credit_cards (number text PRIMARY KEY)', dbname=database)
    assert 'permission denied' in as_user(pg, database, 'SELECT FROM public.credit_cards')
    assert verify(pg, database, tables=['orders'])['summary']['ready'] is True


def test_the_owner_of_the_tables_is_refused_as_the_replication_user(pg, database):
    pg.execute('CREATE ROLE app_owner NOLOGIN; CREATE TABLE orders (id int PRIMARY KEY); ALTER TABLE orders OWNER TO app_owner',
               dbname=database)
    before = snapshot(pg, database)
    result = prepare(pg, database, user='app_owner')
    assert result['failed'] and 'user_least_privilege' in result['blocked'], result
    assert snapshot(pg, database) == before
    alone = run_playbook([dict(name='user', ignore_errors=True, **{'pgcdc.clickpipes.replication_user': dict(name='app_owner')})],
                         module_defaults=login(pg, database)).result('user')
    assert alone['failed'] and 'owns tables' in alone['msg'] and snapshot(pg, database) == before


def test_an_add_only_run_keeps_the_options_of_an_existing_publication(pg, database):
    if pg.major < 13:
        pytest.skip('publish_via_partition_root exists from PostgreSQL 13')
    pg.execute("CREATE TABLE events (id int, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);"
               "CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');"
               "CREATE TABLE orders (id int PRIMARY KEY);"
               "CREATE PUBLICATION clickpipes_publication FOR TABLE orders WITH (publish = 'insert, update', "
               "publish_via_partition_root = false)", dbname=database)
    result = prepare(pg, database, diff=True)
    assert result['changes']['publication'] == ['ALTER PUBLICATION "clickpipes_publication" ADD TABLE "public"."events"'], result
    assert pg.query('SELECT pubdelete, pubtruncate, pubviaroot FROM pg_publication', dbname=database) == [(False, False, False)]


def managed(pg, database, admin, **options):
    """prepare_source as a managed-provider-like admin (not a superuser)."""
    task = dict(name='prepare', ignore_errors=True, **{'pgcdc.clickpipes.prepare_source': dict(dict(password=PASSWORD), **options)})
    return run_playbook([task], module_defaults=login(pg, database, admin['user'], admin['password'])).result('prepare')


def test_what_the_admin_may_not_do_is_refused_before_anything_is_sent(pg, database, managed_admin):
    """A schema whose USAGE the admin cannot grant (PostgreSQL would only warn), a schema-wide publication it may not
    create, and on 15 and older a replication role it may not create: refused, in check mode too, with nothing sent."""
    pg.execute('CREATE SCHEMA locked_away; CREATE TABLE locked_away.t (id int PRIMARY KEY); ALTER TABLE locked_away.t OWNER TO app;'
               'GRANT USAGE ON SCHEMA locked_away TO app; CREATE TABLE orders (id int PRIMARY KEY); ALTER TABLE orders OWNER TO app',
               dbname=database)
    if pg.major < 16:
        cases = [(dict(), 'needs a superuser')]
    else:
        cases = [(dict(schemas=['public', 'locked_away']), 'cannot grant USAGE on schema(s) locked_away'),
                 (dict(publication_mode='schemas'), 'mode schemas needs a superuser')]
    before = snapshot(pg, database)
    for options, message in cases:
        window = LogWindow(pg)
        for check in (True, False):
            task = dict(name='prepare', ignore_errors=True, **{'pgcdc.clickpipes.prepare_source': dict(dict(password=PASSWORD), **options)})
            result = run_playbook([task], module_defaults=login(pg, database, managed_admin['user'], managed_admin['password']),
                                  check=check).result('prepare')
            assert result['failed'] and message in result['msg'], (options, check, result['msg'])
        assert window.write_statements() == [] and snapshot(pg, database) == before, options


def test_an_unchanged_publication_of_another_owner_is_not_refused(pg, database, managed_admin):
    if pg.major < 16:
        pytest.skip('the managed-like admin may create the replication role from PostgreSQL 16')
    pg.execute('CREATE TABLE orders (id int PRIMARY KEY); ALTER TABLE orders OWNER TO app;'
               'CREATE PUBLICATION clickpipes_publication FOR TABLES IN SCHEMA public', dbname=database)
    result = managed(pg, database, managed_admin, publication_mode='schemas')
    assert not result.get('failed'), result['msg']
    assert result['changes']['publication'] == [] and result['summary']['ready'] is True


@pytest.mark.parametrize('name', ['public', 'pg_cdc', 'none'])
def test_a_reserved_role_name_is_refused_before_anything_is_sent(pg, database, name):
    pg.execute('CREATE TABLE orders (id int PRIMARY KEY)', dbname=database)
    before = snapshot(pg, database)
    result = prepare(pg, database, user=name)
    assert result['failed'] and 'reserved' in result['msg'] and snapshot(pg, database) == before
