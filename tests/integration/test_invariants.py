"""The collection's promises, asserted over generated sources (tests/harness/schemagen.py).

For each seed a fresh database is built from the generated description; then one run of each playbook prepares all
of them, one inventory host per database: ``prepare --check --diff``, ``prepare``, ``prepare`` again, ``verify``.
Each test asserts one promise on one seed, so a failure names both.

``PGCDC_SEEDS`` (default DEFAULT_SEEDS) and ``PGCDC_SEED_START`` (default 0) choose the seeds; ``make invariants
SEEDS=200`` runs many. A failing test prints the seed's description and the command that replays just it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import typing as t
from pathlib import Path

import psycopg2
import pytest
import yaml
from psycopg2 import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'harness'))

import pgcluster  # noqa: E402  (needs the sys.path entry above)
import schemagen  # noqa: E402

from playbook import run_playbook_file  # noqa: E402
from support import SNAPSHOT_QUERIES, WRITE_STATEMENT  # noqa: E402

DEFAULT_SEEDS = 24  # about 2 minutes per major on 2 shared cores
SEED_START = int(os.environ.get('PGCDC_SEED_START', '0'))
SEEDS = list(range(SEED_START, SEED_START + int(os.environ.get('PGCDC_SEEDS', str(DEFAULT_SEEDS)))))
ENGINE_TASK = 'Check the source, create what it lacks (user, grants, publication), check again'
PHASES = ('check', 'prepare', 'rerun', 'verify')
PLAYBOOK_TIMEOUT = 600
# Every statement of these checks is bounded: a hang is a failure, not a stuck test run.
SESSION_OPTIONS = '-c lock_timeout=5s -c statement_timeout=30s'

# Which part of the catalog snapshot each writing step may change (a failed run must report what it left).
STEP_OF_SNAPSHOT = dict(roles='user', memberships='user', table_acls='grants', schema_acls='grants', default_acls='grants',
                        publications='publication', publication_rels='publication', publication_schemas='publication')


# -- what one source went through ---------------------------------------------------------------------------------------

@dataclasses.dataclass
class Run:
    """One host in one playbook run."""

    failed: bool
    engine: dict[str, t.Any] | None  # the prepare_source result (None when the task did not run)
    report: dict[str, t.Any] | None  # <host>.json as written
    markdown: bool  # <host>.md was written
    snapshot_after: dict[str, list]
    writes: list[str]  # writing statements the server logged for this database during the run

    @property
    def ready(self) -> bool:
        return bool(self.report and self.report.get('ready')) and not self.failed

    @property
    def error_ids(self) -> list[str]:
        return sorted(f['id'] for f in (self.report or {}).get('findings', []) if f['status'] == 'error')

    @property
    def changes(self) -> dict[str, list[str]]:
        return (self.report or {}).get('changes') or (self.engine or {}).get('changes') or {}


@dataclasses.dataclass
class Outcome:
    """A generated source and everything the invariants look at."""

    source: schemagen.Source
    database: str
    setup_error: str = ''
    before: dict[str, list] = dataclasses.field(default_factory=dict)
    writable_before: dict[tuple[str, str], str] = dataclasses.field(default_factory=dict)
    runs: dict[str, Run] = dataclasses.field(default_factory=dict)
    outputs: list[str] = dataclasses.field(default_factory=list)  # stdout and stderr of every run, report texts
    log: str = ''  # the server log written during the runs
    reads: dict[tuple[str, str], str] = dataclasses.field(default_factory=dict)  # table -> '' or the error
    late_reads: dict[str, str] = dataclasses.field(default_factory=dict)  # schema -> '' or the error
    published: set[tuple[str, str]] = dataclasses.field(default_factory=set)  # leaf tables, after the runs
    writable_after: dict[tuple[str, str], str] = dataclasses.field(default_factory=dict)

    @property
    def host(self) -> str:
        return 's%d' % self.source.seed

    def context(self) -> str:
        seed, major = self.source.seed, self.source.major
        lines = ['Replay just this seed: PGCDC_MAJORS=%d PGCDC_SEED_START=%d PGCDC_SEEDS=1 .venv/bin/python -m pytest -q '
                 '-p no:cacheprovider tests/integration/test_invariants.py' % (major, seed), self.source.describe()]
        for phase, run in self.runs.items():
            engine = run.engine or {}
            lines.append('%s: failed=%s ready=%s changed=%s errors=%s msg=%s\n  queries=%s' % (
                phase, run.failed, run.ready, engine.get('changed'), run.error_ids, str(engine.get('msg', ''))[:600],
                engine.get('queries')))
        return '\n'.join(lines)


# -- the catalog, as the superuser sees it --------------------------------------------------------------------------------

def snapshot(pg, source, database) -> dict[str, list]:
    """The database's grants and publications and the source's roles (roles are cluster-wide; others run in parallel)."""
    queries = dict((name, query) for name, query in SNAPSHOT_QUERIES.items() if name != 'roles')
    queries['roles'] = ('SELECT rolname, rolcanlogin, rolreplication, rolbypassrls, rolconnlimit, rolvaliduntil::text, '
                        'rolpassword IS NOT NULL AND rolpassword <> \'\', md5(coalesce(rolpassword, \'\')) '
                        'FROM pg_authid WHERE rolname = ANY(%s) ORDER BY 1')
    queries['memberships'] = ('SELECT roleid::regrole::text, member::regrole::text FROM pg_auth_members '
                              'WHERE roleid::regrole::text = ANY(%s) OR member::regrole::text = ANY(%s) ORDER BY 1, 2')
    if pg.major >= 13:
        queries['publications'] = SNAPSHOT_QUERIES['publications'].replace('pubtruncate', 'pubtruncate, pubviaroot')
    if pg.major >= 15:
        queries['publication_schemas'] = ('SELECT p.pubname, n.pnnspid::regnamespace::text FROM pg_publication_namespace n '
                                          'JOIN pg_publication p ON p.oid = n.pnpubid ORDER BY 1, 2')
    quoted = [schemagen.quote_ident(role) for role in source.roles]
    params = dict(roles=[source.roles], memberships=[quoted, quoted])
    return dict((name, pg.query(query, params.get(name), dbname=database)) for name, query in queries.items())


@contextlib.contextmanager
def superuser(pg, database):
    conn = psycopg2.connect(options=SESSION_OPTIONS, **pg.conninfo(dbname=database))
    try:
        yield conn
    finally:
        conn.close()


def attempt(conn, role, statements) -> str:
    """Run statements as ``role`` (SET ROLE) in a transaction that is rolled back: '' or the error."""
    with conn.cursor() as cur:
        try:
            cur.execute(sql.SQL('SET LOCAL ROLE {}').format(sql.Identifier(role)))
            for statement in statements:
                cur.execute(statement)
            return ''
        except psycopg2.Error as exc:
            return '%s: %s' % (type(exc).__name__, str(exc).strip().splitlines()[0])
        finally:
            conn.rollback()


def privilege_as(conn, role, table) -> str:
    """'' when ``role`` may SELECT from ``table``, else why not."""
    with conn.cursor() as cur:
        try:
            cur.execute("SELECT has_table_privilege(%s, %s, 'SELECT')", [role, table])
            return '' if cur.fetchone()[0] else 'no SELECT privilege'
        except psycopg2.Error as exc:
            return '%s: %s' % (type(exc).__name__, str(exc).strip().splitlines()[0])
        finally:
            conn.rollback()


def application_writes(pg, source, database) -> dict[tuple[str, str], str]:
    """INSERT, UPDATE and DELETE of one row in every table, as its owner: '' or the error, per table."""
    results = {}
    with superuser(pg, database) as conn:
        for table in source.tables:
            if not table.is_table or table.kind == 'partitioned' and not table.children:
                continue
            name = sql.SQL(schemagen.qualified(table.ref))
            row_id = sql.Literal(10 ** 9 + table.key)
            results[table.ref] = attempt(conn, table.owner, [
                sql.SQL("INSERT INTO {} (id, k, note) VALUES ({}, {}, repeat('x', 5000))").format(name, row_id, sql.Literal(table.key)),
                sql.SQL("UPDATE {} SET note = 'y' WHERE id = {}").format(name, row_id),
                sql.SQL('DELETE FROM {} WHERE id = {}').format(name, row_id)])
    return results


def reads_as_user(pg, source, database) -> dict[tuple[str, str], str]:
    """SELECT on every relation as the replication user: '' or the error, per relation."""
    with superuser(pg, database) as conn:
        results = {}
        for table in source.tables:
            if table.kind == 'foreign':  # the stand-in wrapper has no handler: ask for the privilege instead
                results[table.ref] = privilege_as(conn, source.user, schemagen.qualified(table.ref))
            else:
                results[table.ref] = attempt(conn, source.user, [
                    sql.SQL('SELECT 1 FROM {} LIMIT 1').format(sql.SQL(schemagen.qualified(table.ref)))])
        return results


def late_table_reads(pg, source, database) -> dict[str, str]:
    """Create a table in every schema after the runs, as an owner of that schema's tables; can the user read it?"""
    results = {}
    schemas = sorted({table.schema for table in source.tables} | set(source.late_schemas))
    with superuser(pg, database) as conn:
        for index, schema in enumerate(schemas):
            # Not the user itself (a seed may name an owner as the user): it reads what it creates.
            owners = sorted(tb.owner for tb in source.tables if tb.schema == schema and tb.is_table and tb.owner != source.user)
            creator = owners[0] if owners else source.admin['user']
            table = sql.Identifier(schema, 'late_%d' % index)
            with conn.cursor() as cur:
                cur.execute(sql.SQL('SET ROLE {}').format(sql.Identifier(creator)))
                cur.execute(sql.SQL('CREATE TABLE {} (id int PRIMARY KEY)').format(table))
                cur.execute('RESET ROLE')
            conn.commit()
            results[schema] = attempt(conn, source.user, [sql.SQL('SELECT 1 FROM {}').format(table)])
    return results


