//! Graph-style `entry[].changes[]`: which decoder reads each `{field, value}`, and the models of
//! the Page `feed` and of Instagram `comments`, `live_comments`, `mentions` and
//! `story_insights`.
//!
//! WhatsApp's `messages` field goes to [`super::whatsapp`]. Dashboard test payloads sometimes
//! send a messaging event as a change (`{"field":"messaging_postbacks","value":{"sender":..}}`);
//! such values are read as messaging items. Every other field, and any value its decoder
//! cannot read, is a `change` event that keeps the field name and the value.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::key::Key;
use super::{Context, Parts};
use super::{de, messaging, whatsapp};
use crate::event::{Detail, Kind, Platform, Source};

/// A Page `feed` change: a post, comment, reaction, share, ... added, edited or removed.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Feed {
    /// `status`, `post`, `photo`, `video`, `share`, `comment`, `reaction`, `like`, ...
    pub item: Option<String>,
    /// `add`, `edited`, `remove`, `hide`, `unhide`, ...
    pub verb: Option<String>,
    /// `{page_id}_{post_id}`.
    #[serde(deserialize_with = "de::text")]
    pub post_id: Option<String>,
    /// `{post_id}_{comment_id}`, for comments and reactions to comments.
    #[serde(deserialize_with = "de::text")]
    pub comment_id: Option<String>,
    /// The post of a top-level comment, or the comment a reply answers.
    #[serde(deserialize_with = "de::text")]
    pub parent_id: Option<String>,
    /// Who acted (the Page itself for its own posts and comments).
    pub from: Option<Author>,
    /// Who acted, in 2017-era payloads (a number).
    #[serde(deserialize_with = "de::text")]
    pub sender_id: Option<String>,
    /// Their name, in 2017-era payloads.
    pub sender_name: Option<String>,
    /// The text of the post or comment.
    pub message: Option<String>,
    /// `like`, `love`, `haha`, `wow`, `sad`, `angry`, `care`.
    pub reaction_type: Option<String>,
    /// When it happened, in UTC milliseconds (sent in seconds).
    #[serde(deserialize_with = "de::millis")]
    pub created_time: Option<i64>,
}

impl Feed {
    /// The comment if the change is about one, else the post.
    pub fn item_id(&self) -> Option<&str> {
        self.comment_id.as_deref().or(self.post_id.as_deref())
    }

    /// Who acted, from `from.id` or the older `sender_id`.
    pub fn author_id(&self) -> Option<&str> {
        self.from.as_ref().and_then(|f| f.id.as_deref()).or(self.sender_id.as_deref())
    }
}

/// The author of a feed item or an Instagram comment.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Author {
    /// Facebook user or Page id; Instagram-scoped user id.
    #[serde(deserialize_with = "de::text")]
    pub id: Option<String>,
    /// Display name (Facebook).
    pub name: Option<String>,
    /// Username (Instagram).
    pub username: Option<String>,
}

/// An Instagram comment, from `comments` or `live_comments`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Comment {
    /// The comment id, as real payloads send it.
    #[serde(deserialize_with = "de::text")]
    pub id: Option<String>,
    /// The comment id, as some documentation spells it.
    #[serde(deserialize_with = "de::text")]
    pub comment_id: Option<String>,
    /// The comment this one replies to.
    #[serde(deserialize_with = "de::text")]
    pub parent_id: Option<String>,
    /// The text.
    pub text: Option<String>,
    /// Who commented.
    pub from: Option<Author>,
    /// The media commented on.
    pub media: Option<MediaRef>,
}

impl Comment {
    /// `id`, or `comment_id` where that spelling is used.
    pub fn comment_id(&self) -> Option<&str> {
        self.id.as_deref().or(self.comment_id.as_deref())
    }
}

/// The Instagram media a comment belongs to.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct MediaRef {
    /// Media id.
    #[serde(deserialize_with = "de::text")]
    pub id: Option<String>,
    /// `FEED`, `REELS`, `STORY`, `AD`, `LIVE`.
    pub media_product_type: Option<String>,
}

/// An Instagram `mentions` change: the account was @mentioned in a caption or a comment.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Mention {
    /// The media mentioning the account, or holding the comment that does.
    #[serde(deserialize_with = "de::text")]
    pub media_id: Option<String>,
    /// The comment, for mentions in comments.
    #[serde(deserialize_with = "de::text")]
    pub comment_id: Option<String>,
}

/// An Instagram `story_insights` change: a story's metrics when it expires.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct StoryInsights {
    /// The story.
    #[serde(deserialize_with = "de::text")]
    pub media_id: Option<String>,
    /// Times viewers left the story.
    #[serde(deserialize_with = "de::int")]
    pub exits: Option<i64>,
    /// Replies to the story.
    #[serde(deserialize_with = "de::int")]
    pub replies: Option<i64>,
    /// Accounts that saw the story.
    #[serde(deserialize_with = "de::int")]
    pub reach: Option<i64>,
    /// Taps to the next story.
    #[serde(deserialize_with = "de::int")]
    pub taps_forward: Option<i64>,
    /// Taps back to the previous story.
    #[serde(deserialize_with = "de::int")]
    pub taps_back: Option<i64>,
    /// Times the story was shown.
    #[serde(deserialize_with = "de::int")]
    pub impressions: Option<i64>,
}

