#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgcdc.clickpipes contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: prepare_source
short_description: Make a PostgreSQL database a ClickPipes CDC source in one step, and prove it
version_added: 0.1.0
description:
  - Checks the source as M(pgcdc.clickpipes.source_check) does (the preflight), runs only the writing modules that have
    something to do (M(pgcdc.clickpipes.replication_user), M(pgcdc.clickpipes.replication_grants),
    M(pgcdc.clickpipes.publication), in that order), then checks again (the verify). All of it uses one admin
    connection.
  - Plan, then write. Nothing is written while the preflight finds an error this run cannot fix (the server version,
    a standby, C(wal_level), a connection pooler, tables that do not exist or cannot be published, row-level security
    without C(bypass_rls), a replication user that owns the tables, and so on); the module fails with the fixes,
    and RV(blocked) names them.
  - The writing modules then run in one transaction, so that a refusal or a failure in any of them applies nothing.
    Only a publication that adds more than 1000 tables commits them 1000 per transaction (with the user and the grants
    in the first); a failure after such a commit says what was committed (RV(changes)).
  - In check mode the writing modules plan in a read-only transaction; the findings their statements would fix are
    marked C(fix.planned), do not fail the task, and C(summary.ready) says whether the run would leave the source
    ready.
  - A re-run of a prepared source reads the catalog once and sends no writing statement.
  - The replication user gets its rights the way the preflight's provider (O(provider), or the fingerprint) gives them,
    on Amazon RDS and Aurora by C(GRANT rds_replication), never C(ALTER ROLE ... REPLICATION).
  - This is the engine of the P(pgcdc.clickpipes.source#role) role; use the four modules on their own for other orders.
author: pgcdc.clickpipes contributors (@pgcdc)
options:
  user:
    description:
      - The replication role ClickPipes logs in as.
    type: str
    default: clickpipes_user
  password:
    description:
      - Its password, hashed on this host (SCRAM-SHA-256) before it is sent. Must be a string.
      - When given, the verify also logs in as the user over a replication connection.
    type: raw
  update_password:
    description:
      - V(on_create) sets the password only when the role is created; V(always) also changes it when it no longer works.
    type: str
    choices: [on_create, always]
    default: on_create
  bypass_rls:
    description:
      - V(true) gives the user C(BYPASSRLS), so row-level security cannot hide rows from ClickPipes' initial load;
        V(false) removes it. Unset leaves the attribute as it is.
      - Passed to M(pgcdc.clickpipes.replication_user), which runs when the user is created or a check it manages
        (such as C(row_level_security)) is not ok.
    type: bool
  schemas:
    description:
      - Schemas in scope; with an empty O(tables), all their tables.
    type: list
    elements: str
    default: [public]
  tables:
    description:
      - Tables in scope, as C(schema.table) or C(table) (looked up in O(schemas)).
    type: list
    elements: str
    default: []
  publication:
    description:
      - The publication's name.
    type: str
    default: clickpipes_publication
  publication_mode:
    description:
      - O(pgcdc.clickpipes.publication#module:mode) of the publication.
    type: str
    choices: [tables, schemas, all_tables]
    default: tables
  publication_operations:
    description:
      - O(pgcdc.clickpipes.publication#module:operations) of the publication. Unset, a new publication publishes all
        four and an existing one keeps its own.
    type: list
    elements: str
    choices: [insert, update, delete, truncate]
  publication_exact:
    description:
      - O(pgcdc.clickpipes.publication#module:exact) of the publication.
    type: bool
    default: false
  allow_missing_replica_identity:
    description:
      - Publish tables without a usable replica identity anyway (see M(pgcdc.clickpipes.publication)).
    type: bool
    default: false
  skip_checks:
    description:
      - Check ids not to run; their findings say V(skipped).
    type: list
    elements: str
    default: []
  max_slot_wal_keep_size_target:
    description:
      - The C(max_slot_wal_keep_size) the WAL retention check expects.
    type: str
    default: 100GB
  check_only:
    description:
      - Check, never write. A problem no SQL can fix then fails only per O(fail_on).
    type: bool
    default: false
  phases:
    description:
      - V(preflight) checks before writing; V(prepare) runs the writing modules that have something to do (all three
        without a preflight); V(verify) checks again after them, or checks alone without the other two.
    type: list
    elements: str
    choices: [preflight, prepare, verify]
    default: [preflight, prepare, verify]
  fail_on:
    description:
      - Fail when the final check finds an V(error), a V(warning) or worse, or V(never).
    type: str
    choices: [error, warning, never]
    default: error
extends_documentation_fragment:
  - pgcdc.clickpipes.connection
  - pgcdc.clickpipes.provider
  - pgcdc.clickpipes.connection.write
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The writing modules run in check mode and return the statements they would send.
  diff_mode:
    support: full
    details: One diff per writing module that ran.
  platform:
    platforms: posix
seealso:
  - module: pgcdc.clickpipes.source_check
  - module: pgcdc.clickpipes.source_report
'''

EXAMPLES = r'''
- name: Prepare the public schema for ClickPipes
  pgcdc.clickpipes.prepare_source:
    login_host: db.example.com
    login_user: admin
    login_password: "{{ admin_password }}"
    login_db: app
    password: "{{ clickpipes_password }}"
  register: source

- name: Show what to type into ClickPipes
  ansible.builtin.debug:
    var: source.clickpipes_connection
'''

RETURN = r'''
findings:
  description: The final check's findings, as M(pgcdc.clickpipes.source_check) returns them (the verify's, or the
    preflight's when nothing was written or when a writing module failed). In check mode, C(fix.planned) marks those
    the planned statements fix.
  returned: when a check ran
  type: list
  elements: dict
summary:
  description: The final check's counts per status and whether the source is ready (in check mode, whether it would be
    after the planned statements).
  returned: when a check ran
  type: dict
  sample: {"ok": 30, "warning": 1, "error": 0, "skipped": 2, "ready": true}
provider:
  description: The provider the fixes are written for.
  returned: when a check ran
  type: str
server:
  description: Server facts, as M(pgcdc.clickpipes.source_check) returns them.
  returned: when a check ran
  type: dict
manual_steps:
  description: What is left to do by hand.
  returned: when a check ran
  type: list
  elements: dict
publication:
  description: The publication as the final check read it.
  returned: when a check ran
  type: dict
clickpipes_connection:
  description: What to type into ClickPipes.
  returned: when a check ran
  type: dict
error_ids:
  description: The ids of the final check's errors.
  returned: when a check ran
  type: list
  elements: str
pending_modules:
  description: The writing modules that still have something to do after the run (in check mode, all that would run).
  returned: when a check ran
  type: list
  elements: str
blocked:
  description: The preflight's errors this run cannot fix; nothing was written when this is not empty.
  returned: always
  type: list
  elements: str
  sample: ["wal_level"]
modules_run:
  description: The writing modules this run started, in order.
  returned: always
  type: list
  elements: str
  sample: ["replication_user", "replication_grants", "publication"]
failed_module:
  description: The writing module that failed; nothing was applied unless RV(changes) says otherwise.
  returned: when a writing module failed
  type: str
  sample: publication
changes:
  description: The statements each writing module sent (in check mode, would send), secrets as placeholders. After a
    failure, the statements committed before it (none, unless a publication of more than 1000 new tables had
    committed a batch).
  returned: always
  type: dict
  sample: {"user": ["CREATE ROLE \"clickpipes_user\" WITH LOGIN REPLICATION PASSWORD '********'"], "grants": [],
           "publication": []}
queries:
  description: Every statement of RV(changes), in the order sent.
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgcdc.clickpipes.plugins.module_utils.call import finish
from ansible_collections.pgcdc.clickpipes.plugins.module_utils.prepare_step import argument_spec, run


def main():
    finish(AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True), run)


if __name__ == '__main__':
    main()
