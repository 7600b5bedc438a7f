from __future__ import annotations

import pytest

from ansible_collections.pgcdc.clickpipes.plugins.module_utils import checks
from ansible_collections.pgcdc.clickpipes.plugins.module_utils.connection import ClickPipesError
from ansible_collections.pgcdc.clickpipes.plugins.module_utils.scope import Scope

GB = 1024 ** 3


def setting(value, unit=None, amount=None):
    return dict(setting=str(value), unit=unit, amount=amount if amount is not None else value)


def ready_facts(major=16, provider='generic', **overrides):
    """Facts of a source that passes every check, for the tests to break one thing at a time."""
    orders = dict(oid=1, schema='public', name='orders', qualified='public.orders', kind='r', owner='app', row_security=False,
                  persistence='p')
    facts = dict(
        server=dict(version_num=major * 10000 + 4, version='%d.4' % major, in_recovery=False, database='app',
                    current_role='admin', ssl=True, aurora=False, wal_senders_in_use=1, major=major),
        settings=dict(wal_level=setting('logical'), max_wal_senders=setting(10), max_replication_slots=setting(10),
                      max_slot_wal_keep_size=setting(204800, 'MB', 200 * GB), wal_sender_timeout=setting(0, 'ms'),
                      idle_replication_slot_timeout=setting(0, 's'), port=setting(5432)),
        detected_provider=provider, provider=provider, slots=[], wal_rate=None,
        scope=Scope([orders], ['public']), partitioned=[], identity_problems=[], toast=[], dotted=[],
        publication=dict(name='pub', all_tables=False, operations=['insert', 'update', 'delete'], via_root=False,
                         members=[], schemas=[]),
        unpublished=[], hypertables=[],
        user=dict(name='cp', login=True, replication=True, bypass_rls=False, superuser=False, create_role=False, create_db=False,
                  valid_until=None, password_expired=False, password_expires_soon=False),
        privileges=dict(schemas_without_usage=[], tables_without_select=[], writable_tables=[], default_privileges_missing=[],
                        owned_tables=[]),
        pooler=dict(host='db', port=5432, server_port=5432, pgbouncer=False),
        replication_connection=(True, 'IDENTIFY_SYSTEM answered'),
    )
    facts.update(overrides)
    return facts


def findings_for(facts, requested='auto', skip=()):
    ctx = checks.Context(facts, 'cp', 'pub', 100 * GB)
    return dict((item['id'], item) for item in checks.run_checks(ctx, requested, skip))


def test_ready_source_has_every_check_ok_once():
    findings = checks.run_checks(checks.Context(ready_facts(major=18), 'cp', 'pub'), 'auto')
    assert [item['id'] for item in findings] == list(checks.CHECK_IDS)
    assert set(item['status'] for item in findings) == {'ok'}
    assert checks.summarize(findings)['ready'] is True


def test_every_check_id_has_a_function():
    assert set(checks.CHECK_IDS) == set(checks.CHECKS)


def test_missing_user_skips_the_user_checks_instead_of_passing_them():
    findings = findings_for(ready_facts(user=None, privileges=None, replication_connection=None))
    assert findings['user_exists']['status'] == 'error'
    for check_id in ('user_login', 'user_replication', 'replication_connection', 'schema_usage', 'table_select',
                     'default_privileges'):
        assert findings[check_id]['status'] == 'skipped' and 'does not exist' in findings[check_id]['observed'], check_id


def test_version_gated_checks_are_skipped_on_old_servers():
    findings = findings_for(ready_facts(major=12))
    assert findings['max_slot_wal_keep_size']['status'] == 'skipped'
    assert findings['publication_partition_root']['status'] == 'skipped'
    assert findings['idle_replication_slot_timeout']['status'] == 'skipped'


def test_buggy_minor_release_warns():
    facts = ready_facts()
    facts['server'].update(version_num=160009, version='16.9')
    assert findings_for(facts)['server_version']['status'] == 'warning'


