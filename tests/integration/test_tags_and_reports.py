"""The roles as users include them and the playbooks as pipelines run them: which phases the tags select, the report
after a failure, the exit code of a database that cannot be reached, and BYPASSRLS for the replication user."""

from __future__ import annotations

import json
import socket

import pytest
import yaml

from playbook import run_playbook, run_playbook_file
from support import HOSTILE_PASSWORD, fresh_roles, snapshot

pytestmark = pytest.mark.usefixtures(fresh_roles.__name__)

ENGINE = 'Check the source, create what it lacks (user, grants, publication), check again'
REPORT = 'Report (warnings above, <host>.json and .md in clickpipes_report_dir, custom stats)'
WRITING_MODULES = ['replication_user', 'replication_grants', 'publication']
NO_PHASE = 'checked nothing and wrote nothing: no phase ran'


def role_task(name):
    return 'pgcdc.clickpipes.%s : %s' % ('source', name)


def source_vars(cluster, database, report_dir, **extra):
    variables = dict(clickpipes_login_host=cluster.host, clickpipes_login_port=cluster.port, clickpipes_login_user=cluster.superuser,
                     clickpipes_login_password=cluster.password, clickpipes_login_db=database, clickpipes_report_dir=str(report_dir),
                     clickpipes_password=HOSTILE_PASSWORD, clickpipes_fail_on='never')
    variables.update(extra)
    return variables


def write_inventory(path, hosts):
    path.write_text(yaml.safe_dump(dict(clickpipes_sources=dict(hosts=hosts))))
    return str(path)


def included(role, variables):
    """The user's own playbook: the role included under the user's own tag."""
    return [dict(name='Make it a ClickPipes source', tags=['clickpipes'], vars=variables,
                 **{'ansible.builtin.include_role': dict(name='pgcdc.clickpipes.%s' % role)})]


def report_of(folder, stem):
    return json.loads((folder / ('%s.json' % stem)).read_text())


def free_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize('role', ['source', 'planetscale', 'neon'])
def test_a_users_own_tag_on_include_role_runs_every_phase_and_the_report(pg, database, tmp_path, role):
    pg.execute('CREATE TABLE orders (id int PRIMARY KEY)', dbname=database)
    reports = tmp_path / 'reports'
    # The provider roles on a plain server: no TLS here, and the provider checks may fail; the phases are the point.
    variables = source_vars(pg, database, reports, clickpipes_ssl_mode='disable', clickpipes_neon_enable_logical_replication=True,
                            clickpipes_neon_project_id='p-1', clickpipes_neon_api_key='k-1',
                            clickpipes_neon_api_url='http://127.0.0.1:%d' % free_port())
    run = run_playbook(included(role, variables), env=dict(ANSIBLE_RUN_TAGS='clickpipes'))
    assert run.rc == 0, run
    assert run.result(role_task(ENGINE))['modules_run'] == WRITING_MODULES, run
    assert pg.query("SELECT count(*) FROM pg_publication_tables WHERE pubname = 'clickpipes_publication'", dbname=database) == [(1,)]
    assert report_of(reports, 'localhost')['findings']
    if role == 'neon':
        # The opt-in API step belongs to the prepare phase: it read wal_level (logical here, so no PATCH was sent).
        assert run.status('pgcdc.clickpipes.neon : Read wal_level') == 'ok', run


@pytest.mark.parametrize('playbook', ['pgcdc.clickpipes.prepare', 'pgcdc.clickpipes.verify'])
def test_tags_that_leave_no_phase_fail_the_host_and_say_which_tags_to_use(pg, database, tmp_path, playbook):
    pg.execute('CREATE TABLE orders (id int PRIMARY KEY)', dbname=database)
    reports = tmp_path / 'reports'
    inventory = write_inventory(tmp_path / 'inventory.yml', {'shop': source_vars(pg, database, reports)})
    before = snapshot(pg, database)
    for env in (dict(ANSIBLE_RUN_TAGS='report'), dict(ANSIBLE_SKIP_TAGS='preflight,prepare,verify')):
        run = run_playbook_file(playbook, inventory=inventory, env=env)
        assert run.rc == 2, run
        assert run.status(role_task(REPORT), 'shop') == 'failed'
        message = run.result(role_task(REPORT), 'shop')['msg']
        assert NO_PHASE in message and '--tags preflight,report' in message, message
        assert snapshot(pg, database) == before and not reports.exists()


# The README's tag combinations: (tags, skip tags, the modules that write, whether the report files are written).
DOCUMENTED = [
    ('', '', WRITING_MODULES, True),
    ('preflight,report', '', [], True),
    ('verify', '', [], False),
    ('', 'verify', WRITING_MODULES, True),
    ('', 'prepare', [], True),
]


