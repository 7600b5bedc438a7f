#!/usr/bin/env python
"""The job users run, on a throwaway PostgreSQL with sample tables: `ansible-playbook pgcdc.clickpipes.prepare`, the
Markdown report it wrote, then `ansible-playbook pgcdc.clickpipes.verify`. The server is stopped and removed at the end.

`make demo` runs it (with .venv's Ansible, and the Makefile's filter for library warnings that are not ours).
"""

from __future__ import annotations

import os
import secrets
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

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
HOST = 'shop_source'


def collection_path(workdir):
    """A folder holding ansible_collections/pgcdc/clickpipes -> this repository (outside the repository)."""
    link = Path(workdir) / 'ansible_collections' / 'pgcdc' / 'clickpipes'
    link.parent.mkdir(parents=True)
    link.symlink_to(ROOT)
    return Path(workdir)


def write_inventory(workdir, cluster):
    """The inventory a user writes for one self-hosted source (docs/examples/inventories/ has more)."""
    source = dict(clickpipes_login_host=cluster.host, clickpipes_login_port=cluster.port,
                  clickpipes_login_user=cluster.superuser, clickpipes_login_password=cluster.password,
                  clickpipes_login_db='shop', clickpipes_schemas=['shop'],
                  clickpipes_password=secrets.token_urlsafe(18), clickpipes_report_dir='reports')
    inventory = Path(workdir) / 'inventory.yml'
    inventory.write_text(yaml.safe_dump(dict(clickpipes_sources=dict(hosts={HOST: source})), sort_keys=False))
    return inventory


def show_inventory(inventory):
    hosts = yaml.safe_load(inventory.read_text())['clickpipes_sources']['hosts']
    shown = {host: {name: '********' if name.endswith('password') else value for name, value in source.items()}
             for host, source in hosts.items()}
    print('\n=== The inventory (passwords hidden here)\n$ cat inventory.yml\n%s' % yaml.safe_dump(
        dict(clickpipes_sources=dict(hosts=shown)), sort_keys=False), end='', flush=True)


def step(title, command, workdir, env):
    """Print the command as a user types it (.venv's ansible-playbook runs it), run it in workdir, return its exit code."""
    print('\n=== %s\n$ %s' % (title, shlex.join([os.path.basename(command[0])] + command[1:])), flush=True)
    return subprocess.run(command, cwd=workdir, env=env, stdin=subprocess.DEVNULL, check=False).returncode


def show_report(workdir):
    report = Path(workdir) / 'reports' / ('%s.md' % HOST)
    print('\n=== The report prepare wrote\n$ cat reports/%s.md\n' % HOST)
    print(report.read_text() if report.is_file() else '(no report was written)', flush=True)


def main():
    major = int(os.environ.get('PGCDC_DEMO_MAJOR', '15'))
    print('Starting a throwaway PostgreSQL %d on 127.0.0.1 with a sample shop schema ...' % major, flush=True)
    cluster = pgcluster.start_cluster(major, name='demo')
    try:
        cluster.execute('CREATE DATABASE shop')
        cluster.execute(SAMPLE, dbname='shop')
        with tempfile.TemporaryDirectory(prefix='pgcdc-demo-') as workdir:
            show_inventory(write_inventory(workdir, cluster))
            env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collection_path(workdir)), ANSIBLE_NOCOWS='1')
            ansible_playbook = str(Path(sys.executable).parent / 'ansible-playbook')
            prepared = step('Prepare the source: user, grants, publication, then check it', [
                ansible_playbook, 'pgcdc.clickpipes.prepare', '-i', 'inventory.yml'], workdir, env)
            show_report(workdir)
            verified = step('Verify it, changing nothing (the nightly drift check)', [
                ansible_playbook, 'pgcdc.clickpipes.verify', '-i', 'inventory.yml'], workdir, env)
            return prepared or verified
    finally:
        cluster.destroy()
        print('The throwaway PostgreSQL was stopped and removed.')


if __name__ == '__main__':
    sys.exit(main())