@pytest.mark.parametrize('provider, manual, sql', [
    ('generic', True, ['ALTER SYSTEM SET wal_level = logical']),
    ('planetscale', True, []),
    ('neon', True, []),
    ('rds', True, []),
    ('cloudsql', True, []),
    ('alloydb', True, []),
])
def test_wal_level_fix_depends_on_provider(provider, manual, sql):
    facts = ready_facts(provider=provider)
    facts['settings']['wal_level'] = setting('replica')
    finding = findings_for(facts)['wal_level']
    assert finding['status'] == 'error' and finding['fix']['restart'] is True
    assert finding['fix']['sql'] == sql
    assert bool(finding['fix']['manual']) == manual
    if provider == 'planetscale':
        assert 'Cluster configuration' in finding['fix']['manual'][0]['where']
        assert finding['fix']['manual'][0]['current'] == 'replica' and finding['fix']['manual'][0]['target'] == 'logical'
    if provider == 'neon':
        assert 'Logical Replication' in finding['fix']['manual'][0]['where']
    decoding = dict(rds=['rds.logical_replication'], cloudsql=['cloudsql.logical_decoding'],
                    alloydb=['alloydb.enable_pglogical', 'alloydb.logical_decoding']).get(provider, [])
    assert all(name in finding['fix']['manual'][0]['what'] for name in decoding)


@pytest.mark.parametrize('provider, flags, observed', [
    ('cloudsql', dict(**{'cloudsql.logical_decoding': 'off'}), 'replica (cloudsql.logical_decoding = off)'),
    ('alloydb', dict(**{'alloydb.logical_decoding': 'on'}), 'replica (alloydb.logical_decoding = on, alloydb.enable_pglogical = not set)'),
    ('azure', dict(**{'azure.extensions': 'pgcrypto'}), 'replica'),
])
def test_wal_level_names_the_flags_it_follows(provider, flags, observed):
    facts = ready_facts(provider=provider)
    facts['settings'].update(dict((name, setting(value)) for name, value in flags.items()), wal_level=setting('replica'))
    finding = findings_for(facts)['wal_level']
    assert finding['observed'] == observed and observed in finding['message']


def test_slot_and_sender_exhaustion_are_errors():
    facts = ready_facts(slots=[dict(name='s%d' % i, type='logical', active=True, wal_status='reserved', retained_bytes=0) for i in range(10)])
    facts['server']['wal_senders_in_use'] = 10
    findings = findings_for(facts)
    assert findings['max_replication_slots']['status'] == 'error'
    assert findings['max_wal_senders']['status'] == 'error'


def test_wal_keep_size_recommendation_uses_the_measured_rate():
    facts = ready_facts(wal_rate=dict(bytes_per_day=100 * GB, measured_seconds=86400))
    finding = findings_for(facts)['max_slot_wal_keep_size']
    assert finding['status'] == 'warning'
    assert "'300GB'" in finding['fix']['sql'][0]


def test_unlimited_wal_keep_size_warns():
    facts = ready_facts()
    facts['settings']['max_slot_wal_keep_size'] = setting(-1, 'MB')
    assert 'unlimited' in findings_for(facts)['max_slot_wal_keep_size']['message']


@pytest.mark.parametrize('pooler, provider, status', [
    (dict(host='ep-1-pooler.us-east-2.aws.neon.tech'), 'neon', 'error'),
    (dict(port=6432), 'planetscale', 'error'),
    (dict(pgbouncer=True), 'generic', 'error'),
    (dict(port=6432, server_port=5432), 'generic', 'error'),
    (dict(port=15432, server_port=5432), 'generic', 'warning'),
    (dict(port=15432, server_port=5432), 'neon', 'ok'),
])
def test_pooler(pooler, provider, status):
    facts = ready_facts(provider=provider)
    facts['pooler'].update(pooler)
    assert findings_for(facts)['pooler']['status'] == status


def test_skip_checks_are_reported_as_skipped():
    facts = ready_facts(identity_problems=[('public.heap', 'no primary key')])
    findings = findings_for(facts, skip={'replica_identity'})
    assert findings['replica_identity']['status'] == 'skipped'
    assert 'skip_checks' in findings['replica_identity']['observed']