@pytest.mark.parametrize('playbook', ['prepare', 'verify'])
@pytest.mark.parametrize('tags, skip_tags, writers, reported', DOCUMENTED)
def test_the_documented_tags_of_the_playbooks(pg, database, tmp_path, playbook, tags, skip_tags, writers, reported):
    pg.execute('CREATE TABLE orders (id int PRIMARY KEY)', dbname=database)
    reports = tmp_path / 'reports'
    inventory = write_inventory(tmp_path / 'inventory.yml', {'shop': source_vars(pg, database, reports)})
    before = snapshot(pg, database)
    env = dict(ANSIBLE_RUN_TAGS=tags or None, ANSIBLE_SKIP_TAGS=skip_tags or None)
    run = run_playbook_file('pgcdc.clickpipes.%s' % playbook, inventory=inventory, env=env)
    assert run.rc == 0, run
    engine = run.result(role_task(ENGINE), 'shop')
    assert engine['modules_run'] == (writers if playbook == 'prepare' else []) and 'findings' in engine
    assert (reports / 'shop.json').exists() is reported
    if playbook == 'verify':
        assert snapshot(pg, database) == before


def test_the_verify_playbook_with_the_users_tag_checks_and_reports(pg, database, tmp_path):
    pg.execute('CREATE TABLE orders (id int PRIMARY KEY)', dbname=database)
    reports = tmp_path / 'reports'
    inventory = write_inventory(tmp_path / 'inventory.yml', {'shop': source_vars(pg, database, reports, clickpipes_fail_on='error')})
    before = snapshot(pg, database)
    run = run_playbook_file('pgcdc.clickpipes.verify', inventory=inventory, env=dict(ANSIBLE_RUN_TAGS='nightly'))
    assert run.rc == 2 and 'not ready for ClickPipes' in run.stdout, run
    assert snapshot(pg, database) == before and report_of(reports, 'shop')['ready'] is False


def locked(pg, database, statement):
    conn = pg.connect(dbname=database)
    conn.autocommit = False
    conn.cursor().execute(statement)
    return conn


def test_a_failed_writing_step_still_writes_the_report_and_says_nothing_was_applied(pg, database, tmp_path):
    pg.execute('CREATE TABLE orders (id int PRIMARY KEY); CREATE TABLE notes (id int PRIMARY KEY)', dbname=database)
    reports = tmp_path / 'reports'
    inventory = write_inventory(tmp_path / 'inventory.yml', {'shop': source_vars(pg, database, reports, clickpipes_lock_timeout='1s')})
    blocker = locked(pg, database, 'LOCK TABLE notes IN ACCESS EXCLUSIVE MODE')
    try:
        run = run_playbook_file('pgcdc.clickpipes.prepare', inventory=inventory)
    finally:
        blocker.rollback()
        blocker.close()
    assert run.rc == 2 and run.status(role_task(ENGINE), 'shop') == 'failed', run
    failed = run.result(role_task(ENGINE), 'shop')
    report = report_of(reports, 'shop')
    assert report['ready'] is False and report['failure'] == failed['msg'] and 'Timed out waiting for a lock' in report['failure']
    assert report['modules_run'] == failed['modules_run'] and report['modules_run'][0] == 'replication_user'
    assert failed['msg'].endswith('Nothing was applied.') and report['changes'] == dict(user=[], grants=[], publication=[], settings=[])
    assert 'user_exists' in [item['id'] for item in report['findings'] if item['status'] == 'error'], 'the preflight is reported'
    assert HOSTILE_PASSWORD not in (reports / 'shop.json').read_text() + (reports / 'shop.md').read_text()
    assert 'The run failed' in (reports / 'shop.md').read_text()
    assert run.result(role_task(REPORT), 'shop')['ansible_stats']['data']['clickpipes']['shop']['ready'] is False


@pytest.mark.parametrize('path', ['worker', 'module'])
def test_a_database_that_cannot_be_reached_is_unreachable_and_still_reported(pg, database, tmp_path, path):
    """Exit code 4, from the worker and from the executed module (a task environment takes that path); the report is
    written first. A wrong admin password counts as unreachable too: the source could not be examined."""
    reports = tmp_path / 'reports'
    down = source_vars(pg, database, reports, clickpipes_login_port=free_port())
    wrong = source_vars(pg, database, reports, clickpipes_login_password='not-the-password')
    for variables, hint in ((down, 'Check login_host and login_port'), (wrong, 'Check the user name and password')):
        tasks = included('source', variables)
        if path == 'module':
            tasks = [dict(name='With an environment', environment=dict(PGCDC_TEST_PATH='module'), block=tasks)]
        run = run_playbook(tasks, verbosity=3)
        assert run.rc == 4, run
        assert run.status(role_task(REPORT)) == 'unreachable', run
        ran_here = 'pgcdc.clickpipes.prepare_source runs in the worker process' in run.stdout
        assert ran_here is (path == 'worker'), run
        report = report_of(reports, 'localhost')
        assert report['ready'] is False and report['unreachable'] is True and hint in report['failure'], report
        assert 'not-the-password' not in run.stdout + (reports / 'localhost.json').read_text()