def published_leaves(pg, source, database) -> set[tuple[str, str]]:
    """The leaf tables pg_publication_tables covers, whether it lists them or their partitioned ancestors."""
    rows = pg.query("""
        SELECT DISTINCT n.nspname, c.relname
          FROM pg_publication_tables pt
          JOIN pg_namespace pn ON pn.nspname = pt.schemaname
          JOIN pg_class r ON r.relnamespace = pn.oid AND r.relname = pt.tablename
          CROSS JOIN LATERAL (SELECT relid FROM pg_partition_tree(r.oid) WHERE isleaf
                              UNION SELECT r.oid WHERE r.relkind = 'r') leaf
          JOIN pg_class c ON c.oid = leaf.relid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE pt.pubname = %s""", [source.variables['clickpipes_publication']], dbname=database)
    return set(rows)


# -- running the playbooks over every source ------------------------------------------------------------------------------

def host_variables(pg, outcome) -> dict[str, t.Any]:
    source = outcome.source
    admin = source.admin
    variables = dict(clickpipes_login_host=pg.host, clickpipes_login_port=pg.port, clickpipes_login_db=outcome.database,
                     clickpipes_login_user=pg.superuser if admin['superuser'] else admin['user'],
                     clickpipes_login_password=pg.password if admin['superuser'] else admin['password'])
    variables.update(source.variables)
    return variables


