-- The inbox: every signed delivery, byte for byte, in arrival order.
CREATE TABLE deliveries (
    id           BIGSERIAL PRIMARY KEY,
    received_at  BIGINT  NOT NULL,           -- unix milliseconds
    object       TEXT    NOT NULL,
    entries      BIGINT  NOT NULL,
    bytes        BIGINT  NOT NULL,
    secret_index BIGINT  NOT NULL,
    body         BYTEA   NOT NULL,
    split_at     BIGINT,                     -- set once the pipeline has split it
    lease_owner  TEXT,                       -- the instance splitting it now
    lease_until  BIGINT,                     -- when another instance may take it over
    spool_id     TEXT UNIQUE                 -- set when it came through a local spool
);

CREATE INDEX deliveries_unsplit ON deliveries (id) WHERE split_at IS NULL;

-- Counters shared by every instance: one row per counter and instance, summed when read, so
-- that instances never wait on each other's counter rows.
CREATE TABLE counters (
    name  TEXT   NOT NULL,
    owner TEXT   NOT NULL,
    value BIGINT NOT NULL,
    PRIMARY KEY (name, owner)
);
