"""source_check against real servers: a ready source, broken ones, standbys, PgBouncer and provider fingerprints."""

from __future__ import annotations

import pytest

from playbook import run_playbook
from support import LogWindow, fresh_roles, login, prepare_tasks

CHECK = 'pgcdc.clickpipes.source_check'
CHECK_IDS = {
    'server_version', 'primary', 'wal_level', 'max_wal_senders', 'max_replication_slots', 'max_slot_wal_keep_size',
    'wal_sender_timeout', 'idle_replication_slot_timeout', 'logical_slots_health', 'user_exists', 'user_login',
    'user_replication', 'user_least_privilege', 'replication_connection', 'schema_usage', 'table_select',
    'default_privileges', 'row_level_security', 'publication_exists', 'publication_tables', 'publication_scope',
    'publication_operations', 'publication_partition_root', 'hypertable_chunks', 'replica_identity', 'toast_columns', 'table_names',
    'table_persistence', 'pooler', 'ssl', 'provider',
}


pytestmark = pytest.mark.usefixtures(fresh_roles.__name__)


def check(cluster_defaults, **options):
    options.setdefault('fail_on', 'never')
    run = run_playbook([dict(name='check', **{CHECK: options})], module_defaults=cluster_defaults)
    return run, run.result('check')


def by_id(result):
    return dict((item['id'], item) for item in result['findings'])


def test_fresh_database_reports_everything_missing_in_one_pass(pg, database):
    pg.execute('CREATE TABLE heap (x int); CREATE TABLE "dot.name" (id int PRIMARY KEY)', dbname=database)
    run, result = check(login(pg, database), fail_on='error')
    assert run.rc != 0, 'errors must fail the task with fail_on: error'
    findings = by_id(result)
    assert set(findings) == CHECK_IDS and len(result['findings']) == len(CHECK_IDS)
    assert findings['user_exists']['status'] == 'error'
    assert findings['user_login']['status'] == 'skipped' and 'does not exist' in findings['user_login']['observed']
    assert findings['publication_exists']['status'] == 'error'
    assert findings['replica_identity']['status'] == 'error' and 'public.heap' in findings['replica_identity']['observed']
    assert findings['table_names']['status'] == 'error' and 'dot.name' in findings['table_names']['observed']
    assert findings['replication_connection']['status'] == 'skipped'
    assert findings['wal_level']['status'] == 'ok'
    assert result['summary']['ready'] is False and result['summary']['error'] >= 4
    assert result['error_ids'] == [item['id'] for item in result['findings'] if item['status'] == 'error']
    assert result['pending_modules'] == ['replication_user', 'replication_grants', 'publication']
    assert 'user_exists' in result['msg'] and 'replica_identity' in result['msg']
    assert findings['idle_replication_slot_timeout']['status'] == ('skipped' if pg.major < 18 else 'ok')
    assert findings['max_slot_wal_keep_size']['status'] == ('skipped' if pg.major < 13 else 'warning')


def test_prepared_source_is_ready_and_replication_connection_works(pg, database):
    pg.execute('CREATE TABLE orders (id int PRIMARY KEY, qty int)', dbname=database)
    assert run_playbook(prepare_tasks(password='pw-1'), module_defaults=login(pg, database)).rc == 0
    run, result = check(login(pg, database), password='pw-1', fail_on='error')
    assert run.rc == 0, run.stdout
    findings = by_id(result)
    errors = [item['id'] for item in result['findings'] if item['status'] == 'error']
    assert errors == []
    assert result['error_ids'] == [] and result['pending_modules'] == []
    assert findings['replication_connection']['status'] == 'ok'
    assert 'IDENTIFY_SYSTEM' in findings['replication_connection']['observed']
    assert result['clickpipes_connection'] == dict(host=pg.host, port=pg.port, database=database, user='clickpipes_user',
                                                   publication='clickpipes_publication', source_type='postgres')
    as_user, result_as_user = check(login(pg, database, user='clickpipes_user', password='pw-1'), password='pw-1', fail_on='error')
    assert as_user.rc == 0, as_user.stdout
    assert by_id(result_as_user)['table_select']['status'] == 'ok'
    wrong, wrong_result = check(login(pg, database), password='not-the-password')
    assert by_id(wrong_result)['replication_connection']['status'] == 'error'
    assert 'not-the-password' not in wrong.stdout


