"""Runs that overlap, wait on locks or lose their connection: clear errors, nothing half applied, and convergence."""

from __future__ import annotations

import concurrent.futures

import pytest

from playbook import run_playbook
from support import fresh_roles, login, prepare_tasks, snapshot

import pgcluster

pytestmark = pytest.mark.usefixtures(fresh_roles.__name__)

TABLES = 'CREATE TABLE orders (id int PRIMARY KEY); CREATE TABLE lines (id int PRIMARY KEY); CREATE TABLE notes (id int PRIMARY KEY)'


def locked(pg, database, statement):
    """A session that took a lock with ``statement`` and keeps its transaction open."""
    conn = pg.connect(dbname=database)
    conn.autocommit = False
    conn.cursor().execute(statement)
    return conn


def test_lock_timeout_names_the_table_and_the_blocking_pid(pg, database):
    pg.execute(TABLES, dbname=database)
    assert run_playbook(prepare_tasks(tables=['orders']), module_defaults=login(pg, database)).rc == 0
    before = snapshot(pg, database)
    blocker = locked(pg, database, 'LOCK TABLE lines IN ACCESS EXCLUSIVE MODE')
    try:
        run = run_playbook(prepare_tasks(publication_options=dict(lock_timeout='1s'))[2:], module_defaults=login(pg, database))
        pid = blocker.get_backend_pid()
    finally:
        blocker.rollback()
        blocker.close()
    assert run.rc != 0
    message = run.result('publication')['msg']
    assert 'Timed out waiting for a lock' in message and 'raise lock_timeout' in message
    assert 'pid %d holds AccessExclusiveLock on lines' % pid in message, message
    assert message.endswith('Nothing was applied.')
    assert snapshot(pg, database) == before
    again = run_playbook(prepare_tasks()[2:], module_defaults=login(pg, database))
    assert again.rc == 0 and again.result('publication')['publication']['tables'] == ['public.lines', 'public.notes', 'public.orders']


def test_grant_waiting_on_a_locked_table_names_it_too(pg, database):
    pg.execute('CREATE SCHEMA locked; CREATE TABLE locked.t (id int PRIMARY KEY);'
               "CREATE ROLE cp_locked LOGIN REPLICATION PASSWORD 'x'", dbname=database)
    blocker = locked(pg, database, 'ALTER TABLE locked.t ADD COLUMN extra int')
    try:
        task = dict(name='grants', **{'pgcdc.clickpipes.replication_grants': dict(
            user='cp_locked', schemas=['locked'], default_privileges=False, lock_timeout='1s')})
        run = run_playbook([task], module_defaults=login(pg, database))
        pid = blocker.get_backend_pid()
    finally:
        blocker.rollback()
        blocker.close()
    message = run.result('grants')['msg']
    assert 'pid %d holds AccessExclusiveLock on locked.t' % pid in message, message
    assert pg.query("SELECT has_schema_privilege('cp_locked', 'locked', 'USAGE')", dbname=database) == [(False,)]


def test_terminated_backend_applies_nothing_and_the_next_run_converges(pg, database):
    """The admin backend is killed while its transaction waits on a lock in the middle of the plan."""
    pg.execute(TABLES, dbname=database)
    assert run_playbook(prepare_tasks(tables=['orders']), module_defaults=login(pg, database)).rc == 0
    before = snapshot(pg, database)
    blocker = locked(pg, database, 'LOCK TABLE notes IN ACCESS EXCLUSIVE MODE')
    waiting = "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgcdc.clickpipes' AND wait_event_type = 'Lock'"
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            future = pool.submit(run_playbook, prepare_tasks(publication_options=dict(lock_timeout='60s'))[2:],
                                 module_defaults=login(pg, database))
            pid = pgcluster.wait_for(lambda: pg.query(waiting, dbname=database), timeout=60)[0][0]
            pg.execute('SELECT pg_terminate_backend(%s)', [pid], dbname=database)
            run = future.result(timeout=120)
    finally:
        blocker.rollback()
        blocker.close()
    assert run.rc != 0
    message = run.result('publication')['msg']
    assert 'connection to the server was lost' in message and 'Nothing was applied' in message, message
    assert 'Traceback' not in run.stdout + run.stderr
    assert snapshot(pg, database) == before
    assert run_playbook(prepare_tasks()[2:], module_defaults=login(pg, database)).rc == 0


