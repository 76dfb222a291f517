//! Read-only queries behind the admin API: filtered, cursor-paginated lists as JSON.

use rusqlite::types::ValueRef;
use serde_json::{Map, Value};

use super::{SqliteStore, lock};
use crate::domain::MessageStatus;
use crate::store::{ListQuery, Page, StoreError};

/// How one admin list reads its table.
struct Listing {
    /// `SELECT` list and `FROM` clause; the first column is the cursor (a rowid).
    select: &'static str,
    /// Filters accepted from the query string: parameter name and the column it compares.
    filters: &'static [(&'static str, &'static str)],
    /// Columns holding JSON text, returned as JSON.
    json: &'static [&'static str],
    /// Integer columns returned as booleans.
    flags: &'static [&'static str],
    /// Last touches to each item.
    finish: fn(&mut Map<String, Value>),
}

fn nothing(_: &mut Map<String, Value>) {}

/// Messages store a status rank; the API shows its name.
fn status_name(item: &mut Map<String, Value>) {
    let outbound = item.get("direction").and_then(Value::as_str) == Some("out");
    let rank = item.get("status").and_then(Value::as_i64).unwrap_or(0);
    item.insert("status".into(), MessageStatus::name(rank, outbound).into());
}

const DELIVERIES: Listing = Listing {
    select: "SELECT d.id AS cursor, d.id, d.received_at, d.object, d.bytes,
                    (SELECT count(*) FROM events e WHERE e.delivery_id = d.id) AS events
             FROM deliveries d",
    filters: &[("object", "d.object")],
    json: &[],
    flags: &[],
    finish: nothing,
};

const EVENTS: Listing = Listing {
    select: "SELECT id AS cursor, id, delivery_id, platform, kind, key, account_id, user_id,
                    occurred_at, status, attempts, error, test, payload
             FROM events",
    filters: &[
        ("platform", "platform"),
        ("kind", "kind"),
        ("status", "status"),
        ("account_id", "account_id"),
        ("user_id", "user_id"),
        ("delivery_id", "delivery_id"),
    ],
    json: &["payload"],
    flags: &["test"],
    finish: nothing,
};

const MESSAGES: Listing = Listing {
    select:
        "SELECT m.rowid AS cursor, m.mid, m.platform, m.account_id, m.user_id, m.direction,
                    coalesce(m.edit_text, m.text) AS text, m.attachments,
                    CASE WHEN m.direction = 'out' THEN max(m.status_rank,
                        CASE WHEN m.sent_at <= c.read_watermark THEN 5
                             WHEN m.sent_at <= c.delivered_watermark THEN 4 ELSE 0 END)
                    ELSE m.status_rank END AS status,
                    m.sent_at, m.updated_at, m.error, m.edit_count, m.deleted,
                    (SELECT r.emoji FROM reactions r
                     WHERE r.platform = m.platform AND r.mid = m.mid AND r.action = 'react'
                     ORDER BY r.at DESC, r.user_id LIMIT 1) AS reaction
             FROM messages m LEFT JOIN conversations c
               ON c.platform = m.platform AND c.account_id = m.account_id AND c.user_id = m.user_id",
    filters: &[
        ("platform", "m.platform"),
        ("account_id", "m.account_id"),
        ("user_id", "m.user_id"),
        ("mid", "m.mid"),
    ],
    json: &["attachments", "error"],
    flags: &["deleted"],
    finish: status_name,
};

const CONVERSATIONS: Listing = Listing {
    select: "SELECT rowid AS cursor, platform, account_id, user_id, delivered_watermark,
                    read_watermark, last_inbound_at
             FROM conversations",
    filters: &[("platform", "platform"), ("account_id", "account_id"), ("user_id", "user_id")],
    json: &[],
    flags: &[],
    finish: nothing,
};

const COMMENTS: Listing = Listing {
    select: "SELECT rowid AS cursor, platform, comment_id, account_id, kind, media_id, media_type,
                    parent_id, user_id, username, text, occurred_at
             FROM comments",
    filters: &[("platform", "platform"), ("account_id", "account_id"), ("media_id", "media_id")],
    json: &[],
    flags: &[],
    finish: nothing,
};

