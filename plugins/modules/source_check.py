#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgcdc.clickpipes contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: source_check
short_description: Check that a PostgreSQL database is ready to be a ClickPipes CDC source, and say what is left to do
version_added: 0.1.0
description:
  - Reads the server, the replication user, the publication and the tables in scope, and returns one finding per
    check id (server version, primary, wal_level, WAL senders and slots, WAL retention, timeouts, slot health, the
    user and its privileges, a real replication connection, the publication, replica identity, TOAST columns, table
    names, poolers, TLS and the provider), all in one pass.
  - Each finding has a status (V(ok), V(warning), V(error) or V(skipped), never a skipped check reported as passed),
    what was observed and expected, and a fix with SQL and/or manual console steps and whether a restart follows.
  - Fingerprints the provider (Neon, PlanetScale, RDS, Aurora, Cloud SQL, Azure, Supabase or self-hosted) and returns
    the connection details to type into ClickPipes (on PlanetScale the user name carries the branch id).
  - Never changes anything. It can run as the admin or as the replication user.
author: pgcdc.clickpipes contributors (@pgcdc)
options:
  user:
    description:
      - The replication role ClickPipes logs in as.
    type: str
    default: clickpipes_user
  password:
    description:
      - Password of O(user). When given, the C(replication_connection) check opens a real replication connection as
        O(user) and runs C(IDENTIFY_SYSTEM); otherwise that check is skipped. Must be a string.
    type: raw
  schemas:
    description:
      - Schemas in scope. With an empty O(tables), all their tables (partitions and extension tables excluded).
    type: list
    elements: str
    default: [public]
  tables:
    description:
      - Tables in scope, as C(schema.table) or C(table) (looked up in O(schemas)). Names are matched exactly.
    type: list
    elements: str
    default: []
  publication:
    description:
      - Name of the publication ClickPipes reads.
    type: str
    default: clickpipes_publication
  fail_on:
    description:
      - Fail the task when a finding has this status or worse. V(never) only reports.
    type: str
    choices: [error, warning, never]
    default: error
  skip_checks:
    description:
      - Check ids not to run. They are reported with status V(skipped).
    type: list
    elements: str
    default: []
  emit_warnings:
    description:
      - Also show warning and error findings, with their manual steps or SQL fix, and the provider's standing notices
        as Ansible warnings, so a default C(ansible-playbook) run prints what is left to do.
      - V(all) shows every one. V(manual) shows the findings no writing module manages (C(fix.module) is null) and the
        notices; V(modules) shows the findings a writing module manages. A run that checks before and after the
        writing modules uses V(manual) first and V(modules) last, so each warning appears once. V(none) shows nothing.
    type: str
    choices: [all, manual, modules, none]
    default: none
  max_slot_wal_keep_size_target:
    description:
      - The smallest C(max_slot_wal_keep_size) that does not draw a warning (PostgreSQL size syntax). The recommendation
        is the larger of this and three times the daily WAL measured by C(pg_stat_wal) (PostgreSQL 14 and later).
    type: str
    default: 100GB
extends_documentation_fragment:
  - pgcdc.clickpipes.connection
  - pgcdc.clickpipes.provider
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - The check ids and their severities are listed in the collection's documentation; they are a stable interface.
seealso:
  - module: pgcdc.clickpipes.replication_user
  - module: pgcdc.clickpipes.publication
  - name: ClickPipes for Postgres
    description: ClickHouse's documentation of Postgres CDC sources.
    link: https://clickhouse.com/docs/integrations/clickpipes/postgres
'''

EXAMPLES = r'''
- name: Check a source and fail on errors
  pgcdc.clickpipes.source_check:
    login_host: db.example.com
    login_user: admin
    login_password: "{{ admin_password }}"
    login_db: app
    user: clickpipes_user
    password: "{{ clickpipes_password }}"
  register: readiness

- name: Show what is left to do by hand
  ansible.builtin.debug:
    var: readiness.manual_steps

