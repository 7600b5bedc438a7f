# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgcdc.clickpipes contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which tables are replicated: parsing the user's names and resolving them with set-based queries."""

from __future__ import annotations

from ansible_collections.pgcdc.clickpipes.plugins.module_utils.connection import ClickPipesError, fetch_dicts, oid_array

MAX_IDENTIFIER_BYTES = 63

SCOPE_ARGUMENT_SPEC = dict(
    schemas=dict(type='list', elements='str', default=['public']),
    tables=dict(type='list', elements='str', default=[]),
)


def check_identifier(name, what):
    if not name:
        raise ClickPipesError('An empty %s name was given: remove it or write the name.' % what)
    if '\x00' in name:
        raise ClickPipesError('The %s name %r contains a NUL character, which PostgreSQL does not allow.' % (what, name))
    if len(name.encode('utf-8')) > MAX_IDENTIFIER_BYTES:
        raise ClickPipesError('The %s name %r is longer than PostgreSQL\'s 63-byte limit for names.' % (what, name))
    return name


def split_qualified(text):
    """Split ``schema.table`` into parts. A part in double quotes may contain dots ("" is a quote)."""
    parts, current, index, quoted_part = [], [], 0, False
    while index < len(text):
        char = text[index]
        if char == '"' and not current and not quoted_part:
            end = index + 1
            while True:
                end = text.find('"', end)
                if end < 0:
                    raise ClickPipesError('The table name %r has an unclosed double quote.' % text)
                if text[end + 1:end + 2] == '"':
                    end += 2
                    continue
                break
            current.append(text[index + 1:end].replace('""', '"'))
            quoted_part = True
            index = end + 1
            if index < len(text) and text[index] != '.':
                raise ClickPipesError('The table name %r has text after a closing double quote.' % text)
            continue
        if char == '.':
            parts.append(''.join(current))
            current, quoted_part = [], False
        else:
            current.append(char)
        index += 1
    parts.append(''.join(current))
    return parts


def parse_table_name(text):
    """``(schema or None, table)`` for ``table``, ``schema.table`` or their double-quoted forms."""
    parts = split_qualified(text)
    if len(parts) > 2:
        raise ClickPipesError('The table name %r has more than one dot. Write schema.table, and double-quote a part '
                              'that itself contains a dot (ClickPipes cannot replicate such names, though).' % text)
    if len(parts) == 1:
        return None, check_identifier(parts[0], 'table')
    return check_identifier(parts[0], 'schema'), check_identifier(parts[1], 'table')


# An identity index counts only for REPLICA IDENTITY USING INDEX (the other settings unmark every index): tested first,
# the second pass over pg_index is made only when a table uses one.
TABLE_FACTS = """
SELECT c.oid,
       n.nspname AS schema,
       c.relname AS name,
       quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS qualified,
       c.relkind AS kind,
       c.relpersistence AS persistence,
       c.relispartition AS is_partition,
       pg_get_userbyid(c.relowner) AS owner,
       c.relreplident AS identity,
       c.relrowsecurity AS row_security,
       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS has_primary_key,
       c.relreplident = 'i' AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident) AS has_identity_index
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE {where}
"""
BY_OID = 'c.oid = ANY(%(oids)s::oid[])'

EXPLICIT_TABLES = """
SELECT w.ord, w.schema_name, w.table_name,
       array_agg(DISTINCT c.oid) FILTER (WHERE c.relkind IN ('r', 'p')) AS oids,
       array_agg(DISTINCT n.nspname) FILTER (WHERE c.relkind IN ('r', 'p')) AS found_in,
       array_agg(DISTINCT c.relkind::text) FILTER (WHERE c.relkind NOT IN ('r', 'p')) AS other_kinds
  FROM unnest(%(schema_names)s::text[], %(table_names)s::text[]) WITH ORDINALITY AS w(schema_name, table_name, ord)
  LEFT JOIN pg_namespace n
         ON n.nspname = coalesce(w.schema_name, n.nspname)
        AND (w.schema_name IS NOT NULL OR n.nspname = ANY(%(search)s::text[]))
  LEFT JOIN pg_class c
         ON c.relnamespace = n.oid AND c.relname = w.table_name AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
 GROUP BY w.ord, w.schema_name, w.table_name
 ORDER BY w.ord
"""

