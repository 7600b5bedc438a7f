#!/usr/bin/env python
"""Regenerate docs/bad-inputs.md: run the bad-input catalogue against a throwaway PostgreSQL 15 and record the messages."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / 'tests' / 'integration'), str(ROOT / 'tests' / 'harness')]

import pgcluster  # noqa: E402  pylint: disable=wrong-import-position
import test_bad_inputs as catalogue  # noqa: E402  pylint: disable=wrong-import-position
from playbook import run_playbook  # noqa: E402  pylint: disable=wrong-import-position
from support import login  # noqa: E402  pylint: disable=wrong-import-position

HEADER = """# Bad inputs and what they get

Every row is an input a person may give by mistake, and the message the collection answers with. Each is run by
`tests/integration/test_bad_inputs.py` against a real server: the task fails with this message (a failed admin
connection, `Could not connect to ...`, makes the host unreachable instead: Ansible's exit code 4), no Python
traceback is printed, and a catalog snapshot taken before the runs is unchanged after them. Messages may include
server-specific details (ports, database names); those below come from one run on PostgreSQL 15
(`tools/document_bad_inputs.py` regenerates this page).

| case | module | input | message |
|---|---|---|---|
"""

# The cases with their own setup are written by hand below the generated table and kept as they are.
SPECIAL_HEADING = 'Cases with their own setup'


def cell(text):
    return text.replace('|', '\\|').replace('\n', ' ')


def main():
    cluster = pgcluster.start_cluster(15)
    try:
        cluster.execute('CREATE DATABASE catalogue')
        cluster.execute(catalogue.SETUP, dbname='catalogue')
        tasks = [{'name': case, module: dict(options, **connection), 'ignore_errors': True, 'ignore_unreachable': True}
                 for case, module, options, connection, _expected in catalogue.CASES]
        run = run_playbook(tasks, module_defaults=login(cluster, 'catalogue'))
        rows = []
        for case, module, options, connection, _expected in catalogue.CASES:
            given = ', '.join('%s: %s' % (key, json.dumps(value, ensure_ascii=False)) for key, value in dict(options, **connection).items())
            given = cell(given or '(defaults)').replace('`', "'")
            rows.append('| `%s` | %s | `%s` | %s |' % (case, module.rsplit('.', maxsplit=1)[-1], given, cell(run.result(case)['msg'])))
    finally:
        cluster.destroy()
    page = ROOT / 'docs' / 'bad-inputs.md'
    special = page.read_text(encoding='utf-8').split(SPECIAL_HEADING, 1)[1] if page.exists() else ':\n'
    page.write_text(HEADER + '\n'.join(rows) + '\n\n' + SPECIAL_HEADING + special, encoding='utf-8')
    print('docs/bad-inputs.md: %d cases' % len(rows))


if __name__ == '__main__':
    main()
