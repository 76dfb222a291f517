//! Facts from Graph-style changes (Instagram comments, mentions, story insights; the Page
//! feed) and from Messenger opt-ins.

use meta_webhooks::event::{Event, Kind};
use meta_webhooks::payload;

use super::{CommentFact, Fact, FeedFact, MentionFact, OptinFact, StoryInsightsFact};

pub fn comment(event: &Event, platform: &str, c: &payload::Comment) -> Option<Fact> {
    let media = c.media.as_ref();
    let author = c.from.as_ref();
    Some(Fact::Comment(CommentFact {
        platform: platform.to_owned(),
        comment_id: c.comment_id()?.to_owned(),
        account_id: event.account_id.clone(),
        kind: if event.kind == Kind::LiveComment { "live_comment" } else { "comment" },
        media_id: media.and_then(|m| m.id.clone()),
        media_type: media.and_then(|m| m.media_product_type.clone()),
        parent_id: c.parent_id.clone(),
        user_id: author.and_then(|a| a.id.clone()).or_else(|| event.user_id.clone()),
        username: author.and_then(|a| a.username.clone()),
        text: c.text.clone(),
        occurred_at: event.occurred_at,
    }))
}

pub fn mention(event: &Event, platform: &str, m: &payload::Mention) -> Option<Fact> {
    Some(Fact::Mention(MentionFact {
        platform: platform.to_owned(),
        account_id: event.account_id.clone()?,
        media_id: m.media_id.clone()?,
        comment_id: m.comment_id.clone(),
        occurred_at: event.occurred_at,
    }))
}

pub fn story_insights(event: &Event, s: &payload::StoryInsights) -> Option<Fact> {
    Some(Fact::StoryInsights(StoryInsightsFact {
        event_key: event.key.clone(),
        account_id: event.account_id.clone()?,
        media_id: s.media_id.clone()?,
        exits: s.exits,
        replies: s.replies,
        reach: s.reach,
        taps_forward: s.taps_forward,
        taps_back: s.taps_back,
        impressions: s.impressions,
        occurred_at: event.occurred_at.unwrap_or(0),
    }))
}

pub fn feed(event: &Event, platform: &str, f: &payload::Feed) -> Option<Fact> {
    Some(Fact::Feed(FeedFact {
        platform: platform.to_owned(),
        account_id: event.account_id.clone()?,
        item: f.item.clone().unwrap_or_default(),
        item_id: f.item_id()?.to_owned(),
        verb: f.verb.clone().unwrap_or_default(),
        author_id: f.author_id().unwrap_or_default().to_owned(),
        author_name: f.from.as_ref().and_then(|a| a.name.clone()).or_else(|| f.sender_name.clone()),
        post_id: f.post_id.clone(),
        comment_id: f.comment_id.clone(),
        parent_id: f.parent_id.clone(),
        message: f.message.clone(),
        reaction_type: f.reaction_type.clone(),
        created_time: f.created_time.or(event.occurred_at).unwrap_or(0),
    }))
}

pub fn optin(event: &Event, platform: &str, o: &payload::Optin) -> Option<Fact> {
    let stopped = o.status.as_deref().is_some_and(|s| s.to_ascii_uppercase().starts_with("STOP"));
    Some(Fact::Optin(OptinFact {
        platform: platform.to_owned(),
        account_id: event.account_id.clone()?,
        user_key: event.user_id.clone().or_else(|| o.user_ref.clone())?,
        optin_type: o.optin_type.clone().unwrap_or_default(),
        state: if stopped { "stopped" } else { "subscribed" },
        reference: o.reference.clone(),
        payload: o.payload.clone(),
        title: o.title.clone(),
        token: o.token.clone(),
        token_expires_at: o.token_expiry_timestamp,
        occurred_at: event.occurred_at.unwrap_or(0),
    }))
}
