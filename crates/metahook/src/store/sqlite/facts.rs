//! Domain facts merged into SQLite. Every statement is an idempotent, commutative merge:
//! first-known values (`coalesce`), maxima, minima, or "latest wins" with a total order
//! (time, then the remaining columns), so any order of the same facts ends in one state.

use rusqlite::{Connection, params};

use crate::domain::{
    CommentFact, ConversationFact, Fact, FeedFact, MentionFact, MessageFact, OptinFact,
    ReactionFact, StoryInsightsFact,
};

pub fn apply(tx: &Connection, fact: &Fact) -> rusqlite::Result<()> {
    match fact {
        Fact::Message(f) => message(tx, f),
        Fact::Conversation(f) => conversation(tx, f),
        Fact::Reaction(f) => reaction(tx, f),
        Fact::Comment(f) => comment(tx, f),
        Fact::Mention(f) => mention(tx, f),
        Fact::StoryInsights(f) => story_insights(tx, f),
        Fact::Feed(f) => feed(tx, f),
        Fact::Optin(f) => optin(tx, f),
    }
}

fn message(tx: &Connection, f: &MessageFact) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO messages (platform, mid, account_id, user_id, direction, text, attachments,
             status_rank, sent_at, updated_at, error, edit_count, edit_text, edit_at, deleted)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, coalesce(?12, 0), ?13, ?14, ?15)
         ON CONFLICT (platform, mid) DO UPDATE SET
             account_id  = coalesce(messages.account_id, excluded.account_id),
             user_id     = coalesce(messages.user_id, excluded.user_id),
             direction   = coalesce(messages.direction, excluded.direction),
             text        = coalesce(messages.text, excluded.text),
             attachments = coalesce(messages.attachments, excluded.attachments),
             status_rank = max(messages.status_rank, excluded.status_rank),
             sent_at     = min(coalesce(messages.sent_at, excluded.sent_at),
                               coalesce(excluded.sent_at, messages.sent_at)),
             updated_at  = max(coalesce(messages.updated_at, excluded.updated_at),
                               coalesce(excluded.updated_at, messages.updated_at)),
             error       = coalesce(messages.error, excluded.error),
             deleted     = max(messages.deleted, excluded.deleted),
             (edit_count, edit_text, edit_at) = (
                 SELECT CASE WHEN newer THEN ?12 ELSE messages.edit_count END,
                        CASE WHEN newer THEN ?13 ELSE messages.edit_text END,
                        CASE WHEN newer THEN ?14 ELSE messages.edit_at END
                 FROM (SELECT ?12 IS NOT NULL AND (?12, ?14, coalesce(?13, ''))
                         > (messages.edit_count, coalesce(messages.edit_at, -1),
                            coalesce(messages.edit_text, '')) AS newer))",
    )?;
    let edit = f.edit.as_ref();
    stmt.execute(params![
        f.platform,
        f.mid,
        f.account_id,
        f.user_id,
        f.direction,
        f.text,
        f.attachments,
        f.status.map(|s| s.rank()).unwrap_or(0),
        f.sent_at,
        f.at,
        f.error,
        edit.map(|e| e.count),
        edit.and_then(|e| e.text.as_deref()),
        edit.map(|e| e.at),
        f.deleted,
    ])?;
    Ok(())
}

fn conversation(tx: &Connection, f: &ConversationFact) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO conversations (platform, account_id, user_id, delivered_watermark,
             read_watermark, last_inbound_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (platform, account_id, user_id) DO UPDATE SET
             delivered_watermark = max(
                 coalesce(conversations.delivered_watermark, excluded.delivered_watermark),
                 coalesce(excluded.delivered_watermark, conversations.delivered_watermark)),
             read_watermark = max(
                 coalesce(conversations.read_watermark, excluded.read_watermark),
                 coalesce(excluded.read_watermark, conversations.read_watermark)),
             last_inbound_at = max(
                 coalesce(conversations.last_inbound_at, excluded.last_inbound_at),
                 coalesce(excluded.last_inbound_at, conversations.last_inbound_at))",
    )?;
    stmt.execute(params![
        f.platform,
        f.account_id,
        f.user_id,
        f.delivered_watermark,
        f.read_watermark,
        f.last_inbound_at
    ])?;
    Ok(())
}

fn reaction(tx: &Connection, f: &ReactionFact) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO reactions (platform, mid, user_id, action, reaction, emoji, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (platform, mid, user_id) DO UPDATE SET
             action = excluded.action, reaction = excluded.reaction,
             emoji = excluded.emoji, at = excluded.at
         WHERE (excluded.at, excluded.action, coalesce(excluded.emoji, ''))
             > (reactions.at, reactions.action, coalesce(reactions.emoji, ''))",
    )?
    .execute(params![f.platform, f.mid, f.user_id, f.action, f.reaction, f.emoji, f.at])?;
    Ok(())
}

