# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgcdc.clickpipes contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Connection options shared by every module that connects, and the attributes of the writing modules."""

    DOCUMENTATION = r'''
options:
  login_host:
    description:
      - Host name or IP address of the PostgreSQL server (the admin connection).
      - When empty, libpq's default applies (C(PGHOST) or the local socket).
    type: str
    default: ''
  login_port:
    description:
      - Port of the PostgreSQL server.
      - Use the direct port of the database, not a connection pooler (PlanetScale PSBouncer listens on 6432).
    type: int
    default: 5432
  login_user:
    description:
      - Role to log in as. When empty, libpq's default applies (C(PGUSER) or the operating-system user).
    type: str
    default: ''
  login_password:
    description:
      - Password of O(login_user). Must be a string; anything else is refused rather than converted.
    type: raw
    default: ''
  login_db:
    description:
      - Database to connect to. Publications and grants belong to this database.
      - When empty, libpq's default applies (C(PGDATABASE) or the user name).
    type: str
    default: ''
  ssl_mode:
    description:
      - libpq C(sslmode) of the connection. Managed providers require C(require) or stricter.
    type: str
    default: prefer
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
  ca_cert:
    description:
      - Path of a CA certificate file (libpq C(sslrootcert)) used to verify the server with O(ssl_mode=verify-ca) or O(ssl_mode=verify-full).
    type: path
  connect_timeout:
    description:
      - Seconds to wait for the connection to be established.
    type: int
    default: 10
  connect_params:
    description:
      - Extra libpq connection parameters, for example C(options) with C(endpoint=<id>) for Neon with an old libpq, or C(sslcert).
      - Values are hidden from the output because they may carry credentials.
    type: dict
    default: {}
  lock_timeout:
    description:
      - How long any statement, reads included, may wait for a lock on a table, a role or the publication before the
        task fails (PostgreSQL C(lock_timeout) syntax, for example C(10s) or C(500ms)). Catalog reads wait too, for example
        listing a partitioned table's partitions while a migration holds C(ACCESS EXCLUSIVE) on one of them.
      - A task that fails this way rolls the waiting transaction back and names the sessions holding the lock. Re-run
        it when they have finished.
      - Another run of this collection writing the same role or publication is waited for up to 5 minutes first (an
        advisory lock), so that two pipelines preparing one source both succeed.
    type: str
    default: 10s
  statement_timeout:
    description:
      - How long a statement of a read-only transaction (the checks, and the reads of check mode) may run before the
        task fails (PostgreSQL C(statement_timeout) syntax). Writing statements are bounded by O(lock_timeout) only,
        so a large but progressing C(GRANT) is never cut short.
    type: str
    default: 2min
requirements:
  - psycopg2 >= 2.8 (the C(psycopg2-binary) wheel brings a libpq with SCRAM support)
notes:
  - The module runs where Ansible runs the task (use C(connection=local) or C(delegate_to=localhost)) and reaches the database over the network.
'''

    WRITE = r'''
attributes:
  check_mode:
    support: full
    details: Check mode reads the catalog in a read-only transaction and returns the statements a real run would execute.
  diff_mode:
    support: full
  platform:
    platforms: posix
'''
