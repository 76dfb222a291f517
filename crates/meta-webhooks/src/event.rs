//! Splitting a stored delivery into events, each with a natural key for dedupe.
//!
//! [`split`] fails only when the body is not a JSON object with a string `object` and an array
//! `entry`: that body was refused with a 400 and never stored. Everything inside is decoded
//! item by item, and an item that cannot be understood becomes an `unknown` (messaging) or
//! `change` (changes) event with its JSON kept, so one odd item never hides the others.
//!
//! An event's key is the same for the same event however often Meta sends it (in a retry, or
//! twice in one delivery) and differs between distinct events; the scheme per kind is in the
//! crate's `payload` modules and summed up on [`Event::key`]. Where an event has no natural id
//! the key is its kind plus a hash of its JSON, the object and the entry id.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use crate::envelope::{Plain, Root};
use crate::payload;

/// One thing that happened, as decoded from a delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Which product the delivery came from.
    pub platform: Platform,
    /// What happened.
    pub kind: Kind,
    /// Natural key for dedupe: `message:{user}:{mid}`, `delivery:{account}:{user}:{watermark}`,
    /// `whatsapp_status:{wamid}:{status}`, `feed:{item}:{verb}:{id}:{from}:{time}`, ...;
    /// `{kind}:{hash}` (`change:{field}:{hash}`) when nothing natural exists.
    pub key: String,
    /// Page id, Instagram account id, or WhatsApp `phone_number_id`.
    pub account_id: Option<String>,
    /// The user on the other side: PSID, IGSID or WhatsApp `wa_id`; for echoes the recipient.
    pub user_id: Option<String>,
    /// When it happened, in UTC milliseconds: the event's own time, else `entry.time`.
    pub occurred_at: Option<i64>,
    /// A Meta dashboard test payload (`entry.id` is `"0"`): store it, act on nothing.
    pub test: bool,
    /// Where in the entry the event was found.
    pub source: Source,
    /// The typed content.
    pub detail: Detail,
    /// The event's own JSON: the messaging item, the change, or the WhatsApp message or status.
    pub payload: Value,
}

/// The product a delivery came from, named after its `object`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Platform {
    /// Object `page`: Messenger and Page changes.
    Facebook,
    /// Object `instagram`.
    Instagram,
    /// Object `whatsapp_business_account`.
    Whatsapp,
    /// Any other object (`user`, `permissions`, ...), under its own name (cut like a key
    /// when it is absurdly long).
    Other(String),
}

impl Platform {
    /// The platform of a delivery's `object`.
    pub fn from_object(object: &str) -> Self {
        match object {
            "page" => Platform::Facebook,
            "instagram" => Platform::Instagram,
            "whatsapp_business_account" => Platform::Whatsapp,
            other => Platform::Other(payload::key::bounded(other.to_owned())),
        }
    }

    /// `facebook`, `instagram`, `whatsapp`, or the object's own name.
    pub fn as_str(&self) -> &str {
        match self {
            Platform::Facebook => "facebook",
            Platform::Instagram => "instagram",
            Platform::Whatsapp => "whatsapp",
            Platform::Other(name) => name,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an event is. The first thirteen come from `messaging` and `standby`, the rest from
/// `changes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A message from the user.
    Message,
    /// A message sent by the Page or account, echoed back.
    MessageEcho,
    /// Messages delivered up to a watermark.
    Delivery,
    /// Messages read up to a watermark or a mid.
    Read,
    /// A button or ice breaker tap.
    Postback,
    /// An opt-in or opt-out.
    Optin,
    /// A reaction to a message, or its removal.
    Reaction,
    /// Entry into a thread from a link, ad or plugin.
    Referral,
    /// A message edited by the user.
    MessageEdit,
    /// A handover protocol event.
    Handover,
    /// A policy warning, block or unblock.
    PolicyEnforcement,
    /// Account linking or unlinking.
    AccountLinking,
    /// A messaging item of a kind not known here.
    Unknown,
    /// An Instagram comment.
    Comment,
    /// An Instagram mention in a caption or comment.
    Mention,
    /// An Instagram story's final metrics.
    StoryInsights,
    /// A comment on an Instagram live broadcast.
    LiveComment,
    /// A Page feed change.
    Feed,
    /// An inbound WhatsApp message.
    WhatsappMessage,
    /// A status of a WhatsApp message the business sent.
    WhatsappStatus,
    /// Any other change, kept under its field name.
    Change,
}

impl Kind {
    /// Every kind, in declaration order.
    pub const ALL: [Kind; 21] = [
        Kind::Message,
        Kind::MessageEcho,
        Kind::Delivery,
        Kind::Read,
        Kind::Postback,
        Kind::Optin,
        Kind::Reaction,
        Kind::Referral,
        Kind::MessageEdit,
        Kind::Handover,
        Kind::PolicyEnforcement,
        Kind::AccountLinking,
        Kind::Unknown,
        Kind::Comment,
        Kind::Mention,
        Kind::StoryInsights,
        Kind::LiveComment,
        Kind::Feed,
        Kind::WhatsappMessage,
        Kind::WhatsappStatus,
        Kind::Change,
    ];

    /// The kind's name in the contract (`message_echo`, `whatsapp_status`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Message => "message",
            Kind::MessageEcho => "message_echo",
            Kind::Delivery => "delivery",
            Kind::Read => "read",
            Kind::Postback => "postback",
            Kind::Optin => "optin",
            Kind::Reaction => "reaction",
            Kind::Referral => "referral",
            Kind::MessageEdit => "message_edit",
            Kind::Handover => "handover",
            Kind::PolicyEnforcement => "policy_enforcement",
            Kind::AccountLinking => "account_linking",
            Kind::Unknown => "unknown",
            Kind::Comment => "comment",
            Kind::Mention => "mention",
            Kind::StoryInsights => "story_insights",
            Kind::LiveComment => "live_comment",
            Kind::Feed => "feed",
            Kind::WhatsappMessage => "whatsapp_message",
            Kind::WhatsappStatus => "whatsapp_status",
            Kind::Change => "change",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = UnknownKind;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name).ok_or_else(|| UnknownKind(name.into()))
    }
}

