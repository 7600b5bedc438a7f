#!/usr/bin/env python
"""Amazon RDS- and Aurora-shaped PostgreSQL for tests, built from real parts (see DESIGN.md "Tests").

What RDS shows a client, imitated on a harness cluster (tests/harness/pgcluster.py):

- the fingerprint settings (``settings()`` for ``start_cluster``, or the CLI's ``start --set``):
  ``rds.extensions`` and ``rds.logical_replication``; Aurora also has ``pg_catalog.aurora_version()``, a SQL function
  the superuser creates in the database (so one cluster can hold RDS- and Aurora-shaped databases);
- the admin roles: ``rds_superuser`` and ``rds_replication`` (NOLOGIN), rds_superuser a member of rds_replication
  WITH ADMIN OPTION, and a master user that is not a superuser: LOGIN, CREATEROLE, CREATEDB, a member of rds_superuser
  and of the role owning the tables (harness ``create_managed_like_admin``), without the REPLICATION attribute;
- a stand-in for the part of RDS's control plane that lets members of rds_replication start a WAL sender. Stock
  PostgreSQL only lets roles with the REPLICATION attribute do that, so the stand-in keeps, as the superuser, the
  REPLICATION attribute of every non-superuser LOGIN role equal to "member of rds_replication (directly or not) and
  rds.logical_replication on". No hook of SQL sees a GRANT of a role, so it does that twice: an event trigger of the
  database (a superuser's SECURITY DEFINER function) inside the transaction of every DDL command event triggers see,
  which covers a prepare run that also grants on tables or creates the publication (its verify logs in right after
  the commit), and a process polling every POLL_SECONDS for a GRANT made alone. The
  collection never sees the attribute it sets as the reason: on RDS and Aurora it checks membership, and the real
  replication login proves the grant path end to end. What cannot be imitated: on real RDS the attribute stays off,
  so an admin may alter a member on PostgreSQL 15 and older; here it is on, and PostgreSQL 15 and older then want a
  superuser to alter the member (a password rotation of an existing member).

Importable (``import rds_shape`` with tests/harness on sys.path) and a command-line tool::

    python tests/harness/rds_shape.py roles --state-dir DIR --dbname DB [--name rds_master] [--owner-role app] [--aurora]
    python tests/harness/rds_shape.py control-plane --state-dir DIR     (starts it in the background; idempotent)
    python tests/harness/rds_shape.py stop-control-plane --state-dir DIR

The control plane of the CLI ends by itself once its cluster is stopped; ``stop-control-plane`` ends it earlier.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg2
from psycopg2 import sql

import pgcluster

POLL_SECONDS = 0.01
# How long the control plane keeps trying to reach a cluster that went away (a restart) before it ends.
GONE_SECONDS = 10
AURORA_VERSION = '16.4.2'
RDS_EXTENSIONS = 'pg_stat_statements,pgcrypto,postgis,uuid-ossp,vector'

ADMIN_ROLES = """
DO $$ BEGIN
  CREATE ROLE rds_superuser NOLOGIN;
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
DO $$ BEGIN
  CREATE ROLE rds_replication NOLOGIN;
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
GRANT rds_replication TO rds_superuser WITH ADMIN OPTION;
"""

AURORA_FUNCTION = sql.SQL("CREATE OR REPLACE FUNCTION pg_catalog.aurora_version() RETURNS text LANGUAGE sql IMMUTABLE AS {}")

# The login roles whose REPLICATION attribute differs from what membership in rds_replication gives them.
OUT_OF_STEP = """
SELECT rolname, NOT rolreplication AS give
  FROM (SELECT rolname, rolreplication,
               pg_has_role(oid, 'rds_replication', 'MEMBER')
               AND coalesce(current_setting('rds.logical_replication', true), 'off') IN ('on', '1') AS member
          FROM pg_roles WHERE rolcanlogin AND NOT rolsuper) AS r
 WHERE rolreplication <> member
"""


def settings(logical_replication=True):
    """The settings of an RDS or Aurora instance (Aurora: plus make_admin_roles(aurora=True)); logical_replication off
    also means wal_level replica, as on RDS."""
    values = {'rds.extensions': RDS_EXTENSIONS, 'rds.logical_replication': 'on' if logical_replication else 'off'}
    if not logical_replication:
        values['wal_level'] = 'replica'
    return values


def make_admin_roles(cluster, dbname, name='rds_master', owner_role='app', aurora=False):
    """rds_superuser, rds_replication and the master user ``name`` for ``dbname`` (created when missing); Aurora's
    function too. Returns dict(user, password). Idempotent."""
    if not cluster.query('SELECT 1 FROM pg_database WHERE datname = %s', [dbname]):
        pgcluster.create_database(cluster, dbname)
    cluster.execute(ADMIN_ROLES)
    creds = pgcluster.create_managed_like_admin(cluster, dbname, name=name, owner_role=owner_role)
    admin = sql.Identifier(name)
    cluster.execute(sql.SQL('ALTER ROLE {} NOREPLICATION').format(admin))
    options = ' WITH INHERIT TRUE' if cluster.major >= 16 else ''
    cluster.execute(sql.SQL('GRANT rds_superuser TO {}' + options).format(admin))
    cluster.execute(IN_STEP_TRIGGER, dbname=dbname)
    if aurora:
        cluster.execute(AURORA_FUNCTION.format(sql.Literal("SELECT '%s'::text" % AURORA_VERSION)), dbname=dbname)
    return creds


# The same, inside the transaction of any DDL command of the database that event triggers see (GRANT on tables and
# schemas, CREATE PUBLICATION, ...), so a prepare run's replication user has its rights when the run commits; a GRANT
# of a role is a command no event trigger sees, for which the polling process is there.
IN_STEP_TRIGGER = """
CREATE OR REPLACE FUNCTION pg_catalog.rds_control_plane_sync() RETURNS event_trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog AS $fn$
DECLARE r record;
BEGIN
  FOR r IN %s LOOP
    EXECUTE format('ALTER ROLE %%I WITH %%s', r.rolname, CASE WHEN r.give THEN 'REPLICATION' ELSE 'NOREPLICATION' END);
  END LOOP;