def test_eight_simultaneous_runs_all_succeed_and_converge(pg, database):
    pg.execute(TABLES, dbname=database)
    tasks = prepare_tasks(password='same-for-all')
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        runs = list(pool.map(lambda _i: run_playbook(tasks, module_defaults=login(pg, database)), range(8)))
    assert [run.rc for run in runs] == [0] * 8, [run.stdout[-2000:] for run in runs if run.rc]
    changed = [sum(run.result(name)['changed'] for run in runs) for name in ('user', 'grants', 'publication')]
    assert changed == [1, 1, 1], 'exactly one run creates each object'
    concurrent_state = snapshot(pg, database)

    pgcluster.drop_database(pg, database)
    pg.execute('DROP OWNED BY clickpipes_user; DROP ROLE clickpipes_user')
    pgcluster.create_database(pg, database)
    pg.execute(TABLES, dbname=database)
    assert run_playbook(tasks, module_defaults=login(pg, database)).rc == 0
    assert snapshot(pg, database) == concurrent_state


def test_thousands_of_tables_are_published_in_batches(pg, database):
    pg.execute("CREATE SCHEMA many; DO $$ BEGIN FOR i IN 1..2500 LOOP "
               "EXECUTE format('CREATE TABLE many.t%s (id int PRIMARY KEY)', i); END LOOP; END $$", dbname=database)
    # Tables are taken in name order (t1, t10, t100, ...): t999 is the last, in the third batch.
    blocker = locked(pg, database, 'LOCK TABLE many.t999 IN ACCESS EXCLUSIVE MODE')
    task = prepare_tasks(schemas=['many'], publication_options=dict(lock_timeout='1s'))[2:]
    try:
        interrupted = run_playbook(task, module_defaults=login(pg, database))
    finally:
        blocker.rollback()
        blocker.close()
    assert interrupted.rc != 0
    assert 'Earlier batches were committed and this one was rolled back: re-run to finish.' in interrupted.result('publication')['msg']
    assert pg.query('SELECT count(*) FROM pg_publication_tables', dbname=database) == [(2000,)]

    finished = run_playbook(task, module_defaults=login(pg, database))
    assert finished.rc == 0, finished.stdout
    last_batch = sorted('t%d' % i for i in range(1, 2501))[2000:]
    assert finished.result('publication')['queries'] == [
        'ALTER PUBLICATION "clickpipes_publication" ADD TABLE ' + ', '.join('"many"."%s"' % name for name in last_batch)]
    assert pg.query('SELECT count(*) FROM pg_publication_tables', dbname=database) == [(2500,)]


def test_exact_over_thousands_of_tables_adds_before_it_drops(pg, database):
    """exact: true on a large publication works in batches too, and never publishes less than asked in between."""
    pg.execute("CREATE SCHEMA old; CREATE SCHEMA new; DO $$ BEGIN FOR i IN 1..1500 LOOP "
               "EXECUTE format('CREATE TABLE old.t%s (id int PRIMARY KEY); CREATE TABLE new.t%s (id int PRIMARY KEY)', i, i); "
               "END LOOP; END $$", dbname=database)
    publication = 'pgcdc.clickpipes.publication'
    assert run_playbook([{publication: dict(name='p', schemas=['old'])}], module_defaults=login(pg, database)).rc == 0
    exact = run_playbook([dict(name='exact', **{publication: dict(name='p', schemas=['new'], exact=True)})],
                         module_defaults=login(pg, database))
    assert exact.rc == 0, exact.stdout
    verbs = [query.split(' TABLE ')[0].rsplit(' ', 1)[-1] for query in exact.result('exact')['queries']]
    assert verbs == ['ADD', 'ADD', 'DROP', 'DROP'], verbs
    assert pg.query("SELECT schemaname, count(*) FROM pg_publication_tables GROUP BY 1", dbname=database) == [('new', 1500)]
    again = run_playbook([dict(name='exact', **{publication: dict(name='p', schemas=['new'], exact=True)})],
                         module_defaults=login(pg, database))
    assert again.result('exact')['changed'] is False


