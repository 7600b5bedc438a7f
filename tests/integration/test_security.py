"""Secrets never leak, and the replication user gets exactly what CDC needs and nothing more."""

from __future__ import annotations

import json

import psycopg2
import pytest
import yaml

from playbook import run_playbook_file
from support import HOSTILE_PASSWORD, fresh_roles

pytestmark = pytest.mark.usefixtures(fresh_roles.__name__)

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
DO $$ BEGIN CREATE ROLE app NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
CREATE SCHEMA inside AUTHORIZATION app; CREATE SCHEMA outside AUTHORIZATION app;
CREATE TABLE inside.orders (id int PRIMARY KEY); CREATE TABLE inside.lines (id int PRIMARY KEY);
CREATE TABLE outside.secrets (id int PRIMARY KEY);
ALTER TABLE inside.orders OWNER TO app; ALTER TABLE inside.lines OWNER TO app; ALTER TABLE outside.secrets OWNER TO app;
"""

# Every privilege the role holds in the database, from the catalogs themselves.
GRANTED = """
SELECT 'table ' || c.oid::regclass::text || ' ' || acl.privilege_type
  FROM pg_class c, aclexplode(c.relacl) acl WHERE acl.grantee = 'cp_least'::regrole
UNION ALL
SELECT 'schema ' || n.nspname || ' ' || acl.privilege_type
  FROM pg_namespace n, aclexplode(n.nspacl) acl WHERE acl.grantee = 'cp_least'::regrole
UNION ALL
SELECT 'database ' || d.datname || ' ' || acl.privilege_type
  FROM pg_database d, aclexplode(d.datacl) acl WHERE acl.grantee = 'cp_least'::regrole
UNION ALL
SELECT 'default ' || d.defaclrole::regrole::text || ' ' || coalesce(d.defaclnamespace::regnamespace::text, '*') || ' '
       || d.defaclobjtype::text || ' ' || acl.privilege_type
  FROM pg_default_acl d, aclexplode(d.defaclacl) acl WHERE acl.grantee = 'cp_least'::regrole
UNION ALL
SELECT 'member of ' || roleid::regrole::text FROM pg_auth_members WHERE member = 'cp_least'::regrole
ORDER BY 1
"""


def inventory_for(cluster, database, tmp_path, **extra):
    variables = dict(clickpipes_login_host=cluster.host, clickpipes_login_port=cluster.port, clickpipes_login_user=cluster.superuser,
                     clickpipes_login_password=cluster.password, clickpipes_login_db=database, clickpipes_user='cp_least',
                     clickpipes_password=HOSTILE_PASSWORD, clickpipes_schemas=['inside'], clickpipes_report_dir=str(tmp_path / 'reports'),
                     clickpipes_update_password='always')
    variables.update(extra)
    path = tmp_path / 'inventory.yml'
    path.write_text(yaml.safe_dump(dict(clickpipes_sources=dict(hosts=dict(source=variables)))))
    return str(path)


def test_password_is_in_no_output_report_log_or_statistics(make_cluster, tmp_path):
    cluster = make_cluster(settings=dict(shared_preload_libraries="'pg_stat_statements'", log_statement='all'))
    cluster.execute('CREATE DATABASE app')
    cluster.execute(SCHEMA, dbname='app')
    inventory = inventory_for(cluster, 'app', tmp_path)
    runs = [run_playbook_file('pgcdc.clickpipes.prepare', inventory=inventory, verbosity=4) for _attempt in range(2)]
    assert [run.rc for run in runs] == [0, 0], runs[0].stdout[-3000:]
    statements = '\n'.join(row[0] for row in cluster.query('SELECT query FROM pg_stat_statements', dbname='app'))
    places = dict(log=cluster.read_log(), pg_stat_statements=statements,
                  reports=''.join(path.read_text() for path in (tmp_path / 'reports').iterdir()))
    for number, run in enumerate(runs):
        places['run %d stdout' % number] = run.stdout
        places['run %d stderr' % number] = run.stderr
        places['run %d results' % number] = json.dumps(run.results)
    spellings = {HOSTILE_PASSWORD, json.dumps(HOSTILE_PASSWORD)[1:-1], HOSTILE_PASSWORD.replace("'", "''")}
    for place, text in places.items():
        for spelling in spellings:
            assert spelling not in text, 'the password leaked into %s' % place
    assert len(runs[0].stdout) > 20000, '-vvvv output expected'
    conn = psycopg2.connect(**cluster.conninfo(user='cp_least', password=HOSTILE_PASSWORD, dbname='app'))
    try:
        assert cluster.query("SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'cp_least'") == [(True,)]
        assert 'scram-sha-256' in (cluster.datadir / 'pg_hba.conf').read_text()
    finally:
        conn.close()


def test_user_holds_exactly_what_cdc_needs(pg, database, tmp_path):
    pg.execute(SCHEMA.replace('CREATE EXTENSION IF NOT EXISTS pg_stat_statements;', ''), dbname=database)
    run = run_playbook_file('pgcdc.clickpipes.prepare', inventory=inventory_for(pg, database, tmp_path))
    assert run.rc == 0, run.stdout
    role = pg.query("SELECT rolcanlogin, rolreplication, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolinherit "
                    "FROM pg_roles WHERE rolname = 'cp_least'")
    assert role == [(True, True, False, False, False, False, True)]
    granted = [row[0] for row in pg.query(GRANTED, dbname=database)]
    assert granted == [
        'default app inside r SELECT',
        'default postgres inside r SELECT',
        'schema inside USAGE',
        'table inside.lines SELECT',
        'table inside.orders SELECT',
    ]
    report = json.loads((tmp_path / 'reports' / 'source.json').read_text())
    assert [f['status'] for f in report['findings'] if f['id'] == 'user_least_privilege'] == ['ok']

    pg.execute('GRANT UPDATE ON inside.orders TO cp_least; ALTER ROLE cp_least CREATEROLE', dbname=database)
    verify = run_playbook_file('pgcdc.clickpipes.verify', inventory=inventory_for(pg, database, tmp_path, clickpipes_fail_on='warning'))
    assert verify.rc == 2
    finding = [f for f in json.loads((tmp_path / 'reports' / 'source.json').read_text())['findings'] if f['id'] == 'user_least_privilege'][0]
    assert finding['status'] == 'warning' and 'CREATEROLE' in finding['observed'] and 'inside.orders' in finding['observed']
