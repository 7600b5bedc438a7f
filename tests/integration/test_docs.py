"""Documentation that must not drift from the code (no server needed)."""

from __future__ import annotations

import pathlib

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
ROLES = sorted(path.name for path in (ROOT / 'roles').iterdir() if path.is_dir())


@pytest.mark.parametrize('role', ROLES)
def test_role_readme_documents_every_variable(role):
    readme = (ROOT / 'roles' / role / 'README.md').read_text(encoding='utf-8')
    spec = yaml.safe_load((ROOT / 'roles' / role / 'meta' / 'argument_specs.yml').read_text(encoding='utf-8'))
    for name in spec['argument_specs']['main'].get('options') or {}:
        assert '`%s`' % name in readme, '%s is not documented in roles/%s/README.md' % (name, role)


def test_readme_lists_every_check_id():
    readme = (ROOT / 'README.md').read_text(encoding='utf-8')
    checks = (ROOT / 'plugins' / 'module_utils' / 'checks.py').read_text(encoding='utf-8')
    ids = checks.split('CHECK_IDS = (')[1].split(')')[0].replace("'", '').replace('\n', ' ').split(',')
    for check_id in (item.strip() for item in ids if item.strip()):
        assert '`%s`' % check_id in readme, check_id
