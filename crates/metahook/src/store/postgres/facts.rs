//! Domain facts merged into PostgreSQL: the same merges as the SQLite backend (first-known
//! values, maxima, minima, latest-wins with a total order), in PostgreSQL's dialect, where
//! `GREATEST` and `LEAST` already skip NULLs.

use deadpool_postgres::Transaction;

use crate::domain::{
    CommentFact, ConversationFact, Fact, FeedFact, MentionFact, MessageFact, OptinFact,
    ReactionFact, StoryInsightsFact,
};

pub async fn apply(tx: &Transaction<'_>, fact: &Fact) -> Result<(), tokio_postgres::Error> {
    match fact {
        Fact::Message(f) => message(tx, f).await,
        Fact::Conversation(f) => conversation(tx, f).await,
        Fact::Reaction(f) => reaction(tx, f).await,
        Fact::Comment(f) => comment(tx, f).await,
        Fact::Mention(f) => mention(tx, f).await,
        Fact::StoryInsights(f) => story_insights(tx, f).await,
        Fact::Feed(f) => feed(tx, f).await,
        Fact::Optin(f) => optin(tx, f).await,
    }
}

const MESSAGE: &str = "
    INSERT INTO messages AS m (platform, mid, account_id, user_id, direction, text, attachments,
        status_rank, sent_at, updated_at, error, edit_count, edit_text, edit_at, deleted)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, coalesce($12::bigint, 0), $13, $14, $15)
    ON CONFLICT (platform, mid) DO UPDATE SET
        account_id  = coalesce(m.account_id, excluded.account_id),
        user_id     = coalesce(m.user_id, excluded.user_id),
        direction   = coalesce(m.direction, excluded.direction),
        text        = coalesce(m.text, excluded.text),
        attachments = coalesce(m.attachments, excluded.attachments),
        status_rank = GREATEST(m.status_rank, excluded.status_rank),
        sent_at     = LEAST(m.sent_at, excluded.sent_at),
        updated_at  = GREATEST(m.updated_at, excluded.updated_at),
        error       = coalesce(m.error, excluded.error),
        deleted     = m.deleted OR excluded.deleted";

async fn message(tx: &Transaction<'_>, f: &MessageFact) -> Result<(), tokio_postgres::Error> {
    let edit = f.edit.as_ref();
    let (count, text, at) =
        (edit.map(|e| e.count), edit.and_then(|e| e.text.clone()), edit.map(|e| e.at));
    let statement = tx.prepare_cached(MESSAGE).await?;
    tx.execute(
        &statement,
        &[
            &f.platform,
            &f.mid,
            &f.account_id,
            &f.user_id,
            &f.direction,
            &f.text,
            &f.attachments,
            &f.status.map(|s| s.rank()).unwrap_or(0),
            &f.sent_at,
            &f.at,
            &f.error,
            &count,
            &text,
            &at,
            &f.deleted,
        ],
    )
    .await?;
    // An edit on an existing row wins if it is greater by count, then time, then text: the
    // same order as the SQLite backend.
    if edit.is_some() {
        let statement = tx
            .prepare_cached(
                "UPDATE messages SET edit_count = $3, edit_text = $4, edit_at = $5
                 WHERE platform = $1 AND mid = $2
                   AND ($3::bigint, $5::bigint, coalesce($4::text, ''))
                     > (edit_count, coalesce(edit_at, -1), coalesce(edit_text, ''))",
            )
            .await?;
        tx.execute(&statement, &[&f.platform, &f.mid, &count, &text, &at]).await?;
    }
    Ok(())
}

async fn conversation(
    tx: &Transaction<'_>,
    f: &ConversationFact,
) -> Result<(), tokio_postgres::Error> {
    let statement = tx
        .prepare_cached(
            "INSERT INTO conversations AS c (platform, account_id, user_id, delivered_watermark,
                 read_watermark, last_inbound_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (platform, account_id, user_id) DO UPDATE SET
                 delivered_watermark = GREATEST(c.delivered_watermark, excluded.delivered_watermark),
                 read_watermark = GREATEST(c.read_watermark, excluded.read_watermark),
                 last_inbound_at = GREATEST(c.last_inbound_at, excluded.last_inbound_at)",
        )
        .await?;
    tx.execute(
        &statement,
        &[
            &f.platform,
            &f.account_id,
            &f.user_id,
            &f.delivered_watermark,
            &f.read_watermark,
            &f.last_inbound_at,
        ],
    )
    .await?;
    Ok(())
}

async fn reaction(tx: &Transaction<'_>, f: &ReactionFact) -> Result<(), tokio_postgres::Error> {
    let statement = tx
        .prepare_cached(
            "INSERT INTO reactions AS r (platform, mid, user_id, action, reaction, emoji, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (platform, mid, user_id) DO UPDATE SET
                 action = excluded.action, reaction = excluded.reaction,
                 emoji = excluded.emoji, at = excluded.at
             WHERE (excluded.at, excluded.action, coalesce(excluded.emoji, ''))
                 > (r.at, r.action, coalesce(r.emoji, ''))",
        )
        .await?;
    let action: &str = f.action;
    tx.execute(
        &statement,
        &[&f.platform, &f.mid, &f.user_id, &action, &f.reaction, &f.emoji, &f.at],
    )
    .await?;
    Ok(())
}

