"""The bad-input catalogue (docs/bad-inputs.md): each input gets a message that says what to do, no traceback, no change."""

from __future__ import annotations

import pathlib

import pytest

from playbook import run_playbook, run_playbook_file
from support import fresh_roles, login, snapshot

pytestmark = pytest.mark.usefixtures(fresh_roles.__name__)

USER = 'pgcdc.clickpipes.replication_user'
GRANTS = 'pgcdc.clickpipes.replication_grants'
PUBLICATION = 'pgcdc.clickpipes.publication'
CHECK = 'pgcdc.clickpipes.source_check'

SETUP = """
CREATE SCHEMA sales; CREATE SCHEMA vacant; CREATE SCHEMA nokey;
CREATE TABLE public.orders (id int PRIMARY KEY); CREATE TABLE sales.orders (id int PRIMARY KEY);
CREATE TABLE nokey.heap (x int);
CREATE ROLE cp_bad LOGIN REPLICATION PASSWORD 'x';
CREATE ROLE cp_owner LOGIN; CREATE TABLE public.owned (id int PRIMARY KEY); ALTER TABLE public.owned OWNER TO cp_owner;
CREATE PUBLICATION listed FOR TABLE public.orders;
"""

# (case id, module, options, connection overrides, what the message must say)
CASES = [
    ('role-name-empty', USER, dict(name=''), {}, 'An empty role name'),
    ('role-name-too-long', USER, dict(name='r' * 64), {}, "63-byte limit"),
    ('connection-limit-below-minus-one', USER, dict(name='cp_x', connection_limit=-5), {}, 'connection_limit must be -1'),
    ('replication-user-is-the-admin', USER, dict(name='postgres'), {}, 'is the admin login itself'),
    ('password-of-the-wrong-type', USER, dict(name='cp_x', password=dict(a=1)), {}, 'password must be a string (got a value of type dict)'),
    ('password-a-yaml-number', USER, dict(name='cp_x', password=123), {}, 'password must be a string (got a value of type int)'),
    ('admin-password-a-yaml-number', CHECK, {}, dict(login_password=1234), 'login_password must be a string'),
    ('update-password-unknown', USER, dict(name='cp_x', update_password='sometimes'), {}, 'update_password must be one of'),
    ('drop-role-that-owns-objects', USER, dict(name='cp_owner', state='absent'), {}, 'owns 1 object(s)'),
    ('lock-timeout-not-a-duration', USER, dict(name='cp_x', lock_timeout='soon'), {}, 'is not a PostgreSQL duration'),
    ('grants-role-missing', GRANTS, dict(user='cp_ghost'), {}, 'Create it first with pgcdc.clickpipes.replication_user'),
    ('table-unknown', GRANTS, dict(user='cp_bad', tables=['public.nope']), {}, 'tables not found: public.nope'),
    ('schema-unknown', GRANTS, dict(user='cp_bad', schemas=['ghost']), {}, 'schemas not found: ghost'),
    ('schema-without-tables', GRANTS, dict(user='cp_bad', schemas=['vacant']), {}, 'No table to replicate was found in schemas vacant'),
    ('scope-empty', GRANTS, dict(user='cp_bad', schemas=[], tables=[]), {}, 'Nothing to replicate'),
    ('table-ambiguous', GRANTS, dict(user='cp_bad', schemas=['public', 'sales'], tables=['orders']), {}, 'exists in several schemas'),
    ('table-name-three-parts', GRANTS, dict(user='cp_bad', tables=['db.public.orders']), {}, 'more than one dot'),
    ('table-name-unclosed-quote', GRANTS, dict(user='cp_bad', tables=['"orders']), {}, 'unclosed double quote'),
    ('table-name-text-after-quote', GRANTS, dict(user='cp_bad', tables=['"ord"ers']), {}, 'after a closing double quote'),
    ('table-name-empty', GRANTS, dict(user='cp_bad', tables=['']), {}, 'An empty table name'),
    ('schema-name-hostile-sql', GRANTS, dict(user='cp_bad', schemas=['public; DROP TABLE orders']), {},
     'schemas not found: public; DROP TABLE orders'),
    ('tables-with-schemas-mode', PUBLICATION, dict(name='p', mode='schemas', tables=['orders']), {}, 'tables is only used with mode: tables'),
    ('operations-without-update', PUBLICATION, dict(name='p', operations=['insert']), {}, 'ClickPipes needs insert and update'),
    ('operation-unknown', PUBLICATION, dict(name='p', operations=['upsert']), {}, 'operations must be one or more of'),
    ('mode-unknown', PUBLICATION, dict(name='p', mode='everything'), {}, 'mode must be one of'),
    ('publication-name-empty', PUBLICATION, dict(name=''), {}, 'An empty publication name'),
    ('table-without-primary-key', PUBLICATION, dict(name='p', schemas=['nokey']), {}, 'Refusing to publish UPDATE/DELETE'),
    ('narrowing-needs-exact', PUBLICATION, dict(name='listed', mode='all_tables'), {}, 'Set exact: true'),
    ('skip-check-unknown', CHECK, dict(skip_checks=['wal_levels']), {}, 'Unknown check id(s) in skip_checks: wal_levels'),
    ('wal-keep-target-not-a-size', CHECK, dict(max_slot_wal_keep_size_target='lots'), {}, 'is not a size'),
    ('fail-on-unknown', CHECK, dict(fail_on='sometimes'), {}, 'fail_on must be one of'),
    ('provider-unknown', CHECK, dict(provider='aws'), {}, 'provider must be one of'),
    ('wrong-password', CHECK, {}, dict(login_password='wrong'), 'Check the user name and password'),
    ('nothing-listens-on-the-port', CHECK, {}, dict(login_port=1), 'Check login_host and login_port'),
    ('database-unknown', CHECK, {}, dict(login_db='no_such_db'), 'Check login_db and login_user'),
    ('host-unresolvable', CHECK, {}, dict(login_host='no-such-host.invalid'), 'Check login_host and login_port'),
    ('tls-required-but-unavailable', CHECK, {}, dict(ssl_mode='require'), 'Check ssl_mode and ca_cert'),
    ('port-not-a-number', CHECK, {}, dict(login_port='fivefourthreetwo'), "argument 'login_port' is of type"),
]


