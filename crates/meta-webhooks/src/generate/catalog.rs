//! The kinds the generator can produce, named `platform.kind` after the contract.
//!
//! Each name pairs a platform (`facebook`, `instagram`, `whatsapp`) with the event kind
//! [`crate::split`] must find in the body, so a test can check every entry against the
//! decoder. Users may also name a bare kind (`message`: every platform that has it), a
//! platform (`instagram`: all of its kinds), or `all`.

use std::fmt;

use crate::event::Kind;

/// The `object` a delivery is sent under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Object {
    /// `page`: Messenger and Page changes.
    Page,
    /// `instagram`.
    Instagram,
    /// `whatsapp_business_account`.
    Whatsapp,
}

impl Object {
    /// The envelope's `object` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Object::Page => "page",
            Object::Instagram => "instagram",
            Object::Whatsapp => "whatsapp_business_account",
        }
    }

    /// The contract's platform name for this object.
    pub fn platform(self) -> &'static str {
        match self {
            Object::Page => "facebook",
            Object::Instagram => "instagram",
            Object::Whatsapp => "whatsapp",
        }
    }
}

/// One kind the generator produces.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Spec {
    /// `platform.kind`, as typed on the command line.
    pub name: &'static str,
    /// The object it is delivered under.
    pub object: Object,
    /// The kind [`crate::split`] finds in it.
    pub kind: Kind,
    /// One line for `--list`.
    pub description: &'static str,
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

const fn spec(name: &'static str, object: Object, kind: Kind, description: &'static str) -> Spec {
    Spec { name, object, kind, description }
}

use Object::{Instagram as Ig, Page, Whatsapp as Wa};

/// Every kind the generator produces, grouped by platform.
pub static CATALOG: &[Spec] = &[
    spec(
        "facebook.message",
        Page,
        Kind::Message,
        "a user writes to a Page: text, quick reply, reply, image, sticker or voice clip",
    ),
    spec(
        "facebook.message_echo",
        Page,
        Kind::MessageEcho,
        "a message the Page sent, echoed back with the sending app's id",
    ),
    spec(
        "facebook.delivery",
        Page,
        Kind::Delivery,
        "the Page's messages delivered up to a watermark (ms)",
    ),
    spec("facebook.read", Page, Kind::Read, "the Page's messages read up to a watermark (ms)"),
    spec(
        "facebook.postback",
        Page,
        Kind::Postback,
        "a tap on Get Started, a menu item or a button",
    ),
    spec(
        "facebook.optin",
        Page,
        Kind::Optin,
        "a plugin opt-in or a marketing messages subscription with its token",
    ),
    spec(
        "facebook.reaction",
        Page,
        Kind::Reaction,
        "a user reacts to a message, or takes the reaction back",
    ),
    spec(
        "facebook.referral",
        Page,
        Kind::Referral,
        "a user comes back to a thread through an m.me link or an ad",
    ),
    spec("facebook.message_edit", Page, Kind::MessageEdit, "a user edits a message they sent"),
    spec(
        "facebook.handover",
        Page,
        Kind::Handover,
        "thread control passed, taken or requested between apps",
    ),
    spec(
        "facebook.policy_enforcement",
        Page,
        Kind::PolicyEnforcement,
        "Meta warns or blocks the Page's messaging (no sender)",
    ),
    spec(
        "facebook.account_linking",
        Page,
        Kind::AccountLinking,
        "a user links or unlinks their account",
    ),
    spec(
        "facebook.unknown",
        Page,
        Kind::Unknown,
        "a messaging event metahook does not model (game_play)",
    ),
    spec(
        "facebook.feed",
        Page,
        Kind::Feed,
        "a Page feed change: a post, a comment, a reply or a reaction",
    ),
    spec("facebook.change", Page, Kind::Change, "another Page field: a leadgen form submission"),
    spec(
        "instagram.message",
        Ig,
        Kind::Message,
        "a DM: text, photo, shared post, story mention, story reply or like",
    ),
    spec("instagram.message_echo", Ig, Kind::MessageEcho, "a DM the account sent, echoed back"),
    spec("instagram.read", Ig, Kind::Read, "a DM seen by the user (by mid, not by watermark)"),
    spec("instagram.postback", Ig, Kind::Postback, "a tap on an ice breaker or a template button"),
    spec(
        "instagram.reaction",
        Ig,
        Kind::Reaction,
        "a user reacts to a DM, or takes the reaction back",
    ),
    spec("instagram.referral", Ig, Kind::Referral, "a user opens a thread through an ig.me link"),
    spec(
        "instagram.message_edit",
        Ig,
        Kind::MessageEdit,
        "a user edits a DM (mid and edit count only)",
    ),
    spec("instagram.handover", Ig, Kind::Handover, "thread control passed to another app"),
    spec(
        "instagram.comment",
        Ig,
        Kind::Comment,
        "a comment or a reply on a post or reel; entry.time in seconds",
    ),
    spec("instagram.live_comment", Ig, Kind::LiveComment, "a comment during a live broadcast"),
    spec(
        "instagram.mention",
        Ig,
        Kind::Mention,
        "the account @mentioned in a caption or a comment",
    ),
    spec("instagram.story_insights", Ig, Kind::StoryInsights, "a story's metrics when it expires"),
    spec(
        "whatsapp.whatsapp_message",
        Wa,
        Kind::WhatsappMessage,
        "an inbound message: text, photo, voice note, location, button reply or reaction",
    ),
    spec(
        "whatsapp.whatsapp_status",
        Wa,
        Kind::WhatsappStatus,
        "a status of a message the business sent: sent, delivered, read or failed",
    ),
    spec(
        "whatsapp.change",
        Wa,
        Kind::Change,
        "another WhatsApp field: a message template approved, rejected or paused",
    ),
];

