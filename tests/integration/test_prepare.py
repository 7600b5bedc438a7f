"""The writing modules on a real server: check mode, idempotence, diff, tricky names and the no-primary-key guard."""

from __future__ import annotations

import pytest

from playbook import run_playbook
from support import (
    fresh_roles,
    TRICKY_OWNED_BY_APP,
    TRICKY_SCHEMA_SQL,
    TRICKY_SCHEMAS,
    LogWindow,
    login,
    prepare_tasks,
    snapshot,
)

TRICKY_TABLES = [
    'public.orders', 'public.MixedCase', 'public.with space', 'public.ünïcode_täble',
    'public.robert\'); DROP TABLE orders;--', 'public.full_identity', 'Sales Dept.Order Items',
    '"weird""schema"."a""b"', 'public.events',
]


pytestmark = pytest.mark.usefixtures(fresh_roles.__name__)


def tricky_database(pg, database):
    pg.execute(TRICKY_SCHEMA_SQL + TRICKY_OWNED_BY_APP, dbname=database)


def test_check_mode_then_apply_then_idempotent(pg, database):
    tricky_database(pg, database)
    tasks = prepare_tasks(schemas=TRICKY_SCHEMAS, tables=TRICKY_TABLES)
    before = snapshot(pg, database)

    predicted = run_playbook(tasks, module_defaults=login(pg, database), check=True, diff=True)
    assert predicted.rc == 0, predicted.stdout
    assert snapshot(pg, database) == before, 'check mode changed the catalog'
    for name in ('user', 'grants', 'publication'):
        assert predicted.result(name)['changed'] is True
        assert predicted.result(name)['queries']
        assert 'before' in predicted.result(name)['diff']

    applied = run_playbook(tasks, module_defaults=login(pg, database), diff=True)
    assert applied.rc == 0, applied.stdout
    for name in ('user', 'grants', 'publication'):
        assert applied.result(name)['queries'] == predicted.result(name)['queries'], name
        assert applied.result(name)['diff']['after'] == predicted.result(name)['diff']['after'], name
    published = set(pg.query("SELECT schemaname || '.' || tablename FROM pg_publication_tables", dbname=database))
    assert ('weird"schema.a"b',) in published and ('public.robert\'); DROP TABLE orders;--',) in published
    assert pg.query("SELECT count(*) FROM public.orders", dbname=database) == [(0,)]

    window = LogWindow(pg)
    again = run_playbook(tasks, module_defaults=login(pg, database))
    assert again.rc == 0, again.stdout
    for name in ('user', 'grants', 'publication'):
        assert again.result(name)['changed'] is False, name
        assert again.result(name)['queries'] == [], name
    assert window.write_statements() == []


def test_rerun_picks_up_new_tables(pg, database):
    pg.execute('CREATE TABLE first (id int PRIMARY KEY)', dbname=database)
    tasks = prepare_tasks()
    assert run_playbook(tasks, module_defaults=login(pg, database)).rc == 0
    pg.execute('CREATE TABLE later (id int PRIMARY KEY)', dbname=database)
    rerun = run_playbook(tasks, module_defaults=login(pg, database))
    assert rerun.rc == 0, rerun.stdout
    assert rerun.result('user')['changed'] is False
    # The first run set default privileges for the admin, who created the table: nothing left to grant.
    assert rerun.result('grants')['changed'] is False
    assert rerun.result('publication')['queries'] == ['ALTER PUBLICATION "clickpipes_publication" ADD TABLE "public"."later"']
    assert pg.query("SELECT has_table_privilege('clickpipes_user', 'public.later', 'SELECT')", dbname=database) == [(True,)]


def test_an_extensions_tables_stay_out_of_a_schema_scope(pg, database):
    pg.execute('CREATE TABLE orders (id int PRIMARY KEY); CREATE TABLE extension_config (id int PRIMARY KEY);'
               'ALTER EXTENSION plpgsql ADD TABLE extension_config', dbname=database)
    run = run_playbook(prepare_tasks(), module_defaults=login(pg, database))
    assert run.rc == 0, run.stdout
    assert pg.query("SELECT tablename FROM pg_publication_tables", dbname=database) == [('orders',)]
    assert pg.query("SELECT has_table_privilege('clickpipes_user', 'public.extension_config', 'SELECT')",
                    dbname=database) == [(False,)]


def test_table_without_primary_key_is_refused_and_writes_keep_working(pg, database):
    pg.execute('CREATE TABLE keyed (id int PRIMARY KEY); CREATE TABLE heap (x int); CREATE TABLE nothing (id int PRIMARY KEY);'
               'ALTER TABLE nothing REPLICA IDENTITY NOTHING; INSERT INTO heap VALUES (1)', dbname=database)
    run = run_playbook(prepare_tasks(), module_defaults=login(pg, database))
    assert run.rc != 0
    message = run.result('publication')['msg']
    assert 'public.heap' in message and 'public.nothing' in message and 'public.keyed' not in message
    assert 'REPLICA IDENTITY FULL' in message and 'allow_missing_replica_identity' in message
    assert pg.query('SELECT count(*) FROM pg_publication', dbname=database) == [(0,)]
    pg.execute('UPDATE heap SET x = 2; DELETE FROM heap', dbname=database)

    explicit = run_playbook(prepare_tasks(tables=['keyed']), module_defaults=login(pg, database))
    assert explicit.rc == 0, explicit.stdout
    widen = run_playbook(prepare_tasks(), module_defaults=login(pg, database))
    assert widen.rc != 0 and 'public.heap' in widen.result('publication')['msg']
    assert pg.query('SELECT count(*) FROM pg_publication_tables', dbname=database) == [(1,)]

    opted_in = run_playbook(prepare_tasks(publication_options=dict(allow_missing_replica_identity=True)), module_defaults=login(pg, database))
    assert opted_in.rc == 0, opted_in.stdout


