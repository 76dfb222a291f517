//! One inbound WhatsApp message (`value.messages[]`) and the objects its `type` names.
//!
//! The content sits under a key equal to `type` (`text`, `image`, `reaction`, ...). Media
//! types share one shape and are read into [`WhatsappMessage::media`] whichever key holds
//! them. Content this model does not type (locations, shared contacts, referral details,
//! unsupported types) is kept as JSON, and the whole item is in the event's payload.

use serde::Deserialize;
use serde_json::Value;

use super::de;
use super::whatsapp::{Contact, WhatsappError};

/// An inbound WhatsApp message.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct WhatsappMessage {
    /// `wamid.…`
    #[serde(deserialize_with = "de::text")]
    pub id: Option<String>,
    /// The sender: phone digits (the `wa_id`) or a business-scoped user id.
    #[serde(deserialize_with = "de::text")]
    pub from: Option<String>,
    /// The sender's business-scoped user id, when sent.
    #[serde(deserialize_with = "de::text")]
    pub from_user_id: Option<String>,
    /// When it was sent, in UTC milliseconds (sent as a string of seconds).
    #[serde(deserialize_with = "de::millis")]
    pub timestamp: Option<i64>,
    /// `text`, `image`, `reaction`, `interactive`, `button`, `order`, `system`, `edit`,
    /// `revoke`, `unsupported`, ...
    #[serde(rename = "type")]
    pub message_type: Option<String>,
    /// The group it was sent in.
    #[serde(deserialize_with = "de::text")]
    pub group_id: Option<String>,
    /// What it replies to, or that it was forwarded.
    pub context: Option<MessageContext>,
    /// A `text` message.
    pub text: Option<Text>,
    /// An `image`, `video`, `audio`, `document` or `sticker`.
    #[serde(rename = "image", alias = "video", alias = "audio", alias = "document")]
    #[serde(alias = "sticker")]
    pub media: Option<Media>,
    /// A `reaction`, or its removal (empty emoji).
    pub reaction: Option<Reaction>,
    /// A template quick-reply `button`.
    pub button: Option<Button>,
    /// An `interactive` reply.
    pub interactive: Option<Interactive>,
    /// An `order` from a catalog.
    pub order: Option<Order>,
    /// A `system` notice, such as a changed number.
    pub system: Option<System>,
    /// An `edit`: the new version of an earlier message.
    pub edit: Option<Edit>,
    /// A `revoke`: the user deleted an earlier message.
    pub revoke: Option<Revoke>,
    /// A `location`, as JSON.
    pub location: Option<Value>,
    /// Shared `contacts` cards, as JSON.
    pub contacts: Option<Value>,
    /// The click-to-WhatsApp ad it came from, as JSON.
    pub referral: Option<Value>,
    /// Why the message could not be read (`131051` for unsupported types).
    pub errors: Vec<WhatsappError>,
    /// The sender's entry in `value.contacts`, matched by `wa_id` or `user_id`.
    #[serde(skip)]
    pub contact: Option<Contact>,
}

impl WhatsappMessage {
    /// The message's text: the body, a caption, a button or reply title, an order note, a
    /// system notice, or the text of an edit's new version.
    pub fn text(&self) -> Option<&str> {
        let interactive = self.interactive.as_ref();
        let reply = interactive.and_then(|i| i.button_reply.as_ref().or(i.list_reply.as_ref()));
        let body = self.text.as_ref().and_then(|t| t.body.as_deref());
        body.or(self.media.as_ref().and_then(|m| m.caption.as_deref()))
            .or(self.button.as_ref().and_then(|b| b.text.as_deref()))
            .or(reply.and_then(|r| r.title.as_deref()))
            .or(interactive.and_then(|i| i.nfm_reply.as_ref()?.body.as_deref()))
            .or(self.order.as_ref().and_then(|o| o.text.as_deref()).filter(|t| !t.is_empty()))
            .or(self.system.as_ref().and_then(|s| s.body.as_deref()))
            .or(self.edit.as_ref().and_then(|e| e.message.as_ref()?.text()))
    }

    /// The message this one replies to (`context.id`).
    pub fn reply_to(&self) -> Option<&str> {
        self.context.as_ref()?.id.as_deref()
    }

