from __future__ import annotations

import os
import sys

from ansible_collections.pgcdc.clickpipes.plugins.plugin_utils.local_module import python_environment


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