def test_fail_on_levels():
    findings = [dict(id='a', status='warning'), dict(id='b', status='error'), dict(id='c', status='skipped')]
    assert [item['id'] for item in checks.failing(findings, 'error')] == ['b']
    assert [item['id'] for item in checks.failing(findings, 'warning')] == ['a', 'b']
    assert checks.failing(findings, 'never') == []


def test_manual_steps_collects_failed_steps_then_notices():
    facts = ready_facts(provider='neon')
    facts['settings']['wal_level'] = setting('replica')
    findings = checks.run_checks(checks.Context(facts, 'cp', 'pub'), 'auto')
    steps = checks.manual_steps(findings, 'neon')
    assert steps[0]['id'] == 'wal_level' and steps[0]['provider'] == 'neon' and steps[0]['restart'] is True
    assert [step['id'] for step in steps if step['status'] == 'notice'] == ['neon_ip_allow', 'neon_slot_removal', 'neon_connection_details']


def test_provider_mismatch_warns():
    assert findings_for(ready_facts(provider='neon'), requested='planetscale')['provider']['status'] == 'warning'
    assert findings_for(ready_facts(provider='neon'), requested='auto')['provider']['status'] == 'ok'


def test_describe_step_says_where_what_and_restart():
    facts = ready_facts(provider='planetscale')
    facts['settings']['wal_level'] = setting('replica')
    steps = checks.manual_steps(checks.run_checks(checks.Context(facts, 'cp', 'pub'), 'auto'), 'planetscale')
    line = checks.describe_step(steps[0])
    assert line.startswith('[planetscale] wal_level (error): Set wal_level to logical.')
    assert 'Cluster configuration' in line and 'Now replica, needed logical.' in line and 'restarts' in line
    notice = checks.describe_step(steps[-1])
    assert notice.startswith('[planetscale] ') and '(notice)' not in notice


def test_warning_lines_cover_every_problem_once_then_the_notices():
    facts = ready_facts(provider='neon', identity_problems=[('public.heap', 'no primary key')])
    facts['settings']['wal_level'] = setting('replica')
    findings = checks.run_checks(checks.Context(facts, 'cp', 'pub'), 'auto')
    lines = checks.warning_lines(findings, 'neon')
    assert lines[0].startswith('[neon] wal_level (error): Enable logical replication')
    assert lines[1].startswith('[neon] replica_identity (error):') and 'Fix: ALTER TABLE public.heap REPLICA IDENTITY FULL' in lines[1]
    assert len(lines) == 2 + len(checks.providers.get('neon').notices)


def test_warnings_before_and_after_the_writing_modules_split_all_of_them():
    facts = ready_facts(provider='neon', identity_problems=[('public.heap', 'no primary key')],
                        replication_connection=(False, 'password authentication failed'))
    facts['privileges']['tables_without_select'] = ['public.orders']
    findings = checks.run_checks(checks.Context(facts, 'cp', 'pub'), 'auto')
    manual, modules = (checks.warning_lines(findings, 'neon', which=which) for which in ('manual', 'modules'))
    assert sorted(manual + modules) == sorted(checks.warning_lines(findings, 'neon'))
    assert [line.split()[1] for line in modules] == ['replication_connection', 'table_select']
    assert any(line.startswith('[neon] replica_identity (error)') for line in manual)
    assert checks.warning_lines(findings, 'neon', which='none') == []


def test_every_managed_check_names_a_writing_module():
    assert set(checks.MANAGED_BY) <= set(checks.CHECK_IDS)
    assert set(checks.MANAGED_BY.values()) == {'replication_user', 'replication_grants', 'publication'}
    findings = findings_for(ready_facts(major=12, replication_connection=None))
    assert findings['publication_partition_root']['fix']['module'] is None  # skipped for the version: no module changes that
    assert findings['replication_connection']['fix']['module'] is None  # no password given
    assert findings_for(ready_facts(user=None, privileges=None))['table_select']['fix']['module'] == 'replication_grants'


