-- The inbox file: every signed delivery, byte for byte, in arrival order. Nothing else
-- writes to this file, so the inbox never waits for the pipeline's write lock.
CREATE TABLE deliveries (
    id           INTEGER PRIMARY KEY,
    received_at  INTEGER NOT NULL,           -- unix milliseconds
    object       TEXT    NOT NULL,           -- the envelope's `object`
    entries      INTEGER NOT NULL,           -- length of the envelope's `entry`
    bytes        INTEGER NOT NULL,
    secret_index INTEGER NOT NULL,           -- position of the app secret that verified it
    body         BLOB    NOT NULL
);

-- Counters that must survive restarts; the pipeline keeps its own in the domain file.
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO counters (name, value) VALUES ('received', 0), ('rejected', 0);