/// A kind name that is not in the contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event kind `{0}`")]
pub struct UnknownKind(pub String);

/// Where in an entry an event was found.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// `entry[].messaging[]`.
    Messaging,
    /// `entry[].standby[]`: the app does not own the thread, so it must not reply.
    Standby,
    /// `entry[].changes[]` (or `changed_fields`), with the field name (empty if missing).
    Change(String),
    /// The entry itself, when it is not an object or holds nothing known.
    Entry,
}

/// The typed content of an event; the variant follows the [`Kind`].
#[derive(Debug, Clone, PartialEq)]
pub enum Detail {
    /// `message` and `message_echo`.
    Message(payload::Message),
    /// `delivery`.
    Delivery(payload::Delivery),
    /// `read`.
    Read(payload::Read),
    /// `postback`.
    Postback(payload::Postback),
    /// `optin`.
    Optin(payload::Optin),
    /// `reaction`.
    Reaction(payload::Reaction),
    /// `referral`.
    Referral(payload::Referral),
    /// `message_edit`.
    MessageEdit(payload::MessageEdit),
    /// `handover`.
    Handover(payload::Handover),
    /// `policy_enforcement`.
    PolicyEnforcement(payload::PolicyEnforcement),
    /// `account_linking`.
    AccountLinking(payload::AccountLinking),
    /// `feed`.
    Feed(payload::Feed),
    /// `comment` and `live_comment`.
    Comment(payload::Comment),
    /// `mention`.
    Mention(payload::Mention),
    /// `story_insights`.
    StoryInsights(payload::StoryInsights),
    /// `whatsapp_message`.
    WhatsappMessage(Box<payload::WhatsappMessage>),
    /// `whatsapp_status`.
    WhatsappStatus(payload::WhatsappStatus),
    /// A `change` for WhatsApp `value.errors`: errors not tied to one message.
    WhatsappErrors(Vec<payload::WhatsappError>),
    /// Any other `change`: the field name and the value as sent.
    Change {
        /// The change's `field`.
        field: String,
        /// The change's `value`.
        value: Value,
    },
    /// `unknown`, or a change without a field: see the payload.
    Unknown,
}

/// Why a body could not be split.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The body is not JSON.
    #[error("body is not json: {0}")]
    Json(#[from] serde_json::Error),
    /// The body is JSON of another shape.
    #[error("body is not a json object with a string `object` and an array `entry`")]
    NotEnvelope,
}

/// Splits a delivery into its events, in the order they appear.
///
/// A NUL character (`\u0000`, valid JSON) is read as U+FFFD wherever it appears: no text
/// column of PostgreSQL can hold it, and the stored body keeps the bytes as sent.
pub fn split(body: &[u8]) -> Result<Vec<Event>, DecodeError> {
    // Read through the receiver's own envelope check, so that what it stored always splits
    // and both read the same `object`.
    let Root { object, entry } = serde_json::from_slice::<Root<Vec<Plain>>>(body)
        .map_err(|e| if e.is_data() { DecodeError::NotEnvelope } else { DecodeError::Json(e) })?;
    let entries = entry.into_iter().map(|Plain(value)| value);
    let platform = Platform::from_object(&object);
    let mut events = Vec::new();
    for entry in entries {
        payload::split_entry(&object, &platform, entry, &mut events);
    }
    Ok(events)
}

