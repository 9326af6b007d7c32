//! The run store's tables: their DuckDB schema and its PostgreSQL form, the migrations from
//! older versions, and the column lists that copies between stores name.

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id BIGINT PRIMARY KEY,
    scene_name VARCHAR NOT NULL,
    scene_path VARCHAR NOT NULL,
    scene_toml VARCHAR NOT NULL,
    seed UBIGINT NOT NULL,
    version VARCHAR NOT NULL,
    sim_start VARCHAR NOT NULL,
    step_s DOUBLE NOT NULL,
    duration_s DOUBLE NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    ended_at TIMESTAMPTZ,
    status VARCHAR NOT NULL,
    ticks BIGINT NOT NULL DEFAULT 0,
    state_hash VARCHAR,
    error VARCHAR,
    parent_run BIGINT,
    fork_tick UBIGINT,
    frame_proj VARCHAR
);
CREATE TABLE IF NOT EXISTS features (
    run_id BIGINT NOT NULL, entity UBIGINT NOT NULL, kind VARCHAR NOT NULL,
    layer VARCHAR NOT NULL, feature_id VARCHAR NOT NULL, wkb BLOB NOT NULL,
    min_x DOUBLE, min_y DOUBLE, max_x DOUBLE, max_y DOUBLE, h3 UBIGINT
);
CREATE TABLE IF NOT EXISTS kpis (
    run_id BIGINT NOT NULL, tick UBIGINT NOT NULL, sim_time_s DOUBLE NOT NULL,
    name VARCHAR NOT NULL, scope VARCHAR NOT NULL, value DOUBLE, unit VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshots (
    run_id BIGINT NOT NULL, tick UBIGINT NOT NULL, sim_time_s DOUBLE NOT NULL, entity UBIGINT NOT NULL,
    x_m DOUBLE NOT NULL, y_m DOUBLE NOT NULL, z_m DOUBLE NOT NULL, speed_mps DOUBLE, h3 UBIGINT
);
CREATE TABLE IF NOT EXISTS events (
    run_id BIGINT NOT NULL, tick UBIGINT NOT NULL, sim_time_s DOUBLE NOT NULL, kind VARCHAR NOT NULL,
    entity UBIGINT, x_m DOUBLE, y_m DOUBLE, h3 UBIGINT, message VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS fields (
    run_id BIGINT NOT NULL, tick UBIGINT NOT NULL, sim_time_s DOUBLE NOT NULL, name VARCHAR NOT NULL,
    h3 UBIGINT NOT NULL, value DOUBLE NOT NULL, unit VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS readings (
    run_id BIGINT NOT NULL, seq UBIGINT NOT NULL, feed UINTEGER NOT NULL, channel VARCHAR NOT NULL,
    origin VARCHAR NOT NULL, arrival_s DOUBLE, payload VARCHAR NOT NULL, status VARCHAR NOT NULL,
    detail VARCHAR, station VARCHAR, quantity VARCHAR, time_s DOUBLE, value DOUBLE, unit VARCHAR
);
CREATE TABLE IF NOT EXISTS checkpoints (
    run_id BIGINT NOT NULL, tick UBIGINT NOT NULL, sim_time_s DOUBLE NOT NULL,
    state_hash VARCHAR NOT NULL, image BLOB NOT NULL
);
";

/// The schema in PostgreSQL's words: no unsigned integers (a `u64` keeps its bits in a
/// `BIGINT`, see `db.rs`), `BYTEA` for bytes, `FLOAT8` for doubles, byte-order text; and the
/// indexes DuckDB does
/// without (its zone maps skip other runs' rows), so one shared store stays quick with many
/// runs in it.
pub(super) fn postgres_schema() -> String {
    SCHEMA
        .replace("UBIGINT", "BIGINT")
        .replace("UINTEGER", "BIGINT")
        .replace("BLOB", "BYTEA")
        .replace("DOUBLE", "FLOAT8")
        // Text sorts by its bytes, as in DuckDB, whatever the database's locale.
        .replace("VARCHAR", "TEXT COLLATE \"C\"")
        + "
CREATE INDEX IF NOT EXISTS features_run ON features (run_id, entity);
CREATE INDEX IF NOT EXISTS kpis_run ON kpis (run_id, tick);
CREATE INDEX IF NOT EXISTS snapshots_run ON snapshots (run_id, tick);
CREATE INDEX IF NOT EXISTS events_run ON events (run_id, tick);
CREATE INDEX IF NOT EXISTS fields_run ON fields (run_id, name, tick);
CREATE INDEX IF NOT EXISTS readings_run ON readings (run_id, seq);
CREATE INDEX IF NOT EXISTS checkpoints_run ON checkpoints (run_id, tick);
-- Where PostGIS is installed, the model of every run in WGS84 for GIS tools (QGIS and the
-- like), placed through the run's own frame by PROJ.
DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'postgis') THEN
        CREATE OR REPLACE VIEW features_wgs84 AS
            SELECT f.run_id, f.entity, f.kind, f.layer, f.feature_id, f.h3,
                   ST_Transform(ST_GeomFromWKB(f.wkb), r.frame_proj, 4326) AS geom
            FROM features f JOIN runs r ON r.run_id = f.run_id
            WHERE r.frame_proj <> '' AND octet_length(f.wkb) > 0;
    END IF;
END $$;
"
}

/// Version 1 stores lacked the fork columns and the checkpoints table (which `SCHEMA` creates).
pub(super) const MIGRATE_FROM_1: &str = "
ALTER TABLE runs ADD COLUMN IF NOT EXISTS parent_run BIGINT;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS fork_tick UBIGINT;
UPDATE meta SET value = '2' WHERE key = 'schema_version';
";

/// Version 2 stores lacked the readings table (which `SCHEMA` creates).
pub(super) const MIGRATE_FROM_2: &str = "UPDATE meta SET value = '3' WHERE key = 'schema_version';";

/// Version 3 stores lacked the runs' frame.
pub(super) const MIGRATE_FROM_3: &str = "
ALTER TABLE runs ADD COLUMN IF NOT EXISTS frame_proj VARCHAR;
UPDATE meta SET value = '4' WHERE key = 'schema_version';
";

/// The tables a run owns rows in, for export (checkpoints are the engine's own, and binary).
pub const RUN_TABLES: [&str; 7] = [
    "runs",
    "features",
    "kpis",
    "snapshots",
    "events",
    "fields",
    "readings",
];

/// Every table's columns in table order, `run_id` first: what copies between stores and
/// forks name, since the two databases share no `* EXCLUDE`.
pub(super) const COLUMNS: [(&str, &[&str]); 8] = [
    (
        "runs",
        &[
            "run_id",
            "scene_name",
            "scene_path",
            "scene_toml",
            "seed",
            "version",
            "sim_start",
            "step_s",
            "duration_s",
            "started_at",
            "ended_at",
            "status",
            "ticks",
            "state_hash",
            "error",
            "parent_run",
            "fork_tick",
            "frame_proj",
        ],
    ),
    (
        "features",
        &[
            "run_id",
            "entity",
            "kind",
            "layer",
            "feature_id",
            "wkb",
            "min_x",
            "min_y",
            "max_x",
            "max_y",
            "h3",
        ],
    ),
    (
        "kpis",
        &[
            "run_id",
            "tick",
            "sim_time_s",
            "name",
            "scope",
            "value",
            "unit",
        ],
    ),
    (
        "snapshots",
        &[
            "run_id",
            "tick",
            "sim_time_s",
            "entity",
            "x_m",
            "y_m",
            "z_m",
            "speed_mps",
            "h3",
        ],
    ),
    (
        "events",
        &[
            "run_id",
            "tick",
            "sim_time_s",
            "kind",
            "entity",
            "x_m",
            "y_m",
            "h3",
            "message",
        ],
    ),
    (
        "fields",
        &[
            "run_id",
            "tick",
            "sim_time_s",
            "name",
            "h3",
            "value",
            "unit",
        ],
    ),
    (
        "readings",
        &[
            "run_id",
            "seq",
            "feed",
            "channel",
            "origin",
            "arrival_s",
            "payload",
            "status",
            "detail",
            "station",
            "quantity",
            "time_s",
            "value",
            "unit",
        ],
    ),
    (
        "checkpoints",
        &["run_id", "tick", "sim_time_s", "state_hash", "image"],
    ),
];

/// The columns of `table` (one of [`COLUMNS`]).
pub(super) fn columns(table: &str) -> &'static [&'static str] {
    COLUMNS
        .iter()
        .find(|(t, _)| *t == table)
        .map(|(_, c)| *c)
        .unwrap_or_else(|| panic!("{table} is not a run-store table"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The column lists are the schema's, table for table and in order (the appender and the
    /// binary COPY depend on it), and every table is listed.
    #[test]
    fn column_lists_match_the_schema() {
        let db = duckdb::Connection::open_in_memory().unwrap();
        db.execute_batch(SCHEMA).unwrap();
        let mut tables: Vec<String> = db
            .prepare("SELECT table_name FROM duckdb_tables() WHERE table_name <> 'meta' ORDER BY 1")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mut listed: Vec<String> = COLUMNS.iter().map(|(t, _)| t.to_string()).collect();
        tables.sort();
        listed.sort();
        assert_eq!(tables, listed);
        for (t, cols) in COLUMNS {
            let found: Vec<String> = db
                .prepare(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
                )
                .unwrap()
                .query_map([t], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert_eq!(found, cols, "{t}");
        }
        assert!(
            RUN_TABLES
                .iter()
                .all(|t| COLUMNS.iter().any(|(c, _)| c == t))
        );
        // The PostgreSQL form keeps the columns and drops every type PostgreSQL lacks.
        let pg = postgres_schema();
        for missing in ["UBIGINT", "UINTEGER", "BLOB", "DOUBLE"] {
            assert!(!pg.contains(missing), "{missing}");
        }
    }
}