@pytest.mark.parametrize('playbook', ['pgcdc.clickpipes.prepare', 'pgcdc.clickpipes.verify'])
def test_the_playbooks_exit_4_for_a_database_that_is_down_and_2_for_one_not_ready(pg, database, tmp_path, playbook):
    pg.execute('CREATE TABLE orders (id int PRIMARY KEY)', dbname=database)
    reports = tmp_path / 'reports'
    hosts = {'eu/down': source_vars(pg, database, reports, clickpipes_login_port=free_port())}
    inventory = write_inventory(tmp_path / 'inventory.yml', hosts)
    run = run_playbook_file(playbook, inventory=inventory)
    assert run.rc == 4, run
    assert report_of(reports, 'eu%2fdown')['unreachable'] is True
    # A source that is not ready beside it: 4 still wins, and that source is failed, with its report.
    hosts['shop'] = source_vars(pg, database, reports, clickpipes_fail_on='error', clickpipes_check_only=True)
    inventory = write_inventory(tmp_path / 'inventory.yml', hosts)
    run = run_playbook_file(playbook, inventory=inventory)
    assert run.rc == 4 and run.status(role_task(ENGINE), 'shop') == 'failed', run
    assert report_of(reports, 'shop')['ready'] is False and report_of(reports, 'shop')['failure']


def test_a_module_that_cannot_connect_is_unreachable(tmp_path):
    task = dict(name='check', **{'pgcdc.clickpipes.source_check': dict(login_host='127.0.0.1', login_port=free_port())})
    run = run_playbook([task])
    assert run.rc == 4 and run.status('check') == 'unreachable', run
    assert 'Could not connect to 127.0.0.1' in run.result('check')['msg']


def test_bypass_rls_lets_the_user_read_rows_row_level_security_hides(pg, database, tmp_path):
    pg.execute('CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, 3);'
               'ALTER TABLE orders ENABLE ROW LEVEL SECURITY', dbname=database)
    reports = tmp_path / 'reports'

    def rows_seen():
        with pg.connect(user='clickpipes_user', password=HOSTILE_PASSWORD, dbname=database) as conn, conn.cursor() as cursor:
            cursor.execute('SELECT count(*) FROM orders')
            return cursor.fetchone()[0]

    def bypass():
        return pg.query("SELECT rolbypassrls FROM pg_roles WHERE rolname = 'clickpipes_user'") == [(True,)]

    inventory = write_inventory(tmp_path / 'inventory.yml', {'shop': source_vars(pg, database, reports)})
    refused = run_playbook_file('pgcdc.clickpipes.prepare', inventory=inventory)
    assert refused.rc == 2 and report_of(reports, 'shop')['blocked'] == ['row_level_security'], refused
    assert pg.query("SELECT count(*) FROM pg_roles WHERE rolname = 'clickpipes_user'") == [(0,)], 'nothing was written'

    inventory = write_inventory(tmp_path / 'inventory.yml', {'shop': source_vars(pg, database, reports, clickpipes_bypass_rls=True)})
    run = run_playbook_file('pgcdc.clickpipes.prepare', inventory=inventory)
    assert run.rc == 0, run
    assert bypass() and rows_seen() == 3
    assert report_of(reports, 'shop')['ready'] is True
    assert [f['status'] for f in report_of(reports, 'shop')['findings'] if f['id'] == 'row_level_security'] == ['ok']

    # Left alone when the variable is false: the user step runs (NOLOGIN to repair) and keeps BYPASSRLS.
    pg.execute('ALTER ROLE clickpipes_user NOLOGIN')
    inventory = write_inventory(tmp_path / 'inventory.yml', {'shop': source_vars(pg, database, reports)})
    run = run_playbook_file('pgcdc.clickpipes.prepare', inventory=inventory)
    assert run.rc == 0 and 'replication_user' in run.result(role_task(ENGINE), 'shop')['modules_run'], run
    assert bypass() and rows_seen() == 3


def test_the_settings_entry_point_follows_the_same_tags(make_cluster, tmp_path):
    cluster = make_cluster(settings=dict(max_wal_senders='4'))
    cluster.execute('CREATE TABLE orders (id int PRIMARY KEY)')
    reports = tmp_path / 'reports'
    variables = source_vars(cluster, 'postgres', reports, clickpipes_manage_settings=True)
    inventory = write_inventory(tmp_path / 'inventory.yml', {'selfhosted': variables})

    look = run_playbook_file('pgcdc.clickpipes.prepare', inventory=inventory, env=dict(ANSIBLE_RUN_TAGS='preflight,report'))
    assert look.rc == 0, look
    assert look.result(role_task(ENGINE), 'selfhosted')['modules_run'] == [] and (reports / 'selfhosted.json').exists()
    assert cluster.query("SELECT count(*) FROM pg_settings WHERE pending_restart") == [(0,)]

    tasks = [dict(name='Make it a ClickPipes source', tags=['clickpipes'], vars=variables,
                  **{'ansible.builtin.include_role': dict(name='pgcdc.clickpipes.source', tasks_from='settings')})]
    run = run_playbook(tasks, env=dict(ANSIBLE_RUN_TAGS='clickpipes'))
    assert run.rc == 0, run
    assert cluster.query("SELECT name FROM pg_settings WHERE pending_restart") == [('max_wal_senders',)]
    assert run.result(role_task(ENGINE))['modules_run'] == WRITING_MODULES
    assert 'max_wal_senders' in report_of(reports, 'localhost')['changes']['settings']
