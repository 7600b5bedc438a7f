from __future__ import annotations

import pytest

from ansible_collections.pgcdc.clickpipes.plugins.module_utils.facts import setting_amount


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
