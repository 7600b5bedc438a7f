# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The playbook runner itself: real ansible-playbook, no database."""

from __future__ import annotations

import os
import textwrap

from playbook import run_playbook, run_playbook_file


def test_results_in_order_with_failed_and_skipped_tasks():
    run = run_playbook(
        [
            {'name': 'say hello', 'ansible.builtin.debug': {'msg': 'hello {{ who }}'}},
            {'name': 'skip me', 'ansible.builtin.debug': {'msg': 'never'}, 'when': False},
            {'name': 'run a command', 'ansible.builtin.command': {'argv': ['echo', 'from command']},
             'changed_when': False},
            {'name': 'fail but go on', 'ansible.builtin.fail': {'msg': 'expected failure'}, 'ignore_errors': True},
            {'name': 'fail for real', 'ansible.builtin.fail': {'msg': 'stop here'}},
            {'name': 'not reached', 'ansible.builtin.debug': {'msg': 'unreachable code'}},
        ],
        vars={'who': 'world'},
    )
    assert run.rc == 2, run
    assert [name for name, _result in run.results] == [
        'say hello', 'skip me', 'run a command', 'fail but go on', 'fail for real']
    assert run.result('say hello')['msg'] == 'hello world'
    assert run.result('skip me')['skipped'] is True
    assert run.status('skip me') == 'skipped'
    command = run.result('run a command')
    assert command['stdout'] == 'from command'
    assert command['rc'] == 0
    assert command['changed'] is False
    assert command['cmd'] == ['echo', 'from command']
    assert run.result('fail but go on')['failed'] is True
    assert run.result('fail but go on')['msg'] == 'expected failure'
    assert run.status('fail for real') == 'failed'
    assert run.result('fail for real')['msg'] == 'stop here'
    try:
        run.result('not reached')
    except KeyError:
        pass
    else:
        raise AssertionError('a task that never ran has a result')
    # stdout is the default callback's human output, not JSON
    assert 'TASK [say hello]' in run.stdout
    assert 'PLAY RECAP' in run.stdout
    assert 'failed=1' in run.stdout and 'ignored=1' in run.stdout


def test_check_diff_verbosity_and_module_defaults():
    run = run_playbook(
        [
            {'name': 'shows check mode', 'ansible.builtin.debug': {'msg': '{{ ansible_check_mode }} {{ ansible_diff_mode }}'}},
            {'name': 'command is skipped in check mode', 'ansible.builtin.command': {'cmd': 'false'}},
            {'name': 'defaults apply', 'ansible.builtin.debug': {}},
        ],
        module_defaults={'ansible.builtin.debug': {'msg': 'from module_defaults'}},
        check=True,
        diff=True,
        verbosity=4,
    )
    assert run.rc == 0, run
    assert run.result('shows check mode')['msg'] == 'True True'
    assert run.status('command is skipped in check mode') == 'skipped'
    assert run.result('defaults apply')['msg'] == 'from module_defaults'
    # -vvvv output on stdout, still human-readable
    assert 'TASK [defaults apply]' in run.stdout
    assert 'ESTABLISH LOCAL CONNECTION' in run.stdout


def test_no_log_is_censored_everywhere():
    secret = 'not-a-real-secret-9d3f'
    run = run_playbook(
        [{'name': 'hidden', 'ansible.builtin.command': {'argv': ['echo', secret]}, 'no_log': True,
          'changed_when': False}],
        verbosity=4,
    )
    assert run.rc == 0, run
    assert secret not in run.stdout and secret not in run.stderr
    assert secret not in repr(run.results)
    assert run.result('hidden').get('censored')


def test_env_and_collection_path():
    run = run_playbook(
        [
            {'name': 'env', 'ansible.builtin.debug': {'msg': "{{ lookup('ansible.builtin.env', 'PGCDC_TEST_MARKER') }}"}},
            {'name': 'collection', 'ansible.builtin.debug': {
                'msg': "{{ lookup('ansible.builtin.env', 'ANSIBLE_COLLECTIONS_PATH') }}"}},
            {'name': 'interpreter', 'ansible.builtin.command': {'argv': ['{{ ansible_playbook_python }}', '-c',
                                                                         'import psycopg2, sys; print(sys.prefix)']},
             'changed_when': False},
        ],
        env={'PGCDC_TEST_MARKER': 'marker-42'},
    )
    assert run.rc == 0, run
    assert run.result('env')['msg'] == 'marker-42'
    paths = run.result('collection')['msg'].split(os.pathsep)
    assert any(os.path.isdir(os.path.join(p, 'ansible_collections', 'pgcdc', 'clickpipes')) for p in paths)
    repo_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for p in paths:
        assert not os.path.realpath(p).startswith(os.path.realpath(repo_root) + os.sep), p


def test_run_playbook_file_with_inventory_and_extra_vars(tmp_path):
    inventory = tmp_path / 'inventory.yml'
    inventory.write_text(textwrap.dedent("""\
        all:
          hosts:
            db1:
              ansible_connection: local
              marker: one
            db2:
              ansible_connection: local
              marker: two
    """))
    playbook_path = tmp_path / 'site.yml'
    playbook_path.write_text(textwrap.dedent("""\
        - name: Per-host play
          hosts: all
          gather_facts: false
          tasks:
            - name: Show marker
              ansible.builtin.debug:
                msg: "{{ marker }} {{ extra }}"
            - name: Fail on db2
              ansible.builtin.fail:
                msg: db2 fails
              when: inventory_hostname == 'db2'
    """))
    run = run_playbook_file(str(playbook_path), inventory=str(inventory), extra_vars={'extra': 'x y'}, diff=True)
    assert run.rc == 2, run
    assert run.results == []  # no localhost in this inventory
    assert run.result('Show marker', host='db1')['msg'] == 'one x y'
    assert run.result('Show marker', host='db2')['msg'] == 'two x y'
    assert run.status('Fail on db2', host='db1') == 'skipped'
    assert run.status('Fail on db2', host='db2') == 'failed'
    assert 'TASK [Show marker]' in run.stdout


def test_diff_and_invocation_are_kept(tmp_path):
    target = tmp_path / 'file.txt'
    run = run_playbook(
        [{'name': 'write file', 'ansible.builtin.copy': {'dest': str(target), 'content': 'new\n', 'mode': '0600'}}],
        diff=True,
        env={'ANSIBLE_CONFIG': None},  # None removes a variable from ansible-playbook's environment
    )
    assert run.rc == 0, run
    written = run.result('write file')
    assert written['changed'] is True
    assert written['diff'][0]['after'] == 'new\n'
    assert 'invocation' in written
    assert target.read_text() == 'new\n'
    assert '+new' in run.stdout  # the default callback printed the diff
