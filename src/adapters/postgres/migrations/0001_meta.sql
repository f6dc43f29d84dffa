-- Facts about this installation that must survive restarts (e.g. key fingerprints).
-- PostgreSQL form of SQLite migration 0001: the same tables and columns (the parity test
-- compares them); INTEGER becomes BIGINT, 0/1 flags BOOLEAN, BLOB BYTEA.
CREATE TABLE talerbox_meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
