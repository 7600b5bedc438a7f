from __future__ import annotations

import pytest

from ansible_collections.pgcdc.clickpipes.plugins.module_utils.facts import fingerprint, setting_amount


@pytest.mark.parametrize('row, amount', [
    (dict(setting='4096', unit='MB'), 4096 * 1024 ** 2),
    (dict(setting='-1', unit='MB'), -1),
    (dict(setting='60000', unit='ms'), 60000),
    (dict(setting='30', unit='s'), 30000),
    (dict(setting='logical', unit=None), None),
    (None, None),
])
def test_setting_amount(row, amount):
    assert setting_amount(row) == amount


def test_fingerprint_order():
    server = dict(aurora=False)
    assert fingerprint(server, {}) == 'generic'
    assert fingerprint(server, {'neon.endpoint_id': dict(setting='ep-1')}) == 'neon'
    assert fingerprint(server, {'extwlist.pscale_allowed_extensions': dict(setting='x')}) == 'planetscale'
    assert fingerprint(dict(aurora=True), {'rds.extensions': dict(setting='x')}) == 'aurora'
    assert fingerprint(server, {'neon.endpoint_id': dict(setting='')}) == 'generic'
