"""The collection as users meet it: the built tarball in their own linted project, the oldest and newest ansible-core
with the module-execution path, the settings entry point, and `make demo`."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
import yaml

import pgcluster
from conftest import MAJORS
from playbook import REPO_ROOT, VENV_BIN, collections_path
from support import HOSTILE_PASSWORD, fresh_roles

# The roles the collection ships: every folder of roles/.
ROLES = sorted(name for name in os.listdir(os.path.join(REPO_ROOT, 'roles')) if os.path.isdir(os.path.join(REPO_ROOT, 'roles', name)))


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
    - name: Prepare the Aurora database
      ansible.builtin.include_role:
        name: pgcdc.clickpipes.rds
      vars:
        clickpipes_provider: aurora
        clickpipes_login_host: app.cluster-abc123def456.eu-west-1.rds.amazonaws.com
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


# --- prepare, re-run and verify: on other ansible-core versions, and through the module-execution path -------------

IN_PROCESS = 'runs in the worker process'
AS_MODULE = 'AnsiballZ_prepare_source.py'


def ansible_venvs():
    """The virtual environments whose ansible-core runs the playbooks: PGCDC_ANSIBLE_VENVS (`make ansible-versions`
    sets the oldest and the newest ansible-core), else the one running the tests."""
    return os.environ.get('PGCDC_ANSIBLE_VENVS', '').split() or [os.path.dirname(VENV_BIN)]


def ansible_core_version(venv):
    return run([os.path.join(venv, 'bin', 'python'), '-c', 'import ansible.release; print(ansible.release.__version__)'],
               cwd=venv).strip()


def playbook_environment(workdir):
    """A user's environment with this checkout as the collection and an empty ansible.cfg."""
    config = workdir / 'ansible.cfg'
    config.write_text('[defaults]\n')
    return dict(user_environment(), ANSIBLE_CONFIG=str(config), ANSIBLE_COLLECTIONS_PATH=collections_path(),
                ANSIBLE_NOCOLOR='1', ANSIBLE_LOCAL_TEMP=str(workdir / 'tmp'))


def run_job(venv, playbook, inventory, workdir):
    proc = subprocess.run([os.path.join(venv, 'bin', 'ansible-playbook'), '-vvv', '-i', str(inventory), playbook],
                          cwd=workdir, env=playbook_environment(workdir), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600, check=False)
    return proc.returncode, proc.stdout


def recap(output):
    """ok/changed/failed of the play recap line of the one host."""
    match = re.search(r'^shop\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)', output, re.MULTILINE)
    assert match, output
    return tuple(int(group) for group in match.groups())


def prepare_rerun_verify(pg, database, workdir, venv=None, python=None, user='clickpipes_user'):
    """prepare, prepare again and verify, as a user runs them; each job's exit code, recap, path and report."""
    pg.execute('CREATE TABLE orders (id int PRIMARY KEY); CREATE TABLE lines (id int PRIMARY KEY, qty int)', dbname=database)
    host = dict(clickpipes_login_host=pg.host, clickpipes_login_port=pg.port, clickpipes_login_user=pg.superuser,
                clickpipes_login_password=pg.password, clickpipes_login_db=database, clickpipes_user=user,
                clickpipes_password=HOSTILE_PASSWORD, clickpipes_report_dir=str(workdir / 'reports'))
    if python:
        host['clickpipes_python'] = python
    inventory = workdir / 'inventory.yml'
    inventory.write_text(yaml.safe_dump(dict(clickpipes_sources=dict(hosts=dict(shop=host)))))
    jobs = []
    for playbook in ('pgcdc.clickpipes.prepare', 'pgcdc.clickpipes.prepare', 'pgcdc.clickpipes.verify'):
        rc, output = run_job(venv or os.path.dirname(VENV_BIN), playbook, inventory, workdir)
        assert HOSTILE_PASSWORD not in output
        report = (workdir / 'reports' / 'shop.json').read_text()
        report = json.loads(report.replace(database, '<database>').replace(user, '<user>'))
        path = 'worker' if IN_PROCESS in output else 'module' if AS_MODULE in output else 'unknown'
        jobs.append(dict(playbook=playbook, rc=rc, recap=recap(output), path=path, report=report))
    return jobs


def assert_prepared_then_quiet(jobs):
    first, rerun, verify = jobs
    assert [job['rc'] for job in jobs] == [0, 0, 0], jobs
    assert first['report']['ready'] and first['report']['changes']['user'] and first['report']['changes']['publication']
    assert rerun['recap'][1] == 0 and rerun['report']['changes'] == dict(user=[], grants=[], publication=[], settings=[])
    assert verify['recap'][1] == 0 and verify['report']['ready']