/// Decodes one `changes[]` element into events (several for a WhatsApp batch).
pub(crate) fn decode(change: Value, ctx: &Context) -> Vec<Parts> {
    let unknown =
        |change| Parts::new(Kind::Unknown, Detail::Unknown, Source::Change("".into()), change);
    let Value::Object(mut change) = change else {
        return vec![unknown(change)];
    };
    let Some(field) = change.get("field").and_then(Value::as_str).map(str::to_owned) else {
        return vec![unknown(Value::Object(change))];
    };
    let source = Source::Change(field.clone());
    match (ctx.platform, field.as_str()) {
        (Platform::Whatsapp, "messages") => {
            let value = change.remove("value").unwrap_or_default();
            whatsapp::decode(value, source)
        }
        (Platform::Facebook, "feed") => vec![feed(change, source, ctx)],
        (Platform::Instagram, "comments") => vec![comment(Kind::Comment, change, source, ctx)],
        (Platform::Instagram, "live_comments") => {
            vec![comment(Kind::LiveComment, change, source, ctx)]
        }
        (Platform::Instagram, "mentions") => vec![mention(change, source, ctx)],
        (Platform::Instagram, "story_insights") => vec![story_insights(change, source, ctx)],
        (Platform::Facebook | Platform::Instagram, name)
            if name.starts_with("messag") && looks_like_messaging(change.get("value")) =>
        {
            let value = change.remove("value").unwrap_or_default();
            vec![messaging::decode(value, source, ctx)]
        }
        _ => vec![other(field, Value::Object(change), source)],
    }
}

/// A field named in `changed_fields` (subscriptions without values): a change with no value.
pub(crate) fn bare_field(name: Value) -> Parts {
    let field = de::text_of(&name).unwrap_or_default();
    let detail = Detail::Change { field: field.clone(), value: Value::Null };
    Parts::new(Kind::Change, detail, Source::Change(field), name)
}

/// A change kept as it is, under its field name.
pub(crate) fn other(field: String, change: Value, source: Source) -> Parts {
    let value = change.get("value").cloned().unwrap_or_default();
    Parts::new(Kind::Change, Detail::Change { field, value }, source, change)
}

fn looks_like_messaging(value: Option<&Value>) -> bool {
    value
        .and_then(Value::as_object)
        .is_some_and(|v| v.contains_key("sender") || v.contains_key("recipient"))
}

fn value_as<T: for<'de> Deserialize<'de>>(change: &Map<String, Value>) -> Option<T> {
    T::deserialize(change.get("value")?).ok()
}

fn not_account(id: Option<&str>, ctx: &Context) -> Option<String> {
    id.filter(|id| Some(*id) != ctx.account()).map(str::to_owned)
}

fn feed(change: Map<String, Value>, source: Source, ctx: &Context) -> Parts {
    let Some(feed) = value_as::<Feed>(&change) else {
        return other("feed".into(), Value::Object(change), source);
    };
    let key = feed.item_id().map(|id| {
        let key = Key::new("feed").opt(feed.item.as_deref()).opt(feed.verb.as_deref()).part(id);
        key.opt(feed.author_id()).num(feed.created_time).finish()
    });
    let user_id = not_account(feed.author_id(), ctx);
    let occurred_at = feed.created_time;
    let parts = Parts::new(Kind::Feed, Detail::Feed(feed), source, Value::Object(change));
    Parts { key, user_id, occurred_at, ..parts }
}

fn comment(kind: Kind, change: Map<String, Value>, source: Source, ctx: &Context) -> Parts {
    let Some(comment) = value_as::<Comment>(&change) else {
        let field = change.get("field").and_then(Value::as_str).unwrap_or_default().to_owned();
        return other(field, Value::Object(change), source);
    };
    let key = comment.comment_id().map(|id| Key::new(kind.as_str()).part(id).finish());
    let user_id = not_account(comment.from.as_ref().and_then(|f| f.id.as_deref()), ctx);
    let parts = Parts::new(kind, Detail::Comment(comment), source, Value::Object(change));
    Parts { key, user_id, ..parts }
}

fn mention(change: Map<String, Value>, source: Source, ctx: &Context) -> Parts {
    let Some(mention) = value_as::<Mention>(&change) else {
        return other("mentions".into(), Value::Object(change), source);
    };
    let key = mention.media_id.as_deref().map(|media| {
        let key = Key::new("mention").opt(ctx.account()).part(media);
        key.some(mention.comment_id.as_deref()).finish()
    });
    let parts = Parts::new(Kind::Mention, Detail::Mention(mention), source, Value::Object(change));
    Parts { key, ..parts }
}

fn story_insights(change: Map<String, Value>, source: Source, ctx: &Context) -> Parts {
    let Some(insights) = value_as::<StoryInsights>(&change) else {
        return other("story_insights".into(), Value::Object(change), source);
    };
    // Metrics are sent once, when the story expires; hashing them keeps a corrected second
    // report from being taken for a redelivery of the first.
    let key = insights.media_id.as_deref().map(|media| {
        let metrics = change.get("value").unwrap_or(&Value::Null);
        Key::new("story_insights").opt(ctx.account()).part(media).hash(&[metrics]).finish()
    });
    let detail = Detail::StoryInsights(insights);
    let parts = Parts::new(Kind::StoryInsights, detail, source, Value::Object(change));
    Parts { key, ..parts }
}
