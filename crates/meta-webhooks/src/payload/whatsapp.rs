//! WhatsApp Cloud API `messages` changes: one `value` holding inbound messages, statuses of
//! messages the business sent, and errors, for one business phone number.
//!
//! A value yields one event per message and one per status, each under the phone number in
//! `value.metadata.phone_number_id` (lacking metadata, under the WABA: the entry id). Errors
//! in `value.errors` are not about one message (rate limits, authentication): they become one
//! `change` event for the field `messages` whose detail carries them typed, whether or not the
//! value also holds messages, so that an operator sees them. A value with none of the three
//! is kept whole as a `change`.

use serde::Deserialize;
use serde_json::{Value, json};

use super::Parts;
use super::key::Key;
use super::whatsapp_message::WhatsappMessage;
use super::{de, take_items};
use crate::event::{Detail, Kind, Source};

/// The parts of a `messages` value shared by its messages and statuses.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
struct Head {
    metadata: Option<Metadata>,
    contacts: Vec<Contact>,
    errors: Vec<WhatsappError>,
}

/// `value.metadata`: the business phone number the value is about.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Metadata {
    /// As shown to users; informational only.
    pub display_phone_number: Option<String>,
    /// The id messages are sent from, and the account of every event in the value.
    #[serde(deserialize_with = "de::text")]
    pub phone_number_id: Option<String>,
}

/// An entry of `value.contacts`: the WhatsApp user a message came from.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Contact {
    /// Phone digits, or a business-scoped user id for username users.
    #[serde(deserialize_with = "de::text")]
    pub wa_id: Option<String>,
    /// Business-scoped user id (`CC.digits`).
    #[serde(deserialize_with = "de::text")]
    pub user_id: Option<String>,
    /// Profile name and username.
    pub profile: Option<Profile>,
}

/// A contact's profile.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Profile {
    /// The name the user set.
    pub name: Option<String>,
    /// The WhatsApp username, where the user has one.
    pub username: Option<String>,
}

/// A status of a message the business sent (`value.statuses[]`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct WhatsappStatus {
    /// The wamid returned when the message was sent.
    #[serde(deserialize_with = "de::text")]
    pub id: Option<String>,
    /// `sent`, `delivered`, `read`, `played` or `failed`.
    pub status: Option<String>,
    /// When, in UTC milliseconds (sent as a string of seconds).
    #[serde(deserialize_with = "de::millis")]
    pub timestamp: Option<i64>,
    /// The user (or group) the message went to.
    #[serde(deserialize_with = "de::text")]
    pub recipient_id: Option<String>,
    /// `group` for group messages.
    pub recipient_type: Option<String>,
    /// In a group, the participant this status is about.
    #[serde(deserialize_with = "de::text")]
    pub recipient_participant_id: Option<String>,
    /// The value passed as `biz_opaque_callback_data` when sending.
    pub biz_opaque_callback_data: Option<String>,
    /// The conversation it was billed in (before per-message pricing).
    pub conversation: Option<Conversation>,
    /// How it is billed.
    pub pricing: Option<Pricing>,
    /// Why it failed, for `failed`.
    pub errors: Vec<WhatsappError>,
}

/// A status's `conversation`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Conversation {
    /// Conversation id.
    #[serde(deserialize_with = "de::text")]
    pub id: Option<String>,
    /// When the conversation window closes, in UTC milliseconds.
    #[serde(deserialize_with = "de::millis")]
    pub expiration_timestamp: Option<i64>,
    /// `origin.type`: `service`, `marketing`, `utility`, `referral_conversion`, ...
    #[serde(deserialize_with = "origin_type")]
    pub origin: Option<String>,
}

/// A status's `pricing`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Pricing {
    /// Whether the message is charged (being deprecated by Meta).
    pub billable: Option<bool>,
    /// `CBP` (per conversation) or `PMP` (per message).
    pub pricing_model: Option<String>,
    /// `marketing`, `utility`, `authentication`, `service`, ...
    pub category: Option<String>,
    /// `regular`, `free_customer_service`, `free_entry_point`.
    #[serde(rename = "type")]
    pub pricing_type: Option<String>,
}

