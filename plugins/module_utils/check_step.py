# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgcdc.clickpipes contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The source_check module: read the source and return one finding per check (never writes)."""

from __future__ import annotations

from ansible_collections.pgcdc.clickpipes.plugins.module_utils import checks, facts as gathering, providers, publications
from ansible_collections.pgcdc.clickpipes.plugins.module_utils.scope import SCOPE_ARGUMENT_SPEC, check_identifier
from ansible_collections.pgcdc.clickpipes.plugins.module_utils.connection import (
    ClickPipesError,
    check_bounds,
    connection_argument_spec,
    fetch_one,
    psycopg2,
    read_failure_message,
    read_transaction,
    require_text,
    session,
)


def size_in_bytes(cursor, size):
    try:
        return fetch_one(cursor, 'SELECT pg_size_bytes(%(size)s)::bigint AS bytes', dict(size=size))['bytes']
    except psycopg2.Error:
        raise ClickPipesError('max_slot_wal_keep_size_target %r is not a size: write it like 100GB or 51200MB.' % size)


def inspect(params, conn=None):
    """The facts and the WAL retention target in bytes, read on ``conn`` when given (left open)."""
    with session(params, conn) as conn:
        try:
            with read_transaction(conn, params) as cursor:
                target = size_in_bytes(cursor, params['max_slot_wal_keep_size_target'])
            with read_transaction(conn, params) as cursor:
                return gathering.gather(params, conn, cursor), target
        except psycopg2.Error as exc:
            raise ClickPipesError(read_failure_message(conn, exc)) from exc


def report(params, facts, target_bytes):
    ctx = checks.Context(facts, params['user'], params['publication'], target_bytes)
    findings = checks.run_checks(ctx, params['provider'], skip=set(params['skip_checks']))
    server = facts['server']
    rate = facts['wal_rate']
    login = providers.clickpipes_login(params['user'], facts['provider'], params['login_user'])
    return dict(
        changed=False,
        findings=findings,
        summary=checks.summarize(findings),
        error_ids=checks.error_ids(findings),
        pending_modules=checks.pending_modules(findings),
        provider=facts['provider'],
        server=dict(version=server['version'], version_num=server['version_num'], major=server['major'],
                    in_recovery=server['in_recovery'], database=server['database'], ssl=bool(server['ssl']),
                    superuser=server['superuser'],
                    pending_restart=sorted(name for name, row in facts['settings'].items() if row['pending_restart']),
                    detected_provider=facts['detected_provider'], wal_bytes_per_day=rate['bytes_per_day'] if rate else None,
                    recommended_max_slot_wal_keep_size='%dGB' % (checks.recommended_wal_keep(ctx) // checks.GB)),
        manual_steps=checks.manual_steps(findings, facts['provider'], login),
        publication=publications.public_state(facts['publication']),
        clickpipes_connection=dict(
            host=params['login_host'], port=params['login_port'], database=server['database'],
            user=login,
            publication=params['publication'],
            source_type=providers.source_type(facts['provider'])),
    )


def argument_spec():
    spec = connection_argument_spec()
    spec.update(SCOPE_ARGUMENT_SPEC)
    spec.update(
        user=dict(type='str', default='clickpipes_user'),
        password=dict(type='raw', no_log=True),
        publication=dict(type='str', default='clickpipes_publication'),
        provider=dict(type='str', choices=list(providers.CHOICES), default='auto'),
        fail_on=dict(type='str', choices=['error', 'warning', 'never'], default='error'),
        skip_checks=dict(type='list', elements='str', default=[]),
        max_slot_wal_keep_size_target=dict(type='str', default='100GB'),
        emit_warnings=dict(type='str', choices=list(checks.EMIT_CHOICES), default='none'),
    )
    return spec


def validate(params):
    """Refuse options no check can run with, before anything is read."""
    unknown = sorted(set(params['skip_checks']) - set(checks.CHECK_IDS))
    if unknown:
        raise ClickPipesError('Unknown check id(s) in skip_checks: %s. Known ids: %s.' % (', '.join(unknown), ', '.join(checks.CHECK_IDS)))
    check_bounds(params)
    check_identifier(params['user'], 'role')
    require_text(params['password'], 'password')
    check_identifier(params['publication'], 'publication')


def examine(params, conn=None):
    """The check's result, read on ``conn`` when given."""
    return report(params, *inspect(params, conn))


def run(call):
    params = call.params
    validate(params)
    result = examine(params)
    for line in checks.warning_lines(result['findings'], result['provider'], result['clickpipes_connection']['user'],
                                     params['emit_warnings']):
        call.warn(line)
    failed = checks.failing(result['findings'], params['fail_on'])
    if failed:
        raise ClickPipesError('The source is not ready for ClickPipes (fail_on: %s): %s' % (
            params['fail_on'], ' | '.join('%s: %s' % (item['id'], item['message']) for item in failed)), **result)
    return result