def test_fix_sql_stays_small_and_counts_what_it_leaves_out():
    names = ['public.t%d' % number for number in range(2500)]
    finding = findings_for(ready_facts(toast=names))['toast_columns']
    assert len(finding['fix']['sql']) == checks.MAX_FIX_STATEMENTS and finding['fix']['sql_omitted'] == 2500 - checks.MAX_FIX_STATEMENTS
    facts = ready_facts()
    facts['privileges']['tables_without_select'] = names
    grant = findings_for(facts)['table_select']['fix']
    assert len(grant['sql']) == checks.MAX_FIX_STATEMENTS and grant['sql_omitted'] == 25 - checks.MAX_FIX_STATEMENTS
    assert grant['sql'][0] == 'GRANT SELECT ON TABLE %s TO "cp"' % ', '.join(names[:checks.TABLES_PER_STATEMENT])
    line = checks.warning_lines([findings_for(facts)['table_select']], 'generic')[0]
    assert line.endswith('(and 24 more)') and 'public.t99,' not in line.split('Fix:')[0]


@pytest.mark.parametrize('detail, advice', [
    ('FATAL: password authentication failed for user "cp"', 'The password does not log in'),
    ('unsupported startup parameter: replication', 'connection pooler'),
    ('permission denied to start WAL sender (Only roles with the REPLICATION attribute may start a WAL sender process.)', 'Give the role REPLICATION'),
    ('no pg_hba.conf entry for replication connection', 'pg_hba.conf'),
    ('something else', 'LOGIN and REPLICATION'),
])
def test_replication_connection_advice_follows_the_cause(detail, advice):
    finding = findings_for(ready_facts(replication_connection=(False, detail)))['replication_connection']
    assert finding['status'] == 'error' and advice in finding['fix']['manual'][0]['what']


def test_the_short_lists_name_the_errors_and_the_writing_modules_with_work():
    ready = list(findings_for(ready_facts()).values())
    assert checks.error_ids(ready) == [] and checks.pending_modules(ready) == []
    without_user = list(findings_for(ready_facts(user=None, privileges=None, replication_connection=None)).values())
    assert checks.error_ids(without_user) == ['user_exists']
    assert checks.pending_modules(without_user) == ['replication_user', 'replication_grants']


def privileges(**overrides):
    return dict(ready_facts()['privileges'], **overrides)


def test_row_level_security_that_can_hide_rows_is_an_error_the_role_variable_fixes():
    orders = dict(ready_facts()['scope'].tables[0], row_security=True)
    found = findings_for(ready_facts(scope=Scope([orders], ['public'])))['row_level_security']
    assert found['status'] == 'error' and 'clickpipes_bypass_rls' in found['message']
    assert found['fix']['module'] == 'replication_user' and 'BYPASSRLS' in found['fix']['sql'][0]
    not_yet = findings_for(ready_facts(scope=Scope([orders], ['public']), user=None, privileges=None))['row_level_security']
    assert not_yet['status'] == 'error', 'a role the run creates has no BYPASSRLS either'
    bypassing = dict(ready_facts()['user'], bypass_rls=True)
    assert findings_for(ready_facts(user=bypassing, scope=Scope([orders], ['public'])))['row_level_security']['status'] == 'ok'


def test_a_user_that_owns_tables_in_scope_is_an_error_no_module_fixes():
    found = findings_for(ready_facts(privileges=privileges(owned_tables=['public.orders'])))['user_least_privilege']
    assert found['status'] == 'error' and found['fix']['module'] is None and 'public.orders' in found['message']


def test_an_explicit_table_list_needs_no_default_privileges():
    orders = ready_facts()['scope'].tables[0]
    found = findings_for(ready_facts(scope=Scope([orders], ['public'], explicit=True)))['default_privileges']
    assert found['status'] == 'ok' and 'explicit' in found['observed']


