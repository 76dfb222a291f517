//! The typed model of what Meta posts for `page`, `instagram` and `whatsapp_business_account`.
//!
//! Each module reads one family of items from a parsed [`serde_json::Value`] into typed structs
//! and says what event they are: [`messaging`] for `messaging[]` and `standby[]` items (with
//! [`message`] and [`thread`] holding the bodies of their keys), [`changes`] for `changes[]`
//! (Page feed and Instagram), [`whatsapp`] and [`whatsapp_message`] for WhatsApp. Every field
//! is optional and [`de`] reads ids and timestamps in every spelling Meta uses, because the
//! rule is that a delivery Meta signed is never refused for its contents: what cannot be read
//! becomes an `unknown` or `change` event with its JSON kept. [`crate::event::split`] walks the
//! envelope and calls these decoders.

pub mod changes;
pub mod de;
pub(crate) mod key;
pub mod message;
pub mod messaging;
pub mod thread;
pub mod whatsapp;
pub mod whatsapp_message;

use serde_json::{Map, Value};

use crate::event::{Detail, Event, Kind, Platform, Source};
use key::Key;

pub use changes::{Author, Comment, Feed, MediaRef, Mention, StoryInsights};
pub use message::{Delivery, Direction, Message, MessageEdit, QuickReply, Reaction, Read, ReplyTo};
pub use messaging::{Messaging, Party};
pub use thread::{
    AccountLinking, Handover, HandoverAction, Optin, PolicyEnforcement, Postback, Referral,
    ThreadControl,
};
pub use whatsapp::{
    Contact, Conversation, Metadata, Pricing, Profile, WhatsappError, WhatsappStatus,
};
pub use whatsapp_message::WhatsappMessage;

/// Removes `name` from an object and returns its elements: an array as is, a lone value where
/// an array belongs as a list of one, and nothing for a missing key or `null`.
pub(crate) fn take_items(fields: &mut Map<String, Value>, name: &str) -> Vec<Value> {
    match fields.remove(name) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items,
        Some(other) => vec![other],
    }
}

/// Decodes one element of `entry` into `out`.
pub(crate) fn split_entry(object: &str, platform: &Platform, entry: Value, out: &mut Vec<Event>) {
    let Value::Object(mut fields) = entry else {
        let ctx = Context { object, platform, entry_id: None, entry_time: None };
        out.push(ctx.event(Parts::new(Kind::Unknown, Detail::Unknown, Source::Entry, entry)));
        return;
    };
    let ctx = Context {
        object,
        platform,
        entry_id: fields.get("id").and_then(de::text_of),
        entry_time: fields.get("time").and_then(de::millis_of),
    };
    let before = out.len();
    for item in take_items(&mut fields, "messaging") {
        out.push(ctx.event(messaging::decode(item, Source::Messaging, &ctx)));
    }
    for item in take_items(&mut fields, "standby") {
        out.push(ctx.event(messaging::decode(item, Source::Standby, &ctx)));
    }
    for change in take_items(&mut fields, "changes") {
        out.extend(changes::decode(change, &ctx).into_iter().map(|parts| ctx.event(parts)));
    }
    for name in take_items(&mut fields, "changed_fields") {
        out.push(ctx.event(changes::bare_field(name)));
    }
    let unread = fields.keys().any(|k| !matches!(k.as_str(), "id" | "time" | "uid"));
    if out.len() == before && unread {
        let parts = Parts::new(Kind::Unknown, Detail::Unknown, Source::Entry, fields.into());
        out.push(ctx.event(parts));
    }
}

/// What the decoders know about the entry an item came from.
pub(crate) struct Context<'a> {
    pub(crate) object: &'a str,
    pub(crate) platform: &'a Platform,
    pub(crate) entry_id: Option<String>,
    pub(crate) entry_time: Option<i64>,
}

/// What a decoder found in one item; [`Context::event`] fills the gaps from the entry.
pub(crate) struct Parts {
    pub(crate) kind: Kind,
    pub(crate) detail: Detail,
    pub(crate) source: Source,
    pub(crate) payload: Value,
    /// `None` when the item has no natural id: the key is then a hash.
    pub(crate) key: Option<String>,
    /// `None` for the entry id.
    pub(crate) account_id: Option<String>,
    pub(crate) user_id: Option<String>,
    /// `None` for the entry time.
    pub(crate) occurred_at: Option<i64>,
}

impl Parts {
    pub(crate) fn new(kind: Kind, detail: Detail, source: Source, payload: Value) -> Self {
        let (key, account_id, user_id, occurred_at) = (None, None, None, None);
        Parts { kind, detail, source, payload, key, account_id, user_id, occurred_at }
    }
}

