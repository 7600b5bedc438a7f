#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgcdc.clickpipes contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: publication
short_description: Create the PostgreSQL publication a ClickPipe reads, without ever breaking the application's writes
version_added: 0.1.0
description:
  - Creates or extends a publication for the tables in scope. By default it lists the tables explicitly
    (C(FOR TABLE)), which a non-superuser admin that owns the tables may do on every provider.
  - An empty O(tables) means every table of O(schemas), found at run time, so a re-run adds tables created since.
  - Adds what is missing and never removes a table or schema unless O(exact=true). A C(FOR ALL TABLES)
    publication is never narrowed, and a publication is never dropped and recreated, without O(exact=true).
  - Refuses to publish C(UPDATE)/C(DELETE) for a table without a primary key or usable replica identity, because
    PostgreSQL would then reject the application's C(UPDATE) and C(DELETE) on it. The error names every such table.
  - Runs in one transaction, except that more than 1000 new tables are added 1000 per transaction, because one statement
    over tens of thousands of tables would exhaust PostgreSQL's lock table (C(out of shared memory)). Each batch is
    atomic, and a re-run finishes what an interrupted run left.
  - A new publication gets C(publish_via_partition_root) on PostgreSQL 13 and later when a table in scope is partitioned,
    unless told otherwise. On PostgreSQL 12, which cannot publish a partitioned table, its leaf partitions are listed
    instead.
  - An existing publication keeps its options (operations, C(publish_via_partition_root)) unless O(operations) or
    O(publish_via_partition_root) is set, since they decide what a running ClickPipe receives. The diff shows any
    change.
  - An existing C(FOR ALL TABLES) publication already covers any scope and is kept (with a warning) unless O(exact)
    is set.
  - UNLOGGED tables of a schema scope are left out (PostgreSQL cannot publish them); an UNLOGGED table named in
    O(tables) is refused before anything is written.
  - TimescaleDB hypertables keep their rows in chunk tables of another schema (C(_timescaledb_internal)), made as data
    arrives. On PostgreSQL 15 and later, when a hypertable is in scope (and O(mode) is not V(all_tables)), the
    publication also publishes its chunk schema as a whole (C(FOR TABLE ..., TABLES IN SCHEMA _timescaledb_internal)),
    so chunks made later are published too. That needs a superuser in stock PostgreSQL; another admin is refused before
    anything is written. Before PostgreSQL 15 only V(all_tables) covers chunks made later (source_check's
    C(hypertable_chunks) says so).
author: pgcdc.clickpipes contributors (@pgcdc)
options:
  name:
    description:
      - Name of the publication.
    type: str
    required: true
  mode:
    description:
      - V(tables) lists the tables of the scope explicitly.
      - V(schemas) publishes whole schemas with C(FOR TABLES IN SCHEMA) (PostgreSQL 15 and later; needs a superuser
        in stock PostgreSQL). Tables created later in those schemas are published automatically, with the
        publication's operations. Once a table without a primary key (or another replica identity) is created there,
        PostgreSQL rejects the application's C(UPDATE) and C(DELETE) on it. The module warns about this on every run,
        and refuses to create or extend the publication while such a table exists.
      - V(all_tables) publishes every table of the database (C(FOR ALL TABLES); needs a superuser in stock PostgreSQL;
        costs extra WAL decoding and is discouraged by ClickHouse).
    type: str
    choices: [tables, schemas, all_tables]
    default: tables
  schemas:
    description:
      - Schemas in scope. With O(mode=tables) and an empty O(tables), all their tables (partitions and extension tables
        excluded); with O(mode=schemas), the schemas published.
    type: list
    elements: str
    default: [public]
  tables:
    description:
      - Tables to publish with O(mode=tables), as C(schema.table) or C(table) (looked up in O(schemas)). Names are
        matched exactly (case-sensitive); a part that contains a dot is written in double quotes.
    type: list
    elements: str
    default: []
  operations:
    description:
      - Operations published. ClickPipes needs V(insert) and V(update); leaving out V(delete) keeps deleted rows in ClickHouse.
      - When unset, a new publication publishes all four and an existing one keeps its own.
    type: list
    elements: str
    choices: [insert, update, delete, truncate]
  publish_via_partition_root:
    description:
      - Publish changes of partitions as changes of their partitioned table (PostgreSQL 13 and later).
      - When unset, a new publication gets it if a table in scope is partitioned; an existing one keeps its own.
    type: bool
  exact:
    description:
      - Make the publication exactly the scope, removing tables and schemas that are not in it, and drop and recreate
        it when its kind must change (for example from C(FOR ALL TABLES) to a table list). The drop and create happen
        in one transaction.
    type: bool
    default: false
  allow_missing_replica_identity:
    description:
      - Publish tables without a usable replica identity anyway. PostgreSQL will then reject C(UPDATE) and C(DELETE)
        on them; only for tables the application never updates or deletes.
    type: bool
    default: false
  state:
    description:
      - V(present) creates or extends the publication; V(absent) drops it.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - pgcdc.clickpipes.connection
  - pgcdc.clickpipes.connection.write
  - ansible.builtin.action_common_attributes
seealso:
  - name: CREATE PUBLICATION
    description: Who may create which kind of publication.
    link: https://www.postgresql.org/docs/current/sql-createpublication.html
  - module: pgcdc.clickpipes.replication_grants
  - module: pgcdc.clickpipes.source_check
'''

EXAMPLES = r'''
- name: Publish every table of the public schema (re-run to add new tables)
  pgcdc.clickpipes.publication:
    login_host: db.example.com
    login_user: admin
    login_password: "{{ admin_password }}"
    login_db: app
    name: clickpipes_publication

- name: Publish two tables and ignore deletes
  pgcdc.clickpipes.publication:
    login_host: db.example.com
    login_user: admin
    login_password: "{{ admin_password }}"
    login_db: app
    name: clickpipes_publication
    tables: [public.orders, sales.invoices]
    operations: [insert, update]

- name: Replace a FOR ALL TABLES publication by the table list
  pgcdc.clickpipes.publication:
    login_host: db.example.com
    login_user: postgres
    login_password: "{{ admin_password }}"
    login_db: app
    name: clickpipes_publication
    schemas: [public]
    exact: true
'''

RETURN = r'''
queries:
  description: Statements run (or, in check mode, that would run).
  returned: always
  type: list
  elements: str
  sample: ["CREATE PUBLICATION \"clickpipes_publication\" FOR TABLE \"public\".\"orders\" WITH (publish = 'insert, update, delete, truncate')"]
publication:
  description: State of the publication after the run (predicted in check mode).
  returned: always
  type: dict
  sample: {"exists": true, "name": "clickpipes_publication", "owner": "admin", "all_tables": false, "schemas": [],
           "tables": ["public.orders"], "operations": ["insert", "update", "delete", "truncate"], "publish_via_partition_root": false}
diff:
  description: The publication's state before and after, in diff mode.
  returned: when diff mode is on
  type: dict
  contains:
    before:
      description: State before the run.
      type: dict
    after:
      description: State after the run.
      type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgcdc.clickpipes.plugins.module_utils.call import finish
from ansible_collections.pgcdc.clickpipes.plugins.module_utils.publication_step import argument_spec, run


def main():
    finish(AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True), run)


if __name__ == '__main__':
    main()
