"""The replication password never appears in results, verbose output or the server log, and still logs in over SCRAM."""

from __future__ import annotations

import json

import pytest

from playbook import run_playbook
from support import fresh_roles, HOSTILE_PASSWORD, LogWindow, login, prepare_tasks


pytestmark = pytest.mark.usefixtures(fresh_roles.__name__)


def test_password_appears_nowhere_and_works(pg, database):
    pg.execute('CREATE TABLE orders (id int PRIMARY KEY)', dbname=database)
    window = LogWindow(pg)
    tasks = prepare_tasks(user='cp_secret', password=HOSTILE_PASSWORD)
    tasks.append(dict(name='check', **{'pgcdc.clickpipes.source_check': dict(
        user='cp_secret', password=HOSTILE_PASSWORD, fail_on='never')}))
    tasks[0]['pgcdc.clickpipes.replication_user']['update_password'] = 'always'
    first = run_playbook(tasks, module_defaults=login(pg, database), verbosity=4, diff=True)
    second = run_playbook(tasks, module_defaults=login(pg, database), verbosity=4, diff=True)
    assert first.rc == 0 and second.rc == 0, first.stdout[-3000:]
    assert second.result('user')['changed'] is False, 'update_password: always must see the password is already right'
    assert [f['status'] for f in second.result('check')['findings'] if f['id'] == 'replication_connection'] == ['ok']

    for fragment in (HOSTILE_PASSWORD, HOSTILE_PASSWORD.encode('unicode_escape').decode(), json.dumps(HOSTILE_PASSWORD)[1:-1]):
        for run in (first, second):
            assert fragment not in run.stdout and fragment not in run.stderr
            assert fragment not in json.dumps([result for _name, result in run.results])
        assert fragment not in window.text()
    assert "PASSWORD '********'" in first.result('user')['queries'][0]
    assert 'SCRAM-SHA-256$' in window.text(), 'the server must have received a SCRAM verifier, not the password'

    conn = pg.connect(user='cp_secret', password=HOSTILE_PASSWORD, dbname=database)
    try:
        assert pg.query("SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'cp_secret'") == [(True,)]
    finally:
        conn.close()
