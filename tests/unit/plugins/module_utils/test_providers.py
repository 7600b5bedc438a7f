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


@pytest.mark.parametrize('host, pooled', [
    ('ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech', True),
    ('ep-cool-darkness-123456.us-east-2.aws.neon.tech', False),
    ('', False),
])
def test_neon_pooler_host(host, pooled):
    assert providers.is_neon_pooler_host(host) is pooled


def test_every_notice_names_where_and_what():
    for notices in providers.NOTICES.values():
        for notice in notices:
            assert notice['what'] and notice['where'] and notice['id']


def test_planetscale_notice_names_the_login_or_says_it_is_unknown():
    known = [n['what'] for n in providers.notices('planetscale', 'clickpipes_user.br4nch') if n['id'] == 'planetscale_user_name']
    assert known == ['ClickPipes logs in as clickpipes_user.br4nch: the role name followed by the branch id that the admin '
                     'login name also carries.']
    unknown = [n['what'] for n in providers.notices('planetscale', 'clickpipes_user') if n['id'] == 'planetscale_user_name']
    assert 'clickpipes_user.<branch_id> (the admin login name carries no branch id' in unknown[0]
    assert providers.notices('generic', 'x') == []
