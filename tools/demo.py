#!/usr/bin/env python
"""Start a throwaway PostgreSQL with sample tables, prepare and check it with the collection, then stop it."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'tests' / 'harness'))

import pgcluster  # noqa: E402  pylint: disable=wrong-import-position

SAMPLE = """
CREATE ROLE app NOLOGIN;
CREATE SCHEMA shop AUTHORIZATION app;
SET ROLE app;
CREATE TABLE shop.customers (id bigint PRIMARY KEY, name text NOT NULL);
CREATE TABLE shop.orders (id bigint PRIMARY KEY, customer_id bigint REFERENCES shop.customers, total numeric(12, 2));
CREATE TABLE shop.events (id bigint, at date NOT NULL, kind text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE shop.events_2026 PARTITION OF shop.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO shop.customers VALUES (1, 'Ada'), (2, 'Grace');
INSERT INTO shop.orders VALUES (1, 1, 12.50), (2, 2, 99.00);
"""


def collection_path(workdir):
    """A folder holding ansible_collections/pgcdc/clickpipes -> this repository (outside the repository)."""
    link = Path(workdir) / 'ansible_collections' / 'pgcdc' / 'clickpipes'
    link.parent.mkdir(parents=True)
    link.symlink_to(ROOT)
    return Path(workdir)


def main():
    major = int(os.environ.get('PGCDC_DEMO_MAJOR', '15'))
    print('Starting a throwaway PostgreSQL %d on 127.0.0.1 ...' % major, flush=True)
    cluster = pgcluster.start_cluster(major, name='demo')
    try:
        cluster.execute('CREATE DATABASE shop')
        cluster.execute(SAMPLE, dbname='shop')
        with tempfile.TemporaryDirectory() as workdir:
            variables = dict(demo_host=cluster.host, demo_port=cluster.port, demo_admin=cluster.superuser,
                             demo_admin_password=cluster.password, demo_db='shop',
                             demo_clickpipes_password=secrets.token_urlsafe(18))
            inventory = Path(workdir) / 'inventory.json'
            inventory.write_text(json.dumps(dict(demo=dict(hosts=dict(shop_source=variables)))))
            env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collection_path(workdir)), ANSIBLE_NOCOWS='1',
                       ANSIBLE_PYTHON_INTERPRETER=sys.executable)
            playbook = ROOT / 'tools' / 'demo' / 'prepare_and_check.yml'
            ansible_playbook = str(Path(sys.executable).parent / 'ansible-playbook')
            return subprocess.run([ansible_playbook, '-i', str(inventory), str(playbook)], env=env, check=False).returncode
    finally:
        cluster.destroy()
        print('The throwaway PostgreSQL was stopped and removed.')


if __name__ == '__main__':
    sys.exit(main())
