-- chantal catalogue, schema version 7, SQLite dialect (see ../postgresql/ for the comments).

ALTER TABLE sync_history ADD COLUMN failed INTEGER NOT NULL DEFAULT 0;