def test_fail_on_and_skip_checks(pg, database):
    pg.execute('CREATE TABLE orders (id int PRIMARY KEY, note text)', dbname=database)
    assert run_playbook(prepare_tasks(), module_defaults=login(pg, database)).rc == 0
    ok_run, _result = check(login(pg, database), fail_on='error')
    assert ok_run.rc == 0
    strict, strict_result = check(login(pg, database), fail_on='warning')
    assert strict.rc != 0 and 'toast_columns' in strict_result['msg']
    skipping, skip_result = check(login(pg, database), fail_on='warning',
                                  skip_checks=['toast_columns', 'wal_sender_timeout', 'max_slot_wal_keep_size', 'ssl'])
    assert skipping.rc == 0, skip_result.get('msg')
    assert by_id(skip_result)['toast_columns']['status'] == 'skipped'
    bad, bad_result = check(login(pg, database), skip_checks=['no_such_check'])
    assert bad.rc != 0 and 'no_such_check' in bad_result['msg']


def test_least_privilege_and_rls_are_reported(pg, database):
    pg.execute('CREATE TABLE orders (id int PRIMARY KEY)', dbname=database)
    assert run_playbook(prepare_tasks(), module_defaults=login(pg, database)).rc == 0
    pg.execute('ALTER TABLE orders ENABLE ROW LEVEL SECURITY', dbname=database)
    pg.execute('GRANT INSERT ON orders TO clickpipes_user; ALTER ROLE clickpipes_user CREATEDB', dbname=database)
    _run, result = check(login(pg, database))
    findings = by_id(result)
    assert findings['user_least_privilege']['status'] == 'warning'
    assert 'CREATEDB' in findings['user_least_privilege']['observed'] and 'public.orders' in findings['user_least_privilege']['observed']
    assert findings['row_level_security']['status'] == 'error' and 'initial load' in findings['row_level_security']['message']


def test_toast_columns_names_each_table_with_an_out_of_line_column_in_catalog_order(pg, database):
    """Only a live column of variable length whose storage is not PLAIN counts, on a table without REPLICA IDENTITY
    FULL; names come by schema, then table, in the catalog's byte order (upper case first). On PostgreSQL 12 the
    partition stands for its partitioned table and must still come in order."""
    pg.execute('CREATE SCHEMA "Zeta"; CREATE SCHEMA alpha;'
               'CREATE TABLE alpha.t (id int PRIMARY KEY, v bytea); CREATE TABLE "Zeta".t (id int PRIMARY KEY, v text);'
               'CREATE TABLE a_tab (id int PRIMARY KEY, v jsonb); CREATE TABLE "B_tab" (id int PRIMARY KEY, v text);'
               'CREATE TABLE short_text (id int PRIMARY KEY, v varchar(10)); CREATE TABLE ints (id int PRIMARY KEY, n bigint);'
               'CREATE TABLE full_identity (id int PRIMARY KEY, v text); ALTER TABLE full_identity REPLICA IDENTITY FULL;'
               'CREATE TABLE dropped (id int PRIMARY KEY, v text); ALTER TABLE dropped DROP COLUMN v;'
               'CREATE TABLE stored_plain (id int PRIMARY KEY, v text); ALTER TABLE stored_plain ALTER COLUMN v SET STORAGE PLAIN;'
               'CREATE TABLE parted (id int, v text, PRIMARY KEY (id)) PARTITION BY RANGE (id);'
               'CREATE TABLE aaa_part PARTITION OF parted FOR VALUES FROM (0) TO (10)', dbname=database)
    _run, result = check(login(pg, database), schemas=['public', 'Zeta', 'alpha'])
    toast = by_id(result)['toast_columns']
    parted = 'public.aaa_part' if pg.major < 13 else 'public.parted'
    names = ['"Zeta".t', 'alpha.t', 'public."B_tab"', 'public.a_tab', parted, 'public.short_text']
    assert toast['status'] == 'warning'
    assert toast['observed'] == ', '.join(names), toast['observed']
    assert toast['fix']['sql'] == ['ALTER TABLE %s REPLICA IDENTITY FULL' % name for name in names]