impl Context<'_> {
    /// The entry id: the Page, Instagram account or WhatsApp business account.
    pub(crate) fn account(&self) -> Option<&str> {
        self.entry_id.as_deref()
    }

    fn event(&self, parts: Parts) -> Event {
        let key = parts.key.clone().unwrap_or_else(|| self.hashed_key(&parts));
        Event {
            platform: self.platform.clone(),
            kind: parts.kind,
            key,
            account_id: parts.account_id.or_else(|| self.entry_id.clone()),
            user_id: parts.user_id,
            occurred_at: parts.occurred_at.or(self.entry_time),
            test: self.entry_id.as_deref() == Some("0"),
            source: parts.source,
            detail: parts.detail,
            payload: parts.payload,
        }
    }

    /// The key of an event without a natural id. A generic change carries no time of its
    /// own, so the entry time is hashed too: the same value notified twice (a template
    /// approved, paused, approved again) is two events. A retry that restamps `entry.time`
    /// then gives a second `change` event; those drive no effects, so the cost is a row.
    fn hashed_key(&self, parts: &Parts) -> String {
        let object = Value::from(self.object);
        let entry = self.entry_id.as_deref().map(Value::from).unwrap_or_default();
        let source = Value::from(match &parts.source {
            Source::Messaging => "messaging",
            Source::Standby => "standby",
            Source::Change(field) => field,
            Source::Entry => "entry",
        });
        let mut key = Key::new(parts.kind.as_str());
        let mut time = Value::Null;
        if let (Kind::Change, Source::Change(field)) = (parts.kind, &parts.source) {
            key = key.part(field);
            time = self.entry_time.map(Value::from).unwrap_or_default();
        }
        key.hash(&[&object, &entry, &source, &time, &parts.payload]).finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::event::{Detail, Event, Kind, Source, split};
    use serde_json::{Value, json};

    fn split_json(body: Value) -> Vec<Event> {
        split(body.to_string().as_bytes()).expect("an envelope")
    }

    fn page(messaging: Value) -> Value {
        let entry = json!({"id": "P", "time": 1700000000000_i64, "messaging": messaging});
        json!({"object": "page", "entry": [entry]})
    }

    #[test]
    fn the_documented_curl_body_with_a_bare_string_message_decodes() {
        let body =
            br#"{"object": "page", "entry": [{"messaging": [{"message": "TEST_MESSAGE"}]}]}"#;
        let [event] = &split(body).unwrap()[..] else { panic!() };
        let Detail::Message(message) = &event.detail else { panic!("{:?}", event.detail) };
        assert_eq!(
            (event.kind, message.text.as_deref(), message.mid.as_deref()),
            (Kind::Message, Some("TEST_MESSAGE"), None)
        );
        assert_eq!((event.account_id.as_deref(), event.occurred_at), (None, None));
        assert!(event.key.starts_with("message:"), "{}", event.key);
    }

    #[test]
    fn empty_entries_yield_no_events() {
        assert!(split_json(json!({"object": "page", "entry": []})).is_empty());
        assert!(split_json(json!({"object": "page", "entry": [{}]})).is_empty());
        assert!(
            split_json(
                json!({"object": "page", "entry": [{"id": "1", "time": 2, "messaging": []}]})
            )
            .is_empty()
        );
        let [unread] =
            &split_json(json!({"object": "page", "entry": [{"id": "1", "hop_context": [1]}]}))[..]
        else {
            panic!()
        };
        assert_eq!((unread.kind, &unread.source), (Kind::Unknown, &Source::Entry));
    }

    #[test]
    fn unknown_kinds_and_unreadable_items_are_kept() {
        let events = split_json(page(json!([
            {"sender": {"id": "u"}, "recipient": {"id": "P"}, "timestamp": 5,
             "game_play": {"score": 1}},
            {"sender": "not an object", "message": {"mid": "m"}},
        ])));
        assert_eq!(
            events.iter().map(|e| e.kind).collect::<Vec<_>>(),
            [Kind::Unknown, Kind::Unknown]
        );
        assert_eq!(events[0].payload["game_play"], json!({"score": 1}));
        assert_eq!(events[0].user_id.as_deref(), Some("u"));
    }

    #[test]
    fn fields_without_values_are_changes() {
        let entry = json!({"id": "9", "time": 1, "changed_fields": ["photos"]});
        let body = json!({"object": "user", "entry": [entry]});
        let [event] = &split_json(body)[..] else { panic!() };
        assert_eq!((event.kind, event.platform.as_str()), (Kind::Change, "user"));
        assert_eq!(event.source, Source::Change("photos".into()));
    }

    #[test]
    fn a_dashboard_test_of_a_messaging_field_sent_as_a_change_is_read_as_messaging() {
        let value = json!({"sender": {"id": "12334"}, "recipient": {"id": "23245"},
                           "timestamp": "1527459824", "postback": {"title": "t", "payload": "p"}});
        let change = json!({"field": "messaging_postbacks", "value": value});
        let body =
            json!({"object": "page", "entry": [{"id": "0", "time": 1, "changes": [change]}]});
        let [event] = &split_json(body)[..] else { panic!() };
        assert_eq!((event.kind, event.test), (Kind::Postback, true));
        assert_eq!(event.source, Source::Change("messaging_postbacks".into()));
        assert_eq!(
            (event.user_id.as_deref(), event.occurred_at),
            (Some("12334"), Some(1_527_459_824_000))
        );
    }
}
