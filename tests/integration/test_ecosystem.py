"""The collection as users install it: the built tarball in a user's own project, and the module-execution path."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from playbook import REPO_ROOT, VENV_BIN

ROLES = ('source', 'neon', 'planetscale')


def run(command, cwd, env=None):
    proc = subprocess.run(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=600, check=False)
    assert proc.returncode == 0, f'{command} exited {proc.returncode}:\n{proc.stdout}'
    return proc.stdout


@pytest.fixture(scope='module')
def tarball(tmp_path_factory):
    """The collection as `ansible-galaxy collection build` makes it from this checkout."""
    out = tmp_path_factory.mktemp('build')
    run([os.path.join(VENV_BIN, 'ansible-galaxy'), 'collection', 'build', '--output-path', str(out), REPO_ROOT], cwd=out)
    (built,) = out.glob('pgcdc-clickpipes-*.tar.gz')
    return built


def user_environment():
    """The environment of a user's shell: no collection path or config of this checkout."""
    env = {key: value for key, value in os.environ.items() if not key.startswith('ANSIBLE_')}
    env['PATH'] = os.pathsep.join([VENV_BIN, env.get('PATH', '')])
    return env


USER_PLAYBOOK = """\
---
- name: Make our databases ClickPipes sources
  hosts: databases
  connection: local
  gather_facts: false
  roles:
    - role: pgcdc.clickpipes.source
      vars:
        clickpipes_login_host: db.internal
        clickpipes_tables: [public.orders]
  tasks:
    - name: Prepare the Neon database
      ansible.builtin.include_role:
        name: pgcdc.clickpipes.neon
      vars:
        clickpipes_login_host: ep-quiet-tree-123456.eu-central-1.aws.neon.tech
        clickpipes_neon_project_id: quiet-tree-123456
    - name: Prepare the PlanetScale database
      ansible.builtin.include_role:
        name: pgcdc.clickpipes.planetscale
      vars:
        clickpipes_login_host: eu.psdb.cloud
        clickpipes_publication_mode: tables
    - name: Apply the settings on the self-hosted database
      ansible.builtin.import_role:
        name: pgcdc.clickpipes.source
        tasks_from: settings
      vars:
        clickpipes_manage_settings: true
    - name: Show what the role registered
      ansible.builtin.debug:
        var: clickpipes_report
"""


def test_user_project_with_the_roles_lints_clean(tmp_path, tarball):
    """A user's project with the installed collection inside it (as `collections_path = ./collections` or
    ansible-lint's own .ansible/collections put it) passes its ansible-lint --profile production: the linter walks
    the installed roles too, with the user's rules, not ours."""
    project = tmp_path / 'project'
    collections = project / 'collections'
    collections.mkdir(parents=True)
    (project / 'ansible.cfg').write_text('[defaults]\ncollections_path = ./collections\n')
    (project / 'requirements.yml').write_text('---\ncollections:\n  - name: pgcdc.clickpipes\n    version: ">=0.1.0"\n')
    (project / 'inventory.yml').write_text('---\ndatabases:\n  hosts:\n    app: {}\n')
    (project / 'site.yml').write_text(USER_PLAYBOOK)
    env = user_environment()
    run([os.path.join(VENV_BIN, 'ansible-galaxy'), 'collection', 'install', '--offline', '-p', str(collections),
         str(tarball)], cwd=project, env=env)
    installed_roles = collections / 'ansible_collections' / 'pgcdc' / 'clickpipes' / 'roles'
    assert sorted(path.name for path in installed_roles.iterdir()) == sorted(ROLES)

    proc = subprocess.run([os.path.join(VENV_BIN, 'ansible-lint'), '--offline', '--profile', 'production', '--nocolor'],
                          cwd=project, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout
    assert 'Passed: 0 failure(s), 0 warning(s)' in proc.stdout, proc.stdout
    # The installed collection was linted, not only site.yml.
    processed = int(re.search(r'in (\d+) files processed', proc.stdout).group(1))
    assert processed > len(list(installed_roles.rglob('*.yml'))), proc.stdout