# The tables a schema scope covers: partitions come with their parent, extension tables are not the application's,
# temporary tables are another session's. Extension members are found from the extension side (an index scan), not by
# scanning all of pg_depend.
IN_SCHEMAS = """n.nspname = ANY(%(schemas)s::text[])
   AND c.relkind IN ('r', 'p')
   AND c.relpersistence <> 't'
   AND NOT c.relispartition
   AND c.oid NOT IN (SELECT d.objid FROM pg_depend d
                      WHERE d.refclassid = 'pg_extension'::regclass AND d.classid = 'pg_class'::regclass AND d.deptype = 'e')"""

MISSING_SCHEMAS = """
SELECT s AS name FROM unnest(%(schemas)s::text[]) AS s
 WHERE NOT EXISTS (SELECT 1 FROM pg_namespace n WHERE n.nspname = s)
"""

PARTITIONS = """
SELECT DISTINCT t.relid::oid AS oid
  FROM unnest(%(oids)s::oid[]) AS root(oid), pg_partition_tree(root.oid) t
 WHERE t.level > 0
"""


PERMANENT = 'p'
NOT_TABLES = dict(v='a view', m='a materialized view', f='a foreign table', S='a sequence')
PERSISTENCE = dict(u='UNLOGGED', t='temporary')


class Scope:
    """The resolved tables (facts per table) and the schemas they live in.

    ``explicit`` when the user named the tables: then tables created later are not in scope. ``left_out`` are the
    UNLOGGED tables of a schema scope, which PostgreSQL cannot publish; ``unpublishable`` those the user named.
    """

    def __init__(self, tables, schemas, missing_schemas=(), missing_tables=(), ambiguous=(), explicit=False):
        self.explicit = explicit
        self.tables = tables if explicit else [table for table in tables if table['persistence'] == PERMANENT]
        self.left_out = [] if explicit else [table for table in tables if table['persistence'] != PERMANENT]
        self.schemas = schemas
        self.missing_schemas = list(missing_schemas)
        self.missing_tables = list(missing_tables)
        self.ambiguous = list(ambiguous)

    @property
    def unpublishable(self):
        return [table for table in self.tables if table['persistence'] != PERMANENT] if self.explicit else []

    @property
    def oids(self):
        return [table['oid'] for table in self.tables]

    def problems(self):
        """Human sentences for names that did not resolve; empty when the scope is sound."""
        messages = []
        if self.missing_schemas:
            messages.append('schemas not found: %s' % ', '.join(self.missing_schemas))
        if self.missing_tables:
            messages.append('tables not found: %s' % ', '.join(self.missing_tables))
        for name, schemas in self.ambiguous:
            messages.append('table %s exists in several schemas (%s): write it as schema.table' % (name, ', '.join(schemas)))
        return messages

    def persistence_problems(self):
        """Tables named explicitly that PostgreSQL cannot publish, as 'name (UNLOGGED)'."""
        return ['%s (%s)' % (table['qualified'], PERSISTENCE[table['persistence']]) for table in self.unpublishable]

    def require_sound(self):
        problems = self.problems()
        if problems:
            raise ClickPipesError('The replication scope does not match the database: %s.' % '; '.join(problems))
        unpublishable = self.persistence_problems()
        if unpublishable:
            raise ClickPipesError('PostgreSQL cannot publish %s: logical replication only sees tables written to the WAL. '
                                  'ALTER TABLE ... SET LOGGED, or leave them out of tables.' % ', '.join(unpublishable))
        if not self.tables and not self.schemas:
            raise ClickPipesError('Nothing to replicate: schemas and tables are both empty. Name the schemas (default: '
                                  'public) or the tables.')
        if not self.tables:
            raise ClickPipesError('No table to replicate was found in schemas %s. Create the tables first, or name them '
                                  'in tables.' % ', '.join(self.schemas))


