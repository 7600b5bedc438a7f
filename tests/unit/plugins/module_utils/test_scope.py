from __future__ import annotations

import pytest

from ansible_collections.pgcdc.clickpipes.plugins.module_utils.connection import ClickPipesError
from ansible_collections.pgcdc.clickpipes.plugins.module_utils.scope import identity_problem, parse_table_name


@pytest.mark.parametrize('text, expected', [
    ('orders', (None, 'orders')),
    ('sales.orders', ('sales', 'orders')),
    ('Sales Dept.Order Items', ('Sales Dept', 'Order Items')),
    ('"dotted.schema"."dotted.table"', ('dotted.schema', 'dotted.table')),
    ('"a""b"', (None, 'a"b')),
    ('public."x"', ('public', 'x')),
    ("robert'); DROP TABLE x;--", (None, "robert'); DROP TABLE x;--")),
    ('ünïcode.täble', ('ünïcode', 'täble')),
])
def test_parse_table_name(text, expected):
    assert parse_table_name(text) == expected


@pytest.mark.parametrize('text, message', [
    ('a.b.c', 'more than one dot'),
    ('', 'empty table name'),
    ('.orders', 'empty schema name'),
    ('"open', 'unclosed double quote'),
    ('"a"b', 'after a closing double quote'),
    ('x' * 64, '63-byte limit'),
    ('ü' * 32, '63-byte limit'),
    ('nul\x00byte', 'NUL'),
])
def test_parse_table_name_rejects(text, message):
    with pytest.raises(ClickPipesError, match=message):
        parse_table_name(text)


def table(identity='d', has_primary_key=False, has_identity_index=False):
    return dict(identity=identity, has_primary_key=has_primary_key, has_identity_index=has_identity_index)


@pytest.mark.parametrize('facts, problem', [
    (table('d', has_primary_key=True), None),
    (table('f'), None),
    (table('i', has_identity_index=True), None),
    (table('d'), 'no primary key (REPLICA IDENTITY DEFAULT)'),
    (table('n', has_primary_key=True), 'REPLICA IDENTITY NOTHING'),
    (table('i'), 'REPLICA IDENTITY USING INDEX without a usable index'),
])
def test_identity_problem(facts, problem):
    assert identity_problem(facts) == problem
