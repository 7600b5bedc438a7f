# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgcdc.clickpipes contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The report of one source: built from a prepare_source result, written as JSON and Markdown, summed up for set_stats."""

from __future__ import annotations

import json
import os

import jinja2

SCHEMA_VERSION = 1
# The parts of the report AWX and ANSIBLE_SHOW_CUSTOM_STATS show for each source.
SUMMARY_KEYS = ('ready', 'summary', 'connection', 'notices', 'blocked')

MARKDOWN = r'''# ClickPipes CDC source: {{ report.host }}

**{{ 'Ready' if report.ready else 'Not ready' }}** ({{ report.provider }}, PostgreSQL {{ report.server.version }}):
{{ report.summary.ok }} ok, {{ report.summary.warning }} warning(s), {{ report.summary.error }} error(s), {{ report.summary.skipped }} skipped.
{% if report.restart_pending %}

**Restart needed** for: {{ report.restart_pending | join(', ') }} (changed, waiting for a restart of the server; the role never restarts it).
{% endif %}

## Connection details for ClickPipes

| field | value |
|---|---|
| host | `{{ report.connection.host }}` |
| port | `{{ report.connection.port }}` |
| database | `{{ report.connection.database }}` |
| user | `{{ report.connection.user }}` |
| publication | `{{ report.connection.publication }}` |

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

| status | check | message |
|---|---|---|
{% for finding in report.findings %}
| {{ finding.status }} | `{{ finding.id }}` | {{ finding.message | replace('|', '\\|') }} |
{% endfor %}
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
    """The report of ``host`` from a prepare_source result."""
    changes = dict(result['changes'], settings=list(settings_changed))
    return dict(
        schema_version=SCHEMA_VERSION, host=host, provider=result['provider'], ready=result['summary']['ready'],
        blocked=result['blocked'], summary=result['summary'], connection=result['clickpipes_connection'],
        notices=result['manual_steps'], findings=result['findings'], server=result['server'],
        restart_pending=result['server'].get('pending_restart', []), changes=changes)


def summary(report):
    return dict((key, report[key]) for key in SUMMARY_KEYS)


def markdown(report):
    environment = jinja2.Environment(trim_blocks=True, undefined=jinja2.StrictUndefined, autoescape=False)
    return environment.from_string(MARKDOWN).render(report=report)


def write(report, folder):
    """<host>.json and <host>.md in ``folder`` (made when missing); the paths written."""
    os.makedirs(folder, mode=0o750, exist_ok=True)
    paths = []
    for suffix, text in (('json', json.dumps(report, indent=2, sort_keys=True) + '\n'), ('md', markdown(report))):
        path = os.path.join(folder, '%s.%s' % (report['host'], suffix))
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640), 'w', encoding='utf-8') as handle:
            handle.write(text)
        paths.append(path)
    return paths
