"""Pytest fixtures on real PostgreSQL clusters (tests/harness/pgcluster.py).

``PGCDC_MAJORS`` ("12 15 18" or "12,15,18"; default "15") selects the majors: every test using
``pg`` (directly or through another fixture) runs once per major, with ids ``pg12``, ``pg15``...
Servers run as a non-root user on 127.0.0.1 and are stopped at the end of the session.
When a test fails, the report lists the log file (and its tail) of each server it used.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'harness'))

import pgcluster  # noqa: E402  (needs the sys.path entry above)

MAJORS = pgcluster.parse_majors(os.environ.get('PGCDC_MAJORS', '15'))
_STARTED_BEFORE = pytest.StashKey()


def pytest_configure(config):
    """Turn SIGTERM (a cancelled CI job) into KeyboardInterrupt so finalizers stop the servers."""
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum, frame):
    raise KeyboardInterrupt('SIGTERM')


@pytest.fixture(scope='session', params=MAJORS, ids=['pg%d' % major for major in MAJORS])
def pg(request):
    """A cluster of one major from PGCDC_MAJORS with the harness defaults (wal_level=logical...)."""
    cluster = pgcluster.start_cluster(request.param)
    yield cluster
    cluster.destroy()


@pytest.fixture(scope='session')
def subscriber(pg):
    """A second, independent cluster of the same major (where CREATE SUBSCRIPTION runs)."""
    cluster = pgcluster.create_subscriber(pg.major)
    yield cluster
    cluster.destroy()


@pytest.fixture(scope='session')
def standby(pg):
    """A streaming hot standby of ``pg``."""
    cluster = pgcluster.start_standby(pg)
    yield cluster
    cluster.destroy()


@pytest.fixture(scope='session')
def pgbouncer(pg):
    """PgBouncer (session pooling) in front of ``pg``, on port 6432 when free."""
    bouncer = pgcluster.start_pgbouncer(pg)
    yield bouncer
    bouncer.destroy()


@pytest.fixture
def make_cluster(pg):
    """Factory for extra clusters living for one test: ``make_cluster(settings={...}, major=None)``."""
    clusters = []

    def make(settings=None, major=None, name=None):
        clusters.append(pgcluster.start_cluster(major or pg.major, settings=settings, name=name))
        return clusters[-1]

    yield make
    for cluster in clusters:
        cluster.destroy()


@pytest.fixture
def database(pg, request):
    """A fresh database in ``pg`` (name derived from the test), dropped afterwards."""
    stem = re.sub(r'[^a-z0-9]+', '_', request.node.name.lower()).strip('_')[:40]
    name = pgcluster.create_database(pg, 'db_%s_%s' % (stem, uuid.uuid4().hex[:6]))
    yield name
    pgcluster.drop_database(pg, name)


@pytest.fixture
def managed_admin(pg, database):
    """dict(user, password) of a managed-provider-like admin (member of the table owner role ``app``)."""
    return pgcluster.create_managed_like_admin(pg, database)


@pytest.fixture
def foreign_admin(pg, database):
    """dict(user, password) of an admin with CREATEROLE that does not own the tables."""
    return pgcluster.create_foreign_admin(pg, database)


def pytest_runtest_setup(item):
    item.stash[_STARTED_BEFORE] = len(pgcluster.STARTED)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, add the log path and tail of every server the test used or started."""
    report = yield
    if report.failed:
        servers = [value for value in item.funcargs.values() if isinstance(value, (pgcluster.Cluster, pgcluster.PgBouncer))]
        servers += pgcluster.STARTED[item.stash.get(_STARTED_BEFORE, len(pgcluster.STARTED)):]
        sections = []
        for server in dict.fromkeys(servers):
            sections.append('%r log: %s\n%s' % (server, server.log_path, ''.join(server.read_log().splitlines(True)[-30:])))
        if sections:
            report.sections.append(('pgcluster server logs (PGCDC_KEEP=1 keeps the files)', '\n'.join(sections)))
    return report


@pytest.fixture
def edge_majors_only(request):
    """Skip on a major between the oldest and the newest of the run: for provider shapes whose behaviour changes only
    at PostgreSQL 16 (who may give REPLICATION), the oldest (<= 15) and the newest cover both sides, in less time."""
    major = request.getfixturevalue('pg').major if 'pg' in request.fixturenames else None
    if major is not None and major not in (min(MAJORS), max(MAJORS)):
        pytest.skip('provider shape: runs on the oldest and newest majors of PGCDC_MAJORS (%d and %d)'
                    % (min(MAJORS), max(MAJORS)))