async fn comment(tx: &Transaction<'_>, f: &CommentFact) -> Result<(), tokio_postgres::Error> {
    let statement = tx
        .prepare_cached(
            "INSERT INTO comments AS c (platform, comment_id, account_id, kind, media_id,
                 media_type, parent_id, user_id, username, text, occurred_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (platform, comment_id) DO UPDATE SET
                 account_id = excluded.account_id, kind = excluded.kind,
                 media_id = excluded.media_id, media_type = excluded.media_type,
                 parent_id = excluded.parent_id, user_id = excluded.user_id,
                 username = excluded.username, text = excluded.text,
                 occurred_at = excluded.occurred_at
             WHERE (coalesce(excluded.occurred_at, -1), coalesce(excluded.text, ''))
                 > (coalesce(c.occurred_at, -1), coalesce(c.text, ''))",
        )
        .await?;
    let kind: &str = f.kind;
    tx.execute(
        &statement,
        &[
            &f.platform,
            &f.comment_id,
            &f.account_id,
            &kind,
            &f.media_id,
            &f.media_type,
            &f.parent_id,
            &f.user_id,
            &f.username,
            &f.text,
            &f.occurred_at,
        ],
    )
    .await?;
    Ok(())
}

async fn mention(tx: &Transaction<'_>, f: &MentionFact) -> Result<(), tokio_postgres::Error> {
    let statement = tx
        .prepare_cached(
            "INSERT INTO mentions AS m (platform, account_id, media_id, comment_id, occurred_at)
             VALUES ($1, $2, $3, coalesce($4, ''), $5)
             ON CONFLICT (platform, account_id, media_id, comment_id) DO UPDATE SET
                 occurred_at = GREATEST(m.occurred_at, excluded.occurred_at)",
        )
        .await?;
    tx.execute(
        &statement,
        &[&f.platform, &f.account_id, &f.media_id, &f.comment_id, &f.occurred_at],
    )
    .await?;
    Ok(())
}

async fn story_insights(
    tx: &Transaction<'_>,
    f: &StoryInsightsFact,
) -> Result<(), tokio_postgres::Error> {
    let values: [&(dyn tokio_postgres::types::ToSql + Sync); 10] = [
        &f.event_key,
        &f.account_id,
        &f.media_id,
        &f.exits,
        &f.replies,
        &f.reach,
        &f.taps_forward,
        &f.taps_back,
        &f.impressions,
        &f.occurred_at,
    ];
    let history = tx
        .prepare_cached(
            "INSERT INTO story_insights_history (event_key, account_id, media_id, exits, replies,
                 reach, taps_forward, taps_back, impressions, occurred_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (event_key) DO NOTHING",
        )
        .await?;
    tx.execute(&history, &values).await?;
    let latest = tx
        .prepare_cached(
            "INSERT INTO story_insights AS s (account_id, media_id, exits, replies, reach,
                 taps_forward, taps_back, impressions, occurred_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (account_id, media_id) DO UPDATE SET
                 exits = excluded.exits, replies = excluded.replies, reach = excluded.reach,
                 taps_forward = excluded.taps_forward, taps_back = excluded.taps_back,
                 impressions = excluded.impressions, occurred_at = excluded.occurred_at
             WHERE (excluded.occurred_at, coalesce(excluded.reach, -1),
                    coalesce(excluded.impressions, -1))
                 > (s.occurred_at, coalesce(s.reach, -1), coalesce(s.impressions, -1))",
        )
        .await?;
    tx.execute(&latest, &values[1..]).await?;
    Ok(())
}

async fn feed(tx: &Transaction<'_>, f: &FeedFact) -> Result<(), tokio_postgres::Error> {
    let statement = tx
        .prepare_cached(
            "INSERT INTO feed AS f (platform, account_id, item, item_id, verb, author_id,
                 author_name, post_id, comment_id, parent_id, message, reaction_type, created_time)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (platform, account_id, item, item_id, verb, author_id) DO UPDATE SET
                 author_name = excluded.author_name, post_id = excluded.post_id,
                 comment_id = excluded.comment_id, parent_id = excluded.parent_id,
                 message = excluded.message, reaction_type = excluded.reaction_type,
                 created_time = excluded.created_time
             WHERE (excluded.created_time, coalesce(excluded.message, ''),
                    coalesce(excluded.reaction_type, ''))
                 > (f.created_time, coalesce(f.message, ''), coalesce(f.reaction_type, ''))",
        )
        .await?;
    tx.execute(
        &statement,
        &[
            &f.platform,
            &f.account_id,
            &f.item,
            &f.item_id,
            &f.verb,
            &f.author_id,
            &f.author_name,
            &f.post_id,
            &f.comment_id,
            &f.parent_id,
            &f.message,
            &f.reaction_type,
            &f.created_time,
        ],
    )
    .await?;
    Ok(())
}

async fn optin(tx: &Transaction<'_>, f: &OptinFact) -> Result<(), tokio_postgres::Error> {
    let statement = tx
        .prepare_cached(
            "INSERT INTO optins AS o (platform, account_id, user_key, optin_type, state, ref,
                 payload, title, token, token_expires_at, occurred_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (platform, account_id, user_key, optin_type) DO UPDATE SET
                 state = excluded.state, ref = excluded.ref, payload = excluded.payload,
                 title = excluded.title, token = excluded.token,
                 token_expires_at = excluded.token_expires_at, occurred_at = excluded.occurred_at
             WHERE (excluded.occurred_at, excluded.state, coalesce(excluded.payload, ''))
                 > (o.occurred_at, o.state, coalesce(o.payload, ''))",
        )
        .await?;
    let state: &str = f.state;
    tx.execute(
        &statement,
        &[
            &f.platform,
            &f.account_id,
            &f.user_key,
            &f.optin_type,
            &state,
            &f.reference,
            &f.payload,
            &f.title,
            &f.token,
            &f.token_expires_at,
            &f.occurred_at,
        ],
    )
    .await?;
    Ok(())
}
