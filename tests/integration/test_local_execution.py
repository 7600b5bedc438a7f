"""The modules run inside Ansible's worker process on a local connection, and as modules otherwise, with one outcome."""

from __future__ import annotations

import subprocess
import sys

import pytest

from playbook import run_playbook
from support import HOSTILE_PASSWORD, fresh_roles, login, snapshot

pytestmark = pytest.mark.usefixtures(fresh_roles.__name__)

IN_PROCESS = 'runs in the worker process'
AS_MODULE = 'AnsiballZ_'
MASKED = 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER'
TASKS = [
    dict(name='user', **{'pgcdc.clickpipes.replication_user': dict(name='clickpipes_user', password=HOSTILE_PASSWORD)}),
    dict(name='grants', **{'pgcdc.clickpipes.replication_grants': dict(user='clickpipes_user', schemas=['public'])}),
    dict(name='publication', **{'pgcdc.clickpipes.publication': dict(name='clickpipes_publication', schemas=['public'])}),
    dict(name='check', **{'pgcdc.clickpipes.source_check': dict(password=HOSTILE_PASSWORD, fail_on='never', emit_warnings='all')}),
    dict(name='engine', **{'pgcdc.clickpipes.prepare_source': dict(password=HOSTILE_PASSWORD, fail_on='never')}),
    dict(name='not ready per fail_on', ignore_errors=True, **{'pgcdc.clickpipes.source_check': dict(fail_on='warning')}),
    dict(name='refused by the logic', ignore_errors=True,
         **{'pgcdc.clickpipes.source_check': dict(skip_checks=['no_such_check'])}),
    dict(name='refused by validation', ignore_errors=True,
         **{'pgcdc.clickpipes.publication': dict(name='clickpipes_publication', mode='everything')}),
    dict(name='unknown option', ignore_errors=True,
         **{'pgcdc.clickpipes.replication_user': dict(name='clickpipes_user', superuser=True)}),
]


def executed_as_modules(tasks):
    """The tasks with an environment: Ansible then executes the module in a new process, as it always did."""
    return [dict(task, environment=dict(PGCDC_TEST='executed as a module')) for task in tasks]


def warnings(run):
    return [line for line in run.stderr.splitlines() if line.startswith('[WARNING]')]


@pytest.mark.parametrize('check, diff', [(True, True), (False, True), (False, False)],
                         ids=['check mode', 'applied', 'applied without diff'])
def test_same_results_in_the_worker_and_as_a_module(pg, database, check, diff):
    pg.execute('CREATE TABLE public.orders (id int PRIMARY KEY, note text)', dbname=database)
    before = snapshot(pg, database)
    here = run_playbook(TASKS, module_defaults=login(pg, database), check=check, diff=diff, verbosity=3)
    if check:
        assert snapshot(pg, database) == before, 'check mode changed the catalog'
    else:
        pg.execute('DROP PUBLICATION clickpipes_publication; DROP OWNED BY clickpipes_user; DROP ROLE clickpipes_user',
                   dbname=database)
    there = run_playbook(executed_as_modules(TASKS), module_defaults=login(pg, database), check=check, diff=diff, verbosity=3)
    assert IN_PROCESS in here.stdout and AS_MODULE not in here.stdout, here
    assert AS_MODULE in there.stdout and IN_PROCESS not in there.stdout, there
    for task in TASKS:
        assert here.result(task['name']) == there.result(task['name']), task['name']
    assert here.result('user')['invocation']['module_args']['password'] == MASKED
    assert here.result('check')['invocation']['module_args']['login_password'] == MASKED
    assert ('diff' in here.result('user')) is diff
    assert here.result('not ready per fail_on')['msg'].startswith('The source is not ready for ClickPipes (fail_on: warning)')
    assert here.result('not ready per fail_on')['findings']
    assert here.result('refused by the logic')['msg'].startswith('Unknown check id(s) in skip_checks: no_such_check.')
    assert "value of mode must be one of" in here.result('refused by validation')['msg']
    assert 'Unsupported parameters for (pgcdc.clickpipes.replication_user) module: superuser' in here.result('unknown option')['msg']
    assert warnings(here) == warnings(there) and any('[generic] ssl (warning)' in line for line in warnings(here))
    for run in (here, there):
        assert HOSTILE_PASSWORD not in run.stdout + run.stderr


def test_another_python_runs_the_module(pg, database, tmp_path):
    """An interpreter other than the controller's (here a virtual environment without psycopg2) is respected."""
    venv = tmp_path / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], check=True)
    task = dict(name='check', ignore_errors=True, **{'pgcdc.clickpipes.source_check': dict(fail_on='never')})
    run = run_playbook([task], module_defaults=login(pg, database), verbosity=3,
                       vars=dict(ansible_python_interpreter=str(venv / 'bin' / 'python')))
    assert AS_MODULE in run.stdout and IN_PROCESS not in run.stdout, run
    assert run.result('check')['msg'] == 'psycopg2 is required on the host that runs the module: pip install psycopg2-binary'


@pytest.mark.parametrize('keywords', [{'async': 60, 'poll': 1}, {'timeout': 60}], ids=['async', 'timeout'])
def test_async_and_timeout_run_the_module(pg, database, keywords):
    task = dict(keywords, name='check', **{'pgcdc.clickpipes.source_check': dict(fail_on='never')})
    run = run_playbook([task], module_defaults=login(pg, database), verbosity=3)
    assert run.rc == 0, run
    assert AS_MODULE in run.stdout and IN_PROCESS not in run.stdout, run
    assert run.result('check')['summary']['ok'] > 0