def test_every_bad_input_gets_a_clear_message_and_changes_nothing(pg, database):
    pg.execute(SETUP, dbname=database)
    before = snapshot(pg, database)
    tasks = []
    for case_id, module, options, connection, _expected in CASES:
        task = {'name': case_id, module: dict(options, **connection), 'ignore_errors': True, 'ignore_unreachable': True}
        tasks.append(task)
    run = run_playbook(tasks, module_defaults=login(pg, database))
    assert 'Traceback (most recent call last)' not in run.stdout + run.stderr
    for case_id, _module, _options, _connection, expected in CASES:
        result = run.result(case_id)
        # A failed admin connection leaves the source unexamined: unreachable (exit code 4), not failed.
        outcome = 'unreachable' if result['msg'].startswith('Could not connect to ') else 'failed'
        assert result.get(outcome) is True and run.status(case_id) == outcome, (case_id, result)
        assert expected in result['msg'], (case_id, result['msg'])
    assert snapshot(pg, database) == before


def test_standby_is_refused_by_the_writing_modules(pg, standby):
    run = run_playbook([{'name': 'user', USER: dict(name='cp_standby')}], module_defaults=login(standby, 'postgres'))
    assert run.rc != 0 and 'is a standby (read-only)' in run.result('user')['msg']


def test_pooler_endpoint_is_refused_by_the_role(pg, database, pgbouncer, tmp_path):
    pg.execute('CREATE TABLE orders (id int PRIMARY KEY)', dbname=database)
    inventory = tmp_path / 'inventory.yml'
    inventory.write_text('clickpipes_sources:\n  hosts:\n    pooled:\n' + ''.join(
        '      %s: %s\n' % item for item in dict(
            clickpipes_login_host=pgbouncer.host, clickpipes_login_port=pgbouncer.port, clickpipes_login_user=pg.superuser,
            clickpipes_login_password=pg.password, clickpipes_login_db=database).items()))
    before = snapshot(pg, database)
    run = run_playbook_file('pgcdc.clickpipes.prepare', inventory=str(inventory))
    assert run.rc == 2 and 'is not a direct connection to the database' in run.stdout
    assert snapshot(pg, database) == before


def test_server_older_than_12_is_refused(make_cluster):
    old = make_cluster(major=11)
    run = run_playbook([{'name': 'check', CHECK: {}}], module_defaults=login(old, 'postgres'))
    assert 'PostgreSQL 11.' in run.result('check')['msg'] and 'needs PostgreSQL 12 or later' in run.result('check')['msg']


def test_the_catalogue_is_documented():
    table = (pathlib.Path(__file__).resolve().parents[2] / 'docs' / 'bad-inputs.md').read_text(encoding='utf-8')
    for case_id, _module, _options, _connection, expected in CASES:
        assert '`%s`' % case_id in table and expected.replace('|', '\\|') in table, case_id