def admin_password(pg, source) -> str:
    return pg.password if source.admin['superuser'] else source.admin['password']


def database_writes(log_text, database) -> list[str]:
    marker = '@%s ' % database
    return [line for line in log_text.splitlines() if marker in line and WRITE_STATEMENT.search(line)]


def run_phase(pg, outcomes, phase, inventory, reports) -> str:
    """Run one playbook over every source; record each host's run; return the server log written meanwhile."""
    offset = len(pg.read_log())
    playbook = 'pgcdc.clickpipes.verify' if phase == 'verify' else 'pgcdc.clickpipes.prepare'
    run = run_playbook_file(playbook, inventory=inventory, check=phase == 'check', diff=phase == 'check',
                            extra_vars=dict(clickpipes_report_dir=str(reports / phase)), timeout=PLAYBOOK_TIMEOUT)
    log_text = pg.read_log()[offset:]
    for outcome in outcomes:
        results = [(task, status, result) for host, task, status, result in run.all_results if host == outcome.host]
        engine = [result for task, _status, result in results if task.endswith(ENGINE_TASK)]
        report_path = reports / phase / ('%s.json' % outcome.host)
        markdown_path = report_path.with_suffix('.md')
        outcome.runs[phase] = Run(
            failed=any(status in ('failed', 'unreachable') for _task, status, _result in results) or not results,
            engine=engine[-1] if engine else None,
            report=json.loads(report_path.read_text()) if report_path.exists() else None,
            markdown=markdown_path.exists(),
            snapshot_after=snapshot(pg, outcome.source, outcome.database),
            writes=database_writes(log_text, outcome.database))
        outcome.outputs += [run.stdout, run.stderr] + [path.read_text() for path in (report_path, markdown_path) if path.exists()]
    return log_text