def test_unlogged_tables_are_left_out_of_a_schema_scope_and_refused_when_named():
    orders = ready_facts()['scope'].tables[0]
    unlogged = dict(orders, oid=2, name='cache', qualified='public.cache', persistence='u')
    scope = Scope([orders, unlogged], ['public'])
    assert scope.tables == [orders] and scope.left_out == [unlogged] and scope.unpublishable == []
    found = findings_for(ready_facts(scope=scope))['table_persistence']
    assert found['status'] == 'warning' and 'public.cache' in found['message']
    named = Scope([orders, unlogged], ['public'], explicit=True)
    found = findings_for(ready_facts(scope=named))['table_persistence']
    assert found['status'] == 'error' and found['fix']['module'] is None
    assert found['fix']['sql'] == ['ALTER TABLE public.cache SET LOGGED']
    with pytest.raises(ClickPipesError, match='UNLOGGED'):
        named.require_sound()


def test_an_unsound_scope_is_not_for_a_writing_module_to_fix():
    scope = Scope([], ['public'], missing_tables=['public.nope'], explicit=True)
    found = findings_for(ready_facts(scope=scope))['publication_tables']
    assert found['status'] == 'error' and found['fix']['module'] is None


def expiring_user(expired):
    return dict(ready_facts()['user'], valid_until='2001-02-03 04:05:06 UTC', password_expired=expired, password_expires_soon=True)


def test_an_expired_password_is_an_error_no_writing_module_fixes():
    failed = (False, 'FATAL: password authentication failed for user "cp"')
    findings = findings_for(ready_facts(user=expiring_user(True), replication_connection=failed))
    for check_id in ('user_login', 'replication_connection'):
        item = findings[check_id]
        assert item['status'] == 'error' and 'expired on 2001-02-03 04:05:06 UTC' in item['message'], item
        assert item['fix']['sql'] == ['ALTER ROLE "cp" VALID UNTIL \'infinity\''] and item['fix']['module'] is None, item
    assert 'rotate' not in findings['replication_connection']['message']
    assert checks.pending_modules(list(findings.values())) == []


def test_a_password_expiring_soon_is_a_warning():
    findings = findings_for(ready_facts(user=expiring_user(False)))
    assert findings['user_login']['status'] == 'warning' and 'expires on 2001-02-03' in findings['user_login']['message']
    assert findings['user_login']['observed'] == 'LOGIN, VALID UNTIL 2001-02-03 04:05:06 UTC'
    assert findings['replication_connection']['status'] == 'ok'


@pytest.mark.parametrize('detected, requested, status', [
    ('generic', 'auto', 'ok'),
    ('neon', 'auto', 'ok'),
    ('generic', 'neon', 'warning'),
    ('rds', 'aurora', 'warning'),
    ('generic', 'crunchybridge', 'ok'),
    ('timescale', 'crunchybridge', 'warning'),
])
def test_provider_check_warns_only_when_the_server_contradicts_the_choice(detected, requested, status):
    facts = ready_facts(provider=requested if requested != 'auto' else detected, detected_provider=detected)
    findings = dict((f['id'], f) for f in checks.run_checks(checks.Context(facts, 'cp', 'pub'), requested))
    assert findings['provider']['status'] == status


METRICS = [dict(qualified='public.metrics', chunk_schema='_timescaledb_internal')]


@pytest.mark.parametrize('major, publication, status, fixed_by', [
    (16, dict(schemas=['_timescaledb_internal']), 'ok', 'publication'),
    (16, dict(all_tables=True), 'ok', 'publication'),
    (16, dict(schemas=['public']), 'error', 'publication'),
    (14, dict(), 'error', 'publication'),
])
def test_hypertable_chunks_need_their_schema_published_as_a_whole(major, publication, status, fixed_by):
    facts = ready_facts(major=major, hypertables=METRICS)
    facts['publication'].update(publication)
    finding = findings_for(facts)['hypertable_chunks']
    assert (finding['status'], finding['fix']['module']) == (status, fixed_by)
    if status == 'error' and major >= 15:
        assert finding['fix']['sql'] == ['ALTER PUBLICATION "pub" ADD TABLES IN SCHEMA "_timescaledb_internal"']
    if status == 'error' and major < 15:
        assert 'all_tables' in finding['fix']['manual'][0]['what'] and not finding['fix']['sql']


