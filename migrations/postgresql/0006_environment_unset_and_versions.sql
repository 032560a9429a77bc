-- chantal catalogue, schema version 6.

-- `env unset` is recorded like a promotion: a history row may set no snapshot (both NULL).
ALTER TABLE environment_history ALTER COLUMN snapshot_name DROP NOT NULL;
ALTER TABLE environment_history ALTER COLUMN version DROP NOT NULL;

-- The version the replaced snapshot had, so that an undo (`--to-previous`,
-- `--to-promotion`) can tell when that name has since been given to other content.
ALTER TABLE environment_history ADD COLUMN previous_version BIGINT;

-- Rows written before this migration: the version the previous change of the same
-- environment and repository set.
UPDATE environment_history SET previous_version = (
    SELECT h2.version FROM environment_history h2
      JOIN promotions p2 ON p2.id = h2.promotion_id
     WHERE h2.repository_id = environment_history.repository_id
       AND h2.promotion_id < environment_history.promotion_id
       AND p2.environment = (SELECT p.environment FROM promotions p
                              WHERE p.id = environment_history.promotion_id)
     ORDER BY h2.promotion_id DESC
     LIMIT 1)
 WHERE previous_name IS NOT NULL;