def table_facts(cursor, oids=None, schemas=None):
    """Facts of the tables with these oids, or in these schemas; by schema and name (sorted here: cheaper than in SQL
    at tens of thousands of tables)."""
    if schemas is not None:
        rows = fetch_dicts(cursor, TABLE_FACTS.format(where=IN_SCHEMAS), dict(schemas=schemas))
    else:
        rows = fetch_dicts(cursor, TABLE_FACTS.format(where=BY_OID), dict(oids=oid_array(oids))) if oids else []
    return sorted(rows, key=lambda row: (row['schema'], row['name']))


def resolve(cursor, schemas, tables):
    """Resolve the user's schemas and table names into a Scope (one query per kind of fact)."""
    schemas = [check_identifier(name, 'schema') for name in schemas]
    missing_schemas = [row['name'] for row in fetch_dicts(cursor, MISSING_SCHEMAS, dict(schemas=schemas))]
    if not tables:
        facts = table_facts(cursor, schemas=schemas)
        return Scope(facts, [name for name in schemas if name not in missing_schemas], missing_schemas)

    parsed = [parse_table_name(text) for text in tables]
    rows = fetch_dicts(cursor, EXPLICIT_TABLES, dict(
        schema_names=[schema for schema, _name in parsed],
        table_names=[name for _schema, name in parsed],
        search=schemas,
    ))
    oids, missing, ambiguous = [], [], []
    for row, text in zip(rows, tables):
        found = row['oids'] or []
        if not found and row['other_kinds']:
            kinds = ' or '.join(NOT_TABLES[kind] for kind in sorted(row['other_kinds']))
            missing.append('%s (%s: ClickPipes replicates tables only)' % (text, kinds))
        elif not found:
            missing.append(text)
        elif len(found) > 1:
            ambiguous.append((text, sorted(row['found_in'])))
        else:
            oids.append(found[0])
    facts = table_facts(cursor, sorted(set(oids)))
    unqualified_missing = any(not row['oids'] and schema is None for row, (schema, _name) in zip(rows, parsed))
    return Scope(facts, sorted(set(table['schema'] for table in facts)),
                 missing_schemas if unqualified_missing else [], missing, ambiguous, explicit=True)


def partitions(cursor, tables):
    """Facts for every partition below the partitioned tables among ``tables``."""
    roots = [table['oid'] for table in tables if table['kind'] == 'p']
    if not roots:
        return []
    oids = [row['oid'] for row in fetch_dicts(cursor, PARTITIONS, dict(oids=oid_array(roots)))]
    return table_facts(cursor, oids)


def identity_problem(table):
    """Why this table has no usable replica identity, or None. For a partitioned table that matters to ClickPipes only:
    PostgreSQL checks the identity of the partition a row is in."""
    identity = table['identity']
    if identity == 'n':
        return 'REPLICA IDENTITY NOTHING'
    if identity == 'd' and not table['has_primary_key']:
        return 'no primary key (REPLICA IDENTITY DEFAULT)'
    if identity == 'i' and not table['has_identity_index']:
        return 'REPLICA IDENTITY USING INDEX without a usable index'
    return None


def readable_relations(cursor, scope):
    """The relations the user must be able to read: the scoped tables and every partition below them, which the initial
    copy reads where the publication lists partitions (PostgreSQL 12, or publish_via_partition_root off). A partition
    holds nothing its partitioned table does not show."""
    relations = list(scope.tables)
    seen = set(table['oid'] for table in relations)
    return relations + [table for table in partitions(cursor, scope.tables) if table['oid'] not in seen]


def published_relations(cursor, scope, server_major):
    """The relations a FOR TABLE publication lists: the scoped tables, with partitioned ones replaced by
    their leaf partitions on PostgreSQL 12 (which cannot publish a partitioned table)."""
    if server_major >= 13:
        return list(scope.tables)
    plain = [table for table in scope.tables if table['kind'] != 'p']
    leaves = [table for table in partitions(cursor, scope.tables) if table['kind'] == 'r']
    seen = set(table['oid'] for table in plain)
    return plain + [table for table in leaves if table['oid'] not in seen]
