#!/usr/bin/env python
"""Benchmark: prepare N tables for ClickPipes with psql, with community.postgresql and with this collection.

Writes a Markdown table of medians and ratios (docs/benchmark.md by default) and prints it.
Usage: tools/bench/bench.py --tables 1000 10000 [--runs 3] [--fleet 50] [--output docs/benchmark.md]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'tests' / 'harness'))

import pgcluster  # noqa: E402  pylint: disable=wrong-import-position

BIN = Path(sys.executable).parent
TABLES_PER_SCHEMA = 1000
USER, PASSWORD, PUBLICATION = 'clickpipes_user', 'bench-password', 'clickpipes_publication'
# The server as a provider ships it: default lock table, no statement logging (the harness logs everything).
SERVER_SETTINGS = dict(log_statement='none')

# Undo a prepare in transactions of at most one schema (1000 tables) each: over 50,000 tables one DROP OWNED BY
# or DROP PUBLICATION needs more locks than the default lock table holds.
PUBLISHED = "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = 'clickpipes_publication' ORDER BY 1, 2"
ROLE_EXISTS = "SELECT 1 FROM pg_roles WHERE rolname = 'clickpipes_user'"


def schemas_for(count):
    return ['s%d' % index for index in range(max(1, count // TABLES_PER_SCHEMA))]


def create_tables(cluster, count):
    cluster.execute('CREATE DATABASE bench')
    cluster.execute('CREATE ROLE app NOLOGIN', dbname='bench')
    for number, schema in enumerate(schemas_for(count)):
        create_schema(cluster, 'bench', schema, number * TABLES_PER_SCHEMA, min(count, (number + 1) * TABLES_PER_SCHEMA) - 1)


def create_schema(cluster, database, schema, first, last):
    """A schema owned by app with tables t<first> to t<last>."""
    cluster.execute(
        "CREATE SCHEMA %s AUTHORIZATION app; SET ROLE app; DO $$ BEGIN FOR i IN %d..%d LOOP "
        "EXECUTE format('CREATE TABLE %s.t%%s (id bigint PRIMARY KEY, v text)', i); END LOOP; END $$" % (
            schema, first, last, schema), dbname=database)


def psql_script(count):
    """The seed's SQL for the scope: user, grants, default privileges, one CREATE PUBLICATION with every table."""
    lines = ["CREATE ROLE clickpipes_user LOGIN REPLICATION PASSWORD '%s';" % PASSWORD]
    for schema in schemas_for(count):
        lines += ['GRANT USAGE ON SCHEMA %s TO clickpipes_user;' % schema,
                  'GRANT SELECT ON ALL TABLES IN SCHEMA %s TO clickpipes_user;' % schema,
                  'ALTER DEFAULT PRIVILEGES FOR ROLE app IN SCHEMA %s GRANT SELECT ON TABLES TO clickpipes_user;' % schema]
    tables = ', '.join('s%d.t%d' % (index // TABLES_PER_SCHEMA, index) for index in range(count))
    lines.append('CREATE PUBLICATION clickpipes_publication FOR TABLE %s;' % tables)
    return '\n'.join(lines)


def community_playbook(count):
    connection = dict(login_host='{{ host }}', port='{{ port }}', login_user='postgres', login_password='{{ password }}', login_db='bench')
    schemas = schemas_for(count)
    tasks = [
        {'name': 'user', 'community.postgresql.postgresql_user': dict(connection, name=USER, password=PASSWORD, role_attr_flags='REPLICATION')},
        {'name': 'schema usage', 'community.postgresql.postgresql_privs': dict(
            connection, type='schema', objs=','.join(schemas), privs='USAGE', roles=USER)},
        {'name': 'table select', 'community.postgresql.postgresql_privs': dict(
            connection, type='table', objs='ALL_IN_SCHEMA', schema='{{ item }}', privs='SELECT', roles=USER), 'loop': schemas},
        {'name': 'default privileges', 'community.postgresql.postgresql_privs': dict(
            connection, type='default_privs', objs='TABLES', schema='{{ item }}', privs='SELECT', roles=USER, target_roles='app'),
         'loop': schemas},
        {'name': 'publication', 'community.postgresql.postgresql_publication': dict(
            connection, name=PUBLICATION, tables=['s%d.t%d' % (index // TABLES_PER_SCHEMA, index) for index in range(count)])},
    ]
    return [dict(hosts='localhost', connection='local', gather_facts=False, tasks=tasks)]


WRITE_VERBS = ('CREATE', 'ALTER', 'GRANT', 'REVOKE', 'DROP', 'INSERT', 'UPDATE', 'DELETE')
NOOP = [dict(hosts='localhost', connection='local', gather_facts=False, tasks=[{'ansible.builtin.debug': dict(msg='start')}])]


class Bench:
    def __init__(self, cluster, count, workdir):
        self.cluster, self.count, self.workdir = cluster, count, Path(workdir)
        self.env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=self.collections(), ANSIBLE_PYTHON_INTERPRETER=sys.executable,
                        ANSIBLE_LOCALHOST_WARNING='false', ANSIBLE_INVENTORY_UNPARSED_WARNING='false', PGPASSWORD=cluster.password)
        self.inventory = self.write('inventory.json', dict(clickpipes_sources=dict(hosts=dict(bench=dict(
            clickpipes_login_host=cluster.host, clickpipes_login_port=cluster.port, clickpipes_login_user='postgres',
            clickpipes_login_password=cluster.password, clickpipes_login_db='bench', clickpipes_password=PASSWORD,
            clickpipes_schemas=schemas_for(count), clickpipes_fail_on='never')))))
        self.extra = self.write('extra.json', dict(host=cluster.host, port=cluster.port, password=cluster.password))

    def collections(self):
        link = self.workdir / 'collections' / 'ansible_collections' / 'pgcdc' / 'clickpipes'
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(ROOT)
        return str(self.workdir / 'collections')

    def write(self, name, data):
        path = self.workdir / name
        path.write_text(json.dumps(data))
        return str(path)

    def run(self, command):
        started = time.perf_counter()
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - started
        return elapsed, done.returncode, done.stdout + done.stderr

    def run_with_cpu(self, command):
        """``run``, plus the CPU seconds of the command (with its workers) and of the server's ended backends."""
        controller, server = children_cpu(), server_cpu(self.cluster)
        elapsed, code, output = self.run(command)
        time.sleep(0.2)  # let the postmaster reap the backends of the run's connections
        return elapsed, code, output, children_cpu() - controller, server_cpu(self.cluster) - server

    def reset(self):
        published = self.cluster.query(PUBLISHED, dbname='bench')
        for start in range(0, len(published), TABLES_PER_SCHEMA):
            tables = ', '.join('%s.%s' % row for row in published[start:start + TABLES_PER_SCHEMA])
            self.cluster.execute('ALTER PUBLICATION clickpipes_publication DROP TABLE ' + tables, dbname='bench')
        self.cluster.execute('DROP PUBLICATION IF EXISTS clickpipes_publication', dbname='bench')
        if not self.cluster.query(ROLE_EXISTS, dbname='bench'):
            return
        for schema in schemas_for(self.count):
            self.cluster.execute('REVOKE ALL ON ALL TABLES IN SCHEMA %s FROM clickpipes_user' % schema, dbname='bench')
        self.cluster.execute('DROP OWNED BY clickpipes_user; DROP ROLE clickpipes_user', dbname='bench')

    def psql_floor(self):
        script = self.workdir / 'seed.sql'
        script.write_text(psql_script(self.count))
        return self.run([str(pgcluster.install(15) / 'bin' / 'psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', self.cluster.host,
                         '-p', str(self.cluster.port), '-U', 'postgres', '-d', 'bench', '-f', str(script)])

    def playbook(self, plays, name):
        path = self.write(name + '.yml', plays)
        return self.run([str(BIN / 'ansible-playbook'), '-i', 'localhost,', '-e', '@' + self.extra, path])

    def ours(self, playbook):
        return self.run([str(BIN / 'ansible-playbook'), '-i', self.inventory, 'pgcdc.clickpipes.' + playbook])


def failure_line(output):
    """The part of a failed run's output that says why (not a trailing deprecation warning, not a 50,000-name statement)."""
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    for marker in ('out of shared memory', 'FAILED!', 'fatal:', 'ERROR', 'HINT'):
        found = [line for line in lines if marker in line]
        if found:
            line = task_message(found[-1])
            start = max(0, line.find(marker) - 60)
            return line[start:start + 200]
    return lines[-1][:200] if lines else ''


def task_message(line):
    """The msg of Ansible's ``fatal: [host]: FAILED! => {...}`` line on one line, or the line as it is."""
    try:
        message = json.loads(line.split('=> ', 1)[1])['msg']
    except (IndexError, KeyError, TypeError, ValueError):
        return line
    return ' '.join(str(message).split())


def measure(bench, runs):
    """Median seconds (or the failure) of every variant; cold variants start from a source without user or publication."""
    variants = collections.OrderedDict()
    plan = [
        ('psql_floor', True, bench.psql_floor),
        ('ansible_noop', False, lambda: bench.playbook(NOOP, 'noop')),
        ('community_postgresql', True, lambda: bench.playbook(community_playbook(bench.count), 'community')),
        ('community_postgresql_rerun', False, lambda: bench.playbook(community_playbook(bench.count), 'community')),
        ('prepare_cold', True, lambda: bench.ours('prepare')),
        ('prepare_rerun', False, lambda: bench.ours('prepare')),
        ('verify', False, lambda: bench.ours('verify')),
    ]
    for name, cold, action in plan:
        times, failure = [], None
        for _attempt in range(runs):
            if cold:
                bench.reset()
            elapsed, code, tail = action()
            if code != 0:
                failure = failure_line(tail) or 'exit %d' % code
                break
            times.append(elapsed)
        variants[name] = dict(median=statistics.median(times) if times and not failure else None, runs=len(times), failure=failure)
        print('  %-28s %s' % (name, failure or '%.2fs (median of %d)' % (variants[name]['median'], len(times))), flush=True)
    return variants


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def server_cpu(cluster):
    """CPU seconds of the postmaster and the backends it has reaped (/proc/<pid>/stat: utime, stime, cutime, cstime)."""
    pid = (cluster.datadir / 'postmaster.pid').read_text().split()[0]
    fields = Path('/proc/%s/stat' % pid).read_text().rsplit(')', 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf('SC_CLK_TCK')


def fleet(hosts, tables, workdir, runs):
    """Cold prepare of one source, then of ``hosts`` sources in one run (forks = hosts), ``runs`` times each on
    databases no run touched before; databases of one cluster, each with its own replication user, as separate servers
    would have. Then Ansible alone: as many ``ansible.builtin.debug`` tasks per host as the single run ran, over one
    host and over ``hosts``. Each is the run of median wall time."""
    cluster = pgcluster.start_cluster(15, settings=dict(SERVER_SETTINGS, max_connections=3 * hosts + 20), name='fleet')
    try:
        cluster.execute('CREATE ROLE app NOLOGIN')
        inventory = {}
        for number in range((hosts + 1) * runs):
            database = 'source%d' % number
            cluster.execute('CREATE DATABASE %s' % database)
            create_schema(cluster, database, 's0', 1, tables)
            inventory[database] = dict(
                clickpipes_login_host=cluster.host, clickpipes_login_port=cluster.port, clickpipes_login_user='postgres',
                clickpipes_login_password=cluster.password, clickpipes_login_db=database, clickpipes_password=PASSWORD,
                clickpipes_user='clickpipes_user_%d' % number, clickpipes_schemas=['s0'], clickpipes_fail_on='never')
        bench = Bench(cluster, tables, workdir)
        bench.env['ANSIBLE_FORKS'] = str(hosts)
        names = iter(sorted(inventory))

        def prepare(count):
            chosen = [next(names) for _number in range(count)]
            path = bench.write('fleet-%d.json' % count, dict(clickpipes_sources=dict(hosts=dict((name, inventory[name]) for name in chosen))))
            return bench.run_with_cpu([str(BIN / 'ansible-playbook'), '-i', path, 'pgcdc.clickpipes.prepare'])

        singles, fleets = [], []
        for _run in range(runs):
            singles.append(prepare(1))
            fleets.append(prepare(hosts))
        single, many = median_run(singles), median_run(fleets)
        tasks = single[2].count('TASK [')
        floor_playbook = bench.write('floor.json', [dict(hosts='all', connection='local', gather_facts=False, tasks=[
            {'ansible.builtin.debug': dict(msg='task %d' % number)} for number in range(tasks)])])

        def floor(count):
            path = bench.write('floor-%d.json' % count, dict(all=dict(hosts=dict(('host%d' % number, {}) for number in range(count)))))
            return median_run([bench.run([str(BIN / 'ansible-playbook'), '-i', path, floor_playbook]) for _run in range(runs)])

        return dict(hosts=hosts, tables=tables, runs=runs, single=single, fleet=many, tasks=tasks, floor_single=floor(1),
                    floor_fleet=floor(hosts))
    finally:
        cluster.destroy()


def median_run(results):
    """The result of median wall time (the first failed one, if any failed)."""
    failed = [result for result in results if result[1]]
    return failed[0] if failed else sorted(results, key=lambda result: result[0])[len(results) // 2]


def fleet_report(result):
    single, many = result['single'], result['fleet']
    if single[1] or many[1]:
        return 'Fleet: failed (%s)' % failure_line(single[2] if single[1] else many[2])
    hosts, floor_single, floor_many = result['hosts'], result['floor_single'][0], result['floor_fleet'][0]
    return ('Fleet (%d databases of %d tables, forks = %d, cold `prepare`, medians of %d runs, each on databases no run '
            'touched before): one source %.2f s, all %d sources in one run %.2f s, ratio %.1f (target <= 8). CPU of that '
            'run: %.1f s in ansible-playbook and its workers, %.1f s in PostgreSQL, on %d cores. Ansible alone, %d '
            '`ansible.builtin.debug` tasks per host (as many as the single prepare ran): one host %.2f s, %d hosts %.2f s, '
            'ratio %.1f.' % (
                hosts, result['tables'], hosts, result['runs'], single[0], hosts, many[0], many[0] / single[0], many[3],
                many[4], os.cpu_count(), result['tasks'], floor_single, hosts, floor_many, floor_many / floor_single))


def logged_statements(bench, action):
    """The statements ``action`` sent, by server process (log_statement = all for this run only)."""
    bench.cluster.set_setting('log_statement', 'all')
    offset = len(bench.cluster.read_log())
    action()
    bench.cluster.set_setting('log_statement', 'none')
    return re.findall(r'\[(\d+)\] \S+ LOG:  statement:\s+(\S+)', bench.cluster.read_log()[offset:])


def statement_counts(bench):
    """Statements per connection of a cold prepare (sorted), and the writing statements of the re-run after it."""
    bench.reset()
    cold = logged_statements(bench, lambda: bench.ours('prepare'))
    rerun = logged_statements(bench, lambda: bench.ours('prepare'))
    writes = [verb for _pid, verb in rerun if verb.upper() in WRITE_VERBS]
    return sorted(collections.Counter(pid for pid, _verb in cold).values()), len(writes)


def ratio(variants, numerator, *denominators):
    top = variants[numerator]['median']
    bottom = [variants[name]['median'] for name in denominators]
    if top is None or None in bottom:
        return None
    return top / sum(bottom)


def report(results, runs, command, fleet_result=None):
    lines = ['# Benchmark', '', 'Reproduce: `%s` (%d runs per variant; medians in seconds).' % (command, runs), '',
             'Machine: %s, %d cores, Python %s, PostgreSQL 15 (Debian) with its default lock table.' % (
                 platform.machine(), os.cpu_count(), platform.python_version()), '']
    names = list(next(iter(results.values()))['variants'])
    lines.append('| variant | ' + ' | '.join('N = %d' % count for count in results) + ' |')
    lines.append('|---|' + '---|' * len(results))
    for name in names:
        cells = []
        for data in results.values():
            variant = data['variants'][name]
            cells.append('%.2f' % variant['median'] if variant['median'] is not None else 'failed: %s' % variant['failure'].replace('|', '/'))
        lines.append('| %s | %s |' % (name, ' | '.join(cells)))
    lines += ['', '| ratio (target) | ' + ' | '.join('N = %d' % count for count in results) + ' |', '|---|' + '---|' * len(results)]
    targets = [
        ('prepare_cold / community_postgresql (<= 0.25)', 'prepare_cold', ('community_postgresql',)),
        ('prepare_cold / (psql_floor + ansible_noop) (<= 2)', 'prepare_cold', ('psql_floor', 'ansible_noop')),
        ('prepare_rerun / community_postgresql_rerun (<= 0.15)', 'prepare_rerun', ('community_postgresql_rerun',)),
        ('verify / ansible_noop (<= 2)', 'verify', ('ansible_noop',)),
    ]
    for label, numerator, denominators in targets:
        cells = []
        for data in results.values():
            value = ratio(data['variants'], numerator, *denominators)
            cells.append('%.2f' % value if value is not None else 'n/a')
        lines.append('| %s | %s |' % (label, ' | '.join(cells)))
    statements = '; '.join('N = %d: %s' % (count, data['statements']) for count, data in results.items())
    writes = '; '.join('N = %d: %d' % (count, data['rerun_writes']) for count, data in results.items())
    lines += ['', 'SQL statements per connection of a cold `prepare` (sorted): ' + statements, '',
              'Writing statements sent by a re-run of `prepare` (log_statement = all): ' + writes, '']
    if fleet_result:
        lines += [fleet_report(fleet_result), '']
    return '\n'.join(lines)


NOTES = '\n## Notes\n'


def kept_notes(path):
    """The hand-written part of an earlier report (from its Notes heading on), which a new run keeps."""
    text = path.read_text(encoding='utf-8') if path.exists() else ''
    return text[text.index(NOTES):] if NOTES in text else ''


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--tables', type=int, nargs='+', default=[1000, 10000])
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--fleet', type=int, default=50, help='sources in the fleet run (0: no fleet run)')
    parser.add_argument('--fleet-tables', type=int, default=100, help='tables per fleet source')
    parser.add_argument('--output', default=str(ROOT / 'docs' / 'benchmark.md'))
    args = parser.parse_args()
    results = collections.OrderedDict()
    for count in args.tables:
        print('N = %d tables in %d schemas' % (count, len(schemas_for(count))), flush=True)
        cluster = pgcluster.start_cluster(15, settings=SERVER_SETTINGS, name='bench%d' % count)
        try:
            create_tables(cluster, count)
            with tempfile.TemporaryDirectory() as workdir:
                bench = Bench(cluster, count, workdir)
                statements, rerun_writes = statement_counts(bench)
                results[count] = dict(variants=measure(bench, args.runs), statements=statements, rerun_writes=rerun_writes)
        finally:
            cluster.destroy()
    fleet_result = None
    if args.fleet:
        print('Fleet: %d sources of %d tables' % (args.fleet, args.fleet_tables), flush=True)
        with tempfile.TemporaryDirectory() as workdir:
            fleet_result = fleet(args.fleet, args.fleet_tables, workdir, args.runs)
        print('  ' + fleet_report(fleet_result), flush=True)
    command = 'make bench BENCH_ARGS="--tables %s --runs %d --fleet %d --fleet-tables %d"' % (
        ' '.join(map(str, args.tables)), args.runs, args.fleet, args.fleet_tables)
    text = report(results, args.runs, command, fleet_result)
    Path(args.output).write_text(text + kept_notes(Path(args.output)), encoding='utf-8')
    print(text)


if __name__ == '__main__':
    main()