/// A WhatsApp error object; only `code` is always there.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct WhatsappError {
    /// `131049`, `130429`, ...
    #[serde(deserialize_with = "de::int")]
    pub code: Option<i64>,
    /// Short description.
    pub title: Option<String>,
    /// Longer description.
    pub message: Option<String>,
    /// `error_data.details`.
    #[serde(deserialize_with = "details")]
    pub details: Option<String>,
    /// Link to the error code's documentation.
    pub href: Option<String>,
}

fn origin_type<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Value::deserialize(d)?.get("type").and_then(Value::as_str).map(str::to_owned))
}

fn details<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Value::deserialize(d)?.get("details").and_then(Value::as_str).map(str::to_owned))
}

/// Decodes the `value` of a WhatsApp `messages` change.
pub(crate) fn decode(value: Value, source: Source) -> Vec<Parts> {
    let Value::Object(mut value) = value else {
        let detail = Detail::Change { field: "messages".into(), value: value.clone() };
        let payload = json!({"field": "messages", "value": value});
        return vec![Parts::new(Kind::Change, detail, source, payload)];
    };
    let messages = take_items(&mut value, "messages");
    let statuses = take_items(&mut value, "statuses");
    let rest = Value::Object(value);
    let head = Head::deserialize(&rest).unwrap_or_default();
    let account = head.metadata.as_ref().and_then(|m| m.phone_number_id.clone());
    let mut out: Vec<Parts> = messages.into_iter().map(|m| message(m, &head, &source)).collect();
    out.extend(statuses.into_iter().map(|s| status(s, &source)));
    if !head.errors.is_empty() || out.is_empty() {
        let detail = if head.errors.is_empty() {
            Detail::Change { field: "messages".into(), value: rest.clone() }
        } else {
            Detail::WhatsappErrors(head.errors)
        };
        let payload = json!({"field": "messages", "value": rest});
        out.push(Parts::new(Kind::Change, detail, source, payload));
    }
    for parts in &mut out {
        parts.account_id.clone_from(&account);
    }
    out
}

fn message(item: Value, head: &Head, source: &Source) -> Parts {
    let Ok(mut message) = WhatsappMessage::deserialize(&item) else {
        let detail = Detail::Change { field: "messages".into(), value: item.clone() };
        return Parts::new(Kind::Change, detail, source.clone(), item);
    };
    message.contact = message.from.as_deref().and_then(|from| {
        let is_sender =
            |c: &&Contact| [&c.wa_id, &c.user_id].iter().any(|id| id.as_deref() == Some(from));
        head.contacts.iter().find(is_sender).cloned()
    });
    let key = message.id.as_deref().map(|id| Key::new("whatsapp_message").part(id).finish());
    let (user_id, occurred_at) = (message.from.clone(), message.timestamp);
    let detail = Detail::WhatsappMessage(Box::new(message));
    let parts = Parts::new(Kind::WhatsappMessage, detail, source.clone(), item);
    Parts { key, user_id, occurred_at, ..parts }
}

fn status(item: Value, source: &Source) -> Parts {
    let Ok(status) = WhatsappStatus::deserialize(&item) else {
        let detail = Detail::Change { field: "messages".into(), value: item.clone() };
        return Parts::new(Kind::Change, detail, source.clone(), item);
    };
    // Each participant of a group reads a message on their own: the participant is part of
    // what the status is about.
    let key = status.id.as_deref().map(|id| {
        let key = Key::new("whatsapp_status").part(id).opt(status.status.as_deref());
        key.some(status.recipient_participant_id.as_deref()).finish()
    });
    let (user_id, occurred_at) = (status.recipient_id.clone(), status.timestamp);
    let detail = Detail::WhatsappStatus(status);
    let parts = Parts::new(Kind::WhatsappStatus, detail, source.clone(), item);
    Parts { key, user_id, occurred_at, ..parts }
}
