"""A migration holding ACCESS EXCLUSIVE on a table in scope: verify and prepare fail within lock_timeout, name the
session that holds the lock, and change nothing; they never hang."""

from __future__ import annotations

import time

import pytest
import yaml

from playbook import run_playbook, run_playbook_file
from support import fresh_roles, login, snapshot

pytestmark = pytest.mark.usefixtures(fresh_roles.__name__)

ENGINE = 'pgcdc.clickpipes.source : Check the source, create what it lacks (user, grants, publication), check again'
LOCK_TIMEOUT_SECONDS = 2
# ansible-playbook's own start and the role's tasks on a busy 2-core machine.
MARGIN_SECONDS = 20
# A regression must fail the test, not hang CI.
PLAYBOOK_TIMEOUT_SECONDS = 120

SOURCE = """
CREATE TABLE orders (id int PRIMARY KEY, note text);
CREATE TABLE events (id bigint, at date NOT NULL, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
"""


def locked(pg, database, table):
    """A session that holds ACCESS EXCLUSIVE on ``table``, as a migration's ALTER TABLE does, until rolled back."""
    conn = pg.connect(dbname=database)
    conn.autocommit = False
    conn.cursor().execute('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE' % table)
    return conn


def write_inventory(path, pg, database, **extra):
    variables = dict(clickpipes_login_host=pg.host, clickpipes_login_port=pg.port, clickpipes_login_user=pg.superuser,
                     clickpipes_login_password=pg.password, clickpipes_login_db=database, clickpipes_password='pw-not-secret',
                     clickpipes_lock_timeout='%ds' % LOCK_TIMEOUT_SECONDS)
    variables.update(extra)
    path.write_text(yaml.safe_dump(dict(clickpipes_sources=dict(hosts=dict(shop=variables)))))
    return str(path)


def run_while_locked(pg, database, table, playbook, inventory):
    blocker = locked(pg, database, table)
    try:
        started = time.monotonic()
        run = run_playbook_file(playbook, inventory=inventory, timeout=PLAYBOOK_TIMEOUT_SECONDS)
        elapsed = time.monotonic() - started
        return run, elapsed, blocker.get_backend_pid()
    finally:
        blocker.rollback()
        blocker.close()


def fails_in_time_naming(run, elapsed, pid, table):
    assert elapsed < LOCK_TIMEOUT_SECONDS + MARGIN_SECONDS, (elapsed, run)
    assert run.rc == 2, run
    message = run.result(ENGINE, 'shop')['msg']
    assert 'Timed out waiting for a lock' in message, message
    assert 'pid %d holds AccessExclusiveLock on %s ' % (pid, table) in message, message
    return message


@pytest.mark.parametrize('playbook', ['pgcdc.clickpipes.verify', 'pgcdc.clickpipes.prepare'])
def test_a_locked_partitioned_table_fails_the_run_in_time_and_changes_nothing(pg, database, tmp_path, playbook):
    """Listing the partitions (pg_partition_tree) waits for the lock: the check itself must give up."""
    pg.execute(SOURCE, dbname=database)
    inventory = write_inventory(tmp_path / 'inventory.yml', pg, database)
    before = snapshot(pg, database)

    run, elapsed, pid = run_while_locked(pg, database, 'events', playbook, inventory)

    fails_in_time_naming(run, elapsed, pid, 'events')
    assert snapshot(pg, database) == before


def test_verify_reads_past_a_locked_plain_table(pg, database, tmp_path):
    """A plain table's catalog rows are read without locking it: a prepared source stays verifiable."""
    pg.execute(SOURCE, dbname=database)
    inventory = write_inventory(tmp_path / 'inventory.yml', pg, database)
    assert run_playbook_file('pgcdc.clickpipes.prepare', inventory=inventory, timeout=PLAYBOOK_TIMEOUT_SECONDS).rc == 0

    run, elapsed, _pid = run_while_locked(pg, database, 'orders', 'pgcdc.clickpipes.verify', inventory)

    assert elapsed < LOCK_TIMEOUT_SECONDS + MARGIN_SECONDS, (elapsed, run)
    assert run.rc == 0 and run.result(ENGINE, 'shop')['summary']['ready'] is True, run


def test_prepare_waiting_on_a_locked_plain_table_fails_in_time_naming_the_holder(pg, database, tmp_path):
    """Publishing the table waits for the lock; the run gives up after lock_timeout."""
    pg.execute(SOURCE, dbname=database)
    inventory = write_inventory(tmp_path / 'inventory.yml', pg, database)
    before = snapshot(pg, database)

    run, elapsed, pid = run_while_locked(pg, database, 'orders', 'pgcdc.clickpipes.prepare', inventory)

    fails_in_time_naming(run, elapsed, pid, 'orders')
    result = run.result(ENGINE, 'shop')
    # User, grants and publication are one transaction: the step that waited took the others with it.
    assert result['changed'] is False and result['changes'] == dict(user=[], grants=[], publication=[]), result
    assert result['msg'].endswith('Nothing was applied.') and snapshot(pg, database) == before


def test_statement_timeout_bounds_a_read_whatever_it_waits_for(pg, database):
    """With a long lock_timeout, statement_timeout still ends the read, and says which option to raise."""
    pg.execute(SOURCE, dbname=database)
    task = dict(name='check', **{'pgcdc.clickpipes.source_check': dict(lock_timeout='60s', statement_timeout='2s', fail_on='never')})
    blocker = locked(pg, database, 'events')
    try:
        started = time.monotonic()
        run = run_playbook([task], module_defaults=login(pg, database), timeout=PLAYBOOK_TIMEOUT_SECONDS)
        elapsed = time.monotonic() - started
    finally:
        blocker.rollback()
        blocker.close()
    assert elapsed < 2 + MARGIN_SECONDS, (elapsed, run)
    message = run.result('check')['msg']
    assert run.rc == 2 and 'ran longer than statement_timeout' in message and 'raise statement_timeout' in message, run


@pytest.mark.parametrize('option', ['lock_timeout', 'statement_timeout'])
def test_a_bound_that_is_no_duration_is_refused_before_reading(pg, database, option):
    task = dict(name='check', **{'pgcdc.clickpipes.source_check': {option: 'soon'}})
    run = run_playbook([task], module_defaults=login(pg, database))
    assert run.rc == 2 and "%s 'soon' is not a PostgreSQL duration" % option in run.result('check')['msg'], run
