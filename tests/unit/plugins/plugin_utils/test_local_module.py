from __future__ import annotations

import os
import sys

import pytest

from ansible_collections.pgcdc.clickpipes.plugins.plugin_utils.local_module import mask_secrets, python_environment

SECRET = 'pa"ss\\w$;rd-ü'


def make_venv(root, names=('python', 'python3')):
    (root / 'bin').mkdir(parents=True)
    (root / 'pyvenv.cfg').write_text('home = %s\n' % os.path.dirname(sys.executable))
    for name in names:
        os.symlink(sys.executable, root / 'bin' / name)
    return root


def test_two_names_in_one_virtual_environment_are_one_python(tmp_path):
    venv = make_venv(tmp_path / 'venv')
    assert python_environment(str(venv / 'bin' / 'python')) == python_environment(str(venv / 'bin' / 'python3'))


def test_the_same_binary_in_two_environments_is_two_pythons(tmp_path):
    first, second = make_venv(tmp_path / 'first'), make_venv(tmp_path / 'second')
    assert python_environment(str(first / 'bin' / 'python')) != python_environment(str(second / 'bin' / 'python'))
    assert python_environment(str(first / 'bin' / 'python')) != python_environment(os.path.realpath(sys.executable))


def test_a_result_without_the_secret_is_returned_as_it_is():
    result = dict(queries=['GRANT SELECT ON "s0"."t1" TO "u"'], tables=['s0.t%d' % i for i in range(100)], count=3)
    assert mask_secrets(result, {SECRET, 'other'}) is result


@pytest.mark.parametrize('result', [
    dict(msg='login failed for %s' % SECRET),
    dict(nested=[dict(deep=['x', 'prefix' + SECRET + 'suffix'])]),
    dict(number=123456, msg='ok'),
    dict(ratio=float('nan'), msg='%s' % SECRET),
], ids=['string', 'nested', 'number', 'not-json'])
def test_a_secret_anywhere_is_masked_as_remove_values_masks_it(result):
    masked = mask_secrets(result, {SECRET, '3456'})
    assert SECRET not in repr(masked) and '3456' not in repr(masked)
