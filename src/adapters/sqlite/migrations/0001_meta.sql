-- Facts about this installation that must survive restarts (e.g. key fingerprints).
CREATE TABLE talerbox_meta (
    name TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;