/// Replaces each NUL in `text` with U+FFFD (see [`split`]).
pub(crate) fn replace_nul(text: &mut String) {
    if text.contains('\0') {
        *text = text.replace('\0', "\u{fffd}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn split_json(body: Value) -> Vec<Event> {
        split(body.to_string().as_bytes()).expect("an envelope")
    }

    fn page(messaging: Value) -> Value {
        let entry = json!({"id": "P", "time": 1700000000000_i64, "messaging": messaging});
        json!({"object": "page", "entry": [entry]})
    }

    #[test]
    fn only_a_body_that_is_not_an_envelope_is_an_error() {
        for body in
            [&b"not json"[..], b"[]", br#"{"object":"page"}"#, br#"{"object":1,"entry":[]}"#]
        {
            assert!(split(body).is_err(), "{}", String::from_utf8_lossy(body));
        }
        let events = split_json(json!({"object": "page", "entry": [1, "x", null, []]}));
        assert_eq!(events.iter().map(|e| e.kind).collect::<Vec<_>>(), [Kind::Unknown; 4]);
        assert!(events.iter().all(|e| e.source == Source::Entry));
    }

    #[test]
    fn nul_characters_are_read_as_the_replacement_character() {
        let item = json!({"sender": {"id": "U\u{0}"}, "recipient": {"id": "P"}, "timestamp": 1,
                          "message": {"mid": "m\u{0}", "text": "a\u{0}b"}});
        let body = page(json!([item])).to_string();
        assert!(body.contains(r"\u0000"), "{body}");
        let events = split(body.as_bytes()).unwrap();
        assert_eq!(events[0].user_id.as_deref(), Some("U\u{fffd}"));
        assert_eq!(events[0].key, "message:U\u{fffd}:m\u{fffd}");
        assert_eq!(events[0].payload["message"]["text"], "a\u{fffd}b");
    }

    #[test]
    fn a_redelivered_event_keeps_its_key_and_distinct_events_differ() {
        let item = |mid: &str, user: &str, ts: i64| {
            json!({"sender": {"id": user}, "recipient": {"id": "P"}, "timestamp": ts,
                   "message": {"mid": mid}})
        };
        let keys =
            |items: Value| split_json(page(items)).into_iter().map(|e| e.key).collect::<Vec<_>>();
        let first = keys(json!([item("m1", "u", 1)]));
        assert_eq!(first, keys(json!([item("m1", "u", 1)])));
        assert_eq!(first, ["message:u:m1"]);
        let distinct = keys(json!([item("m1", "u", 1), item("m2", "u", 1), item("m1", "v", 1)]));
        assert_eq!(distinct, ["message:u:m1", "message:u:m2", "message:v:m1"]);

        let reaction = |action: &str, ts: i64| {
            json!({"sender": {"id": "u"}, "recipient": {"id": "P"}, "timestamp": ts,
                   "reaction": {"mid": "m1", "action": action, "emoji": "x"}})
        };
        let reactions =
            keys(json!([reaction("react", 1), reaction("unreact", 2), reaction("react", 3)]));
        assert_eq!(
            reactions,
            [
                "reaction:u:m1:react:x:1000",
                "reaction:u:m1:unreact:x:2000",
                "reaction:u:m1:react:x:3000"
            ]
        );

        let edit = |n: i64| {
            json!({"sender": {"id": "u"}, "timestamp": 1,
                   "message_edit": {"mid": "m1", "num_edit": n}})
        };
        assert_eq!(
            keys(json!([edit(1), edit(2)])),
            ["message_edit:u:m1:n1", "message_edit:u:m1:n2"]
        );
    }

    #[test]
    fn events_without_a_natural_id_are_keyed_by_a_hash_of_their_json() {
        let unknown = |score: i64| {
            json!({"sender": {"id": "u"}, "timestamp": 5,
                   "game_play": {"score": score}})
        };
        let a = split_json(page(json!([unknown(1), unknown(1), unknown(2)])));
        assert_eq!(a[0].key, a[1].key);
        assert_ne!(a[0].key, a[2].key);
        assert!(a[0].key.starts_with("unknown:") && a[0].key.len() == "unknown:".len() + 16);
    }

    #[test]
    fn a_hashed_key_does_not_depend_on_how_a_number_is_spelled() {
        // Found by the split fuzz target: serde_json's default float parser is not correctly
        // rounded, so the shortest spelling of a large number read back as another number.
        let body = |n: &str| {
            let item = format!(r#"{{"sender":{{"id":"u"}},"game_play":{{"score":{n}}}}}"#);
            format!(r#"{{"object":"page","entry":[{{"id":"P","messaging":[{item}]}}]}}"#)
        };
        let digits = format!("1458888888888889{}", "0".repeat(96));
        let keys = [digits.as_str(), "1.458888888888889e111", "1.458888888888889e+111"]
            .map(|n| split(body(n).as_bytes()).expect("an envelope")[0].key.clone());
        assert_eq!(keys[0], keys[1]);
        assert_eq!(keys[1], keys[2]);
    }

    #[test]
    fn a_body_the_envelope_check_refuses_does_not_split() {
        // Found by the split fuzz target: the receiver stored the first `object`, a map-based
        // reader decoded the last one.
        for body in [
            &br#"{"object":"whatsapp_business_account","object":"instagram","entry":[]}"#[..],
            br#"{"object":"page","entry":[],"entry":[{}]}"#,
            br#"{"object":"page","entry":{}}"#,
        ] {
            assert!(crate::Envelope::parse(body).is_err());
            assert!(split(body).is_err(), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in Kind::ALL {
            assert_eq!(kind.as_str().parse::<Kind>(), Ok(kind));
        }
        assert!("messages".parse::<Kind>().is_err());
        assert_eq!(Platform::from_object("whatsapp_business_account").as_str(), "whatsapp");
    }
}
