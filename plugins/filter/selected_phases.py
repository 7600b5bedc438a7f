# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgcdc.clickpipes contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The phases of a run its tags select (docs: selected_phases.yml): one rule for every role of the collection."""

from __future__ import annotations

PHASES = ('preflight', 'prepare', 'verify', 'report')
# Selecting a phase selects these too: prepare_source needs the preflight's reading to plan its writes.
NEEDS = dict(preflight=('preflight', 'prepare'))


def selected_phases(run_tags, skip_tags=()):
    """The phases to run, in order. Tags that name none of the phases (no tags, or the user's own tag on an
    include_role, which does not reach the role's tasks) select them all; otherwise a phase runs as Ansible runs a task
    tagged with its name."""
    run_tags, skip_tags = set(run_tags or ('all',)), set(skip_tags or ())
    if not (run_tags | skip_tags) & set(PHASES):
        return list(PHASES)
    return [phase for phase in PHASES
            if run_tags & ({'all', 'tagged'} | set(NEEDS.get(phase, (phase,))))
            and not skip_tags & {'all', 'tagged', phase}]


class FilterModule:
    def filters(self):
        return dict(selected_phases=selected_phases)
