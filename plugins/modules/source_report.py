#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgcdc.clickpipes contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: source_report
short_description: Report on a prepared ClickPipes source, as JSON and Markdown files and as a custom stat
version_added: 0.1.0
description:
  - Builds the report of one source from a M(pgcdc.clickpipes.prepare_source) result, writes C(<host>.json) and
    C(<host>.md) on the controller when O(report_dir) is set, and publishes its summary under the custom stat
    C(clickpipes) (aggregated over hosts, as M(ansible.builtin.set_stats) with C(per_host=false) does), for AWX and
    C(ANSIBLE_SHOW_CUSTOM_STATS).
  - The files are outputs of the run, so writing them never counts as a change. Check mode writes no file.
  - Skipped when the variable holds no check (the run failed before one, or no check phase ran).
  - An action that runs on the controller; it connects to nothing.
author: pgcdc.clickpipes contributors (@pgcdc)
options:
  result_var:
    description:
      - The name of the variable that holds a registered M(pgcdc.clickpipes.prepare_source) result.
      - The variable is read as it was registered, not templated, which keeps the task cheap for results that hold
        thousands of values.
    type: str
    default: clickpipes_result
  report_dir:
    description:
      - Folder on the controller for the report files (made when missing). Empty writes no file.
    type: path
    default: ''
  settings_changed:
    description:
      - Server settings this run changed, listed in the report's C(changes.settings).
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - module: pgcdc.clickpipes.prepare_source
  - module: ansible.builtin.set_stats
'''

EXAMPLES = r'''
- name: Prepare the source
  pgcdc.clickpipes.prepare_source:
    login_host: db.example.com
    login_user: admin
    login_password: "{{ admin_password }}"
    login_db: app
  register: source

- name: Write reports/<host>.json and .md
  pgcdc.clickpipes.source_report:
    result_var: source
    report_dir: reports
'''

RETURN = r'''
schema_version:
  description: Version of this layout.
  returned: success
  type: int
  sample: 1
host:
  description: The inventory host the report is about.
  returned: success
  type: str
ready:
  description: Whether ClickPipes can replicate from the source now.
  returned: success
  type: bool
blocked:
  description: The errors no SQL can fix that kept the run from writing.
  returned: success
  type: list
  elements: str
summary:
  description: Counts per status.
  returned: success
  type: dict
connection:
  description: What to type into ClickPipes.
  returned: success
  type: dict
notices:
  description: What is left to do by hand.
  returned: success
  type: list
  elements: dict
findings:
  description: The final check's findings.
  returned: success
  type: list
  elements: dict
server:
  description: Server facts.
  returned: success
  type: dict
restart_pending:
  description: Settings that wait for a restart of the server.
  returned: success
  type: list
  elements: str
changes:
  description: The statements this run sent, per writing step (C(user), C(grants), C(publication)), and the settings it changed.
  returned: success
  type: dict
files:
  description: The report files written.
  returned: when O(report_dir) is set, outside check mode
  type: list
  elements: str
'''
