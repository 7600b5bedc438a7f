# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run real ``ansible-playbook`` from integration tests and read back every task result.

    from playbook import run_playbook

    run = run_playbook(
        [{'name': 'make user', 'pgcdc.clickpipes.replication_user': {'name': 'cp'}}],
        module_defaults={'group/pgcdc.clickpipes.clickpipes': {'login_host': host, 'login_port': port}},
        check=True, diff=True, verbosity=4,
    )
    assert run.rc == 0, run
    assert run.result('make user')['changed']
    assert password not in run.stdout  # stdout is Ansible's normal human output

``ansible-playbook`` comes from the virtual environment of ``sys.executable``
and runs with that interpreter for ``localhost``/``connection: local`` hosts
(so the modules see psycopg2). ``ANSIBLE_COLLECTIONS_PATH`` points at a
directory outside the repository holding ``ansible_collections/pgcdc/clickpipes``
as a symlink to this checkout (``tools/collection_path.py``, shared with the
Makefile), unless the environment already names a path that holds the
collection (for example an installed build). community.postgresql comes from the
``ansible`` package in the same environment.

Per-task results come from the test-only callback
``tests/integration/callback_plugins/pgcdc_results.py`` through a JSON-lines
file, so stdout stays the ``ansible.builtin.default`` callback's output at any
verbosity (tests scan it for leaked secrets).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shlex
import subprocess
import sys
import tempfile
import typing as t

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
CALLBACK_DIR = os.path.join(HERE, 'callback_plugins')
CALLBACK_NAME = 'pgcdc_results'
VENV_BIN = os.path.dirname(sys.executable)
ANSIBLE_PLAYBOOK = os.path.join(VENV_BIN, 'ansible-playbook')
DEFAULT_TIMEOUT = 900


class _NoAliasDumper(yaml.SafeDumper):
    """Write objects that appear twice in full instead of as YAML anchors/aliases (readable playbooks)."""

    def ignore_aliases(self, data: t.Any) -> bool:
        return True


@dataclasses.dataclass
class PlaybookRun:
    """The outcome of one ansible-playbook run."""

    rc: int
    stdout: str
    stderr: str
    # (host, task name, status, result) for every host; status is ok, failed, skipped or unreachable
    all_results: list[tuple[str, str, str, dict[str, t.Any]]]
    command: list[str]
    playbook: str

    @property
    def results(self) -> list[tuple[str, dict[str, t.Any]]]:
        """(task name, result) for localhost, in execution order, failed and skipped tasks included."""
        return self.host_results('localhost')

    def host_results(self, host: str) -> list[tuple[str, dict[str, t.Any]]]:
        """(task name, result) for one inventory host, in execution order."""
        return [(task, result) for result_host, task, _status, result in self.all_results if result_host == host]

    def result(self, name: str, host: str = 'localhost') -> dict[str, t.Any]:
        """The result of the task called ``name`` (the last one if several tasks share the name)."""
        matches = [result for task, result in self.host_results(host) if task == name]
        if not matches:
            known = [task for task, _result in self.host_results(host)]
            raise KeyError(f'no result for task {name!r} on {host}; tasks with results: {known}')
        return matches[-1]

    def status(self, name: str, host: str = 'localhost') -> str:
        """ok, failed, skipped or unreachable for the task called ``name`` (the last one of that name)."""
        matches = [status for result_host, task, status, _result in self.all_results if result_host == host and task == name]
        if not matches:
            raise KeyError(f'no result for task {name!r} on {host}')
        return matches[-1]

    def __str__(self) -> str:
        return (f'ansible-playbook exited {self.rc}: {shlex.join(self.command)}\n'
                f'--- playbook ---\n{self.playbook}\n--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}')


