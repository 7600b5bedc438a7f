"""The prepare and verify playbooks as users run them: inventory in, reports, custom stats and exit codes out."""

from __future__ import annotations

import json

import pytest
import yaml

from playbook import run_playbook, run_playbook_file
from support import HOSTILE_PASSWORD, fresh_roles, login, snapshot

pytestmark = pytest.mark.usefixtures(fresh_roles.__name__)


def write_inventory(path, hosts):
    path.write_text(yaml.safe_dump(dict(clickpipes_sources=dict(hosts=hosts))))
    return str(path)


def source_vars(cluster, database, report_dir, **extra):
    variables = dict(clickpipes_login_host=cluster.host, clickpipes_login_port=cluster.port, clickpipes_login_user=cluster.superuser,
                     clickpipes_login_password=cluster.password, clickpipes_login_db=database, clickpipes_report_dir=str(report_dir),
                     clickpipes_password=HOSTILE_PASSWORD)
    variables.update(extra)
    return variables


def test_prepare_reports_and_reruns_quietly(pg, database, tmp_path):
    pg.execute('CREATE TABLE orders (id int PRIMARY KEY); CREATE TABLE lines (id int PRIMARY KEY)', dbname=database)
    reports = tmp_path / 'reports'
    inventory = write_inventory(tmp_path / 'inventory.yml', {'shop': source_vars(pg, database, reports)})
    env = dict(ANSIBLE_SHOW_CUSTOM_STATS='true')
    first = run_playbook_file('pgcdc.clickpipes.prepare', inventory=inventory, env=env)
    assert first.rc == 0, first.stdout
    report = json.loads((reports / 'shop.json').read_text())
    assert report['schema_version'] == 1 and report['ready'] is True and report['blocked'] == []
    assert report['connection'] == dict(host=pg.host, port=pg.port, database=database, user='clickpipes_user',
                                        publication='clickpipes_publication', source_type='postgres')
    assert report['provider'] == 'generic' and report['source_type'] == 'postgres'
    assert report['changes']['user'] and report['changes']['publication']
    assert [f['id'] for f in report['findings'] if f['status'] == 'error'] == []
    markdown = (reports / 'shop.md').read_text()
    assert '**Ready**' in markdown and '`clickpipes_publication`' in markdown
    assert 'CUSTOM STATS' in first.stdout and '"shop"' in first.stdout
    assert '[WARNING]: [generic]' in first.stderr

    second = run_playbook_file('pgcdc.clickpipes.prepare', inventory=inventory, env=env)
    assert second.rc == 0 and 'changed=0' in second.stdout, second.stdout
    rerun = json.loads((reports / 'shop.json').read_text())
    assert rerun['changes'] == dict(user=[], grants=[], publication=[], settings=[])

    for run in (first, second):
        assert HOSTILE_PASSWORD not in run.stdout + run.stderr
    for report_file in reports.iterdir():
        assert HOSTILE_PASSWORD not in report_file.read_text()


ENGINE = 'pgcdc.clickpipes.source : Check the source, create what it lacks (user, grants, publication), check again'
WRITING_MODULES = ['replication_user', 'replication_grants', 'publication']


def warnings_of(run):
    return [line for line in run.stderr.splitlines() if line.startswith('[WARNING]: [')]


def modules_run(run, host='shop'):
    return run.result(ENGINE, host)['modules_run']


def test_rerun_starts_no_writing_module(pg, database, tmp_path):
    pg.execute('CREATE TABLE orders (id int PRIMARY KEY, note text)', dbname=database)
    inventory = write_inventory(tmp_path / 'inventory.yml', {'shop': source_vars(pg, database, tmp_path / 'reports')})
    first = run_playbook_file('pgcdc.clickpipes.prepare', inventory=inventory)
    assert first.rc == 0, first
    assert modules_run(first) == WRITING_MODULES

    second = run_playbook_file('pgcdc.clickpipes.prepare', inventory=inventory)
    assert second.rc == 0 and 'changed=0' in second.stdout, second
    assert modules_run(second) == [] and second.result(ENGINE, 'shop')['queries'] == []
    # The preflight was the final check: the same warnings as the first run, each once.
    assert warnings_of(second) == warnings_of(first) and any('toast_columns' in line for line in warnings_of(second))


