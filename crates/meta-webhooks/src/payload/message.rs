//! What Messenger and Instagram say about messages: the message itself, its deliveries and
//! reads, edits and reactions. Each type is the body of one key of a messaging item.

use serde::Deserialize;
use serde_json::Value;

use super::de;
use super::thread::Referral;

/// Whether a message came from the user or from the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the user to the Page or Instagram account.
    In,
    /// From the account (an echo) to the user.
    Out,
}

/// A `message`: text, attachments, quick reply, reply, echo or unsend.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Message {
    /// Message id; absent only in test payloads.
    #[serde(deserialize_with = "de::text")]
    pub mid: Option<String>,
    /// The text, if any.
    pub text: Option<String>,
    /// The `attachments` array as sent (`type` plus `payload`), kept as JSON.
    pub attachments: Option<Value>,
    /// Sent by the Page or account (from any app or the inbox), not by the user.
    #[serde(deserialize_with = "de::flag")]
    pub is_echo: bool,
    /// The app that sent an echo.
    #[serde(deserialize_with = "de::text")]
    pub app_id: Option<String>,
    /// The `metadata` string given to the Send API, returned on echoes.
    pub metadata: Option<String>,
    /// The quick reply the user tapped.
    pub quick_reply: Option<QuickReply>,
    /// The message or story this one replies to.
    pub reply_to: Option<ReplyTo>,
    /// The ad or shop the first message came from.
    pub referral: Option<Referral>,
    /// An Instagram message the user unsent.
    #[serde(deserialize_with = "de::flag")]
    pub is_deleted: bool,
    /// A message type Instagram does not expose.
    #[serde(deserialize_with = "de::flag")]
    pub is_unsupported: bool,
}

impl Message {
    /// `Out` for echoes, `In` otherwise.
    pub fn direction(&self) -> Direction {
        if self.is_echo { Direction::Out } else { Direction::In }
    }

    /// The mid this message replies to, if it replies to a message.
    pub fn reply_to_mid(&self) -> Option<&str> {
        self.reply_to.as_ref()?.mid.as_deref()
    }
}

/// A tapped quick reply.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct QuickReply {
    /// The developer-defined payload.
    #[serde(deserialize_with = "de::text")]
    pub payload: Option<String>,
}

/// What a message replies to.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ReplyTo {
    /// The message replied to.
    #[serde(deserialize_with = "de::text")]
    pub mid: Option<String>,
    /// The user replied to their own message.
    #[serde(deserialize_with = "de::flag")]
    pub is_self_reply: bool,
    /// The Instagram story replied to (`url`, `id`).
    pub story: Option<Value>,
}

/// A `delivery`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Delivery {
    /// Messages delivered; may be empty.
    #[serde(deserialize_with = "de::texts")]
    pub mids: Vec<String>,
    /// Everything sent up to this time (UTC milliseconds) was delivered.
    #[serde(deserialize_with = "de::millis")]
    pub watermark: Option<i64>,
}

/// A `read`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Read {
    /// Everything sent up to this time (UTC milliseconds) was read (Messenger).
    #[serde(deserialize_with = "de::millis")]
    pub watermark: Option<i64>,
    /// The last message seen (Instagram).
    #[serde(deserialize_with = "de::text")]
    pub mid: Option<String>,
}

/// A `reaction`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Reaction {
    /// The message reacted to.
    #[serde(deserialize_with = "de::text")]
    pub mid: Option<String>,
    /// `react` or `unreact`.
    pub action: Option<String>,
    /// `love`, `like`, `smile`, ...; may be absent on `unreact`.
    pub reaction: Option<String>,
    /// The emoji; may be absent on `unreact`.
    pub emoji: Option<String>,
}

/// A `message_edit`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct MessageEdit {
    /// The edited message.
    #[serde(deserialize_with = "de::text")]
    pub mid: Option<String>,
    /// The new text (absent in Instagram captures).
    pub text: Option<String>,
    /// How many times the message has been edited (at most 5).
    #[serde(deserialize_with = "de::int")]
    pub num_edit: Option<i64>,
}
