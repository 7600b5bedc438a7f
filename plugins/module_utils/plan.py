# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgcdc.clickpipes contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The statements a writing module decided to run: shown in check mode, executed otherwise."""

from __future__ import annotations

from ansible_collections.pgcdc.clickpipes.plugins.module_utils.connection import (
    ClickPipesError,
    sql_error_message,
)

INSUFFICIENT_PRIVILEGE = '42501'


class Plan:
    """An ordered list of composed statements, each with what it does (for error messages).

    A statement that carries a secret is given a ``display`` text with a placeholder, which is
    what ``queries`` reports; the secret itself is only ever sent to the server.
    """

    def __init__(self):
        self._steps = []

    def add(self, statement, doing, display=None, privilege_hint=None):
        self._steps.append((statement, doing, display, privilege_hint))

    def __bool__(self):
        return bool(self._steps)

    def __len__(self):
        return len(self._steps)

    def queries(self, conn):
        return [step[2] if step[2] is not None else step[0].as_string(conn) for step in self._steps]

    def apply(self, cursor):
        for statement, doing, _display, privilege_hint in self._steps:
            try:
                cursor.execute(statement)
            except Exception as exc:  # pylint: disable=broad-except
                message = sql_error_message(exc, doing)
                if privilege_hint and getattr(exc, 'pgcode', None) == INSUFFICIENT_PRIVILEGE:
                    message += ' ' + privilege_hint
                raise ClickPipesError(message + ' Nothing was applied.') from exc
