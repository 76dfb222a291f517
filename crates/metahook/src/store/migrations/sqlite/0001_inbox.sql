-- The inbox: every signed delivery, byte for byte, in arrival order.
CREATE TABLE deliveries (
    id           INTEGER PRIMARY KEY,
    received_at  INTEGER NOT NULL,           -- unix milliseconds
    object       TEXT    NOT NULL,           -- the envelope's `object`
    entries      INTEGER NOT NULL,           -- length of the envelope's `entry`
    bytes        INTEGER NOT NULL,
    secret_index INTEGER NOT NULL,           -- position of the app secret that verified it
    body         BLOB    NOT NULL,
    split_at     INTEGER                     -- set once the pipeline has split it into events
);

CREATE INDEX deliveries_unsplit ON deliveries (id) WHERE split_at IS NULL;

-- Counters that must survive restarts and be shared by every process using this store.
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO counters (name, value) VALUES ('received', 0), ('rejected', 0), ('processed', 0), ('errors', 0);
