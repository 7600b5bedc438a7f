# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgcdc.clickpipes contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The statements a writing module decided to run: shown in check mode, executed otherwise."""

from __future__ import annotations

import collections

from ansible_collections.pgcdc.clickpipes.plugins.module_utils.connection import (
    LOCK_NOT_AVAILABLE,
    ClickPipesError,
    describe_blockers,
    oid_array,
    sql_error_message,
)

INSUFFICIENT_PRIVILEGE = '42501'

# Sessions holding a lock on the relations a statement touched, strongest first.
BLOCKERS = """
SELECT l.pid, l.relation::regclass::text AS relation, l.mode, 'holds' AS verb, a.usename AS user_name, a.application_name,
       a.state, date_trunc('second', now() - a.xact_start)::text AS held_for
  FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE l.granted AND l.relation = ANY(%(oids)s::oid[]) AND l.pid <> pg_backend_pid()
   AND l.mode IN ('AccessExclusiveLock', 'ExclusiveLock', 'ShareRowExclusiveLock', 'ShareLock', 'ShareUpdateExclusiveLock')
 ORDER BY l.mode = 'AccessExclusiveLock' DESC, a.xact_start
 LIMIT %(limit)s
"""

Step = collections.namedtuple('Step', 'statement doing display privilege_hint relations')
COMMIT = object()


class Plan:
    """An ordered list of composed statements, each with what it does (for error messages).

    A statement that carries a secret is given a ``display`` text with a placeholder, which is
    what ``queries`` reports; the secret itself is only ever sent to the server. ``relations``
    (oids) name the tables a statement locks, so a lock timeout can say who holds them.
    """

    def __init__(self):
        self._steps = []
        self._texts = {}

    def add(self, statement, doing, display=None, privilege_hint=None, relations=()):
        self._steps.append(Step(statement, doing, display, privilege_hint, list(relations)))

    def commit_point(self):
        """Commit what came before and go on in a new transaction (only where one would lock too many tables)."""
        if self._steps:
            self._steps.append(COMMIT)

    def statements(self):
        return [step for step in self._steps if step is not COMMIT]

    def __bool__(self):
        return bool(self.statements())

    def __len__(self):
        return len(self.statements())

    def text(self, step, conn):
        """The statement as sent, composed once (over tens of thousands of names that takes tens of milliseconds)."""
        if id(step) not in self._texts:
            self._texts[id(step)] = step.statement.as_string(conn)
        return self._texts[id(step)]

    def queries(self, conn):
        return [step.display if step.display is not None else self.text(step, conn) for step in self.statements()]

    def apply(self, cursor, begin_again=None):
        """Execute in order; at a commit point, commit and let ``begin_again(cursor)`` open the next transaction.

        A failure says whether, and which of, this plan's statements were committed before it (``committed``,
        ``committed_queries``)."""
        committed, pending = [], []
        for step in self._steps:
            try:
                if step is COMMIT:
                    cursor.connection.commit()
                    committed.extend(pending)
                    pending = []
                    begin_again(cursor)
                    continue
                cursor.execute(self.text(step, cursor.connection))
            except Exception as exc:  # pylint: disable=broad-except
                failed = step if step is not COMMIT else Step(None, 'committing a batch', None, None, [])
                error = ClickPipesError(failure_message(cursor, failed, exc, bool(committed)))
                error.committed = bool(committed)
                error.committed_queries = [done.display if done.display is not None else self.text(done, cursor.connection)
                                           for done in committed]
                raise error from exc
            pending.append(step)


class Planned:
    """A writing module's decision: its ``plan``, and ``result(cursor)``, which reports it once the plan ran (or, in check
    mode, would have). Planning only reads, so several modules can all plan before the first of them writes."""

    def __init__(self, plan, result, begin_again=None):
        self.plan = plan
        self.result = result
        self.begin_again = begin_again

    def apply(self, cursor):
        self.plan.apply(cursor, self.begin_again)


def converging(planner):
    """The ``converge(call, conn, cursor)`` of a module whose ``planner`` returns a Planned: plan, write, report."""
    def converge(call, conn, cursor):
        planned = planner(call, conn, cursor)
        if not call.check_mode:
            planned.apply(cursor)
        return planned.result(cursor)
    return converge


def failure_message(cursor, step, exc, committed=False):
    code = getattr(exc, 'pgcode', None)
    message = sql_error_message(exc, step.doing)
    if code == INSUFFICIENT_PRIVILEGE and step.privilege_hint:
        message += ' ' + step.privilege_hint
    if code == LOCK_NOT_AVAILABLE and step.relations:
        message += ' ' + describe_blockers(cursor, BLOCKERS, dict(oids=oid_array(step.relations)))
    if committed:
        return message + ' Earlier batches were committed and this one was rolled back: re-run to finish.'
    return message + ' Nothing was applied.'
