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
  - Reports every M(pgcdc.clickpipes.prepare_source) result, a failed one too, with the findings it holds (none when
    it failed before a check, for instance on a refused connection or an invalid option), C(ready=false), its message
    under RV(failure) and what it committed under RV(changes) and RV(modules_run).
  - The file name is the inventory host name percent-encoded as UTF-8 (every byte other than a lower-case letter, a
    digit, C(_), C(-) and a dot that does not start the name becomes C(%xx)), so C(eu/orders) writes
    C(eu%2forders.json), C(Shop) C(%53hop.json), and no two hosts share a file, even on a case-insensitive file system.
    A name longer than a file system takes keeps its first bytes and ends in C(~) and the SHA-256 of the host name.
    Each file is written beside its final name and renamed over it, so nothing is ever written outside O(report_dir),
    not even through a symlink planted there.
  - The files are outputs of the run, so writing them never counts as a change. Check mode writes no file.
  - Skipped when the variable holds no M(pgcdc.clickpipes.prepare_source) result. Fails when the result checked and
    wrote nothing (no phase ran; with the roles, the tags selected none), so such a run never passes.
  - When the result is unreachable (the admin connection failed, and the task let it through with
    C(ignore_unreachable), as the roles do), the report is written and then this task reports the host unreachable.
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
failure:
  description: The message of the failed M(pgcdc.clickpipes.prepare_source) task; null when it did not fail.
  returned: success
  type: str
unreachable:
  description: Whether the admin connection failed (the source could not be examined).
  returned: success
  type: bool
modules_run:
  description: The writing steps the run started; when it failed, the last one is the step that failed.
  returned: success
  type: list
  elements: str
files:
  description: The report files written.
  returned: when O(report_dir) is set, outside check mode
  type: list
  elements: str
'''