fn comment(tx: &Connection, f: &CommentFact) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO comments (platform, comment_id, account_id, kind, media_id, media_type,
             parent_id, user_id, username, text, occurred_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (platform, comment_id) DO UPDATE SET
             account_id = excluded.account_id, kind = excluded.kind,
             media_id = excluded.media_id, media_type = excluded.media_type,
             parent_id = excluded.parent_id, user_id = excluded.user_id,
             username = excluded.username, text = excluded.text,
             occurred_at = excluded.occurred_at
         WHERE (coalesce(excluded.occurred_at, -1), coalesce(excluded.text, ''))
             > (coalesce(comments.occurred_at, -1), coalesce(comments.text, ''))",
    )?
    .execute(params![
        f.platform,
        f.comment_id,
        f.account_id,
        f.kind,
        f.media_id,
        f.media_type,
        f.parent_id,
        f.user_id,
        f.username,
        f.text,
        f.occurred_at
    ])?;
    Ok(())
}

fn mention(tx: &Connection, f: &MentionFact) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO mentions (platform, account_id, media_id, comment_id, occurred_at)
         VALUES (?1, ?2, ?3, coalesce(?4, ''), ?5)
         ON CONFLICT (platform, account_id, media_id, comment_id) DO UPDATE SET
             occurred_at = max(coalesce(mentions.occurred_at, excluded.occurred_at),
                               coalesce(excluded.occurred_at, mentions.occurred_at))",
    )?
    .execute(params![f.platform, f.account_id, f.media_id, f.comment_id, f.occurred_at])?;
    Ok(())
}

fn story_insights(tx: &Connection, f: &StoryInsightsFact) -> rusqlite::Result<()> {
    let values = params![
        f.event_key,
        f.account_id,
        f.media_id,
        f.exits,
        f.replies,
        f.reach,
        f.taps_forward,
        f.taps_back,
        f.impressions,
        f.occurred_at
    ];
    tx.prepare_cached(
        "INSERT INTO story_insights_history (event_key, account_id, media_id, exits, replies,
             reach, taps_forward, taps_back, impressions, occurred_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (event_key) DO NOTHING",
    )?
    .execute(values)?;
    tx.prepare_cached(
        "INSERT INTO story_insights (account_id, media_id, exits, replies, reach, taps_forward,
             taps_back, impressions, occurred_at)
         SELECT ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10 WHERE ?1 IS NOT NULL
         ON CONFLICT (account_id, media_id) DO UPDATE SET
             exits = excluded.exits, replies = excluded.replies, reach = excluded.reach,
             taps_forward = excluded.taps_forward, taps_back = excluded.taps_back,
             impressions = excluded.impressions, occurred_at = excluded.occurred_at
         WHERE (excluded.occurred_at, coalesce(excluded.reach, -1), coalesce(excluded.impressions, -1))
             > (story_insights.occurred_at, coalesce(story_insights.reach, -1),
                coalesce(story_insights.impressions, -1))",
    )?
    .execute(values)?;
    Ok(())
}

fn feed(tx: &Connection, f: &FeedFact) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO feed (platform, account_id, item, item_id, verb, author_id, author_name,
             post_id, comment_id, parent_id, message, reaction_type, created_time)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (platform, account_id, item, item_id, verb, author_id) DO UPDATE SET
             author_name = excluded.author_name, post_id = excluded.post_id,
             comment_id = excluded.comment_id, parent_id = excluded.parent_id,
             message = excluded.message, reaction_type = excluded.reaction_type,
             created_time = excluded.created_time
         WHERE (excluded.created_time, coalesce(excluded.message, ''),
                coalesce(excluded.reaction_type, ''))
             > (feed.created_time, coalesce(feed.message, ''), coalesce(feed.reaction_type, ''))",
    )?
    .execute(params![
        f.platform,
        f.account_id,
        f.item,
        f.item_id,
        f.verb,
        f.author_id,
        f.author_name,
        f.post_id,
        f.comment_id,
        f.parent_id,
        f.message,
        f.reaction_type,
        f.created_time
    ])?;
    Ok(())
}

fn optin(tx: &Connection, f: &OptinFact) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO optins (platform, account_id, user_key, optin_type, state, ref, payload,
             title, token, token_expires_at, occurred_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (platform, account_id, user_key, optin_type) DO UPDATE SET
             state = excluded.state, ref = excluded.ref, payload = excluded.payload,
             title = excluded.title, token = excluded.token,
             token_expires_at = excluded.token_expires_at, occurred_at = excluded.occurred_at
         WHERE (excluded.occurred_at, excluded.state, coalesce(excluded.payload, ''))
             > (optins.occurred_at, optins.state, coalesce(optins.payload, ''))",
    )?
    .execute(params![
        f.platform,
        f.account_id,
        f.user_key,
        f.optin_type,
        f.state,
        f.reference,
        f.payload,
        f.title,
        f.token,
        f.token_expires_at,
        f.occurred_at
    ])?;
    Ok(())
}
