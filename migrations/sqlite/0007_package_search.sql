-- chantal catalogue, schema version 7, SQLite dialect (see ../postgresql/ for the comments).

ALTER TABLE sync_history ADD COLUMN failed INTEGER NOT NULL DEFAULT 0;

CREATE INDEX packages_lower_name ON packages (lower(name));