def build(pg, seed) -> Outcome:
    source = schemagen.generate(seed, pg.major)
    outcome = Outcome(source=source, database=pgcluster.create_database(pg, 'inv_%d_%d' % (pg.major, seed)))
    try:
        pg.execute(source.sql, dbname=outcome.database)
    except psycopg2.Error as exc:
        outcome.setup_error = 'the generated SQL failed: %s' % exc
        return outcome
    outcome.before = snapshot(pg, source, outcome.database)
    outcome.writable_before = application_writes(pg, source, outcome.database)
    return outcome


def drop(pg, outcome):
    pgcluster.drop_database(pg, outcome.database)
    for role in outcome.source.roles:
        if pg.query('SELECT 1 FROM pg_roles WHERE rolname = %s', [role]):
            pg.execute(sql.SQL('DROP ROLE {}').format(sql.Identifier(role)))


@pytest.fixture(scope='module')
def outcomes(pg, tmp_path_factory):
    """Every seed's source, built and run through check mode, prepare, prepare again and verify."""
    workdir = tmp_path_factory.mktemp('invariants-pg%d' % pg.major)
    built = [build(pg, seed) for seed in SEEDS]
    runnable = [outcome for outcome in built if not outcome.setup_error]
    try:
        inventory = workdir / 'inventory.yml'
        inventory.write_text(yaml.safe_dump(dict(clickpipes_sources=dict(
            hosts=dict((outcome.host, host_variables(pg, outcome)) for outcome in runnable)))))
        logs = []
        if runnable:
            for phase in PHASES:
                logs.append(run_phase(pg, runnable, phase, str(inventory), workdir / 'reports'))
        for outcome in runnable:
            outcome.log = ''.join(logs)
            outcome.reads = reads_as_user(pg, outcome.source, outcome.database)
            outcome.published = published_leaves(pg, outcome.source, outcome.database)
            outcome.writable_after = application_writes(pg, outcome.source, outcome.database)
            outcome.late_reads = late_table_reads(pg, outcome.source, outcome.database)
        yield dict((outcome.source.seed, outcome) for outcome in built)
    finally:
        for outcome in built:
            drop(pg, outcome)


@pytest.fixture(params=SEEDS, ids=['seed%d' % seed for seed in SEEDS])
def outcome(outcomes, request) -> Outcome:
    found = outcomes[request.param]
    assert not found.setup_error, '%s\n%s' % (found.setup_error, found.context())
    return found


def test_the_generator_is_deterministic_and_draws_every_case():
    """The same seed gives the same source, and a few hundred seeds cover every kind, state and mode it knows."""
    assert schemagen.generate(7, 15) == schemagen.generate(7, 15)
    sources = [schemagen.generate(seed, 18) for seed in range(300)]
    kinds = {table.kind for source in sources for table in source.tables}
    assert kinds == {'plain', 'partitioned', 'partition', 'unlogged', 'view', 'matview', 'foreign'}
    assert {source.user_state for source in sources} == set(schemagen.USER_STATES) | {'owner'}
    assert {source.publication_state for source in sources} == set(schemagen.PUBLICATION_STATES)
    assert {source.variables['clickpipes_publication_mode'] for source in sources} == {'tables', 'schemas', 'all_tables'}
    assert {table.identity for source in sources for table in source.tables} == set(schemagen.IDENTITIES)
    assert {table.row_security for source in sources for table in source.tables} == {'', 'no_policy', 'policy'}
    assert {source.admin['superuser'] for source in sources} == {True, False}
    assert any(source.refusals for source in sources) and any(not source.refusals and not source.uncertain for source in sources)
    assert any('.' in table.schema for source in sources for table in source.tables)
    assert any(source.variables['clickpipes_tables'] for source in sources)
    assert any(not source.variables['clickpipes_tables'] for source in sources)