def test_rerun_repairs_drift_with_the_module_that_manages_it(pg, database, tmp_path):
    pg.execute('CREATE TABLE orders (id int PRIMARY KEY); CREATE TABLE lines (id int PRIMARY KEY)', dbname=database)
    reports = tmp_path / 'reports'
    inventory = write_inventory(tmp_path / 'inventory.yml', {'shop': source_vars(pg, database, reports)})
    assert run_playbook_file('pgcdc.clickpipes.prepare', inventory=inventory).rc == 0
    pg.execute('REVOKE SELECT ON lines FROM clickpipes_user', dbname=database)

    repair = run_playbook_file('pgcdc.clickpipes.prepare', inventory=inventory)
    assert repair.rc == 0, repair
    assert modules_run(repair) == ['replication_grants']
    assert json.loads((reports / 'shop.json').read_text())['changes']['grants'] == ['GRANT SELECT ON TABLE "public"."lines" TO "clickpipes_user"']
    assert pg.query("SELECT has_table_privilege('clickpipes_user', 'lines', 'SELECT')", dbname=database) == [(True,)]


def test_rerun_applies_publication_options_no_check_reads(pg, database, tmp_path):
    """No check looks at truncate or at exact: a re-run that asks for other operations, or for exact, starts the
    publication module, and only it."""
    pg.execute('CREATE TABLE orders (id int PRIMARY KEY)', dbname=database)
    reports = tmp_path / 'reports'
    path = tmp_path / 'inventory.yml'
    assert run_playbook_file('pgcdc.clickpipes.prepare', inventory=write_inventory(path, {'shop': source_vars(pg, database, reports)})).rc == 0

    without_truncate = dict(clickpipes_publication_operations=['insert', 'update', 'delete'])
    for options in (without_truncate, dict(without_truncate, clickpipes_publication_exact=True)):
        inventory = write_inventory(path, {'shop': source_vars(pg, database, reports, **options)})
        run = run_playbook_file('pgcdc.clickpipes.prepare', inventory=inventory)
        assert run.rc == 0, run
        assert modules_run(run) == ['publication']
    assert pg.query("SELECT pubtruncate FROM pg_publication WHERE pubname = 'clickpipes_publication'", dbname=database) == [(False,)]


def test_each_warning_shows_once(pg, database, tmp_path):
    """A wrong password (which this run does not rotate) blocks the run, TOAST is a warning no module manages: the run
    shows each once, from the preflight, and writes nothing."""
    pg.execute('CREATE TABLE orders (id int PRIMARY KEY, note text)', dbname=database)
    pg.execute("CREATE ROLE clickpipes_user LOGIN REPLICATION PASSWORD 'another password'", dbname=database)
    inventory = write_inventory(tmp_path / 'inventory.yml', {'shop': source_vars(pg, database, tmp_path / 'reports',
                                                                                 clickpipes_fail_on='never')})
    run = run_playbook_file('pgcdc.clickpipes.prepare', inventory=inventory)
    assert run.rc == 2 and 'nothing was changed' in run.stdout, run
    lines = warnings_of(run)
    assert len(lines) == len(set(lines)), lines
    assert [line for line in lines if 'replication_connection (error)' in line] and [line for line in lines if 'toast_columns' in line]


def test_without_a_password_the_login_is_not_checked(pg, database, tmp_path):
    """No clickpipes_password: both checks leave the password out (no placeholder reaches the replication login)."""
    pg.execute('CREATE TABLE orders (id int PRIMARY KEY)', dbname=database)
    pg.execute('CREATE ROLE clickpipes_user LOGIN REPLICATION', dbname=database)
    reports = tmp_path / 'reports'
    inventory = write_inventory(tmp_path / 'inventory.yml', {'shop': source_vars(pg, database, reports, clickpipes_password='')})
    run = run_playbook_file('pgcdc.clickpipes.prepare', inventory=inventory)
    assert run.rc == 0, run
    findings = dict((item['id'], item) for item in json.loads((reports / 'shop.json').read_text())['findings'])
    assert findings['replication_connection']['status'] == 'skipped'
    assert 'no password' in findings['replication_connection']['observed']


