"""The proof: after the modules prepare a source, a real subscriber replicates it as the replication user."""

from __future__ import annotations

import os
import subprocess

import pytest

from playbook import run_playbook
from support import fresh_roles, login, prepare_tasks

import pgcluster

SOURCE_TABLES = """
CREATE TABLE orders (id int PRIMARY KEY, item text, qty int);
CREATE TABLE "Line Items" (id int PRIMARY KEY, order_id int);
INSERT INTO orders SELECT g, 'item ' || g, g FROM generate_series(1, 100) g;
INSERT INTO "Line Items" VALUES (1, 1), (2, 1);
"""

TARGET_TABLES = """
CREATE TABLE orders (id int PRIMARY KEY, item text, qty int);
CREATE TABLE "Line Items" (id int PRIMARY KEY, order_id int);
"""


pytestmark = pytest.mark.usefixtures(fresh_roles.__name__)


def test_subscriber_receives_initial_copy_and_changes(pg, database, subscriber):
    pg.execute(SOURCE_TABLES, dbname=database)
    prepared = run_playbook(prepare_tasks(password='e2e-secret'), module_defaults=login(pg, database))
    assert prepared.rc == 0, prepared.stdout
    pgcluster.create_database(subscriber, database)
    try:
        subscriber.execute(TARGET_TABLES, dbname=database)
        slot = 'e2e_%s' % database
        subscriber.execute(
            "CREATE SUBSCRIPTION e2e CONNECTION 'host=%s port=%d dbname=%s user=clickpipes_user password=e2e-secret' "
            "PUBLICATION clickpipes_publication WITH (slot_name = '%s')" % (pg.host, pg.port, database, slot), dbname=database)
        try:
            pgcluster.wait_for(lambda: subscriber.query('SELECT count(*) FROM orders', dbname=database) == [(100,)], timeout=60)
            assert subscriber.query('SELECT count(*) FROM "Line Items"', dbname=database) == [(2,)]
            pg.execute("INSERT INTO orders VALUES (101, 'new', 1); UPDATE orders SET qty = 42 WHERE id = 1;"
                       'DELETE FROM orders WHERE id = 2; INSERT INTO "Line Items" VALUES (3, 101)', dbname=database)
            expected = [(100, 42, 0)]
            query = 'SELECT count(*), max(qty) FILTER (WHERE id = 1), count(*) FILTER (WHERE id = 2) FROM orders'
            pgcluster.wait_for(lambda: subscriber.query(query, dbname=database) == expected, timeout=60)
            pgcluster.wait_for(lambda: subscriber.query('SELECT count(*) FROM "Line Items"', dbname=database) == [(3,)], timeout=60)
        finally:
            subscriber.execute('DROP SUBSCRIPTION e2e', dbname=database)
    finally:
        pgcluster.drop_database(subscriber, database)


def test_pg_recvlogical_streams_pgoutput_as_the_replication_user(pg, database, tmp_path):
    pg.execute('CREATE TABLE ticks (id int PRIMARY KEY)', dbname=database)
    assert run_playbook(prepare_tasks(password='recv-secret'), module_defaults=login(pg, database)).rc == 0
    slot = 'recv_%s' % database
    env = dict(os.environ, PGPASSWORD='recv-secret')
    base = ['/usr/lib/postgresql/15/bin/pg_recvlogical', '-h', pg.host, '-p', str(pg.port), '-U', 'clickpipes_user', '-d', database, '-S', slot]
    subprocess.run(base + ['--create-slot', '-P', 'pgoutput'], env=env, check=True, capture_output=True, timeout=60)
    try:
        pg.execute('INSERT INTO ticks SELECT generate_series(1, 10)', dbname=database)
        end = pg.query('SELECT pg_current_wal_lsn()::text', dbname=database)[0][0]
        output = tmp_path / 'stream.bin'
        subprocess.run(base + ['--start', '--endpos', end, '-o', 'proto_version=1', '-o', 'publication_names=clickpipes_publication',
                               '-f', str(output), '--no-loop'], env=env, check=True, capture_output=True, timeout=60)
        data = output.read_bytes()
        assert b'ticks' in data, 'the relation message for ticks was not streamed'
    finally:
        pg.execute("SELECT pg_drop_replication_slot('%s')" % slot, dbname=database)
