from __future__ import annotations

import pytest

from ansible_collections.pgcdc.clickpipes.plugins.module_utils import providers


@pytest.mark.parametrize('user, provider, admin, expected', [
    ('clickpipes_user', 'planetscale', 'postgres.abc123', 'clickpipes_user.abc123'),
    ('clickpipes_user', 'planetscale', 'postgres', 'clickpipes_user'),
    ('clickpipes_user', 'neon', 'neondb_owner', 'clickpipes_user'),
    ('clickpipes_user', 'generic', 'postgres.abc123', 'clickpipes_user'),
])
def test_clickpipes_login(user, provider, admin, expected):
    assert providers.clickpipes_login(user, provider, admin) == expected


def on(*names):
    return dict((name, dict(setting='x')) for name in names)


@pytest.mark.parametrize('settings, functions, extensions, host, expected', [
    ({}, [], [], 'db.example.com', 'generic'),
    (on('neon.endpoint_id'), [], [], '', 'neon'),
    (on('extwlist.pscale_allowed_extensions'), [], [], '', 'planetscale'),
    (on('rds.extensions'), ['aurora_version'], [], '', 'aurora'),
    (on('rds.extensions'), [], [], '', 'rds'),
    (on('cloudsql.logical_decoding'), [], [], '', 'cloudsql'),
    (on('alloydb.logical_decoding'), [], [], '', 'alloydb'),
    (on('azure.extensions'), [], [], '', 'azure'),
    (on('supautils.privileged_extensions'), [], ['timescaledb'], '', 'supabase'),
    ({}, [], [], 'p.abcdefghij.db.postgresbridge.com', 'crunchybridge'),
    ({}, [], ['timescaledb'], 'localhost', 'timescale'),
    ({}, [], [], 'x1y2z3.a1b2c3.tsdb.cloud.timescale.com', 'timescale'),
    ({'neon.endpoint_id': dict(setting='')}, [], [], '', 'generic'),
])
def test_fingerprint(settings, functions, extensions, host, expected):
    assert providers.fingerprint(settings, functions, extensions, host) == expected


@pytest.mark.parametrize('provider, host, port, refused', [
    ('neon', 'ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech', 5432, True),
    ('generic', 'ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech', 5432, True),
    ('neon', 'ep-cool-darkness-123456.us-east-2.aws.neon.tech', 5432, False),
    ('planetscale', 'aws.connect.psdb.cloud', 6432, True),
    ('generic', 'db.example.com', 6432, False),
    ('azure', 'srv.postgres.database.azure.com', 6432, True),
    ('supabase', 'db.abcdefgh.supabase.co', 6543, True),
    ('supabase', 'aws-0-eu-west-1.pooler.supabase.com', 5432, True),
    ('supabase', 'db.abcdefgh.supabase.co', 5432, False),
    ('rds', 'app.proxy-abc123def456.eu-west-1.rds.amazonaws.com', 5432, True),
    ('rds', 'app.abc123def456.eu-west-1.rds.amazonaws.com', 5432, False),
    ('aurora', 'app.cluster-ro-abc123def456.eu-west-1.rds.amazonaws.com', 5432, True),
    ('aurora', 'app.cluster-abc123def456.eu-west-1.rds.amazonaws.com', 5432, False),
    ('generic', '', 5432, False),
])
def test_refused_endpoint(provider, host, port, refused):
    assert bool(providers.refused_endpoint(provider, host, port)) is refused


def test_every_notice_names_where_and_what():
    for provider in providers.REGISTRY.values():
        for notice in provider.notices:
            assert notice['what'] and notice['where'] and notice['id']


def test_managed_settings_get_a_console_step_and_self_hosted_sql():
    assert providers.setting_step('generic', 'wal_level', 'logical', True) is None
    for provider_id in providers.IDS:
        if provider_id != 'generic':
            step = providers.setting_step(provider_id, 'wal_level', 'logical', True)
            assert step['where'] and step['restart'] is True, provider_id


def test_planetscale_notice_names_the_login_or_says_it_is_unknown():
    known = [n['what'] for n in providers.notices('planetscale', 'clickpipes_user.br4nch') if n['id'] == 'planetscale_user_name']
    assert known == ['ClickPipes logs in as clickpipes_user.br4nch: the role name followed by the branch id that the admin '
                     'login name also carries.']
    unknown = [n['what'] for n in providers.notices('planetscale', 'clickpipes_user') if n['id'] == 'planetscale_user_name']
    assert 'clickpipes_user.<branch_id> (the admin login name carries no branch id' in unknown[0]
    assert providers.notices('generic', 'x') == []


@pytest.mark.parametrize('host, snapshot_only', [
    ('x1y2z3.a1b2c3.tsdb.cloud.timescale.com', True),
    ('x1y2z3.a1b2c3.tsdb.cloud.timescale.com.', True),
    ('timescale.example.com', False),
    ('', False),
])
def test_timescale_cloud_is_snapshot_only(host, snapshot_only):
    assert bool(providers.snapshot_only(host)) is snapshot_only


def test_crunchy_bridge_says_logical_replication_is_on_by_default():
    assert 'on by default' in providers.setting_step('crunchybridge', 'wal_level', 'logical', True)['what']