def test_hypertable_chunks_without_hypertables_or_publication():
    assert findings_for(ready_facts())['hypertable_chunks']['status'] == 'ok'
    missing = findings_for(ready_facts(hypertables=METRICS, publication=None))['hypertable_chunks']
    assert missing['status'] == 'error'
    assert missing['fix']['sql'] == ['CREATE PUBLICATION "pub" FOR TABLE <tables>, TABLES IN SCHEMA "_timescaledb_internal"']


def test_timescale_cloud_without_logical_decoding_must_be_snapshot_only():
    facts = ready_facts(provider='timescale')
    facts['settings']['wal_level'] = setting('replica')
    facts['pooler']['host'] = 'x1y2z3.a1b2c3.tsdb.cloud.timescale.com'
    finding = findings_for(facts)['wal_level']
    assert finding['status'] == 'error' and 'Initial load only' in finding['message']
    assert finding['fix']['manual'][0]['what'].startswith('Create the ClickPipe with the replication mode "Initial load only"')
    assert not finding['fix']['sql']
    facts['pooler']['host'] = 'timescale.internal'
    assert 'Initial load only' not in findings_for(facts)['wal_level']['message']


def rds_facts(member=True, exists=True, **overrides):
    """A ready RDS source whose user is (or is not) a member of rds_replication; REPLICATION is off, as on RDS."""
    facts = ready_facts(provider='rds', replication_grant=dict(name='rds_replication', exists=exists, member=member,
                                                               grantable=True), **overrides)
    if facts['user']:
        facts['user'] = dict(facts['user'], replication=False)
    facts['settings']['rds.logical_replication'] = setting('on')
    return facts


def test_membership_in_rds_replication_is_what_counts_on_rds():
    assert findings_for(rds_facts())['user_replication']['status'] == 'ok'
    outside = findings_for(rds_facts(member=False))['user_replication']
    assert outside['status'] == 'error' and outside['fix']['sql'] == ['GRANT "rds_replication" TO "cp"']
    assert outside['fix']['module'] == 'replication_user' and outside['observed'] == 'not a member of rds_replication'


def test_rds_named_on_a_source_without_rds_replication_is_no_writing_modules_to_fix():
    finding = findings_for(rds_facts(member=False, exists=False))['user_replication']
    assert finding['status'] == 'error' and finding['fix']['module'] is None and finding['fix']['sql'] == []


def test_a_missing_user_on_rds_is_created_without_replication_and_granted():
    finding = findings_for(rds_facts(user=None, privileges=None))['user_exists']
    assert finding['fix']['sql'] == ["CREATE ROLE \"cp\" WITH LOGIN PASSWORD '<password>'", 'GRANT "rds_replication" TO "cp"']


def test_a_failed_replication_login_on_rds_advises_the_grant():
    refusal = 'permission denied to start WAL sender DETAIL: Only roles with the REPLICATION attribute may start a WAL sender process.'
    facts = rds_facts(member=False, replication_connection=(False, refusal))
    step = findings_for(facts)['replication_connection']['fix']['manual'][0]
    assert 'GRANT "rds_replication" TO "cp"' in step['what'] and 'ALTER ROLE' not in step['what']


def test_wal_level_shows_the_providers_decoding_setting():
    facts = rds_facts()
    facts['settings'].update(wal_level=setting('replica'), **{'rds.logical_replication': setting('off')})
    wal = findings_for(facts)['wal_level']
    assert wal['observed'] == 'replica (rds.logical_replication = off)' and wal['fix']['sql'] == []
    assert wal['fix']['manual'][0]['what'].startswith('Set rds.logical_replication to 1') and wal['fix']['restart'] is True
    assert findings_for(ready_facts())['wal_level']['observed'] == 'logical'


def test_a_provider_whose_replication_role_is_missing_is_an_error_no_write_fixes():
    facts = ready_facts(provider='rds', detected_provider='generic',
                        replication_grant=dict(name='rds_replication', exists=False, member=False, grantable=False))
    finding = dict((f['id'], f) for f in checks.run_checks(checks.Context(facts, 'cp', 'pub'), 'rds'))['provider']
    assert finding['status'] == 'error' and finding['fix']['module'] is None and 'rds_replication' in finding['message']
