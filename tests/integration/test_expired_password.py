"""A replication role whose password expired (VALID UNTIL in the past) or soon will: said as such, with the fix, and
never "fixed" by setting the same password again on every run."""

from __future__ import annotations

import pytest

from playbook import run_playbook
from support import LogWindow, fresh_roles, login, prepare_tasks

pytestmark = pytest.mark.usefixtures(fresh_roles.__name__)

PASSWORD = 'pw-not-secret'
FIX = "ALTER ROLE \"clickpipes_user\" VALID UNTIL 'infinity'"


def prepared(pg, database):
    pg.execute('CREATE TABLE orders (id int PRIMARY KEY)', dbname=database)
    assert run_playbook(prepare_tasks(password=PASSWORD), module_defaults=login(pg, database)).rc == 0


def findings(pg, database):
    run = run_playbook([dict(name='check', **{'pgcdc.clickpipes.source_check': dict(password=PASSWORD, fail_on='never')})],
                       module_defaults=login(pg, database))
    assert run.rc == 0, run
    return dict((item['id'], item) for item in run.result('check')['findings'])


def stored_password(pg):
    return pg.query("SELECT rolpassword FROM pg_authid WHERE rolname = 'clickpipes_user'")


def test_an_expired_password_is_named_with_its_date_and_the_fix(pg, database):
    prepared(pg, database)
    pg.execute("ALTER ROLE clickpipes_user VALID UNTIL '2001-02-03 04:05:06+00'")

    found = findings(pg, database)

    login_finding, connection = found['user_login'], found['replication_connection']
    assert login_finding['status'] == 'error', login_finding
    assert 'The password of role clickpipes_user expired on 2001-02-03 04:05:06 UTC' in login_finding['message'], login_finding
    assert login_finding['fix']['sql'] == [FIX] and login_finding['fix']['module'] is None, login_finding
    assert connection['status'] == 'error' and 'expired on 2001-02-03' in connection['message'], connection
    assert 'rotate it' not in connection['message'] and connection['fix']['module'] is None, connection


def test_a_password_expiring_within_30_days_is_a_warning(pg, database):
    prepared(pg, database)
    pg.execute("DO $$ BEGIN EXECUTE format('ALTER ROLE clickpipes_user VALID UNTIL %L', now() + interval '10 days'); END $$")

    found = findings(pg, database)

    assert found['user_login']['status'] == 'warning', found['user_login']
    assert 'expires on' in found['user_login']['message'] and 'ClickPipes stops' in found['user_login']['message']
    assert found['user_login']['fix']['sql'] == [FIX]
    assert found['replication_connection']['status'] == 'ok', found['replication_connection']


def test_a_far_or_infinite_valid_until_is_fine(pg, database):
    prepared(pg, database)
    pg.execute("ALTER ROLE clickpipes_user VALID UNTIL 'infinity'")
    assert findings(pg, database)['user_login']['status'] == 'ok'


def test_update_password_always_refuses_an_expired_role_instead_of_setting_it_again(pg, database):
    prepared(pg, database)
    pg.execute("ALTER ROLE clickpipes_user VALID UNTIL '2001-02-03 04:05:06+00'")
    before = stored_password(pg)
    task = prepare_tasks(password=PASSWORD, user_options=dict(update_password='always'))[:1]

    for _attempt in range(2):
        window = LogWindow(pg)
        run = run_playbook(task, module_defaults=login(pg, database))
        result = run.result('user')
        assert run.rc == 2 and 'expired on 2001-02-03 04:05:06 UTC' in result['msg'] and FIX in result['msg'], run
        assert window.write_statements() == [] and stored_password(pg) == before


def test_prepare_reports_the_expiry_and_writes_nothing_for_it(pg, database):
    """With the default update_password (on_create), the run starts no step for the expiry: the check says what to do."""
    prepared(pg, database)
    pg.execute("ALTER ROLE clickpipes_user VALID UNTIL '2001-02-03 04:05:06+00'")
    task = dict(name='engine', **{'pgcdc.clickpipes.prepare_source': dict(password=PASSWORD)})

    window = LogWindow(pg)
    run = run_playbook([task], module_defaults=login(pg, database))

    result = run.result('engine')
    assert run.rc == 2 and result['modules_run'] == [] and window.write_statements() == [], run
    assert 'user_login: The password of role clickpipes_user expired on 2001-02-03' in result['msg'], result['msg']