def test_replica_identity_using_an_index_that_was_dropped_is_an_error(pg, database):
    pg.execute('CREATE TABLE keyed (id int PRIMARY KEY, k int NOT NULL); CREATE UNIQUE INDEX keyed_k ON keyed (k);'
               'ALTER TABLE keyed REPLICA IDENTITY USING INDEX keyed_k', dbname=database)
    _run, result = check(login(pg, database))
    assert by_id(result)['replica_identity']['status'] == 'ok'
    pg.execute('DROP INDEX keyed_k', dbname=database)
    _run, result = check(login(pg, database))
    identity = by_id(result)['replica_identity']
    assert identity['status'] == 'error' and 'REPLICA IDENTITY USING INDEX without a usable index' in identity['message']


def test_unreadable_and_writable_tables_are_named_in_the_order_of_their_quoted_names(pg, database):
    """Sorted by the quoted name bytewise: a double-quoted name (a keyword too) first, upper case before lower case."""
    pg.execute('CREATE SCHEMA "Zeta"; CREATE SCHEMA alpha; CREATE ROLE clickpipes_user LOGIN REPLICATION;'
               'CREATE TABLE alpha.t (id int PRIMARY KEY); CREATE TABLE "Zeta".t (id int PRIMARY KEY);'
               'CREATE TABLE a_tab (id int PRIMARY KEY); CREATE TABLE "B_tab" (id int PRIMARY KEY);'
               'CREATE TABLE a_tab2 (id int PRIMARY KEY); CREATE TABLE "user" (id int PRIMARY KEY);'
               'CREATE TABLE readable (id int PRIMARY KEY); GRANT SELECT ON readable, a_tab TO clickpipes_user;'
               'GRANT INSERT ON "B_tab", a_tab, alpha.t TO clickpipes_user', dbname=database)
    _run, result = check(login(pg, database), schemas=['public', 'Zeta', 'alpha'])
    findings = by_id(result)
    assert findings['table_select']['observed'] == '"Zeta".t, alpha.t, public."B_tab", public."user", public.a_tab2'
    assert findings['user_least_privilege']['observed'] == 'write privileges on alpha.t, public."B_tab", public.a_tab'


def test_default_privileges_for_other_owners(pg, database):
    pg.execute('DO $$ BEGIN CREATE ROLE app NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;'
               'GRANT CREATE ON SCHEMA public TO app; CREATE TABLE orders (id int PRIMARY KEY); ALTER TABLE orders OWNER TO app;'
               "CREATE ROLE clickpipes_user LOGIN REPLICATION; GRANT SELECT ON orders TO clickpipes_user", dbname=database)
    _run, result = check(login(pg, database))
    assert by_id(result)['default_privileges']['status'] == 'warning'
    assert 'FOR ROLE "app"' in by_id(result)['default_privileges']['fix']['sql'][0]
    assert run_playbook(prepare_tasks()[1:], module_defaults=login(pg, database)).rc == 0
    pg.execute('SET ROLE app; CREATE TABLE later (id int PRIMARY KEY)', dbname=database)
    assert pg.query("SELECT has_table_privilege('clickpipes_user', 'later', 'SELECT')", dbname=database) == [(True,)]
    _run, result = check(login(pg, database))
    assert by_id(result)['default_privileges']['status'] == 'ok'


def test_inactive_slot_is_reported(pg, database):
    pg.execute("SELECT pg_create_logical_replication_slot('forgotten_%s', 'pgoutput')" % database, dbname=database)
    try:
        _run, result = check(login(pg, database))
        health = by_id(result)['logical_slots_health']
        assert health['status'] == 'warning' and 'forgotten_%s' % database in health['observed']
    finally:
        pg.execute("SELECT pg_drop_replication_slot('forgotten_%s')" % database, dbname=database)


def test_standby_is_an_error(pg, standby):
    _run, result = check(login(standby, 'postgres'))
    assert by_id(result)['primary']['status'] == 'error'