def python_wrapper(path, venv):
    """An interpreter path that is not the playbook's Python, running the venv's (psycopg2 is there)."""
    path.write_text('#!/bin/sh\nexec %s "$@"\n' % os.path.join(venv, 'bin', 'python'))
    path.chmod(0o755)
    return str(path)


@pytest.mark.usefixtures(fresh_roles.__name__)
@pytest.mark.parametrize('venv', ansible_venvs(), ids=os.path.basename)
def test_prepare_rerun_verify_on_the_ansible_core_of(pg, database, tmp_path, venv):
    """prepare, re-run and verify with the venv's ansible-core, twice: with the playbook's Python (cores from 2.19 run
    the modules in the worker process, older ones execute them: plugins/plugin_utils/local_module.py falls back), and
    with clickpipes_python naming another Python, which makes every core execute the modules. Same results."""
    version = ansible_core_version(venv)
    other_database = pgcluster.create_database(pg, database + '_m')
    try:
        (tmp_path / 'default').mkdir()
        (tmp_path / 'executed').mkdir()
        default = prepare_rerun_verify(pg, database, tmp_path / 'default', venv=venv, user='cp_default')
        executed = prepare_rerun_verify(pg, other_database, tmp_path / 'executed', venv=venv, user='cp_executed',
                                        python=python_wrapper(tmp_path / 'python', venv))
    finally:
        pgcluster.drop_database(pg, other_database)
    default_path = 'module' if tuple(int(part) for part in version.split('.')[:2]) < (2, 19) else 'worker'
    assert [job['path'] for job in default] == [default_path] * 3, (version, default)
    assert [job['path'] for job in executed] == ['module'] * 3, (version, executed)
    assert_prepared_then_quiet(default)
    assert executed == [dict(job, path='module') for job in default]


def test_make_demo_runs_the_job_users_run():
    """`make demo`: the prepare playbook on a throwaway source, the report it wrote, then verify; our warnings shown,
    the cryptography deprecation that ansible-core 2.19 triggers (not ours) not."""
    proc = subprocess.run(['make', '-s', 'demo', 'DEMO_MAJOR=%d' % MAJORS[-1]], cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout
    output = proc.stdout
    prepare = output.index('$ ansible-playbook pgcdc.clickpipes.prepare -i inventory.yml')
    report = output.index('# ClickPipes CDC source: shop_source', prepare)
    verify = output.index('$ ansible-playbook pgcdc.clickpipes.verify -i inventory.yml', report)
    assert '**Ready**' in output[report:verify] and '## What this run changed' in output[report:verify]
    assert re.search(r'shop_source\s+: ok=\d+\s+changed=0\s+unreachable=0\s+failed=0', output[verify:]), output
    assert '[WARNING]: [generic]' in output[prepare:report]
    assert not re.search(r'[A-Za-z]+Warning: ', output), output  # a Python warning line
    assert "clickpipes_login_password: '********'" in output


@pytest.mark.usefixtures(fresh_roles.__name__)
@pytest.mark.parametrize('venv', ansible_venvs(), ids=os.path.basename)
def test_the_settings_entry_point_on_the_ansible_core_of(make_cluster, tmp_path, venv):
    """The one entry point that uses community.postgresql (postgresql_alter_system, since 3.13), with the venv's
    version of it; no deprecation shown (community.postgresql 4 deprecates the `port` alias)."""
    cluster = make_cluster(settings=dict(max_wal_senders='4'))
    cluster.execute('CREATE TABLE orders (id int PRIMARY KEY)')
    host = dict(clickpipes_login_host=cluster.host, clickpipes_login_port=cluster.port,
                clickpipes_login_user=cluster.superuser, clickpipes_login_password=cluster.password,
                clickpipes_login_db='postgres', clickpipes_manage_settings=True)
    inventory = tmp_path / 'inventory.yml'
    inventory.write_text(yaml.safe_dump(dict(clickpipes_sources=dict(hosts=dict(shop=host)))))
    rc, output = run_job(venv, 'pgcdc.clickpipes.prepare', inventory, tmp_path)
    assert rc == 0 and 'Restart PostgreSQL so max_wal_senders takes effect.' in output, output
    assert cluster.query("SELECT name FROM pg_settings WHERE pending_restart") == [('max_wal_senders',)]
    assert 'DEPRECATION' not in output, output
