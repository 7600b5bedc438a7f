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
from ansible_collections.pgcdc.clickpipes.plugins.module_utils.connection import (
    ClickPipesError,
    current_role,
    run_writing_module,
    server_major,
    write_argument_spec,
)
from ansible_collections.pgcdc.clickpipes.plugins.module_utils import grants, roles, scope as scopes


def summary(schemas, tables, owners):
    return dict(schemas_without_usage=list(schemas), tables_without_select=[table['qualified'] for table in tables],
                owners_without_default_privileges=sorted(owners))


def converge(call, conn, cursor):
    params = call.params
    scopes.check_identifier(params['user'], 'role')
    user_exists = roles.read_role(cursor, params['user']) is not None
    if not user_exists and not call.check_mode:
        raise ClickPipesError('Role %s does not exist. Create it first with pgcdc.clickpipes.replication_user.' % params['user'])
    if not user_exists:
        call.warn('Role %s does not exist yet; check mode assumes an earlier task creates it.' % params['user'])
    scope = scopes.resolve(cursor, params['schemas'], params['tables'])
    scope.require_sound()
    major = server_major(conn)
    relations = scopes.Scope(scopes.published_relations(cursor, scope, major), scope.schemas)
    admin = current_role(cursor)
    state = grants.read_state(cursor, params['user'], user_exists, relations, admin, major, params['default_privileges'])
    schemas, tables, owners = grants.missing(state)
    grants.refuse_what_admin_cannot_grant(tables, state['default_privileges'], admin)
    plan = grants.plan_grants(params['user'], schemas, tables, owners)
    queries = plan.queries(conn)
    if not call.check_mode:
        plan.apply(cursor)
    owners_all = {}
    for pair in state['default_privileges']:
        owners_all.setdefault(pair['owner'], []).append(pair['schema'])
    result = dict(changed=bool(plan), queries=queries, grants=dict(
        schemas=relations.schemas, tables=[table['qualified'] for table in relations.tables],
        default_privileges=[dict(owner=owner, schemas=owners_all[owner]) for owner in sorted(owners_all)]))
    if call.diff:
        result['diff'] = dict(before=summary(schemas, tables, owners), after=summary([], [], {}))
    return result


def argument_spec():
    spec = write_argument_spec()
    spec.update(scopes.SCOPE_ARGUMENT_SPEC)
    spec.update(
        user=dict(type='str', required=True),
        default_privileges=dict(type='bool', default=True),
    )
    return spec


def run(call):
    return run_writing_module(call, 'grants:' + call.params['user'], converge)


def main():
    finish(AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True), run)


if __name__ == '__main__':
    main()