def test_bad_names_get_clear_messages(pg, database):
    pg.execute('CREATE TABLE t (id int PRIMARY KEY)', dbname=database)
    cases = {
        'a.b.c': 'more than one dot',
        'public.missing_table': 'tables not found: public.missing_table',
        'x' * 64: '63-byte limit',
        '"unclosed': 'unclosed double quote',
        '': 'empty table name',
    }
    for name, expected in cases.items():
        run = run_playbook([dict(name='publication', **{'pgcdc.clickpipes.publication': dict(name='p', tables=[name])})],
                           module_defaults=login(pg, database))
        assert run.rc != 0, name
        result = run.result('publication')
        assert expected in result['msg'], (name, result['msg'])
        assert 'Traceback' not in run.stdout + run.stderr
    assert pg.query('SELECT count(*) FROM pg_publication', dbname=database) == [(0,)]


def test_partitioned_tables_follow_the_server_version(pg, database):
    pg.execute("CREATE TABLE m (id int, at date NOT NULL, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);"
               "CREATE TABLE m_1 PARTITION OF m FOR VALUES FROM ('2026-01-01') TO ('2026-07-01');"
               "CREATE TABLE m_2 PARTITION OF m FOR VALUES FROM ('2026-07-01') TO ('2027-01-01');", dbname=database)
    run = run_playbook(prepare_tasks(), module_defaults=login(pg, database))
    assert run.rc == 0, run.stdout
    publication = run.result('publication')['publication']
    if pg.major >= 13:
        assert publication['tables'] == ['public.m'] and publication['publish_via_partition_root'] is True
    else:
        assert publication['tables'] == ['public.m_1', 'public.m_2']
    assert run_playbook(prepare_tasks(), module_defaults=login(pg, database)).result('publication')['changed'] is False


def test_exact_mode_removes_and_an_add_only_run_keeps_all_tables(pg, database):
    pg.execute('CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY)', dbname=database)
    publication = 'pgcdc.clickpipes.publication'
    all_tables = run_playbook([dict(name='all', **{publication: dict(name='p', mode='all_tables')})], module_defaults=login(pg, database))
    assert all_tables.rc == 0, all_tables.stdout
    narrow = run_playbook([dict(name='narrow', **{publication: dict(name='p', tables=['a'])})], module_defaults=login(pg, database))
    assert narrow.rc == 0, narrow.stdout
    assert narrow.result('narrow')['changed'] is False and narrow.result('narrow')['publication']['all_tables'] is True
    assert any('exact: true' in warning for warning in narrow.result('narrow')['warnings'])
    assert pg.query("SELECT puballtables FROM pg_publication WHERE pubname = 'p'", dbname=database) == [(True,)]
    exact = run_playbook([dict(name='exact', **{publication: dict(name='p', tables=['a'], exact=True)})], module_defaults=login(pg, database))
    assert exact.rc == 0, exact.stdout
    assert exact.result('exact')['publication']['tables'] == ['public.a']
    add_b = run_playbook([dict(name='add', **{publication: dict(name='p', tables=['b'])})], module_defaults=login(pg, database))
    assert add_b.result('add')['publication']['tables'] == ['public.a', 'public.b']
    only_b = run_playbook([dict(name='only', **{publication: dict(name='p', tables=['b'], exact=True)})], module_defaults=login(pg, database))
    assert only_b.result('only')['publication']['tables'] == ['public.b']
    gone = run_playbook([dict(name='gone', **{publication: dict(name='p', state='absent')})], module_defaults=login(pg, database))
    assert gone.result('gone')['changed'] is True
    assert pg.query('SELECT count(*) FROM pg_publication', dbname=database) == [(0,)]


def test_operations_and_options(pg, database):
    pg.execute('CREATE TABLE a (id int PRIMARY KEY)', dbname=database)
    publication = 'pgcdc.clickpipes.publication'
    first = run_playbook([dict(name='p', **{publication: dict(name='p', operations=['insert', 'update'])})], module_defaults=login(pg, database))
    assert first.result('p')['publication']['operations'] == ['insert', 'update']
    refused = run_playbook([dict(name='p', **{publication: dict(name='p', operations=['insert'])})], module_defaults=login(pg, database))
    assert refused.rc != 0 and 'insert and update' in refused.result('p')['msg']
    kept = run_playbook([dict(name='p', **{publication: dict(name='p')})], module_defaults=login(pg, database))
    assert kept.result('p')['changed'] is False and kept.result('p')['publication']['operations'] == ['insert', 'update']
    widened = run_playbook([dict(name='p', **{publication: dict(name='p', operations=['insert', 'update', 'delete', 'truncate'])})],
                           module_defaults=login(pg, database), diff=True)
    assert widened.result('p')['queries'] == ['ALTER PUBLICATION "p" SET (publish = \'insert, update, delete, truncate\')']
    assert widened.result('p')['diff']['before']['operations'] == ['insert', 'update']
    assert widened.result('p')['diff']['after']['operations'] == ['insert', 'update', 'delete', 'truncate']