def test_pgbouncer_endpoint_is_an_error(pg, database, pgbouncer):
    defaults = login(pg, database)
    defaults['group/pgcdc.clickpipes.clickpipes'].update(login_host=pgbouncer.host, login_port=pgbouncer.port)
    _run, result = check(defaults)
    pooler = by_id(result)['pooler']
    assert pooler['status'] == 'error', pooler
    assert 'PgBouncer' in pooler['message'] and pooler['fix']['manual']


def test_the_users_replication_probe_also_answers_the_pooler_question(make_cluster):
    cluster = make_cluster(settings=dict(log_replication_commands='on'))
    cluster.execute('CREATE TABLE orders (id int PRIMARY KEY)')
    assert run_playbook(prepare_tasks(password='pw-1'), module_defaults=login(cluster, 'postgres')).rc == 0
    # The right password: the user's probe answers both checks. A wrong one: the admin probes for a pooler.
    for password, connection, prober in (('pw-1', 'ok', 'clickpipes_user'), ('wrong', 'error', cluster.superuser)):
        window = LogWindow(cluster)
        _run, result = check(login(cluster, 'postgres'), password=password)
        assert by_id(result)['pooler']['status'] == 'ok' and by_id(result)['replication_connection']['status'] == connection
        probes = [line for line in window.text().splitlines() if 'received replication command: IDENTIFY_SYSTEM' in line]
        assert len(probes) == 1 and prober + '@' in probes[0], (password, probes)


def test_pgbouncer_is_an_error_when_the_users_probe_meets_it(pg, database, pgbouncer):
    pg.execute('CREATE TABLE orders (id int PRIMARY KEY)', dbname=database)
    assert run_playbook(prepare_tasks(password='pw-1'), module_defaults=login(pg, database)).rc == 0
    defaults = login(pg, database)
    defaults['group/pgcdc.clickpipes.clickpipes'].update(login_host=pgbouncer.host, login_port=pgbouncer.port)
    _run, result = check(defaults, password='pw-1')
    assert by_id(result)['pooler']['status'] == 'error' and by_id(result)['replication_connection']['status'] == 'error'


def test_wal_level_replica_gives_the_self_hosted_fix():
    import pgcluster  # pylint: disable=import-outside-toplevel
    cluster = pgcluster.start_cluster(15, settings=dict(wal_level='replica'))
    try:
        _run, result = check(login(cluster, 'postgres'))
        wal = by_id(result)['wal_level']
        assert wal['status'] == 'error' and wal['observed'] == 'replica'
        assert wal['fix']['sql'] == ['ALTER SYSTEM SET wal_level = logical'] and wal['fix']['restart'] is True
    finally:
        cluster.destroy()


@pytest.mark.parametrize('provider, setting, value', [
    ('neon', 'neon.endpoint_id', 'ep-cool-darkness-123456'),
    ('planetscale', 'extwlist.pscale_allowed_extensions', 'pg_stat_statements'),
])
def test_provider_fingerprint_and_console_steps(pg, database, provider, setting, value):
    pg.execute('ALTER DATABASE "%s" SET %s = \'%s\'' % (database, setting, value), dbname=database)
    admin = 'admin.br4nch' if provider == 'planetscale' else 'admin_neon'
    pg.execute('DO $$ BEGIN CREATE ROLE "%s" LOGIN SUPERUSER PASSWORD \'pw\'; EXCEPTION WHEN duplicate_object THEN NULL; END $$' % admin)
    _run, result = check(login(pg, database, user=admin, password='pw'), max_slot_wal_keep_size_target='200GB')
    assert result['provider'] == provider and by_id(result)['provider']['status'] == 'ok'
    notices = [step['id'] for step in result['manual_steps'] if step['status'] == 'notice']
    assert notices and all(notice.startswith(provider) for notice in notices)
    if provider == 'planetscale':
        assert result['clickpipes_connection']['user'] == 'clickpipes_user.br4nch'
    keep = by_id(result)['max_slot_wal_keep_size']
    if pg.major >= 13:
        assert keep['fix']['manual'] and keep['fix']['sql'] == []
    _run, mismatch = check(login(pg, database, user=admin, password='pw'), provider='generic')
    assert by_id(mismatch)['provider']['status'] == 'warning'
