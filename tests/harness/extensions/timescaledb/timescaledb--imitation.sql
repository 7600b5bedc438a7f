-- TimescaleDB's shapes, imitated with stock PostgreSQL (see timescaledb.control).
\echo Use "CREATE EXTENSION timescaledb" to load this file. \quit

CREATE SCHEMA _timescaledb_catalog;
CREATE SCHEMA _timescaledb_internal;
GRANT USAGE ON SCHEMA _timescaledb_catalog, _timescaledb_internal TO PUBLIC;

-- The columns of TimescaleDB's own catalog that the collection reads.
CREATE TABLE _timescaledb_catalog.hypertable (
    id serial PRIMARY KEY,
    schema_name name NOT NULL,
    table_name name NOT NULL,
    associated_schema_name name NOT NULL,
    associated_table_prefix name NOT NULL,
    time_column name NOT NULL,
    UNIQUE (schema_name, table_name)
);
CREATE TABLE _timescaledb_catalog.chunk (
    id serial PRIMARY KEY,
    hypertable_id int NOT NULL REFERENCES _timescaledb_catalog.hypertable (id),
    schema_name name NOT NULL,
    table_name name NOT NULL,
    range_start timestamptz NOT NULL,
    UNIQUE (hypertable_id, range_start)
);
GRANT SELECT ON ALL TABLES IN SCHEMA _timescaledb_catalog TO PUBLIC;

-- The privileges of the hypertable that its chunk lacks, granted on the chunk (TimescaleDB propagates grants so).
CREATE FUNCTION _timescaledb_internal.copy_grants(parent regclass, chunk regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE
    missing record;
BEGIN
    FOR missing IN SELECT a.grantee, a.privilege_type FROM pg_class p, aclexplode(p.relacl) a WHERE p.oid = parent
                   EXCEPT SELECT a.grantee, a.privilege_type FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = chunk LOOP
        EXECUTE format('GRANT %s ON %s TO %s', missing.privilege_type, chunk,
                       CASE WHEN missing.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(missing.grantee)) END);
    END LOOP;
END
$$;

-- GRANT on a hypertable reaches its chunks (the GRANTs this sends end the recursion: nothing is missing then).
CREATE FUNCTION _timescaledb_internal.propagate_grants() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    pair record;
BEGIN
    FOR pair IN SELECT format('%I.%I', h.schema_name, h.table_name)::regclass AS parent,
                       format('%I.%I', c.schema_name, c.table_name)::regclass AS chunk
                  FROM _timescaledb_catalog.chunk c JOIN _timescaledb_catalog.hypertable h ON h.id = c.hypertable_id LOOP
        PERFORM _timescaledb_internal.copy_grants(pair.parent, pair.chunk);
    END LOOP;
END
$$;
CREATE EVENT TRIGGER ts_propagate_grants ON ddl_command_end WHEN TAG IN ('GRANT')
    EXECUTE FUNCTION _timescaledb_internal.propagate_grants();

-- A row goes to the chunk of its day, created on first use: a table in _timescaledb_internal that inherits from the
-- hypertable, with its indexes and constraints (so its primary key), owner and privileges, as TimescaleDB makes them.
CREATE FUNCTION _timescaledb_internal.chunk_dispatch() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    ht _timescaledb_catalog.hypertable;
    day timestamptz;
    chunk_name name;
BEGIN
    SELECT * INTO ht FROM _timescaledb_catalog.hypertable WHERE schema_name = TG_TABLE_SCHEMA AND table_name = TG_TABLE_NAME;
    EXECUTE format('SELECT date_trunc(''day'', ($1).%I::timestamptz)', ht.time_column) INTO day USING NEW;
    SELECT c.table_name INTO chunk_name FROM _timescaledb_catalog.chunk c WHERE c.hypertable_id = ht.id AND c.range_start = day;
    IF chunk_name IS NULL THEN
        chunk_name := format('%s_%s_%s_chunk', ht.associated_table_prefix, ht.id,
                             (SELECT count(*) + 1 FROM _timescaledb_catalog.chunk c WHERE c.hypertable_id = ht.id));
        EXECUTE format('CREATE TABLE %I.%I (LIKE %I.%I INCLUDING ALL, CHECK (%I >= %L AND %I < %L)) INHERITS (%I.%I)',
                       ht.associated_schema_name, chunk_name, ht.schema_name, ht.table_name,
                       ht.time_column, day, ht.time_column, day + interval '1 day', ht.schema_name, ht.table_name);
        EXECUTE format('ALTER TABLE %I.%I OWNER TO %I', ht.associated_schema_name, chunk_name,
                       (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = TG_RELID));
        PERFORM _timescaledb_internal.copy_grants(TG_RELID, format('%I.%I', ht.associated_schema_name, chunk_name)::regclass);
        INSERT INTO _timescaledb_catalog.chunk (hypertable_id, schema_name, table_name, range_start)
        VALUES (ht.id, ht.associated_schema_name, chunk_name, day);
    END IF;
    EXECUTE format('INSERT INTO %I.%I SELECT ($1).*', ht.associated_schema_name, chunk_name) USING NEW;
    RETURN NULL;
END
$$;

-- create_hypertable(relation, time_column_name): from now on the table's rows live in chunks.
CREATE FUNCTION @extschema@.create_hypertable(relation regclass, time_column_name name) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    INSERT INTO _timescaledb_catalog.hypertable (schema_name, table_name, associated_schema_name, associated_table_prefix, time_column)
    SELECT n.nspname, c.relname, '_timescaledb_internal', '_hyper', time_column_name
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = relation;
    EXECUTE format('CREATE TRIGGER ts_insert_blocker BEFORE INSERT ON %s FOR EACH ROW EXECUTE FUNCTION '
                   '_timescaledb_internal.chunk_dispatch()', relation);
END
$$;