const MENTIONS: Listing = Listing {
    select: "SELECT rowid AS cursor, platform, account_id, media_id,
                    nullif(comment_id, '') AS comment_id, occurred_at
             FROM mentions",
    filters: &[("platform", "platform"), ("account_id", "account_id"), ("media_id", "media_id")],
    json: &[],
    flags: &[],
    finish: nothing,
};

const STORY_INSIGHTS: Listing = Listing {
    select: "SELECT s.rowid AS cursor, s.account_id, s.media_id, s.exits, s.replies, s.reach,
                    s.taps_forward, s.taps_back, s.impressions, s.occurred_at,
                    (SELECT count(*) FROM story_insights_history h
                     WHERE h.account_id = s.account_id AND h.media_id = s.media_id) AS reports
             FROM story_insights s",
    filters: &[("account_id", "s.account_id"), ("media_id", "s.media_id")],
    json: &[],
    flags: &[],
    finish: nothing,
};

const FEED: Listing = Listing {
    select: "SELECT rowid AS cursor, platform, account_id, item, item_id, verb,
                    nullif(author_id, '') AS author_id, author_name, post_id, comment_id, parent_id,
                    message, reaction_type, created_time
             FROM feed",
    filters: &[
        ("account_id", "account_id"),
        ("item", "item"),
        ("verb", "verb"),
        ("post_id", "post_id"),
    ],
    json: &[],
    flags: &[],
    finish: nothing,
};

const OPTINS: Listing = Listing {
    select: "SELECT rowid AS cursor, platform, account_id, user_key AS user_id,
                    nullif(optin_type, '') AS type, state, ref, payload, title, token_expires_at,
                    occurred_at
             FROM optins",
    filters: &[("platform", "platform"), ("account_id", "account_id"), ("state", "state")],
    json: &[],
    flags: &[],
    finish: nothing,
};

/// The lists the admin API serves, by resource name.
fn listing(resource: &str) -> Option<&'static Listing> {
    Some(match resource {
        "deliveries" => &DELIVERIES,
        "events" => &EVENTS,
        "messages" => &MESSAGES,
        "conversations" => &CONVERSATIONS,
        "comments" => &COMMENTS,
        "mentions" => &MENTIONS,
        "story-insights" => &STORY_INSIGHTS,
        "feed" => &FEED,
        "optins" => &OPTINS,
        _ => return None,
    })
}

impl SqliteStore {
    pub(crate) fn list(&self, resource: &str, query: &ListQuery) -> Result<Page, StoreError> {
        let listing = listing(resource).ok_or_else(|| StoreError::Unknown(resource.to_owned()))?;
        let mut sql = format!("SELECT * FROM ({}) WHERE cursor > ?1", listing.select);
        let mut values: Vec<String> = Vec::new();
        for (name, column) in listing.filters {
            if let Some(value) = query.filters.get(*name) {
                values.push(value.clone());
                // Filter on the inner query's column name (the part after the alias dot).
                let column = column.rsplit('.').next().unwrap_or(column);
                sql.push_str(&format!(" AND {column} = ?{}", values.len() + 1));
            }
        }
        sql.push_str(&format!(" ORDER BY cursor LIMIT {}", query.limit + 1));
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut params: Vec<&dyn rusqlite::ToSql> = vec![&query.after];
        params.extend(values.iter().map(|v| v as &dyn rusqlite::ToSql));
        let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
        let mut rows = stmt.query(params.as_slice())?;
        let mut items = Vec::new();
        let mut last = None;
        while let Some(row) = rows.next()? {
            if items.len() == query.limit {
                return Ok(Page { items, next_cursor: last });
            }
            let mut item = Map::new();
            for (i, name) in names.iter().enumerate() {
                if name == "cursor" {
                    last = Some(row.get::<_, i64>(i)?);
                    continue;
                }
                item.insert(name.clone(), to_json(listing, name, row.get_ref(i)?));
            }
            (listing.finish)(&mut item);
            items.push(Value::Object(item));
        }
        Ok(Page { items, next_cursor: None })
    }
}

fn to_json(listing: &Listing, name: &str, value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) if listing.flags.contains(&name) => Value::Bool(i != 0),
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => Value::from(f),
        ValueRef::Text(t) | ValueRef::Blob(t) => {
            let text = String::from_utf8_lossy(t);
            if listing.json.contains(&name) {
                serde_json::from_str(&text).unwrap_or(Value::String(text.into_owned()))
            } else {
                Value::String(text.into_owned())
            }
        }
    }
}