/// A name that matches nothing in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown kind `{0}`: see --list")]
pub struct UnknownSpec(pub String);

/// The catalog entry called `name` exactly.
pub fn find(name: &str) -> Option<&'static Spec> {
    CATALOG.iter().find(|s| s.name == name)
}

/// The entries a command-line name stands for: `facebook.message`, `messenger.message`, a
/// bare kind (`message`, `whatsapp_status`), a platform (`instagram`), or `all`.
pub fn resolve(name: &str) -> Result<Vec<&'static Spec>, UnknownSpec> {
    let name = name.trim().to_ascii_lowercase();
    let name = match name.strip_prefix("messenger") {
        Some(rest) if rest.is_empty() || rest.starts_with('.') => format!("facebook{rest}"),
        _ => name,
    };
    let matches: Vec<&'static Spec> = CATALOG
        .iter()
        .filter(|s| {
            let (platform, kind) = s.name.split_once('.').expect("catalog names have a dot");
            name == "all" || name == s.name || name == platform || name == kind
        })
        .collect();
    if matches.is_empty() { Err(UnknownSpec(name)) } else { Ok(matches) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_contract_kind_has_an_entry_and_names_follow_platform_dot_kind() {
        for kind in Kind::ALL {
            assert!(CATALOG.iter().any(|s| s.kind == kind), "{kind} missing");
        }
        for s in CATALOG {
            assert_eq!(s.name, format!("{}.{}", s.object.platform(), s.kind.as_str()));
            assert!(s.description.len() < 100, "{} description too long", s.name);
        }
    }

    #[test]
    fn names_resolve_to_entries() {
        let names = |n: &str| resolve(n).unwrap().iter().map(|s| s.name).collect::<Vec<_>>();
        assert_eq!(names("message"), ["facebook.message", "instagram.message"]);
        assert_eq!(names("Messenger.read"), ["facebook.read"]);
        assert_eq!(names("whatsapp_status"), ["whatsapp.whatsapp_status"]);
        assert_eq!(names("whatsapp").len(), 3);
        assert_eq!(names("all").len(), CATALOG.len());
        assert!(resolve("messages").is_err());
    }
}
