//! The admin API's lists, in SQL both backends run: what each list selects, which filters it
//! accepts, and how its columns become JSON. Every list pages by an `id` cursor.

use serde_json::{Map, Value};

use crate::domain::MessageStatus;

/// How one admin list reads its table.
pub struct Listing {
    /// `SELECT` list and `FROM` clause; the first column is the cursor (a rowid).
    pub select: &'static str,
    /// Filters accepted from the query string: parameter name and the column it compares.
    pub filters: &'static [(&'static str, &'static str)],
    /// Columns holding JSON text, returned as JSON.
    pub json: &'static [&'static str],
    /// Integer columns returned as booleans.
    pub flags: &'static [&'static str],
    /// Last touches to each item.
    pub finish: fn(&mut Map<String, Value>),
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
        "SELECT m.id AS cursor, m.mid, m.platform, m.account_id, m.user_id, m.direction,
                    coalesce(m.edit_text, m.text) AS text, m.attachments,
                    CASE WHEN m.direction = 'out' AND m.status_rank < 5
                              AND m.sent_at <= c.read_watermark THEN 5
                         WHEN m.direction = 'out' AND m.status_rank < 4
                              AND m.sent_at <= c.delivered_watermark THEN 4
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
    select: "SELECT id AS cursor, platform, account_id, user_id, delivered_watermark,
                    read_watermark, last_inbound_at
             FROM conversations",
    filters: &[("platform", "platform"), ("account_id", "account_id"), ("user_id", "user_id")],
    json: &[],
    flags: &[],
    finish: nothing,
};

const COMMENTS: Listing = Listing {
    select: "SELECT id AS cursor, platform, comment_id, account_id, kind, media_id, media_type,
                    parent_id, user_id, username, text, occurred_at
             FROM comments",
    filters: &[("platform", "platform"), ("account_id", "account_id"), ("media_id", "media_id")],
    json: &[],
    flags: &[],
    finish: nothing,
};

const MENTIONS: Listing = Listing {
    select: "SELECT id AS cursor, platform, account_id, media_id,
                    nullif(comment_id, '') AS comment_id, occurred_at
             FROM mentions",
    filters: &[("platform", "platform"), ("account_id", "account_id"), ("media_id", "media_id")],
    json: &[],
    flags: &[],
    finish: nothing,
};

const STORY_INSIGHTS: Listing = Listing {
    select: "SELECT s.id AS cursor, s.account_id, s.media_id, s.exits, s.replies, s.reach,
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
    select: "SELECT id AS cursor, platform, account_id, item, item_id, verb,
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
    select: "SELECT id AS cursor, platform, account_id, user_key AS user_id,
                    nullif(optin_type, '') AS type, state, ref, payload, title, token_expires_at,
                    occurred_at
             FROM optins",
    filters: &[("platform", "platform"), ("account_id", "account_id"), ("state", "state")],
    json: &[],
    flags: &[],
    finish: nothing,
};

/// The lists the admin API serves, by resource name.
pub fn listing(resource: &str) -> Option<&'static Listing> {
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

/// The `SELECT` for one page: items after the cursor matching the filters present in
/// `query`, one more than the limit (to tell whether there is a next page). `placeholder`
/// writes the n-th bind parameter in the backend's syntax; returns the SQL and the filter
/// values to bind after the cursor.
pub fn page_sql<'q>(
    listing: &Listing,
    query: &'q super::ListQuery,
    placeholder: fn(usize) -> String,
) -> (String, Vec<&'q String>) {
    let mut sql =
        format!("SELECT * FROM ({}) AS list WHERE cursor > {}", listing.select, placeholder(1));
    let mut values = Vec::new();
    for (name, column) in listing.filters {
        if let Some(value) = query.filters.get(*name) {
            values.push(value);
            // The outer query sees the inner column under its bare name.
            let column = column.rsplit('.').next().unwrap_or(column);
            sql.push_str(&format!(" AND {column} = {}", placeholder(values.len() + 1)));
        }
    }
    sql.push_str(&format!(" ORDER BY cursor LIMIT {}", query.limit + 1));
    (sql, values)
}
