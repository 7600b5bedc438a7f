# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgcdc.clickpipes contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json
import os
import stat

from ansible_collections.pgcdc.clickpipes.plugins.plugin_utils import report as reports

STEP = dict(provider='neon', id='wal_level', status='error', what='Turn on logical replication.', where='Neon console > Settings',
            current='replica', target='logical', restart=True, caution='Active connections drop.')
NOTICE = dict(provider='neon', id=None, status='notice', what='Allow the ClickPipes IP addresses.', where='Neon console > IP Allow',
              current=None, target=None, restart=False, caution=None)
RESULT = dict(
    provider='neon', blocked=['wal_level'], summary=dict(ok=30, warning=0, error=1, skipped=2, ready=False),
    clickpipes_connection=dict(host='db.example.com', port=5432, database='app', user='clickpipes_user', publication='pub'),
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
    assert reports.summary(report) == dict(ready=False, summary=RESULT['summary'], connection=RESULT['clickpipes_connection'],
                                           notices=[STEP, NOTICE], blocked=['wal_level'])


def test_the_markdown_says_what_is_left_to_do():
    text = reports.markdown(reports.build('shop', RESULT, []))
    assert text.startswith('# ClickPipes CDC source: shop\n')
    assert '**Not ready** (neon, PostgreSQL 16.4)' in text and '**Restart needed** for: wal_level' in text
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