def test_a_run_on_another_database_creating_the_role_first_is_no_error(pg, database):
    """Roles belong to the server, advisory locks to one database: the run re-plans from what the other one committed."""
    other = database + '_other'
    pgcluster.create_database(pg, other)
    try:
        creating = locked(pg, other, 'CREATE ROLE clickpipes_user LOGIN REPLICATION')
        waiting = "SELECT 1 FROM pg_stat_activity WHERE application_name = 'pgcdc.clickpipes' AND wait_event_type = 'Lock'"
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            future = pool.submit(run_playbook, prepare_tasks()[:1], module_defaults=login(pg, database))
            pgcluster.wait_for(lambda: pg.query(waiting, dbname=database), timeout=60)
            creating.commit()
            creating.close()
            run = future.result(timeout=120)
    finally:
        pgcluster.drop_database(pg, other)
    assert run.rc == 0, run
    assert run.result('user')['changed'] is False and run.result('user')['role']['replication'] is True


def test_a_conflict_after_a_committed_batch_is_reported_not_planned_again(pg, database):
    """Past the first batch of 1000 tables, a table someone else published meanwhile fails the run, saying the earlier
    batches were committed: planning again would return a result that hides them."""
    pg.execute("CREATE SCHEMA many; DO $$ BEGIN FOR i IN 1..1001 LOOP "
               "EXECUTE format('CREATE TABLE many.t%s (id int PRIMARY KEY)', i); END LOOP; END $$", dbname=database)
    # Publishes the rest of the schema in the transaction of the run's first batch, so the second batch conflicts.
    pg.execute("""CREATE FUNCTION publish_the_rest() RETURNS event_trigger LANGUAGE plpgsql AS $$
                  DECLARE rel regclass;
                  BEGIN
                    FOR rel IN SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                               WHERE n.nspname = 'many' AND c.relkind = 'r'
                                 AND c.oid NOT IN (SELECT prrelid FROM pg_publication_rel) LOOP
                      EXECUTE format('ALTER PUBLICATION clickpipes_publication ADD TABLE %s', rel);
                    END LOOP;
                  END $$;
                  CREATE EVENT TRIGGER publish_the_rest ON ddl_command_end WHEN TAG IN ('CREATE PUBLICATION')
                    EXECUTE FUNCTION publish_the_rest()""", dbname=database)
    publish = [dict(name='publication', **{'pgcdc.clickpipes.publication': dict(name='clickpipes_publication', schemas=['many'])})]
    try:
        run = run_playbook(publish, module_defaults=login(pg, database))
    finally:
        pg.execute('DROP EVENT TRIGGER publish_the_rest', dbname=database)
    assert run.rc != 0
    message = run.result('publication')['msg']
    assert 'already member of publication' in message, message
    assert message.endswith('Earlier batches were committed and this one was rolled back: re-run to finish.'), message
    again = run_playbook(publish, module_defaults=login(pg, database))
    assert again.rc == 0 and again.result('publication')['changed'] is False
    assert len(again.result('publication')['publication']['tables']) == 1001


def test_prepare_source_applies_nothing_when_a_step_times_out(pg, database):
    """User, grants and publication go in as one transaction: when a step waits out lock_timeout (the grants on
    PostgreSQL 18, which locks a table to grant on it; the publication before), the steps before it are rolled back
    too, the failure says nothing was applied and carries the preflight's findings for the report."""
    pg.execute(TABLES, dbname=database)
    task = dict(name='engine', ignore_errors=True, **{'pgcdc.clickpipes.prepare_source': dict(password='pw-1', lock_timeout='1s')})
    before = snapshot(pg, database)
    blocker = locked(pg, database, 'LOCK TABLE notes IN ACCESS EXCLUSIVE MODE')
    try:
        run = run_playbook([task], module_defaults=login(pg, database))
        pid = blocker.get_backend_pid()
    finally:
        blocker.rollback()
        blocker.close()
    result = run.result('engine')
    assert result['failed'] and 'pid %d holds AccessExclusiveLock on notes' % pid in result['msg'], result
    assert result['msg'].endswith('Nothing was applied.'), result['msg']
    assert result['modules_run'][-1] == result['failed_module'] and result['failed_module'] in ('replication_grants', 'publication')
    assert result['changed'] is False and result['changes'] == dict(user=[], grants=[], publication=[])
    assert 'user_exists' in [item['id'] for item in result['findings'] if item['status'] == 'error']
    assert snapshot(pg, database) == before

    again = run_playbook([task], module_defaults=login(pg, database))
    assert again.result('engine')['modules_run'] == ['replication_user', 'replication_grants', 'publication'], again
    assert again.result('engine')['summary']['ready'] is True
