#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgcdc.clickpipes contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: replication_user
short_description: Create the PostgreSQL role ClickPipes logs in as for CDC
version_added: 0.1.0
description:
  - Makes sure a role with C(LOGIN) and C(REPLICATION) exists, with the password ClickPipes will use.
  - On Amazon RDS and Aurora (O(provider=rds), O(provider=aurora), or V(auto) on such a source) the admin cannot give
    C(REPLICATION), so the role is made a member of C(rds_replication) instead (C(GRANT rds_replication TO <name>)), which
    needs C(ADMIN OPTION) on it (the master user has it through C(rds_superuser)). C(REPLICATION) is then left as it is.
  - The password is hashed on the client (SCRAM-SHA-256) before it is sent, so the plaintext never reaches the server,
    its logs or C(pg_stat_statements).
  - The role's state is read from C(pg_roles), never C(pg_authid), so the module works with the non-superuser admin
    of a managed provider. To tell whether a password is already right (O(update_password=always)), it logs in with it.
  - Attributes the module is not asked about are left as they are; nothing is removed unless asked for.
  - Before sending anything, it refuses what PostgreSQL would refuse the admin (C(CREATEROLE); C(REPLICATION) needs a
    superuser up to PostgreSQL 15, an admin that has it from 16). A member of a provider's admin role that the
    provider lets give C(REPLICATION) on every major (Cloud SQL, AlloyDB, Azure) is trusted to.
author: pgcdc.clickpipes contributors (@pgcdc)
options:
  name:
    description:
      - Name of the role, for example C(clickpipes_user).
      - On PlanetScale ClickPipes logs in as C(<name>.<branch_id>); the role itself is named O(name).
    type: str
    required: true
  password:
    description:
      - Password of the role. Hashed with SCRAM-SHA-256 on the client before it is sent.
      - Without it a new role is created with no password (it cannot log in with one until a password is set).
      - Must be a string; anything else is refused rather than converted (quote it in YAML).
    type: raw
  update_password:
    description:
      - V(on_create) sets the password only when the role is created.
      - V(always) also sets it on an existing role, unless logging in with O(password) already works (then nothing changes).
      - While the role's password has expired (C(VALID UNTIL) in the past) no password logs in, so V(always) cannot tell
        whether it is right. The module then fails with the fix (C(ALTER ROLE ... VALID UNTIL 'infinity') or a later
        date) and changes nothing, rather than setting the password again on every run.
    type: str
    choices: [on_create, always]
    default: on_create
  bypass_rls:
    description:
      - V(true) adds C(BYPASSRLS) so row-level security cannot hide rows from the initial load; V(false) removes it.
      - When unset, the attribute is left as it is.
    type: bool
  connection_limit:
    description:
      - C(CONNECTION LIMIT) of the role (V(-1) for no limit). When unset, it is left as it is.
      - Each ClickPipe opens one replication connection plus a few ordinary ones during the initial load.
    type: int
  state:
    description:
      - V(present) creates or updates the role; V(absent) drops it after revoking its privileges in this database.
    type: str
    choices: [present, absent]
    default: present
  force:
    description:
      - With O(state=absent), terminate the role's replication connections instead of refusing to drop a role that is
        streaming to ClickPipes.
    type: bool
    default: false
extends_documentation_fragment:
  - pgcdc.clickpipes.connection
  - pgcdc.clickpipes.connection.write
  - pgcdc.clickpipes.provider
  - ansible.builtin.action_common_attributes
seealso:
  - name: CREATE ROLE
    description: PostgreSQL documentation of role attributes.
    link: https://www.postgresql.org/docs/current/sql-createrole.html
  - module: pgcdc.clickpipes.replication_grants
  - module: pgcdc.clickpipes.source_check
'''

EXAMPLES = r'''
- name: Create the ClickPipes replication user
  pgcdc.clickpipes.replication_user:
    login_host: db.example.com
    login_user: admin
    login_password: "{{ admin_password }}"
    login_db: app
    name: clickpipes_user
    password: "{{ clickpipes_password }}"

- name: Rotate its password (no change reported when it is already right)
  pgcdc.clickpipes.replication_user:
    login_host: db.example.com
    login_user: admin
    login_password: "{{ admin_password }}"
    name: clickpipes_user
    password: "{{ new_clickpipes_password }}"
    update_password: always

- name: Create it on Amazon RDS (GRANT rds_replication instead of REPLICATION)
  pgcdc.clickpipes.replication_user:
    login_host: mydb.abc123xyz.eu-west-1.rds.amazonaws.com
    login_user: postgres
    login_password: "{{ admin_password }}"
    login_db: app
    ssl_mode: require
    name: clickpipes_user
    password: "{{ clickpipes_password }}"
    provider: rds

- name: Drop it once the ClickPipe is gone
  pgcdc.clickpipes.replication_user:
    login_host: db.example.com
    login_user: admin
    login_password: "{{ admin_password }}"
    login_db: app
    name: clickpipes_user
    state: absent
'''

RETURN = r'''
queries:
  description: Statements run (or, in check mode, that would run). Passwords appear as C('********').
  returned: always
  type: list
  elements: str
  sample: ["CREATE ROLE \"clickpipes_user\" WITH LOGIN REPLICATION PASSWORD '********'"]
role:
  description:
    - State of the role after the run (predicted in check mode).
    - On a provider that grants a replication role (RDS, Aurora) it also has C(replication_role), with that role's
      C(name) and whether the role is a C(member).
  returned: always
  type: dict
  sample: {"exists": true, "name": "clickpipes_user", "login": true, "replication": true, "bypass_rls": false,
           "connection_limit": -1, "superuser": false, "create_role": false, "create_db": false, "valid_until": null}
diff:
  description: The role's state before and after, in diff mode.
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
from ansible_collections.pgcdc.clickpipes.plugins.module_utils.role_step import argument_spec, run


def main():
    finish(AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True), run)


if __name__ == '__main__':
    main()
