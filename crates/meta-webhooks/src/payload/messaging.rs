//! Messenger and Instagram messaging items: `entry[].messaging[]` and `entry[].standby[]`.
//!
//! An item carries `sender`, `recipient`, `timestamp` and one key naming what happened
//! (`message`, `delivery`, `read`, ...). Every field is optional because Meta omits them in
//! practice: no `sender` on checkbox opt-ins and policy notices, no `timestamp` on old
//! deliveries, a bare string for `message` in the documentation's own curl test. The kind is
//! taken from the first of those keys present, in the order of [`Messaging`]'s fields; an
//! item with none of them, or one whose shape cannot be read at all, is `unknown`.

use serde::{Deserialize, Deserializer, de::Error as _};
use serde_json::Value;

use super::de;
use super::key::{Key, stable_hash};
use super::message::{Delivery, Message, MessageEdit, Reaction, Read};
use super::thread::{
    AccountLinking, Handover, HandoverAction, Optin, PolicyEnforcement, Postback, Referral,
    ThreadControl,
};
use super::{Context, Parts};
use crate::event::{Detail, Kind, Source};

/// One messaging item, as read from the wire.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Messaging {
    /// The user for inbound events, the Page or Instagram account for echoes.
    pub sender: Option<Party>,
    /// The other side of `sender`.
    pub recipient: Option<Party>,
    /// When it happened, in UTC milliseconds.
    #[serde(deserialize_with = "de::millis")]
    pub timestamp: Option<i64>,
    /// A message or, with `is_echo`, a message sent by the Page; may be a bare string.
    #[serde(deserialize_with = "message_or_text")]
    pub message: Option<Message>,
    /// Messages delivered up to a watermark.
    pub delivery: Option<Delivery>,
    /// Messages read up to a watermark (Messenger) or up to a mid (Instagram).
    pub read: Option<Read>,
    /// A button, Get Started or ice breaker tap.
    pub postback: Option<Postback>,
    /// A plugin, checkbox or marketing-messages opt-in or opt-out.
    pub optin: Option<Optin>,
    /// A reaction to a message, or its removal.
    pub reaction: Option<Reaction>,
    /// Entry into an existing thread from a link, an ad or a plugin.
    pub referral: Option<Referral>,
    /// A message edited by the user.
    pub message_edit: Option<MessageEdit>,
    /// Handover protocol: thread control passed to another app.
    pub pass_thread_control: Option<ThreadControl>,
    /// Handover protocol: thread control taken by the primary receiver.
    pub take_thread_control: Option<ThreadControl>,
    /// Handover protocol: thread control requested by a secondary receiver.
    pub request_thread_control: Option<ThreadControl>,
    /// Handover protocol: the roles apps hold on the Page, keyed by app id.
    pub app_roles: Option<Value>,
    /// A policy warning, block or unblock of the Page's messaging.
    pub policy_enforcement: Option<PolicyEnforcement>,
    /// The same, as spelled by 2017-era payloads.
    #[serde(rename = "policy-enforcement")]
    pub policy_enforcement_hyphen: Option<PolicyEnforcement>,
    /// Account linking or unlinking.
    pub account_linking: Option<AccountLinking>,
}

/// A `sender` or `recipient`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Party {
    /// PSID, IGSID, Page id or Instagram account id.
    #[serde(deserialize_with = "de::text")]
    pub id: Option<String>,
    /// Checkbox-plugin reference, when the user has no PSID yet.
    #[serde(deserialize_with = "de::text")]
    pub user_ref: Option<String>,
}

fn message_or_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Message>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(text) => Ok(Some(Message { text: Some(text), ..Message::default() })),
        other => Message::deserialize(other).map(Some).map_err(D::Error::custom),
    }
}

/// Decodes one messaging item; an item that cannot be read is an `unknown` event.
pub(crate) fn decode(item: Value, source: Source, ctx: &Context) -> Parts {
    let Ok(messaging) = Messaging::deserialize(&item) else {
        return Parts::new(Kind::Unknown, Detail::Unknown, source, item);
    };
    let user_id = messaging.user_id(ctx.account());
    let occurred_at = messaging.timestamp;
    let (kind, detail) = messaging.into_detail();
    let key = natural_key(kind, &detail, ctx.account(), user_id.as_deref(), occurred_at);
    Parts { key, user_id, occurred_at, ..Parts::new(kind, detail, source, item) }
}

impl Messaging {
    /// The user's side: the recipient of an echo, else the sender; the other side instead
    /// when that one is the account itself. Without a sender (checkbox opt-ins, policy
    /// notices, app roles) there is no user: the recipient is then the account.
    fn user_id(&self, account: Option<&str>) -> Option<String> {
        let echo = self.message.as_ref().is_some_and(|m| m.is_echo);
        let sender = self.sender.as_ref().and_then(|p| p.id.as_deref());
        let recipient = self.recipient.as_ref().and_then(|p| p.id.as_deref());
        let (user, other) = if echo { (recipient, sender) } else { (sender, recipient) };
        let user = if user.is_some() && user == account { other } else { user };
        user.filter(|id| Some(*id) != account).map(str::to_owned)
    }

