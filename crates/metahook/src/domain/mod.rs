//! What events mean for the business: conversations and messages with their statuses,
//! reactions, comments, mentions, story insights, feed items and opt-ins.
//!
//! [`plan`] turns one event into the facts it establishes, without touching storage. Each
//! fact is applied by the store as a merge that is idempotent and commutative (maxima,
//! first-known values, "latest by time" with a total tie-break), so that the final state
//! does not depend on the order in which Meta delivers events, nor on duplicates.

mod changes;
mod messages;

use meta_webhooks::event::{Detail, Event};

/// One fact an event establishes, merged into the domain tables by the store.
#[derive(Debug, Clone, PartialEq)]
pub enum Fact {
    Message(MessageFact),
    Conversation(ConversationFact),
    Reaction(ReactionFact),
    Comment(CommentFact),
    Mention(MentionFact),
    StoryInsights(StoryInsightsFact),
    Feed(FeedFact),
    Optin(OptinFact),
}

impl Fact {
    /// The row this fact merges into, as (table, key). Writers that apply many facts in one
    /// transaction sort by it, so that concurrent transactions take row locks in one order
    /// and cannot wait on each other in a cycle.
    pub fn row(&self) -> (u8, String) {
        match self {
            Fact::Message(f) => (0, format!("{}\u{0}{}", f.platform, f.mid)),
            Fact::Conversation(f) => {
                (1, format!("{}\u{0}{}\u{0}{}", f.platform, f.account_id, f.user_id))
            }
            Fact::Reaction(f) => (2, format!("{}\u{0}{}\u{0}{}", f.platform, f.mid, f.user_id)),
            Fact::Comment(f) => (3, format!("{}\u{0}{}", f.platform, f.comment_id)),
            Fact::Mention(f) => {
                (4, format!("{}\u{0}{}\u{0}{}", f.platform, f.account_id, f.media_id))
            }
            Fact::StoryInsights(f) => (5, format!("{}\u{0}{}", f.account_id, f.media_id)),
            Fact::Feed(f) => (6, format!("{}\u{0}{}\u{0}{}", f.account_id, f.item_id, f.verb)),
            Fact::Optin(f) => {
                (7, format!("{}\u{0}{}\u{0}{}", f.platform, f.account_id, f.user_key))
            }
        }
    }
}

/// Where a message stands. The numbers order the states: a merge keeps the highest, so a
/// status only moves forward, and `failed` never replaces `delivered` or `read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MessageStatus {
    Unknown = 0,
    Received = 1,
    Sent = 2,
    Failed = 3,
    Delivered = 4,
    Read = 5,
    Played = 6,
}

impl MessageStatus {
    pub fn rank(self) -> i64 {
        self as i64
    }

    /// The status shown for a stored rank; an outbound message with nothing known is `sent`.
    pub fn name(rank: i64, outbound: bool) -> &'static str {
        match rank {
            1 => "received",
            3 => "failed",
            4 => "delivered",
            5 => "read",
            6 => "played",
            _ if outbound => "sent",
            2 => "sent",
            _ => "received",
        }
    }

    /// A WhatsApp status name.
    pub fn from_whatsapp(status: &str) -> Self {
        match status {
            "sent" => Self::Sent,
            "delivered" => Self::Delivered,
            "read" => Self::Read,
            "played" => Self::Played,
            "failed" => Self::Failed,
            _ => Self::Unknown,
        }
    }
}

/// What one event says about one message; `None` means "says nothing about it".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageFact {
    pub platform: String,
    pub mid: String,
    pub account_id: Option<String>,
    pub user_id: Option<String>,
    /// `in` or `out`.
    pub direction: Option<&'static str>,
    pub text: Option<String>,
    /// JSON of the attachments.
    pub attachments: Option<String>,
    pub status: Option<MessageStatus>,
    /// When the message was sent (its own timestamp, or a WhatsApp `sent` status).
    pub sent_at: Option<i64>,
    /// When this fact happened; the message's `updated_at` is the latest of these.
    pub at: Option<i64>,
    /// JSON of a failure, for WhatsApp `failed`.
    pub error: Option<String>,
    pub edit: Option<Edit>,
    pub deleted: bool,
}

/// An edit: the one with the highest count (then the latest, then the greatest text) wins.
#[derive(Debug, Clone, PartialEq)]
pub struct Edit {
    pub count: i64,
    pub text: Option<String>,
    pub at: i64,
}