- name: Report only, as the replication user, skipping the TOAST advice
  pgcdc.clickpipes.source_check:
    login_host: db.example.com
    login_user: clickpipes_user
    login_password: "{{ clickpipes_password }}"
    login_db: app
    password: "{{ clickpipes_password }}"
    fail_on: never
    skip_checks: [toast_columns]
'''

RETURN = r'''
findings:
  description: One finding per check id, in catalogue order.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: The check id.
      type: str
    status:
      description: V(ok), V(warning), V(error) or V(skipped).
      type: str
    message:
      description: One sentence for a person.
      type: str
    observed:
      description: What was found.
      type: raw
    expected:
      description: What ClickPipes needs or recommends.
      type: raw
    fix:
      description:
        - C(sql) lists statements to run, at most 10, each naming at most 100 tables; C(sql_omitted) counts the further
          statements the same fix needs.
        - C(manual) lists steps (provider, what, where, current, target, restart, caution); C(restart) tells whether a
          restart follows.
        - C(module) names the writing module of this collection that manages what the check looks at
          (V(replication_user), V(replication_grants) or V(publication)). It is null when only a person can fix it, or
          when the check is skipped for a reason no writing module changes, such as the server version.
      type: dict
  sample: [{"id": "wal_level", "status": "error", "message": "wal_level is replica: logical decoding, and so CDC, needs logical.",
            "observed": "replica", "expected": "logical",
            "fix": {"sql": ["ALTER SYSTEM SET wal_level = logical"], "sql_omitted": 0, "manual": [], "restart": true, "module": null}}]
summary:
  description: How many findings have each status, and C(ready) (no error).
  returned: always
  type: dict
  sample: {"ok": 25, "warning": 2, "error": 0, "skipped": 2, "ready": true}
error_ids:
  description: The ids of the findings whose status is C(error), in the order of RV(findings).
  returned: always
  type: list
  elements: str
  sample: ["user_exists", "publication_exists"]
pending_modules:
  description:
    - The writing modules of this collection that have something to do, in the order of the checks they fix.
    - A module is listed when a finding it manages (its C(fix.module)) is not C(ok). An empty list means they would
      change nothing.
  returned: always
  type: list
  elements: str
  sample: ["replication_user", "replication_grants", "publication"]
provider:
  description: The provider the fixes are written for (the fingerprint unless O(provider) names one).
  returned: always
  type: str
  sample: neon
server:
  description:
    - Server facts. C(pending_restart) names the settings changed (with C(ALTER SYSTEM) or in the configuration
      files, then reloaded) that wait for a restart.
  returned: always
  type: dict
  sample: {"version": "16.4", "version_num": 160004, "major": 16, "in_recovery": false, "database": "app", "ssl": true, "superuser": false,
           "detected_provider": "neon", "wal_bytes_per_day": 1073741824, "recommended_max_slot_wal_keep_size": "100GB",
           "pending_restart": []}
manual_steps:
  description: Every manual step of the findings that are not ok, then the provider's standing notices.
  returned: always
  type: list
  elements: dict
  sample: [{"id": "wal_level", "status": "error", "provider": "planetscale", "what": "Set wal_level to logical.",
            "where": "PlanetScale console: your database > Cluster configuration > Parameters > Write-ahead log",
            "current": "replica", "target": "logical", "restart": true, "caution": "Changing wal_level restarts the cluster."}]
publication:
  description:
    - The publication as it is, without its table list (C(table_count) counts it); C(exists) is false when it is missing.
  returned: always
  type: dict
  sample: {"exists": true, "name": "clickpipes_publication", "owner": "admin", "all_tables": false, "schemas": [],
           "operations": ["insert", "update", "delete", "truncate"], "publish_via_partition_root": false, "table_count": 120}
clickpipes_connection:
  description: What to type into ClickPipes.
  returned: always
  type: dict
  sample: {"host": "db.example.com", "port": 5432, "database": "app", "user": "clickpipes_user.abc123", "publication": "clickpipes_publication"}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgcdc.clickpipes.plugins.module_utils.call import finish
from ansible_collections.pgcdc.clickpipes.plugins.module_utils.check_step import argument_spec, run


def main():
    finish(AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True), run)


if __name__ == '__main__':
    main()