def test_each_phase_runs_alone_by_its_tag(pg, database, tmp_path):
    """The tags the README lists: preflight, verify and report only read; prepare checks first, then writes."""
    pg.execute('CREATE TABLE orders (id int PRIMARY KEY)', dbname=database)
    reports = tmp_path / 'reports'
    inventory = write_inventory(tmp_path / 'inventory.yml', {'shop': source_vars(pg, database, reports, clickpipes_fail_on='never')})
    before = snapshot(pg, database)

    read_only = run_playbook_file('pgcdc.clickpipes.prepare', inventory=inventory, env=dict(ANSIBLE_RUN_TAGS='preflight,report'))
    assert read_only.rc == 0, read_only
    assert modules_run(read_only) == [] and snapshot(pg, database) == before
    assert json.loads((reports / 'shop.json').read_text())['ready'] is False

    (reports / 'shop.json').unlink()
    verify = run_playbook_file('pgcdc.clickpipes.prepare', inventory=inventory, env=dict(ANSIBLE_RUN_TAGS='verify'))
    assert verify.rc == 0, verify
    assert modules_run(verify) == [] and verify.result(ENGINE, 'shop')['summary']['ready'] is False
    assert snapshot(pg, database) == before and not (reports / 'shop.json').exists()

    prepare = run_playbook_file('pgcdc.clickpipes.prepare', inventory=inventory, env=dict(ANSIBLE_RUN_TAGS='prepare'))
    assert prepare.rc == 0, prepare
    assert modules_run(prepare) == WRITING_MODULES
    # No verify: the final findings are the preflight's, from before the user existed.
    assert prepare.result(ENGINE, 'shop')['summary']['ready'] is False
    assert pg.query("SELECT count(*) FROM pg_publication_tables WHERE pubname = 'clickpipes_publication'", dbname=database) == [(1,)]


def test_skipping_prepare_checks_once_and_writes_nothing(pg, database, tmp_path):
    pg.execute('CREATE TABLE orders (id int PRIMARY KEY)', dbname=database)
    inventory = write_inventory(tmp_path / 'inventory.yml', {'shop': source_vars(pg, database, tmp_path / 'reports', clickpipes_fail_on='never')})
    before = snapshot(pg, database)
    run = run_playbook_file('pgcdc.clickpipes.prepare', inventory=inventory, env=dict(ANSIBLE_SKIP_TAGS='prepare'))
    assert run.rc == 0, run
    assert modules_run(run) == [] and snapshot(pg, database) == before


def test_verify_changes_nothing_and_fails_on_errors(pg, database, tmp_path):
    pg.execute('CREATE TABLE orders (id int PRIMARY KEY)', dbname=database)
    reports = tmp_path / 'reports'
    inventory = write_inventory(tmp_path / 'inventory.yml', {'fresh': source_vars(pg, database, reports)})
    before = snapshot(pg, database)
    run = run_playbook_file('pgcdc.clickpipes.verify', inventory=inventory)
    assert run.rc == 2, run.stdout
    assert snapshot(pg, database) == before
    report = json.loads((reports / 'fresh.json').read_text())
    assert report['ready'] is False and 'user_exists' in [f['id'] for f in report['findings'] if f['status'] == 'error']
    assert 'not ready for ClickPipes' in run.stdout

    assert run_playbook_file('pgcdc.clickpipes.prepare', inventory=inventory).rc == 0
    assert run_playbook_file('pgcdc.clickpipes.verify', inventory=inventory).rc == 0


def test_blocked_source_stops_before_changing_anything(make_cluster, tmp_path):
    cluster = make_cluster(settings=dict(wal_level='replica'))
    cluster.execute('CREATE TABLE orders (id int PRIMARY KEY)')
    reports = tmp_path / 'reports'
    inventory = write_inventory(tmp_path / 'inventory.yml', {'replica': source_vars(cluster, 'postgres', reports)})
    before = snapshot(cluster, 'postgres')
    run = run_playbook_file('pgcdc.clickpipes.prepare', inventory=inventory)
    assert run.rc == 2
    assert 'cannot be a ClickPipes CDC source until this is fixed; nothing was changed.' in run.stdout
    assert 'SQL: ALTER SYSTEM SET wal_level = logical' in run.stdout
    assert snapshot(cluster, 'postgres') == before
    assert json.loads((reports / 'replica.json').read_text())['blocked'] == ['wal_level']