END $fn$;
DROP EVENT TRIGGER IF EXISTS rds_control_plane;
CREATE EVENT TRIGGER rds_control_plane ON ddl_command_end EXECUTE FUNCTION pg_catalog.rds_control_plane_sync();
""" % OUT_OF_STEP


def sync_once(cursor):
    """Give or take REPLICATION where membership in rds_replication says so; the names changed."""
    cursor.execute(OUT_OF_STEP)
    changed = cursor.fetchall()
    for name, give in changed:
        cursor.execute(sql.SQL('ALTER ROLE {} WITH {}').format(sql.Identifier(name), sql.SQL('REPLICATION' if give else 'NOREPLICATION')))
    return [name for name, _give in changed]


def serve(cluster, stop=None):
    """Keep REPLICATION in step with membership until ``stop`` is set or the cluster has been gone GONE_SECONDS."""
    stop = stop or threading.Event()
    gone_since = None
    while not stop.is_set():
        try:
            with contextlib.closing(cluster.connect(options='-c statement_timeout=5s -c lock_timeout=5s -c log_statement=none')) as conn:
                gone_since = None
                with conn.cursor() as cursor:
                    while not stop.is_set():
                        sync_once(cursor)
                        stop.wait(POLL_SECONDS)
        except psycopg2.Error:
            gone_since = gone_since or time.monotonic()
            if time.monotonic() - gone_since > GONE_SECONDS:
                return
            stop.wait(0.2)


class ControlPlane:
    """The stand-in in a thread of this process (for pytest): ``with ControlPlane(cluster): ...``."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.stop = threading.Event()
        self.thread = threading.Thread(target=serve, args=(cluster, self.stop), name='rds-control-plane', daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=10)


# -- command line ------------------------------------------------------------------------------
def _pid_path(base):
    return Path(base) / 'rds_control_plane.pid'


def _running_pid(base):
    with contextlib.suppress(OSError, ValueError):
        pid = int(_pid_path(base).read_text().strip())
        if pgcluster._alive(pid):  # pylint: disable=protected-access
            return pid
    return None


def start_control_plane(base):
    """Start ``serve`` for the cluster in ``base`` as a background process (none when one runs); its pid."""
    pid = _running_pid(base)
    if pid:
        return pid
    log = open(str(Path(base) / 'rds_control_plane.log'), 'ab')  # pylint: disable=consider-using-with
    proc = subprocess.Popen([sys.executable, __file__, 'serve', '--base', str(base)], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=log, start_new_session=True)
    _pid_path(base).write_text('%d\n' % proc.pid)
    return proc.pid


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='rds_shape.py', description='RDS- and Aurora-shaped test clusters')
    commands = parser.add_subparsers(dest='command', required=True)
    cmd = commands.add_parser('roles', help='rds_superuser, rds_replication and a master user; print dict(user, password)')
    cmd.add_argument('--dbname', required=True)
    cmd.add_argument('--name', default='rds_master')
    cmd.add_argument('--owner-role', default='app')
    cmd.add_argument('--aurora', action='store_true', help='also create pg_catalog.aurora_version()')
    commands.add_parser('control-plane', help='start the rds_replication stand-in in the background; print dict(pid)')
    commands.add_parser('stop-control-plane', help='stop it')
    for cmd in commands.choices.values():
        cmd.add_argument('--state-dir', required=True)
    cmd = commands.add_parser('serve', help=argparse.SUPPRESS)
    cmd.add_argument('--base', required=True)
    args = parser.parse_args(argv)

    if args.command == 'serve':
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        serve(pgcluster.Cluster.load(args.base))
        return 0
    base = pgcluster._state_base(args.state_dir)  # pylint: disable=protected-access
    if not (base / 'cluster.json').exists():
        parser.error('%s holds no cluster; run pgcluster.py start first' % args.state_dir)
    cluster = pgcluster.Cluster.load(base)
    if args.command == 'roles':
        creds = make_admin_roles(cluster, args.dbname, name=args.name, owner_role=args.owner_role, aurora=args.aurora)
        cluster.save()  # keeps the admin's password: the next call returns the same one
        print(json.dumps(creds))
    elif args.command == 'control-plane':
        print(json.dumps(dict(pid=start_control_plane(base))))
    else:
        pid = _running_pid(base)
        if pid:
            os.kill(pid, signal.SIGTERM)
            pgcluster.wait_for(lambda: not pgcluster._alive(pid), timeout=30, interval=0.05)  # pylint: disable=protected-access
    return 0


if __name__ == '__main__':
    sys.exit(main())