# -- the promises ---------------------------------------------------------------------------------------------------------

def test_ready_exactly_when_the_description_allows(outcome):
    """Never a success that did nothing, never a refusal the description has no reason for."""
    run, source = outcome.runs['prepare'], outcome.source
    if source.refusals:
        assert not run.ready, 'prepare ended ready although %s\n%s' % (source.refusals, outcome.context())
    elif not source.uncertain:
        assert run.ready, 'prepare did not end ready on a source the generator sees nothing wrong with\n%s' % outcome.context()


def test_refusal_known_by_reading_comes_before_any_write(outcome):
    """Plan, then write: what the catalog already shows (missing names, unlogged or dotted tables, no replica identity,
    the owner as the user, what the admin may not do) stops the run before its first write."""
    run, source = outcome.runs['prepare'], outcome.source
    if source.blocking:
        changed = sorted(name for name, rows in run.snapshot_after.items() if rows != outcome.before.get(name))
        message = 'the run changed %s and sent %d writing statement(s) (%s) before refusing for a reason the catalog ' \
            'shows (%s)' % (changed, len(run.writes), run.writes[:3], source.blocking)
        assert changed == [] and run.writes == [], '%s\n%s' % (message, outcome.context())


def test_check_mode_wrote_nothing_and_predicted_the_run(outcome):
    check, real = outcome.runs['check'], outcome.runs['prepare']
    problems = []
    if check.snapshot_after != outcome.before:
        problems.append('check mode changed the catalog')
    if check.writes:
        problems.append('check mode sent writing statements: %s' % check.writes)
    if check.failed != real.failed:
        problems.append('check mode %s but the run %s' % ('failed' if check.failed else 'passed', 'failed' if real.failed else 'passed'))
    planned, done = check.engine or {}, real.engine or {}
    if planned.get('changed') != done.get('changed'):
        problems.append('check mode predicted changed=%s, the run changed=%s' % (planned.get('changed'), done.get('changed')))
    if planned.get('changed') and not planned.get('diff'):
        problems.append('check mode (with --diff) planned changes but showed no diff')
    if not real.failed and planned.get('queries') != done.get('queries'):
        problems.append('check mode planned %s, the run executed %s' % (planned.get('queries'), done.get('queries')))
    assert problems == [], '%s\n%s' % ('; '.join(problems), outcome.context())


def test_application_writes_still_work(outcome):
    broken = dict((table, error) for table, error in outcome.writable_after.items()
                  if error and not outcome.writable_before.get(table))
    assert broken == {}, 'the application can no longer write: %s\n%s' % (broken, outcome.context())


def granted(outcome) -> bool:
    """Whether the prepare run ended ready, or at least reported grants it committed."""
    run = outcome.runs['prepare']
    return run.ready or bool(run.changes.get('grants'))


def copies_leaves(outcome) -> bool:
    """Whether the initial copy reads each partition itself: always before 13, else unless publish_via_partition_root."""
    if outcome.source.major < 13:
        return True
    name = outcome.source.variables['clickpipes_publication']
    rows = [row for row in outcome.runs['prepare'].snapshot_after['publications'] if row[0] == name]
    return not rows or not rows[0][-1]


def test_user_reads_exactly_the_scope(outcome):
    """After a ready run the user reads every table in scope (partitions where the initial copy reads them); after any
    run, nothing outside it."""
    source = outcome.source
    readable = source.scope | source.readable_before if granted(outcome) else source.readable_before
    extra = sorted(ref for ref, error in outcome.reads.items() if ref not in readable and not error)
    assert extra == [], 'the user reads tables outside %s: %s\n%s' % (
        'the scope' if granted(outcome) else 'what it read before this failed run', extra, outcome.context())
    if outcome.runs['prepare'].ready:
        needed = source.scope if copies_leaves(outcome) else {ref for ref in source.scope if source.table(ref).kind != 'partition'}
        denied = dict((ref, error) for ref, error in outcome.reads.items() if ref in needed and error)
        assert denied == {}, 'the user cannot read tables in scope: %s\n%s' % (denied, outcome.context())