def _load_collection_path_tool() -> t.Any:
    path = os.path.join(REPO_ROOT, 'tools', 'collection_path.py')
    spec = importlib.util.spec_from_file_location('_pgcdc_collection_path', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def collections_path() -> str:
    """A value for ANSIBLE_COLLECTIONS_PATH under which pgcdc.clickpipes is this checkout (or an installed copy)."""
    configured = os.environ.get('ANSIBLE_COLLECTIONS_PATH') or os.environ.get('ANSIBLE_COLLECTIONS_PATHS')
    if configured:
        for entry in configured.split(os.pathsep):
            if os.path.isdir(os.path.join(entry, 'ansible_collections', 'pgcdc', 'clickpipes')):
                return configured
    return _load_collection_path_tool().collections_path(REPO_ROOT)


def _environment(workdir: str, results_file: str, env: dict[str, str | None] | None) -> dict[str, str]:
    config = os.path.join(workdir, 'ansible.cfg')
    with open(config, 'w', encoding='utf-8') as cfg:
        cfg.write('[defaults]\n')  # isolate from ./ansible.cfg, ~/.ansible.cfg and /etc/ansible/ansible.cfg
    callback_dirs = [CALLBACK_DIR] + [p for p in os.environ.get('ANSIBLE_CALLBACK_PLUGINS', '').split(os.pathsep) if p]
    run_env = dict(os.environ)
    run_env.update({
        'ANSIBLE_CONFIG': config,
        'ANSIBLE_COLLECTIONS_PATH': collections_path(),
        'ANSIBLE_STDOUT_CALLBACK': 'ansible.builtin.default',
        'ANSIBLE_CALLBACK_PLUGINS': os.pathsep.join(callback_dirs),
        'ANSIBLE_CALLBACKS_ENABLED': CALLBACK_NAME,
        'ANSIBLE_PYTHON_INTERPRETER': sys.executable,
        'ANSIBLE_NOCOLOR': '1',
        'ANSIBLE_FORCE_COLOR': '0',
        'ANSIBLE_RETRY_FILES_ENABLED': '0',
        'ANSIBLE_LOCALHOST_WARNING': '0',
        'ANSIBLE_INVENTORY_UNPARSED_WARNING': '0',
        'ANSIBLE_LOCAL_TEMP': os.path.join(workdir, 'local-tmp'),
        'ANSIBLE_REMOTE_TEMP': os.path.join(workdir, 'remote-tmp'),
        'PGCDC_RESULTS_FILE': results_file,
        'PATH': os.pathsep.join([VENV_BIN, os.environ.get('PATH', '')]),
    })
    run_env.pop('ANSIBLE_COLLECTIONS_PATHS', None)  # the deprecated spelling would compete with ours
    for key, value in (env or {}).items():
        if value is None:
            run_env.pop(key, None)
        else:
            run_env[key] = str(value)
    return run_env


def _read_results(path: str) -> list[tuple[str, str, str, dict[str, t.Any]]]:
    if not os.path.exists(path):
        return []
    results = []
    with open(path, encoding='utf-8') as results_file:
        for line in results_file:
            if line.strip():
                record = json.loads(line)
                results.append((record['host'], record['task'], record['status'], record['result']))
    return results


def _run(args: list[str], playbook_text: str, workdir: str, env: dict[str, str | None] | None,
         timeout: float) -> PlaybookRun:
    results_file = os.path.join(workdir, 'results.jsonl')
    command = [ANSIBLE_PLAYBOOK] + args
    proc = subprocess.run(command, cwd=workdir, env=_environment(workdir, results_file, env), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout, check=False)
    return PlaybookRun(rc=proc.returncode, stdout=proc.stdout, stderr=proc.stderr,
                       all_results=_read_results(results_file), command=command, playbook=playbook_text)


def _common_args(check: bool, diff: bool, verbosity: int) -> list[str]:
    args = []
    if check:
        args.append('--check')
    if diff:
        args.append('--diff')
    if verbosity:
        args.append('-' + 'v' * verbosity)
    return args


def run_playbook(tasks: list[dict[str, t.Any]], *, vars: dict[str, t.Any] | None = None,  # pylint: disable=redefined-builtin
                 module_defaults: dict[str, t.Any] | None = None, check: bool = False, diff: bool = False,
                 verbosity: int = 0, env: dict[str, str | None] | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> PlaybookRun:
    """Run ``tasks`` in a one-play playbook on localhost (``connection: local``, no fact gathering).

    ``vars`` become play vars, ``module_defaults`` the play's module_defaults. ``env`` adds to (or, with a
    None value, removes from) the environment of ansible-playbook.
    """
    play: dict[str, t.Any] = {
        'name': 'pgcdc.clickpipes integration test',
        'hosts': 'localhost',
        'connection': 'local',
        'gather_facts': False,
    }
    if vars:
        play['vars'] = vars
    if module_defaults:
        play['module_defaults'] = module_defaults
    play['tasks'] = tasks
    playbook_text = yaml.dump([play], Dumper=_NoAliasDumper, sort_keys=False, default_flow_style=False)

    with tempfile.TemporaryDirectory(prefix='pgcdc-playbook-') as workdir:
        playbook_path = os.path.join(workdir, 'playbook.yml')
        with open(playbook_path, 'w', encoding='utf-8') as playbook_file:
            playbook_file.write(playbook_text)
        args = ['-i', 'localhost,'] + _common_args(check, diff, verbosity) + [playbook_path]
        return _run(args, playbook_text, workdir, env, timeout)


def run_playbook_file(path: str, *, inventory: str | list[str] | None = None,
                      extra_vars: dict[str, t.Any] | None = None, check: bool = False, diff: bool = False,
                      verbosity: int = 0, env: dict[str, str | None] | None = None,
                      timeout: float = DEFAULT_TIMEOUT) -> PlaybookRun:
    """Run an existing playbook: a path, or a collection playbook name such as ``pgcdc.clickpipes.verify``.

    ``inventory`` is one or more inventory sources (paths, or ``host1,host2,``); the default is
    ``localhost,``. ``extra_vars`` are passed as one JSON ``--extra-vars`` file (kept out of the command line and
    of ``ps``).
    """
    if os.path.exists(path):
        path = os.path.abspath(path)
        with open(path, encoding='utf-8') as playbook_file:
            playbook_text = playbook_file.read()
    else:
        playbook_text = f'(collection playbook {path})'
    if inventory is None:
        inventory = ['localhost,']
    elif isinstance(inventory, str):
        inventory = [inventory]

    with tempfile.TemporaryDirectory(prefix='pgcdc-playbook-') as workdir:
        args = []
        for source in inventory:
            args += ['-i', source if source.endswith(',') or not os.path.exists(source) else os.path.abspath(source)]
        if extra_vars:
            extra_vars_path = os.path.join(workdir, 'extra-vars.json')
            with open(extra_vars_path, 'w', encoding='utf-8') as extra_vars_file:
                json.dump(extra_vars, extra_vars_file)
            args += ['--extra-vars', '@' + extra_vars_path]
        args += _common_args(check, diff, verbosity) + [path]
        return _run(args, playbook_text, workdir, env, timeout)