    /// The message a reaction, edit or revoke is about.
    pub fn refers_to(&self) -> Option<&str> {
        let reaction = self.reaction.as_ref().and_then(|r| r.message_id.as_deref());
        reaction
            .or(self.edit.as_ref().and_then(|e| e.original_message_id.as_deref()))
            .or(self.revoke.as_ref().and_then(|r| r.original_message_id.as_deref()))
    }
}

/// A message's `context`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct MessageContext {
    /// Who sent the message replied to.
    #[serde(deserialize_with = "de::text")]
    pub from: Option<String>,
    /// The message replied to.
    #[serde(deserialize_with = "de::text")]
    pub id: Option<String>,
    /// The message was forwarded.
    #[serde(deserialize_with = "de::flag")]
    pub forwarded: bool,
    /// The message was forwarded many times.
    #[serde(deserialize_with = "de::flag")]
    pub frequently_forwarded: bool,
}

/// A `text` body.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Text {
    /// The text.
    pub body: Option<String>,
}

/// An image, video, audio, document or sticker.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Media {
    /// Media id, for `GET /{media-id}`.
    #[serde(deserialize_with = "de::text")]
    pub id: Option<String>,
    /// MIME type.
    pub mime_type: Option<String>,
    /// Base64 SHA-256 of the file.
    pub sha256: Option<String>,
    /// Caption (images, videos, documents).
    pub caption: Option<String>,
    /// File name (documents).
    pub filename: Option<String>,
    /// A download URL, in newer payloads; it expires.
    pub url: Option<String>,
    /// A voice note rather than an audio file.
    #[serde(deserialize_with = "de::flag")]
    pub voice: bool,
    /// An animated sticker.
    #[serde(deserialize_with = "de::flag")]
    pub animated: bool,
}

/// A `reaction`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Reaction {
    /// The message reacted to.
    #[serde(deserialize_with = "de::text")]
    pub message_id: Option<String>,
    /// The emoji; empty or absent when the reaction is removed.
    pub emoji: Option<String>,
}

/// A template quick-reply `button`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Button {
    /// The button's payload.
    #[serde(deserialize_with = "de::text")]
    pub payload: Option<String>,
    /// The button's label.
    pub text: Option<String>,
}

/// An `interactive` reply.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Interactive {
    /// `button_reply`, `list_reply` or `nfm_reply`.
    #[serde(rename = "type")]
    pub interactive_type: Option<String>,
    /// A reply button tapped.
    pub button_reply: Option<Reply>,
    /// A list row chosen.
    pub list_reply: Option<Reply>,
    /// A Flow completed.
    pub nfm_reply: Option<FlowReply>,
}

/// A button or list reply.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Reply {
    /// The developer-defined id.
    #[serde(deserialize_with = "de::text")]
    pub id: Option<String>,
    /// The label shown.
    pub title: Option<String>,
    /// The row's description (lists).
    pub description: Option<String>,
}

/// A Flow's reply.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct FlowReply {
    /// The Flow's name.
    pub name: Option<String>,
    /// The text shown to the user.
    pub body: Option<String>,
    /// The Flow's answers: a JSON document inside a string.
    pub response_json: Option<String>,
}

/// An `order`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Order {
    /// The catalog ordered from.
    #[serde(deserialize_with = "de::text")]
    pub catalog_id: Option<String>,
    /// The buyer's note (often empty).
    pub text: Option<String>,
    /// `product_retailer_id`, `quantity`, `item_price`, `currency` per line, as JSON.
    pub product_items: Option<Value>,
}

/// A `system` notice.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct System {
    /// The notice as text.
    pub body: Option<String>,
    /// The user's new `wa_id`, on a number change.
    #[serde(deserialize_with = "de::text")]
    pub wa_id: Option<String>,
    /// `user_changed_number`, `customer_changed_number`, `customer_identity_changed`, ...
    #[serde(rename = "type")]
    pub system_type: Option<String>,
}

/// An `edit`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Edit {
    /// The message edited.
    #[serde(deserialize_with = "de::text")]
    pub original_message_id: Option<String>,
    /// Its new version.
    pub message: Option<Box<WhatsappMessage>>,
}

/// A `revoke`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Revoke {
    /// The message deleted.
    #[serde(deserialize_with = "de::text")]
    pub original_message_id: Option<String>,
}
