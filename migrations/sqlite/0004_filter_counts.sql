-- chantal catalogue, schema version 4, SQLite dialect (see ../postgresql/ for the comments).

ALTER TABLE sync_history ADD COLUMN excluded INTEGER NOT NULL DEFAULT 0;