    /// The kind and detail of the first event key present, in field order.
    fn into_detail(self) -> (Kind, Detail) {
        if let Some(m) = self.message {
            let kind = if m.is_echo { Kind::MessageEcho } else { Kind::Message };
            return (kind, Detail::Message(m));
        }
        let handover = [
            (HandoverAction::Pass, self.pass_thread_control),
            (HandoverAction::Take, self.take_thread_control),
            (HandoverAction::Request, self.request_thread_control),
        ]
        .into_iter()
        .find_map(|(action, c)| c.map(|control| Handover { action, control, app_roles: None }))
        .or_else(|| {
            let roles = Some(self.app_roles?);
            let control = ThreadControl::default();
            Some(Handover { action: HandoverAction::AppRoles, control, app_roles: roles })
        });
        let policy = self.policy_enforcement.or(self.policy_enforcement_hyphen);
        let delivery = self.delivery.map(|d| (Kind::Delivery, Detail::Delivery(d)));
        delivery
            .or_else(|| self.read.map(|r| (Kind::Read, Detail::Read(r))))
            .or_else(|| self.postback.map(|p| (Kind::Postback, Detail::Postback(p))))
            .or_else(|| self.optin.map(|o| (Kind::Optin, Detail::Optin(o))))
            .or_else(|| self.reaction.map(|r| (Kind::Reaction, Detail::Reaction(r))))
            .or_else(|| self.referral.map(|r| (Kind::Referral, Detail::Referral(r))))
            .or_else(|| self.message_edit.map(|e| (Kind::MessageEdit, Detail::MessageEdit(e))))
            .or_else(|| handover.map(|h| (Kind::Handover, Detail::Handover(h))))
            .or_else(|| policy.map(|p| (Kind::PolicyEnforcement, Detail::PolicyEnforcement(p))))
            .or_else(|| {
                self.account_linking.map(|l| (Kind::AccountLinking, Detail::AccountLinking(l)))
            })
            .unwrap_or((Kind::Unknown, Detail::Unknown))
    }
}

/// The natural key of a messaging event for account `a` and user `u` at time `ts`, or `None`
/// when it has none. Events with a mid are named by user and mid; events without one by
/// account, user, time and (where two could share a millisecond) what they did.
fn natural_key(
    kind: Kind,
    detail: &Detail,
    a: Option<&str>,
    u: Option<&str>,
    ts: Option<i64>,
) -> Option<String> {
    let key = || Key::new(kind.as_str());
    let timed = |who: Option<&str>, what: Option<&str>| {
        ts.map(|t| key().opt(a).opt(who).num(Some(t)).some(what).finish())
    };
    match detail {
        Detail::Message(m) => {
            let key = key().opt(u).part(m.mid.as_deref()?);
            Some(if m.is_deleted { key.part("deleted") } else { key }.finish())
        }
        Detail::Delivery(d) => match (d.watermark, d.mids.is_empty()) {
            (Some(w), _) => Some(key().opt(a).opt(u).num(Some(w)).finish()),
            (None, false) => {
                let mids = Value::from(d.mids.clone());
                Some(key().opt(a).opt(u).part("mids").hash(&[&mids]).finish())
            }
            (None, true) => None,
        },
        Detail::Read(r) => match (r.watermark, r.mid.as_deref()) {
            (Some(w), _) => Some(key().opt(a).opt(u).num(Some(w)).finish()),
            (None, Some(mid)) => Some(key().opt(a).opt(u).part("mid").part(mid).finish()),
            (None, None) => None,
        },
        Detail::Postback(p) => match p.mid.as_deref() {
            Some(mid) => Some(key().opt(u).part(mid).finish()),
            None => timed(u, None),
        },
        Detail::Optin(o) => timed(u.or(o.user_ref.as_deref()), o.optin_type.as_deref()),
        Detail::Reaction(r) => {
            let emoji = r.emoji.as_deref().or(r.reaction.as_deref());
            let key = key().opt(u).part(r.mid.as_deref()?).opt(r.action.as_deref());
            Some(key.opt(emoji).num(ts).finish())
        }
        Detail::Referral(_) => timed(u, None),
        Detail::MessageEdit(e) => {
            let version = match (e.num_edit, e.text.as_deref()) {
                (Some(n), _) => format!("n{n}"),
                (None, Some(t)) => format!("t{:016x}", stable_hash(&[&Value::from(t)])),
                (None, None) => format!("@{}", ts?),
            };
            Some(key().opt(u).part(e.mid.as_deref()?).part(version).finish())
        }
        Detail::Handover(h) => timed(u, Some(h.action.as_str())),
        Detail::PolicyEnforcement(p) => {
            ts.map(|t| key().opt(a).num(Some(t)).some(p.action.as_deref()).finish())
        }
        Detail::AccountLinking(l) => timed(u, l.status.as_deref()),
        _ => None,
    }
}
