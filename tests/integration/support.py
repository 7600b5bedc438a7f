"""Shared pieces of the module integration tests: connection variables, sample schemas, catalog snapshots."""

from __future__ import annotations

import re

import pytest

GROUP = 'group/pgcdc.clickpipes.clickpipes'
HARNESS_ROLES = {'app', 'managed_admin', 'foreign_admin'}
WRITE_STATEMENT = re.compile(r'statement: (CREATE|ALTER|GRANT|REVOKE|DROP|SELECT pg_terminate_backend)', re.IGNORECASE)

# A password with quotes, a backslash, a dollar, a semicolon and non-ASCII: it must never show up anywhere.
HOSTILE_PASSWORD = 'Pa$$ \'w"o\\rd;--ünï'

TRICKY_SCHEMA_SQL = """
DO $$ BEGIN CREATE ROLE app NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
CREATE SCHEMA "Sales Dept" AUTHORIZATION app;
CREATE SCHEMA "weird""schema" AUTHORIZATION app;
CREATE TABLE public.orders (id int PRIMARY KEY, note text);
CREATE TABLE public."MixedCase" (id int PRIMARY KEY);
CREATE TABLE public."with space" (id int PRIMARY KEY);
CREATE TABLE public."ünïcode_täble" (id int PRIMARY KEY);
CREATE TABLE public."robert'); DROP TABLE orders;--" (id int PRIMARY KEY);
CREATE TABLE public."full_identity" (x int);
ALTER TABLE public."full_identity" REPLICA IDENTITY FULL;
CREATE TABLE "Sales Dept"."Order Items" (id int PRIMARY KEY, qty int);
CREATE TABLE "weird""schema"."a""b" (id int PRIMARY KEY);
CREATE TABLE public.events (id bigint, at date NOT NULL, payload text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE public.events_2026 PARTITION OF public.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
"""

TRICKY_OWNED_BY_APP = """
DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT c.oid::regclass AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p') AND n.nspname IN ('public', 'Sales Dept', 'weird"schema') LOOP
    EXECUTE format('ALTER TABLE %s OWNER TO app', r.t);
  END LOOP;
END $$;
"""

TRICKY_SCHEMAS = ['public', 'Sales Dept', 'weird"schema']

SNAPSHOT_QUERIES = dict(
    roles="SELECT rolname, rolcanlogin, rolreplication, rolbypassrls, rolconnlimit FROM pg_roles ORDER BY 1",
    table_acls="SELECT c.oid::regclass::text, c.relacl::text, c.relreplident FROM pg_class c WHERE c.relkind IN ('r','p') ORDER BY 1",
    schema_acls="SELECT nspname, nspacl::text FROM pg_namespace ORDER BY 1",
    default_acls="SELECT defaclrole::regrole::text, defaclnamespace, defaclobjtype, defaclacl::text FROM pg_default_acl ORDER BY 1, 2, 3",
    publications="SELECT pubname, puballtables, pubinsert, pubupdate, pubdelete, pubtruncate FROM pg_publication ORDER BY 1",
    publication_rels="SELECT p.pubname, pr.prrelid::regclass::text FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid ORDER BY 1, 2",
)


def login(cluster, dbname, user=None, password=None):
    """module_defaults for the collection's action group: the admin connection."""
    return {GROUP: dict(login_host=cluster.host, login_port=cluster.port, login_user=user or cluster.superuser,
                        login_password=password or cluster.password, login_db=dbname)}


def snapshot(cluster, dbname):
    return dict((name, cluster.query(query, dbname=dbname)) for name, query in SNAPSHOT_QUERIES.items())


class LogWindow:
    """The server log written after this object was made."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.offset = len(cluster.read_log())

    def text(self):
        return self.cluster.read_log()[self.offset:]

    def write_statements(self):
        return [line for line in self.text().splitlines() if WRITE_STATEMENT.search(line)]


def prepare_tasks(user='clickpipes_user', password='pw-not-secret', schemas=None, tables=None, publication='clickpipes_publication',
                  user_options=None, publication_options=None):
    """The three writing modules in their order, each registered under its own name."""
    scope = dict(schemas=schemas or ['public'], tables=tables or [])
    return [
        dict(name='user', **{'pgcdc.clickpipes.replication_user': dict(name=user, password=password, **(user_options or {}))}),
        dict(name='grants', **{'pgcdc.clickpipes.replication_grants': dict(user=user, **scope)}),
        dict(name='publication', **{'pgcdc.clickpipes.publication': dict(name=publication, **scope, **(publication_options or {}))}),
    ]


@pytest.fixture
def fresh_roles(pg):
    """Drop the roles a test created (roles are cluster-wide; the test's database is dropped before this runs)."""
    before = set(row[0] for row in pg.query('SELECT rolname FROM pg_roles')) | HARNESS_ROLES
    yield
    for (name,) in pg.query('SELECT rolname FROM pg_roles'):
        if name not in before:
            pg.execute('DROP OWNED BY "%s"; DROP ROLE "%s"' % (name.replace('"', '""'), name.replace('"', '""')))