def test_manage_settings_sets_them_and_asks_for_a_restart(make_cluster, tmp_path):
    cluster = make_cluster(settings=dict(wal_level='replica', max_wal_senders='4'))
    cluster.execute('CREATE TABLE orders (id int PRIMARY KEY)')
    started = cluster.query('SELECT pg_postmaster_start_time()')
    reports = tmp_path / 'reports'
    inventory = write_inventory(tmp_path / 'inventory.yml', {'selfhosted': source_vars(
        cluster, 'postgres', reports, clickpipes_manage_settings=True)})
    run = run_playbook_file('pgcdc.clickpipes.prepare', inventory=inventory)
    assert run.rc == 2
    assert 'Restart PostgreSQL (the role never does), then re-run.' in run.stdout
    assert cluster.query('SELECT pg_postmaster_start_time()') == started, 'the role must never restart the server'
    pending = cluster.query("SELECT name FROM pg_settings WHERE pending_restart ORDER BY 1")
    assert ('max_wal_senders',) in pending and ('wal_level',) in pending
    report = json.loads((reports / 'selfhosted.json').read_text())
    assert set(report['restart_pending']) >= {'wal_level', 'max_wal_senders'}
    assert set(report['changes']['settings']) >= {'wal_level', 'max_wal_senders'}

    cluster.restart()
    after_restart = run_playbook_file('pgcdc.clickpipes.prepare', inventory=inventory)
    assert after_restart.rc == 0, after_restart.stdout
    assert cluster.query('SHOW wal_level') == [('logical',)]
    # The verify playbook never sets settings, whatever the inventory says.
    verify = run_playbook_file('pgcdc.clickpipes.verify', inventory=inventory)
    assert verify.rc == 0, verify.stdout


def test_manage_settings_needs_a_superuser(pg, database, managed_admin, tmp_path):
    variables = source_vars(pg, database, tmp_path / 'reports', clickpipes_manage_settings=True,
                            clickpipes_login_user=managed_admin['user'], clickpipes_login_password=managed_admin['password'])
    inventory = write_inventory(tmp_path / 'inventory.yml', {'managed': variables})
    for tags in ('all', 'prepare'):
        run = run_playbook_file('pgcdc.clickpipes.prepare', inventory=inventory, env=dict(ANSIBLE_RUN_TAGS=tags))
        assert run.rc == 2 and 'needs a superuser' in run.stdout, (tags, run.stdout)


def test_one_run_prepares_several_sources(pg, database, subscriber, tmp_path):
    import pgcluster  # pylint: disable=import-outside-toplevel
    second_db = database + '_b'
    pgcluster.create_database(pg, second_db)
    try:
        for name in (database, second_db):
            pg.execute('CREATE TABLE orders (id int PRIMARY KEY)', dbname=name)
        hosts = {'first': source_vars(pg, database, tmp_path / 'reports'),
                 'second': source_vars(pg, second_db, tmp_path / 'reports', clickpipes_publication='second_pub')}
        run = run_playbook_file('pgcdc.clickpipes.prepare', inventory=write_inventory(tmp_path / 'inventory.yml', hosts),
                                env=dict(ANSIBLE_SHOW_CUSTOM_STATS='true'))
        assert run.rc == 0, run.stdout
        assert 'first' in run.stdout.split('CUSTOM STATS')[1] and 'second' in run.stdout.split('CUSTOM STATS')[1]
        assert pg.query("SELECT pubname FROM pg_publication", dbname=second_db) == [('second_pub',)]
    finally:
        pgcluster.drop_database(pg, second_db)


def test_source_report_reads_the_variable_it_is_named_skips_without_a_check_and_says_where_it_cannot_write(pg, database, tmp_path):
    pg.execute('CREATE TABLE orders (id int PRIMARY KEY)', dbname=database)
    tasks = [dict(name='prepare', register='source', **{'pgcdc.clickpipes.prepare_source': dict(password='pw-1')}),
             dict(name='report', **{'pgcdc.clickpipes.source_report': dict(result_var='source', report_dir=str(tmp_path))}),
             dict(name='nothing to report', **{'pgcdc.clickpipes.source_report': dict(result_var='no_such_result')}),
             dict(name='unwritable', ignore_errors=True, **{'pgcdc.clickpipes.source_report': dict(
                 result_var='source', report_dir=str(tmp_path / 'localhost.json' / 'reports'))})]
    run = run_playbook(tasks, module_defaults=login(pg, database))
    assert run.rc == 0, run
    report = run.result('report')
    assert report['ready'] is True and report['host'] == 'localhost' and report['changes']['user']
    written = json.loads((tmp_path / 'localhost.json').read_text())
    assert set(written) == set(report) - {'changed', 'ansible_stats', 'files'}
    assert all(written[key] == report[key] for key in written)
    assert report['ansible_stats']['data']['clickpipes']['localhost']['ready'] is True
    assert run.status('nothing to report') == 'skipped'
    assert run.result('unwritable')['msg'].startswith('Could not write the report to %s' % (tmp_path / 'localhost.json' / 'reports'))
    assert 'to a folder this user can write' in run.result('unwritable')['msg']
