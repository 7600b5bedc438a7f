"""Ctrl-C while prepare waits for a lock: the server-side statement is cancelled at once, the playbook exits, and the
interrupted transaction leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest
import yaml

from playbook import ANSIBLE_PLAYBOOK, _environment
from support import fresh_roles, snapshot

import pgcluster

pytestmark = pytest.mark.usefixtures(fresh_roles.__name__)

# Far longer than the test may take: only the interrupt can end the wait in time.
LOCK_TIMEOUT = '60s'
CANCELLED_WITHIN_SECONDS = 5
EXITED_WITHIN_SECONDS = 30
OUR_STATEMENTS = "SELECT pid, state, wait_event_type FROM pg_stat_activity WHERE application_name = 'pgcdc.clickpipes' AND state = 'active'"


def write_inventory(path, pg, database, **extra):
    variables = dict(clickpipes_login_host=pg.host, clickpipes_login_port=pg.port, clickpipes_login_user=pg.superuser,
                     clickpipes_login_password=pg.password, clickpipes_login_db=database, clickpipes_password='pw-not-secret',
                     clickpipes_lock_timeout=LOCK_TIMEOUT)
    variables.update(extra)
    path.write_text(yaml.safe_dump(dict(clickpipes_sources=dict(hosts=dict(shop=variables)))))
    return str(path)


def module_interpreter(folder):
    """A Python that is not the controller's (a wrapper around it), so the modules execute as modules, in a process of
    their own, as on older ansible-core or a remote connection."""
    wrapper = folder / 'python'
    wrapper.write_text('#!/bin/sh\nexec %s "$@"\n' % sys.executable)
    wrapper.chmod(0o755)
    return str(wrapper)


def run_playbook(inventory, workdir):
    env = _environment(workdir, os.path.join(workdir, 'results.jsonl'), None)
    return subprocess.Popen([ANSIBLE_PLAYBOOK, '-i', inventory, 'pgcdc.clickpipes.prepare'], cwd=workdir, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


@pytest.mark.parametrize('execution', ['worker', 'module'])
def test_ctrl_c_cancels_the_waiting_statement_at_once(pg, database, tmp_path, execution):
    pg.execute('CREATE TABLE orders (id int PRIMARY KEY)', dbname=database)
    extra = dict(clickpipes_python=module_interpreter(tmp_path)) if execution == 'module' else {}
    inventory = write_inventory(tmp_path / 'inventory.yml', pg, database, **extra)
    workdir = tempfile.mkdtemp(prefix='pgcdc-interrupt-', dir=tmp_path)
    first = run_playbook(inventory, workdir)
    assert first.wait(timeout=120) == 0, first.stdout.read()
    # The default privileges let the user read the new table: only the publication has work, and waits for the lock.
    pg.execute('CREATE TABLE lines (id int PRIMARY KEY)', dbname=database)
    blocker = pg.connect(dbname=database)
    blocker.autocommit = False
    blocker.cursor().execute('LOCK TABLE lines IN ACCESS EXCLUSIVE MODE')
    before = snapshot(pg, database)
    playbook = run_playbook(inventory, workdir)
    try:
        pgcluster.wait_for(lambda: any(row[2] == 'Lock' for row in pg.query(OUR_STATEMENTS)), timeout=90,
                           message='prepare never waited for the lock')

        os.killpg(playbook.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        interrupted = time.monotonic()

        pgcluster.wait_for(lambda: not pg.query(OUR_STATEMENTS), timeout=CANCELLED_WITHIN_SECONDS,
                           message='the waiting statement was not cancelled in time')
        output = playbook.communicate(timeout=EXITED_WITHIN_SECONDS)[0]
        assert time.monotonic() - interrupted < EXITED_WITHIN_SECONDS
        assert playbook.returncode != 0, output
    finally:
        if playbook.poll() is None:
            os.killpg(playbook.pid, signal.SIGKILL)
            playbook.wait()
        blocker.rollback()
        blocker.close()
    assert snapshot(pg, database) == before
    assert pg.query("SELECT count(*) FROM pg_publication_tables WHERE tablename = 'lines'", dbname=database) == [(0,)]