/// Watermarks and the last inbound message of one conversation; merges keep the maxima.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConversationFact {
    pub platform: String,
    pub account_id: String,
    pub user_id: String,
    pub delivered_watermark: Option<i64>,
    pub read_watermark: Option<i64>,
    pub last_inbound_at: Option<i64>,
}

/// A user's reaction to a message; the latest (by time, then action, then emoji) wins.
#[derive(Debug, Clone, PartialEq)]
pub struct ReactionFact {
    pub platform: String,
    pub mid: String,
    pub user_id: String,
    /// `react` or `unreact`.
    pub action: &'static str,
    pub reaction: Option<String>,
    pub emoji: Option<String>,
    pub at: i64,
}

/// An Instagram comment or live comment, latest state by comment id.
#[derive(Debug, Clone, PartialEq)]
pub struct CommentFact {
    pub platform: String,
    pub comment_id: String,
    pub account_id: Option<String>,
    /// `comment` or `live_comment`.
    pub kind: &'static str,
    pub media_id: Option<String>,
    pub media_type: Option<String>,
    pub parent_id: Option<String>,
    pub user_id: Option<String>,
    pub username: Option<String>,
    pub text: Option<String>,
    pub occurred_at: Option<i64>,
}

/// An Instagram mention, in a caption (no comment id) or a comment.
#[derive(Debug, Clone, PartialEq)]
pub struct MentionFact {
    pub platform: String,
    pub account_id: String,
    pub media_id: String,
    pub comment_id: Option<String>,
    pub occurred_at: Option<i64>,
}

/// A story's metrics: the latest per story, and every report in the history.
#[derive(Debug, Clone, PartialEq)]
pub struct StoryInsightsFact {
    pub event_key: String,
    pub account_id: String,
    pub media_id: String,
    pub exits: Option<i64>,
    pub replies: Option<i64>,
    pub reach: Option<i64>,
    pub taps_forward: Option<i64>,
    pub taps_back: Option<i64>,
    pub impressions: Option<i64>,
    pub occurred_at: i64,
}

/// A Page feed change, latest state by item, id, verb and author.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedFact {
    pub platform: String,
    pub account_id: String,
    pub item: String,
    pub item_id: String,
    pub verb: String,
    pub author_id: String,
    pub author_name: Option<String>,
    pub post_id: Option<String>,
    pub comment_id: Option<String>,
    pub parent_id: Option<String>,
    pub message: Option<String>,
    pub reaction_type: Option<String>,
    pub created_time: i64,
}

/// A user's subscription state for one kind of opt-in, latest by time.
#[derive(Debug, Clone, PartialEq)]
pub struct OptinFact {
    pub platform: String,
    pub account_id: String,
    pub user_key: String,
    pub optin_type: String,
    /// `subscribed` or `stopped`.
    pub state: &'static str,
    pub reference: Option<String>,
    pub payload: Option<String>,
    pub title: Option<String>,
    pub token: Option<String>,
    pub token_expires_at: Option<i64>,
    pub occurred_at: i64,
}

/// The facts `event` establishes. Test payloads establish none.
pub fn plan(event: &Event) -> Vec<Fact> {
    if event.test {
        return Vec::new();
    }
    let platform = event.platform.as_str();
    match &event.detail {
        Detail::Message(m) => messages::message(event, platform, m),
        Detail::Delivery(d) => messages::delivery(event, platform, d),
        Detail::Read(r) => messages::read(event, platform, r),
        Detail::Reaction(r) => messages::reaction(event, platform, r).into_iter().collect(),
        Detail::MessageEdit(e) => messages::edit(event, platform, e).into_iter().collect(),
        Detail::WhatsappMessage(m) => messages::whatsapp_message(event, m),
        Detail::WhatsappStatus(s) => messages::whatsapp_status(event, s).into_iter().collect(),
        Detail::Optin(o) => changes::optin(event, platform, o).into_iter().collect(),
        Detail::Comment(c) => changes::comment(event, platform, c).into_iter().collect(),
        Detail::Mention(m) => changes::mention(event, platform, m).into_iter().collect(),
        Detail::StoryInsights(s) => changes::story_insights(event, s).into_iter().collect(),
        Detail::Feed(f) => changes::feed(event, platform, f).into_iter().collect(),
        // Recorded in the event log and queryable as events; no table of their own.
        Detail::Postback(_)
        | Detail::Referral(_)
        | Detail::Handover(_)
        | Detail::PolicyEnforcement(_)
        | Detail::AccountLinking(_)
        | Detail::WhatsappErrors(_)
        | Detail::Change { .. }
        | Detail::Unknown => Vec::new(),
    }
}
