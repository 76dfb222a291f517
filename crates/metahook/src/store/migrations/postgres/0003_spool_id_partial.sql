-- `spool_id` is set only on deliveries that came through a local spool. A unique constraint on
-- the column indexed the NULL of every other delivery too: one more index entry and log record
-- per delivery for nothing. Only the rows that have one are indexed now; the spool's drain
-- names the same condition in its ON CONFLICT clause.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_spool_id_key;
CREATE UNIQUE INDEX deliveries_spool_id ON deliveries (spool_id) WHERE spool_id IS NOT NULL;
