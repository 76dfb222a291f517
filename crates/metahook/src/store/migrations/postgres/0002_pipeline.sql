-- Events split from deliveries, once per natural key, and the log of every application.
CREATE TABLE events (
    id              BIGSERIAL PRIMARY KEY,
    delivery_id     BIGINT  NOT NULL REFERENCES deliveries (id),
    platform        TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    key             TEXT    NOT NULL,
    account_id      TEXT,
    user_id         TEXT,
    occurred_at     BIGINT,
    test            BOOLEAN NOT NULL,
    payload         TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    attempts        BIGINT  NOT NULL DEFAULT 0,
    error           TEXT,
    next_attempt_at BIGINT  NOT NULL,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    UNIQUE (platform, key)
);

CREATE INDEX events_due ON events (next_attempt_at) WHERE status IN ('pending', 'error');
CREATE INDEX events_by_status ON events (status, id);
CREATE INDEX events_by_delivery ON events (delivery_id);

CREATE TABLE event_log (
    id          BIGSERIAL PRIMARY KEY,
    event_id    BIGINT           NOT NULL REFERENCES events (id),
    platform    TEXT             NOT NULL,
    kind        TEXT             NOT NULL,
    status      TEXT             NOT NULL,
    duration_ms DOUBLE PRECISION NOT NULL,
    error       TEXT,
    at          BIGINT           NOT NULL
);

CREATE INDEX event_log_by_event ON event_log (event_id);

-- Domain tables, merged order-insensitively (see src/domain and store/postgres/facts.rs).

CREATE TABLE messages (
    id          BIGSERIAL PRIMARY KEY,
    platform    TEXT    NOT NULL,
    mid         TEXT    NOT NULL,
    account_id  TEXT,
    user_id     TEXT,
    direction   TEXT,
    text        TEXT,
    attachments TEXT,
    status_rank BIGINT  NOT NULL DEFAULT 0,
    sent_at     BIGINT,
    updated_at  BIGINT,
    error       TEXT,
    edit_count  BIGINT  NOT NULL DEFAULT 0,
    edit_text   TEXT,
    edit_at     BIGINT,
    deleted     BOOLEAN NOT NULL DEFAULT false,
    UNIQUE (platform, mid)
);

CREATE INDEX messages_by_conversation ON messages (platform, account_id, user_id, sent_at);

CREATE TABLE conversations (
    id                  BIGSERIAL PRIMARY KEY,
    platform            TEXT NOT NULL,
    account_id          TEXT NOT NULL,
    user_id             TEXT NOT NULL,
    delivered_watermark BIGINT,
    read_watermark      BIGINT,
    last_inbound_at     BIGINT,
    UNIQUE (platform, account_id, user_id)
);

CREATE TABLE reactions (
    id       BIGSERIAL PRIMARY KEY,
    platform TEXT   NOT NULL,
    mid      TEXT   NOT NULL,
    user_id  TEXT   NOT NULL,
    action   TEXT   NOT NULL,
    reaction TEXT,
    emoji    TEXT,
    at       BIGINT NOT NULL,
    UNIQUE (platform, mid, user_id)
);

CREATE TABLE comments (
    id          BIGSERIAL PRIMARY KEY,
    platform    TEXT NOT NULL,
    comment_id  TEXT NOT NULL,
    account_id  TEXT,
    kind        TEXT NOT NULL,
    media_id    TEXT,
    media_type  TEXT,
    parent_id   TEXT,
    user_id     TEXT,
    username    TEXT,
    text        TEXT,
    occurred_at BIGINT,
    UNIQUE (platform, comment_id)
);

CREATE TABLE mentions (
    id          BIGSERIAL PRIMARY KEY,
    platform    TEXT NOT NULL,
    account_id  TEXT NOT NULL,
    media_id    TEXT NOT NULL,
    comment_id  TEXT NOT NULL,
    occurred_at BIGINT,
    UNIQUE (platform, account_id, media_id, comment_id)
);

CREATE TABLE story_insights (
    id           BIGSERIAL PRIMARY KEY,
    account_id   TEXT   NOT NULL,
    media_id     TEXT   NOT NULL,
    exits        BIGINT,
    replies      BIGINT,
    reach        BIGINT,
    taps_forward BIGINT,
    taps_back    BIGINT,
    impressions  BIGINT,
    occurred_at  BIGINT NOT NULL,
    UNIQUE (account_id, media_id)
);

CREATE TABLE story_insights_history (
    id           BIGSERIAL PRIMARY KEY,
    event_key    TEXT   NOT NULL UNIQUE,
    account_id   TEXT   NOT NULL,
    media_id     TEXT   NOT NULL,
    exits        BIGINT,
    replies      BIGINT,
    reach        BIGINT,
    taps_forward BIGINT,
    taps_back    BIGINT,
    impressions  BIGINT,
    occurred_at  BIGINT NOT NULL
);

CREATE TABLE feed (
    id            BIGSERIAL PRIMARY KEY,
    platform      TEXT   NOT NULL,
    account_id    TEXT   NOT NULL,
    item          TEXT   NOT NULL,
    item_id       TEXT   NOT NULL,
    verb          TEXT   NOT NULL,
    author_id     TEXT   NOT NULL,
    post_id       TEXT,
    comment_id    TEXT,
    parent_id     TEXT,
    author_name   TEXT,
    message       TEXT,
    reaction_type TEXT,
    created_time  BIGINT NOT NULL,
    UNIQUE (platform, account_id, item, item_id, verb, author_id)
);

CREATE TABLE optins (
    id               BIGSERIAL PRIMARY KEY,
    platform         TEXT   NOT NULL,
    account_id       TEXT   NOT NULL,
    user_key         TEXT   NOT NULL,
    optin_type       TEXT   NOT NULL,
    state            TEXT   NOT NULL,
    ref              TEXT,
    payload          TEXT,
    title            TEXT,
    token            TEXT,
    token_expires_at BIGINT,
    occurred_at      BIGINT NOT NULL,
    UNIQUE (platform, account_id, user_key, optin_type)
);
