from __future__ import annotations

import pytest

from ansible_collections.pgcdc.clickpipes.plugins.module_utils import checks, prepare_step


def params(**overrides):
    base = dict(update_password='on_create', publication_operations=None, bypass_rls=None, publication_exact=False,
                publication_mode='tables')
    base.update(overrides)
    return base


def error(check_id, observed='x', managed=True):
    return checks.finding(check_id, 'error', 'broken', observed=observed, managed=managed)


@pytest.mark.parametrize('item, options, fixed', [
    (error('user_exists'), {}, True),
    (error('table_select'), {}, True),
    (error('wal_level'), {}, False),
    (error('publication_tables', managed=False), {}, False),
    (error('row_level_security'), {}, False),
    (error('row_level_security'), dict(bypass_rls=True), True),
    (error('publication_operations'), {}, False),
    (checks.finding('publication_scope', 'warning', 'FOR ALL TABLES'), {}, False),
    (checks.finding('publication_scope', 'warning', 'FOR ALL TABLES'), dict(publication_exact=True), True),
    (checks.finding('user_least_privilege', 'warning', 'SUPERUSER'), {}, False),
    (error('publication_operations'), dict(publication_operations=['insert', 'update', 'delete']), True),
    (error('replication_connection', 'password authentication failed for user "cp"'), {}, False),
    (error('replication_connection', 'password authentication failed for user "cp"'), dict(update_password='always'), True),
    (error('replication_connection', 'must be superuser or replication role to start walsender'), {}, True),
    (error('replication_connection', 'no pg_hba.conf entry for replication connection'), dict(update_password='always'), False),
    (checks.finding('hypertable_chunks', 'error', 'chunks', sql=['ALTER PUBLICATION ... ADD TABLES IN SCHEMA ...']), {}, True),
    (error('hypertable_chunks'), {}, False),
    (error('hypertable_chunks'), dict(publication_mode='all_tables'), True),
])
def test_the_run_fixes_a_managed_finding_only_with_the_options_it_needs(item, options, fixed):
    assert prepare_step.fixed_by_run(item, params(**options)) is fixed


def test_unfixable_errors_block_and_warnings_never_do():
    findings = [error('user_exists'), error('wal_level'), checks.finding('ssl', 'warning', 'plain'),
                error('row_level_security')]
    assert prepare_step.unfixable(dict(findings=findings), params()) == ['wal_level', 'row_level_security']


def test_check_mode_marks_what_the_planned_statements_fix_and_predicts_ready():
    findings = [error('user_exists'), error('publication_exists'), checks.finding('ssl', 'warning', 'plain')]
    result = dict(findings=findings, summary=checks.summarize(findings))
    prepare_step.predict(result, params(), dict(replication_user=dict(changed=True), publication=dict(changed=True)))
    assert [item['fix'].get('planned') for item in findings] == [True, True, None]
    assert result['summary']['ready'] is True and result['summary']['error'] == 2

    findings = [error('user_exists'), error('publication_exists')]
    result = dict(findings=findings, summary=checks.summarize(findings))
    prepare_step.predict(result, params(), dict(replication_user=dict(changed=True), publication=dict(changed=False)))
    assert result['summary']['ready'] is False
