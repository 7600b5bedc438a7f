# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgcdc.clickpipes contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""TimescaleDB hypertables: their rows live in chunk tables of another schema (_timescaledb_internal by default), and
TimescaleDB creates a chunk whenever rows arrive for a new time range. A list of tables cannot follow chunks created
after it was written: only publishing the chunk schema as a whole (FOR TABLES IN SCHEMA, PostgreSQL 15+) or FOR ALL
TABLES does."""

from __future__ import annotations

from ansible_collections.pgcdc.clickpipes.plugins.module_utils.connection import fetch_dicts, fetch_one, oid_array

CATALOG = '_timescaledb_catalog.hypertable'
CATALOG_PRESENT = 'SELECT to_regclass(%(catalog)s) IS NOT NULL AS present'
# TimescaleDB's catalog names each hypertable and the schema its chunks are made in.
HYPERTABLES = """
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS qualified, h.associated_schema_name::text AS chunk_schema
  FROM _timescaledb_catalog.hypertable h
  JOIN pg_namespace n ON n.nspname = h.schema_name
  JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = h.table_name
 WHERE c.oid = ANY(%(oids)s::oid[])
 ORDER BY n.nspname, c.relname
"""
# FOR TABLES IN SCHEMA exists from this major on.
SCHEMA_PUBLICATION_MAJOR = 15


def in_scope(cursor, tables):
    """The hypertables among ``tables`` (dicts with ``oid``), each with its chunk schema; none without TimescaleDB."""
    if not tables or not fetch_one(cursor, CATALOG_PRESENT, dict(catalog=CATALOG))['present']:
        return []
    return fetch_dicts(cursor, HYPERTABLES, dict(oids=oid_array(table['oid'] for table in tables)))


def chunk_schemas(hypertables):
    return sorted(set(hypertable['chunk_schema'] for hypertable in hypertables))


def uncovered_schemas(publication, hypertables):
    """The chunk schemas the publication does not publish as a whole (all of them when it does not exist)."""
    if publication is not None and publication['all_tables']:
        return []
    published = publication['schemas'] if publication is not None else []
    return [schema for schema in chunk_schemas(hypertables) if schema not in published]
