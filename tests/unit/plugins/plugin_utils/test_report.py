# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgcdc.clickpipes contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json
import os
import random
import stat
import urllib.parse

from ansible_collections.pgcdc.clickpipes.plugins.plugin_utils import report as reports

STEP = dict(provider='neon', id='wal_level', status='error', what='Turn on logical replication.', where='Neon console > Settings',
            current='replica', target='logical', restart=True, caution='Active connections drop.')
NOTICE = dict(provider='neon', id=None, status='notice', what='Allow the ClickPipes IP addresses.', where='Neon console > IP Allow',
              current=None, target=None, restart=False, caution=None)
RESULT = dict(
    provider='neon', blocked=['wal_level'], summary=dict(ok=30, warning=0, error=1, skipped=2, ready=False),
    clickpipes_connection=dict(host='db.example.com', port=5432, database='app', user='clickpipes_user', publication='pub',
                               source_type='neon'),
    manual_steps=[STEP, NOTICE], server=dict(version='16.4', pending_restart=['wal_level']),
    findings=[dict(id='wal_level', status='error', message='wal_level is replica | not logical', observed='replica',
                   fix=dict(sql=['ALTER SYSTEM SET wal_level = logical'], sql_omitted=0))],
    changes=dict(user=[], grants=['GRANT SELECT ON TABLE "public"."a" TO "clickpipes_user"'], publication=[]))


def test_the_report_carries_the_result_under_its_documented_names():
    report = reports.build('shop', RESULT, ['wal_level'])
    assert report['schema_version'] == 1 and report['host'] == 'shop' and report['ready'] is False
    assert report['connection'] == RESULT['clickpipes_connection'] and report['notices'] == [STEP, NOTICE]
    assert report['restart_pending'] == ['wal_level'] and report['blocked'] == ['wal_level']
    assert report['changes'] == dict(RESULT['changes'], settings=['wal_level'])
    assert report['failure'] is None and report['unreachable'] is False and report['modules_run'] == []
    assert report['source_type'] == 'neon'
    assert reports.summary(report) == dict(ready=False, summary=RESULT['summary'], connection=RESULT['clickpipes_connection'],
                                           notices=[STEP, NOTICE], blocked=['wal_level'], failure=None)


def test_the_markdown_says_what_is_left_to_do():
    text = reports.markdown(reports.build('shop', RESULT, []))
    assert text.startswith('# ClickPipes CDC source: shop\n')
    assert '**Not ready** (neon, PostgreSQL 16.4)' in text and '**Restart needed** for: wal_level' in text
    assert '| source type | `neon` (the Postgres source type to pick in ClickPipes' in text
    assert ('- **neon / wal_level** (error): Turn on logical replication. Where: Neon console > Settings. Now `replica`, '
            'needed `logical`. Restarts the server. Active connections drop.\n') in text
    assert '- **neon** (notice): Allow the ClickPipes IP addresses. Where: Neon console > IP Allow.\n' in text
    assert '| error | `wal_level` | wal_level is replica \\| not logical |' in text
    assert '-- wal_level\nALTER SYSTEM SET wal_level = logical;\n' in text
    assert '- grants: `GRANT SELECT ON TABLE "public"."a" TO "clickpipes_user"`' in text and 'Nothing.' not in text


def test_written_files_hold_the_report_and_only_their_owner_group_reads_them(tmp_path):
    report = reports.build('shop', RESULT, [])
    paths = reports.write(report, str(tmp_path / 'reports'))
    assert paths == [str(tmp_path / 'reports' / 'shop.json'), str(tmp_path / 'reports' / 'shop.md')]
    assert json.loads((tmp_path / 'reports' / 'shop.json').read_text()) == report
    assert (tmp_path / 'reports' / 'shop.md').read_text() == reports.markdown(report)
    assert stat.S_IMODE(os.stat(paths[0]).st_mode) & 0o007 == 0


# A writing step failed after the user was created: prepare_source's result as it fails, with the preflight's findings.
FAILED_WRITE = dict(RESULT, failed=True, blocked=[], msg='Could not publish "public"."a": lock_timeout expired.',
                    summary=dict(ok=30, warning=0, error=0, skipped=2, ready=True), modules_run=['replication_user', 'publication'],
                    changes=dict(user=['CREATE ROLE "clickpipes_user" LOGIN REPLICATION'], grants=[], publication=[]))
REFUSED = dict(failed=True, unreachable=True, msg='Could not connect to db:5432 as admin: Connection refused.')