def test_tables_created_later_are_readable_only_in_schema_scopes(outcome):
    """Default privileges belong to schema scopes (issue #14 item 10); a failed run that granted nothing sets none."""
    source = outcome.source
    expected = set(source.late_schemas) if granted(outcome) else set()
    readable = {schema for schema, error in outcome.late_reads.items() if not error}
    assert not readable - expected, 'tables created later are readable in %s\n%s' % (sorted(readable - expected), outcome.context())
    if outcome.runs['prepare'].ready:
        assert readable == expected, 'tables created later are not readable in %s\n%s' % (
            sorted(expected - readable), outcome.context())


def test_publication_covers_exactly_the_scope(outcome):
    """After a ready run: the scope and what the publication had before. After a failed run that reported no
    publication change: what it had before."""
    run, source = outcome.runs['prepare'], outcome.source
    published = outcome.published
    if run.ready:
        expected = source.published
    elif run.changes.get('publication'):
        return  # what it reported is compared with the catalog in test_failed_run_left_nothing_or_what_it_reported
    else:
        expected = schemagen.published_before(source)
    assert published == expected, 'publication: missing %s, unexpected %s\n%s' % (
        sorted(expected - published), sorted(published - expected), outcome.context())


def test_existing_publication_keeps_its_options(outcome):
    """Issue #14 item 14: an existing publication's operations and publish_via_partition_root stay as the DBA set them."""
    name = outcome.source.variables['clickpipes_publication']
    before = [row for row in outcome.before['publications'] if row[0] == name]
    after = [row for row in outcome.runs['prepare'].snapshot_after['publications'] if row[0] == name]
    if before:
        assert after == before, 'the publication options changed: %s -> %s\n%s' % (before, after, outcome.context())


def test_rerun_writes_nothing(outcome):
    """A re-run of a ready source writes nothing; a re-run of a failed one fails again (nothing was half applied)."""
    real, rerun = outcome.runs['prepare'], outcome.runs['rerun']
    if not real.ready:
        assert rerun.failed and not rerun.ready, 'prepare failed, then the same run passed\n%s' % outcome.context()
        return
    assert not rerun.failed and rerun.writes == [], 'the re-run failed or wrote: %s\n%s' % (rerun.writes, outcome.context())
    assert (rerun.engine or {}).get('changed') is False, outcome.context()
    assert not any(rerun.changes.values()), outcome.context()
    assert rerun.snapshot_after == real.snapshot_after, outcome.context()


def test_verify_agrees_with_prepare(outcome):
    real, verify = outcome.runs['prepare'], outcome.runs['verify']
    assert verify.snapshot_after == outcome.runs['rerun'].snapshot_after, 'verify changed the catalog\n%s' % outcome.context()
    assert (verify.ready, verify.error_ids) == (real.ready, real.error_ids), outcome.context()


def test_every_run_writes_its_report(outcome):
    """The report task runs after the engine either way (check mode writes no file, by design of source_report)."""
    missing = [phase for phase, run in outcome.runs.items() if phase != 'check' and not (run.report and run.markdown)]
    assert missing == [], 'no <host>.json/.md written for the %s run(s)\n%s' % (', '.join(missing), outcome.context())


def test_failed_run_left_nothing_or_what_it_reported(outcome):
    """Each step whose part of the catalog a failed run changed is one it reported changes for, and the reverse."""
    real = outcome.runs['prepare']
    if not real.failed:
        return
    changed_steps = sorted({STEP_OF_SNAPSHOT[name] for name, rows in real.snapshot_after.items() if rows != outcome.before.get(name)})
    reported_steps = sorted(step for step, statements in real.changes.items() if statements and step in STEP_OF_SNAPSHOT.values())
    assert changed_steps == reported_steps, 'the failed run changed %s but reported %s\n%s' % (
        changed_steps, reported_steps, outcome.context())
    if changed_steps:
        assert 'Nothing was applied' not in str((real.engine or {}).get('msg', '')), outcome.context()


def test_no_secret_in_any_output(outcome, pg):
    secrets = [outcome.source.password, admin_password(pg, outcome.source)]
    for secret in secrets:
        leaks = [index for index, text in enumerate(outcome.outputs) if secret in text]
        assert leaks == [], 'a password shows in run output or reports %s\n%s' % (leaks, outcome.context())
        assert secret not in outcome.log, 'a password shows in the server log\n%s' % outcome.context()
