-- The domain file: what the pipeline derives from the inbox file's deliveries. Its own file, so
-- that its write lock is not the inbox's; nothing here is the only copy of anything received.

-- How far the pipeline has split deliveries: every delivery with an id up to this one.
CREATE TABLE progress (
    split_through INTEGER NOT NULL
);

INSERT INTO progress (split_through) VALUES (0);

-- Events split from deliveries, once per natural key, and the log of every application.
CREATE TABLE events (
    id              INTEGER PRIMARY KEY,
    delivery_id     INTEGER NOT NULL,        -- deliveries (id) in the inbox file
    platform        TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    key             TEXT    NOT NULL,
    account_id      TEXT,
    user_id         TEXT,
    occurred_at     INTEGER,                 -- unix milliseconds
    test            INTEGER NOT NULL,        -- 1 for Meta dashboard test payloads
    payload         TEXT    NOT NULL,        -- the event's own JSON
    status          TEXT    NOT NULL,        -- pending, processed, error, dead
    attempts        INTEGER NOT NULL DEFAULT 0,
    error           TEXT,
    next_attempt_at INTEGER NOT NULL,        -- unix milliseconds
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (platform, key)
);

CREATE INDEX events_due ON events (next_attempt_at) WHERE status IN ('pending', 'error');
CREATE INDEX events_by_status ON events (status, id);
CREATE INDEX events_by_delivery ON events (delivery_id);

CREATE TABLE event_log (
    id          INTEGER PRIMARY KEY,
    event_id    INTEGER NOT NULL REFERENCES events (id),
    platform    TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    status      TEXT    NOT NULL,            -- processed, error, dead
    duration_ms REAL    NOT NULL,
    error       TEXT,
    at          INTEGER NOT NULL
);

CREATE INDEX event_log_by_event ON event_log (event_id);

-- The pipeline's counters; the inbox file has a table of the same name for its own.
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO counters (name, value)
VALUES ('processed', 0), ('errors', 0), ('duplicates', 0), ('retries', 0), ('events', 0);

-- Domain tables: every one is written by order-insensitive merges (see src/domain). Each has an
-- `id` the admin API pages by, and a unique natural key the merges conflict on.

CREATE TABLE messages (
    id           INTEGER PRIMARY KEY,
    platform     TEXT    NOT NULL,
    mid          TEXT    NOT NULL,
    account_id   TEXT,
    user_id      TEXT,
    direction    TEXT,                       -- in, out
    text         TEXT,
    attachments  TEXT,                       -- JSON
    status_rank  INTEGER NOT NULL DEFAULT 0, -- see domain::MessageStatus
    sent_at      INTEGER,
    updated_at   INTEGER,
    error        TEXT,                       -- JSON of the failure, kept once set
    edit_count   INTEGER NOT NULL DEFAULT 0,
    edit_text    TEXT,
    edit_at      INTEGER,
    deleted      INTEGER NOT NULL DEFAULT 0,
    UNIQUE (platform, mid)
);

CREATE INDEX messages_by_conversation ON messages (platform, account_id, user_id, sent_at);

CREATE TABLE conversations (
    id           INTEGER PRIMARY KEY,
    platform            TEXT NOT NULL,
    account_id          TEXT NOT NULL,
    user_id             TEXT NOT NULL,
    delivered_watermark INTEGER,
    read_watermark      INTEGER,
    last_inbound_at     INTEGER,
    UNIQUE (platform, account_id, user_id)
);

CREATE TABLE reactions (
    id           INTEGER PRIMARY KEY,
    platform   TEXT    NOT NULL,
    mid        TEXT    NOT NULL,
    user_id    TEXT    NOT NULL,
    action     TEXT    NOT NULL,             -- react, unreact
    reaction   TEXT,
    emoji      TEXT,
    at         INTEGER NOT NULL,
    UNIQUE (platform, mid, user_id)
);

CREATE TABLE comments (
    id           INTEGER PRIMARY KEY,
    platform     TEXT NOT NULL,
    comment_id   TEXT NOT NULL,
    account_id   TEXT,
    kind         TEXT NOT NULL,              -- comment, live_comment
    media_id     TEXT,
    media_type   TEXT,
    parent_id    TEXT,
    user_id      TEXT,
    username     TEXT,
    text         TEXT,
    occurred_at  INTEGER,
    UNIQUE (platform, comment_id)
);

CREATE TABLE mentions (
    id           INTEGER PRIMARY KEY,
    platform    TEXT NOT NULL,
    account_id  TEXT NOT NULL,
    media_id    TEXT NOT NULL,
    comment_id  TEXT NOT NULL,               -- empty for a caption mention
    occurred_at INTEGER,
    UNIQUE (platform, account_id, media_id, comment_id)
);

CREATE TABLE story_insights (
    id           INTEGER PRIMARY KEY,
    account_id   TEXT    NOT NULL,
    media_id     TEXT    NOT NULL,
    exits        INTEGER,
    replies      INTEGER,
    reach        INTEGER,
    taps_forward INTEGER,
    taps_back    INTEGER,
    impressions  INTEGER,
    occurred_at  INTEGER NOT NULL,
    UNIQUE (account_id, media_id)
);

CREATE TABLE story_insights_history (
    id           INTEGER PRIMARY KEY,
    event_key    TEXT    NOT NULL UNIQUE,
    account_id   TEXT    NOT NULL,
    media_id     TEXT    NOT NULL,
    exits        INTEGER,
    replies      INTEGER,
    reach        INTEGER,
    taps_forward INTEGER,
    taps_back    INTEGER,
    impressions  INTEGER,
    occurred_at  INTEGER NOT NULL
);

CREATE TABLE feed (
    id           INTEGER PRIMARY KEY,
    platform     TEXT NOT NULL,
    account_id   TEXT NOT NULL,
    item         TEXT NOT NULL,              -- status, comment, reaction, ...
    item_id      TEXT NOT NULL,              -- comment id, else post id
    verb         TEXT NOT NULL,
    author_id    TEXT NOT NULL,              -- empty when unknown
    post_id      TEXT,
    comment_id   TEXT,
    parent_id    TEXT,
    author_name  TEXT,
    message      TEXT,
    reaction_type TEXT,
    created_time INTEGER NOT NULL,
    UNIQUE (platform, account_id, item, item_id, verb, author_id)
);

CREATE TABLE optins (
    id           INTEGER PRIMARY KEY,
    platform    TEXT NOT NULL,
    account_id  TEXT NOT NULL,
    user_key    TEXT NOT NULL,               -- PSID, else the checkbox user_ref
    optin_type  TEXT NOT NULL,               -- empty for plain plugin opt-ins
    state       TEXT NOT NULL,               -- subscribed, stopped
    ref         TEXT,
    payload     TEXT,
    title       TEXT,
    token       TEXT,
    token_expires_at INTEGER,
    occurred_at INTEGER NOT NULL,
    UNIQUE (platform, account_id, user_key, optin_type)
);