def test_a_failed_run_is_reported_not_ready_with_its_message_and_what_it_committed():
    report = reports.build('shop', FAILED_WRITE, [])
    assert report['ready'] is False and report['failure'] == FAILED_WRITE['msg'] and report['unreachable'] is False
    assert report['modules_run'] == ['replication_user', 'publication'] and report['findings'] == RESULT['findings']
    assert report['changes'] == dict(FAILED_WRITE['changes'], settings=[])
    assert reports.summary(report)['failure'] == FAILED_WRITE['msg']
    text = reports.markdown(report)
    assert '**Not ready**' in text and '**The run failed** in the steps replication_user, publication:' in text
    assert FAILED_WRITE['msg'] in text and '- user: `CREATE ROLE "clickpipes_user" LOGIN REPLICATION`' in text


def test_a_run_that_failed_before_any_check_still_has_a_report():
    for result in (REFUSED, dict(failed=True, msg='Unsupported parameters for (prepare_source) module: colour')):
        report = reports.build('shop', result, [])
        assert report['ready'] is False and report['failure'] == result['msg'] and report['findings'] == []
        assert report['changes'] == dict(user=[], grants=[], publication=[], settings=[]) and report['connection'] == {}
        assert report['unreachable'] is bool(result.get('unreachable'))
        text = reports.markdown(report)
        assert '**Not ready** (provider unknown, PostgreSQL unknown)' in text and result['msg'] in text
        assert 'Unknown: no check ran.' in text and 'None: no check ran.' in text
    assert '(the database was unreachable)' in reports.markdown(reports.build('shop', REFUSED, []))


def generated_host_names(seed, count):
    """Host names built from the parts that break file names: separators, dots, case, control and wide characters."""
    rng = random.Random(seed)
    parts = ['/', '\\', '.', '..', '%', '%2f', '~', 'a', 'A', 'z', 'Z', '0', '-', '_', ' ', '\t', '\x01', '\x7f', '\u00e9',
             'E\u0301', '\u0130', '\u00df', '\u4e2d', '\U0001f600', ':', '*', '?', '"', '<', '>', '|', 'eu', 'orders']
    names = set()
    while len(names) < count:
        name = ''.join(rng.choice(parts) for _part in range(rng.choice([1, 2, 3, 5, 8, 40, 120])))
        names.add(name)
        names.update((name.upper(), name.lower(), name.swapcase()))
    return names


ADVERSARIAL = ['.', '..', '../escape', '../../etc/passwd', 'eu/orders', 'eu%2forders', 'eu_orders', '.hidden', 'Shop', 'shop',
               'SHOP', 'a' * 251, 'a' * 300, 'a' * 300 + 'b', '\u00e9' * 200, '\U0001f600' * 100, '%', '~', 'a~' + '0' * 64]


def test_report_file_names_are_safe_and_no_two_hosts_share_one():
    """Over generated names: one file per host even where case does not count, within one folder, and reversible
    when not shortened."""
    names = generated_host_names(14, 3000) | set(ADVERSARIAL)
    stems = dict((name, reports.file_stem(name)) for name in names)
    folded = dict((stem.casefold(), name) for name, stem in stems.items())
    assert len(set(stems.values())) == len(names) and len(folded) == len(names)
    for name, stem in stems.items():
        assert len(stem.encode('utf-8')) + len('.json') <= 255 and not stem.startswith('.'), name
        assert all(char.isascii() and (char.isalnum() or char in '%-_.~') for char in stem), (name, stem)
        assert stem == stem.lower() and os.path.basename(stem) == stem
        if '~' not in stem:
            assert urllib.parse.unquote(stem, errors='strict') == name
    assert reports.file_stem('db1.example.com') == 'db1.example.com' and reports.file_stem('eu/orders') == 'eu%2forders'
    assert reports.file_stem('..') == '%2e.' and reports.file_stem('Shop') == '%53hop'


def test_a_report_never_leaves_its_folder(tmp_path):
    folder = tmp_path / 'reports'
    folder.mkdir()
    outside = tmp_path / 'outside.json'
    outside.write_text('keep')
    (folder / 'shop.json').symlink_to(outside)
    for host in ('shop', '../escape', 'eu/orders', '..', '.'):
        paths = reports.write(reports.build(host, RESULT, []), str(folder))
        assert [os.path.dirname(path) for path in paths] == [str(folder)] * 2
        assert json.loads(open(paths[0], encoding='utf-8').read())['host'] == host
    assert outside.read_text() == 'keep' and not (folder / 'shop.json').is_symlink()
    assert sorted(os.listdir(tmp_path)) == ['outside.json', 'reports']
    assert sorted(os.listdir(folder)) == sorted(['shop.json', 'shop.md', '%2e.%2fescape.json', '%2e.%2fescape.md', 'eu%2forders.json',
                                                 'eu%2forders.md', '%2e..json', '%2e..md', '%2e.json', '%2e.md'])
