# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgcdc.clickpipes contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The report of one source: built from a prepare_source result, written as JSON and Markdown, summed up for set_stats."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile

import jinja2

from ansible_collections.pgcdc.clickpipes.plugins.module_utils.prepare_step import WRITERS

SCHEMA_VERSION = 1
# The parts of the report AWX and ANSIBLE_SHOW_CUSTOM_STATS show for each source.
SUMMARY_KEYS = ('ready', 'summary', 'connection', 'notices', 'blocked', 'failure')
# What a report says when the run failed before any check (a refused connection, an invalid option).
NO_CHECK = dict(provider=None, blocked=[], summary=dict(ok=0, warning=0, error=0, skipped=0, ready=False),
                clickpipes_connection={}, manual_steps=[], findings=[], server={})
# File names keep these bytes as they are and write every other one as %xx (lower-case hex): no separator, no
# upper case (two hosts that differ in case would share a file on a case-insensitive file system), reversible.
KEPT = frozenset(b'abcdefghijklmnopqrstuvwxyz0123456789_-.')
# Longest file name most file systems take, less the longest suffix (.json).
MAX_STEM_BYTES = 255 - len('.json')

MARKDOWN = r'''# ClickPipes CDC source: {{ report.host }}

**{{ 'Ready' if report.ready else 'Not ready' }}** ({{ report.provider or 'provider unknown' }}, PostgreSQL {{ report.server.version | default('unknown') }}):
{{ report.summary.ok }} ok, {{ report.summary.warning }} warning(s), {{ report.summary.error }} error(s), {{ report.summary.skipped }} skipped.
{% if report.failure is not none %}

**The run failed**{{ ' (the database was unreachable)' if report.unreachable else '' }}
{{- ' in the steps ' ~ report.modules_run | join(', ') if report.modules_run else '' }}:

```text
{{ report.failure }}
```
{% endif %}
{% if report.restart_pending %}

**Restart needed** for: {{ report.restart_pending | join(', ') }} (changed, waiting for a restart of the server; the role never restarts it).
{% endif %}

## Connection details for ClickPipes

{% if report.connection %}
| field | value |
|---|---|
| host | `{{ report.connection.host }}` |
| port | `{{ report.connection.port }}` |
| database | `{{ report.connection.database }}` |
| user | `{{ report.connection.user }}` |
| publication | `{{ report.connection.publication }}` |
{% if report.connection.source_type is defined %}
| source type | `{{ report.connection.source_type }}` (the Postgres source type to pick in ClickPipes: its API's `source.postgres.type`) |
{% endif %}
{% else %}
Unknown: no check ran.
{% endif %}

## What is left to do by hand

{% for step in report.notices %}
- **{{ step.provider }}{{ ' / ' ~ step.id if step.id else '' }}** ({{ step.status }}): {{ step.what }} Where: {{ step.where }}.
{%- if step.current is not none or step.target is not none %} Now `{{ step.current }}`, needed `{{ step.target }}`.{% endif %}
{%- if step.restart %} Restarts the server.{% endif %}
{%- if step.caution %} {{ step.caution }}{% endif %}

{% else %}
Nothing.
{% endfor %}

## Findings

{% if report.findings %}
| status | check | message |
|---|---|---|
{% for finding in report.findings %}
| {{ finding.status }} | `{{ finding.id }}` | {{ finding.message | replace('|', '\\|') }} |
{% endfor %}
{% else %}
None: no check ran.
{% endif %}
{% set fixes = report.findings | selectattr('status', 'in', ['error', 'warning']) | selectattr('fix.sql') | list %}
{% if fixes %}

## SQL fixes

```sql
{% for finding in fixes %}
-- {{ finding.id }}
{% for statement in finding.fix.sql %}
{{ statement }};
{% endfor %}
{% if finding.fix.sql_omitted %}
-- ... and {{ finding.fix.sql_omitted }} more statement(s) like these ({{ finding.observed }})
{% endif %}
{% endfor %}
```
{% endif %}

## What this run changed

{% for kind, queries in report.changes.items() %}
{% for query in queries %}
- {{ kind }}: `{{ query }}`
{% endfor %}
{% endfor %}
{% if report.changes.values() | map('length') | sum == 0 %}
Nothing.
{% endif %}
'''


def build(host, result, settings_changed):
    """The report of ``host`` from a prepare_source result, failed or not, with or without a check."""
    checked = dict(NO_CHECK, **result)
    failed = bool(result.get('failed') or result.get('unreachable'))
    changes = dict(((key, []) for _name, _module, key in WRITERS), **result.get('changes', {}))
    changes['settings'] = list(settings_changed)
    return dict(
        schema_version=SCHEMA_VERSION, host=host, provider=checked['provider'],
        source_type=checked['clickpipes_connection'].get('source_type'),
        ready=checked['summary']['ready'] and not failed, blocked=checked['blocked'], summary=checked['summary'],
        connection=checked['clickpipes_connection'], notices=checked['manual_steps'], findings=checked['findings'],
        server=checked['server'], restart_pending=checked['server'].get('pending_restart', []), changes=changes,
        failure=result.get('msg') if failed else None, unreachable=bool(result.get('unreachable')),
        modules_run=list(result.get('modules_run', [])))


def summary(report):
    return dict((key, report[key]) for key in SUMMARY_KEYS)


def markdown(report):
    environment = jinja2.Environment(trim_blocks=True, undefined=jinja2.StrictUndefined, autoescape=False)
    return environment.from_string(MARKDOWN).render(report=report)


def file_stem(host):
    """The file name of ``host``'s report, less its suffix: percent-encoded UTF-8 (see KEPT), so two hosts never share
    a file and no name leaves the folder; a leading dot is encoded too ('.', '..', hidden files). A name too long for a
    file system keeps its first bytes and ends in ``~`` and the SHA-256 of the host name (``~`` is otherwise encoded)."""
    encoded = ''.join(chr(byte) if byte in KEPT else '%%%02x' % byte for byte in host.encode('utf-8', 'surrogatepass'))
    if encoded.startswith('.'):
        encoded = '%2e' + encoded[1:]
    if len(encoded) <= MAX_STEM_BYTES:
        return encoded
    digest = hashlib.sha256(host.encode('utf-8', 'surrogatepass')).hexdigest()
    head = encoded[:MAX_STEM_BYTES - len(digest) - 1]
    cut = head.rfind('%', len(head) - 2)
    return '%s~%s' % (head[:cut] if cut >= 0 else head, digest)


def write(report, folder):
    """<stem>.json and <stem>.md in ``folder`` (made when missing); the paths written."""
    os.makedirs(folder, mode=0o750, exist_ok=True)
    stem = file_stem(report['host'])
    paths = []
    for suffix, text in (('json', json.dumps(report, indent=2, sort_keys=True) + '\n'), ('md', markdown(report))):
        path = os.path.join(folder, '%s.%s' % (stem, suffix))
        replace(path, text)
        paths.append(path)
    return paths


def replace(path, text):
    """Write ``text`` to a new file beside ``path``, then rename it over ``path``: a symlink or a file planted at
    ``path`` is replaced, never written through, and a reader never sees half a report."""
    descriptor, temporary = tempfile.mkstemp(prefix='.', suffix='.tmp', dir=os.path.dirname(path))
    try:
        with open(descriptor, 'w', encoding='utf-8') as handle:
            os.fchmod(handle.fileno(), 0o640)
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
