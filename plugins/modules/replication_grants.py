#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgcdc.clickpipes contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: replication_grants
short_description: Let the ClickPipes user read the replicated tables, now and after later migrations
version_added: 0.1.0
description:
  - Grants the replication role C(USAGE) on the schemas in scope and C(SELECT) on the tables in scope, in one
    statement each, only where it is missing.
  - Sets default privileges C(FOR ROLE) each role that owns tables in scope, and for the admin login, so tables those
    roles create later (for example by migrations) are readable too. C(ALTER DEFAULT PRIVILEGES) without C(FOR ROLE)
    would only cover tables created by the admin itself.
  - Checks up front that the admin login can grant every missing privilege and fails, applying nothing, when it cannot.
  - Never revokes anything.
author: pgcdc.clickpipes contributors (@pgcdc)
options:
  user:
    description:
      - The replication role that receives the privileges.
    type: str
    required: true
  schemas:
    description:
      - Schemas to replicate. With an empty O(tables), every table of these schemas (partitions and extension tables
        excluded) is in scope, as found at run time, so a re-run picks up new tables.
      - With O(tables) given, unqualified table names are looked up in these schemas.
    type: list
    elements: str
    default: [public]
  tables:
    description:
      - Tables to replicate, as C(schema.table) or C(table). Names are matched exactly (case-sensitive); a part that
        contains a dot is written in double quotes.
    type: list
    elements: str
    default: []
  default_privileges:
    description:
      - Also set default privileges so tables created later by the owners of the tables in scope (and by the admin) are readable.
    type: bool
    default: true
extends_documentation_fragment:
  - pgcdc.clickpipes.connection
  - pgcdc.clickpipes.connection.write
  - ansible.builtin.action_common_attributes
notes:
  - In check mode a role that does not exist yet (because an earlier task would create it) is treated as having no privileges.
seealso:
  - name: ALTER DEFAULT PRIVILEGES
    description: Default privileges apply only to objects created by the role they are set for.
    link: https://www.postgresql.org/docs/current/sql-alterdefaultprivileges.html
  - module: pgcdc.clickpipes.replication_user
  - module: pgcdc.clickpipes.publication
'''

EXAMPLES = r'''
- name: Let ClickPipes read every table of two schemas
  pgcdc.clickpipes.replication_grants:
    login_host: db.example.com
    login_user: admin
    login_password: "{{ admin_password }}"
    login_db: app
    user: clickpipes_user
    schemas: [public, sales]

- name: Only some tables
  pgcdc.clickpipes.replication_grants:
    login_host: db.example.com
    login_user: admin
    login_password: "{{ admin_password }}"
    login_db: app
    user: clickpipes_user
    tables: [public.orders, sales.invoices]
'''

RETURN = r'''
queries:
  description: Statements run (or, in check mode, that would run).
  returned: always
  type: list
  elements: str
  sample: ["GRANT USAGE ON SCHEMA \"sales\" TO \"clickpipes_user\"", "GRANT SELECT ON TABLE \"sales\".\"orders\" TO \"clickpipes_user\""]
grants:
  description: The scope after the run.
  returned: always
  type: dict
  contains:
    schemas:
      description: Schemas in scope (USAGE granted).
      type: list
      elements: str
    tables:
      description: Tables in scope (SELECT granted), as quoted C(schema.table).
      type: list
      elements: str
    default_privileges:
      description: Roles whose future tables in the scoped schemas are readable, with those schemas.
      type: list
      elements: dict
  sample: {"schemas": ["public"], "tables": ["public.orders"], "default_privileges": [{"owner": "app", "schemas": ["public"]}]}
diff:
  description: What was missing before the run and after it, in diff mode.
  returned: when diff mode is on
  type: dict
  contains:
    before:
      description: Schemas without USAGE, tables without SELECT, and owners without default privileges, before the run.
      type: dict
    after:
      description: The same after the run.
      type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgcdc.clickpipes.plugins.module_utils.call import finish
from ansible_collections.pgcdc.clickpipes.plugins.module_utils.grants_step import argument_spec, run


def main():
    finish(AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True), run)


if __name__ == '__main__':
    main()
