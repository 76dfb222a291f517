//! Messenger and Instagram messaging events: `entry[].messaging[]` items.
//!
//! Every item is `sender`, `recipient`, `timestamp` (milliseconds) and one key naming what
//! happened, in that order. [`Thread`] holds the two sides of one conversation and writes
//! items for it; `facebook` and `instagram` draw one event of a requested kind with
//! random content, and the conversation builder uses the same [`Thread`] to write coherent
//! ones.

use super::catalog::Object;
use super::json::{Json, Opt, obj};
use super::rng::Rng;
use super::world::{self, PAGE_INBOX_APP_ID};
use super::{Generator, Item, Slot, ids};
use crate::event::Kind;

/// One conversation: an account (Page or Instagram account) and a person.
#[derive(Debug, Clone)]
pub struct Thread {
    /// `Page` or `Instagram`.
    pub object: Object,
    /// Page id or Instagram account id: the entry id.
    pub account: String,
    /// PSID or IGSID.
    pub user: String,
}

impl Thread {
    /// An item sent by the person to the account.
    pub fn from_user(&self, ts: i64, key: &str, body: Json) -> Json {
        self.item(Some(&self.user), &self.account, ts, key, body)
    }

    /// An item sent by the account to the person (echoes).
    pub fn from_account(&self, ts: i64, key: &str, body: Json) -> Json {
        self.item(Some(&self.account), &self.user, ts, key, body)
    }

    /// An item about the account with no sender (policy notices).
    pub fn without_sender(&self, ts: i64, key: &str, body: Json) -> Json {
        self.item(None, &self.account, ts, key, body)
    }

    /// Wraps an item as an [`Item`] of `kind`, sent at `ts`.
    pub fn event(&self, kind: Kind, ts: i64, item: Json) -> Item {
        Item::new(self.object, kind, self.account.clone(), ts, Slot::Messaging(item))
    }

    /// A new message id in this thread's format.
    pub fn mid(&self, rng: &mut Rng) -> String {
        match self.object {
            Object::Instagram => ids::instagram_mid(rng, &self.account),
            _ => ids::messenger_mid(rng),
        }
    }

    /// The `message` of an echo: Messenger names the sending app, Instagram does not.
    pub fn echo_body(&self, mid: &str, text: &str, app_id: &str) -> Json {
        match self.object {
            Object::Instagram => obj! {"mid" => mid, "text" => text, "is_echo" => true},
            _ => obj! {"is_echo" => true, "app_id" => number(app_id), "mid" => mid, "text" => text},
        }
    }

    fn item(&self, sender: Option<&str>, recipient: &str, ts: i64, key: &str, body: Json) -> Json {
        let mut fields = Vec::with_capacity(4);
        if let Some(sender) = sender {
            fields.push(("sender".to_owned(), obj! {"id" => sender}));
        }
        fields.push(("recipient".to_owned(), obj! {"id" => recipient}));
        fields.push(("timestamp".to_owned(), ts.into()));
        fields.push((key.to_owned(), body));
        Json::Object(fields)
    }
}

/// A decimal id written as a JSON number, as Meta writes app ids in echoes.
pub(super) fn number(id: &str) -> Json {
    id.parse::<u64>().map_or_else(|_| id.into(), Json::from)
}

/// One Messenger event of `kind` with random content.
pub(super) fn facebook(g: &mut Generator, kind: Kind) -> Item {
    let t = g.thread(Object::Page);
    let ts = g.tick();
    let app_id = g.world.app_id.clone();
    let rng = &mut g.rng;
    let item = match kind {
        Kind::Message => t.from_user(ts, "message", messenger_message(rng, &t)),
        Kind::MessageEcho => {
            let app = if rng.chance(0.3) { PAGE_INBOX_APP_ID } else { &app_id };
            let text = *rng.pick(world::REPLIES);
            let body = t.echo_body(&t.mid(rng), text, app);
            t.from_account(ts, "message", body)
        }
        Kind::Delivery => {
            let mids: Vec<Json> = (0..rng.between(0, 2)).map(|_| t.mid(rng).into()).collect();
            let watermark = ts - rng.between(100, 4000);
            let mids = Opt((!mids.is_empty()).then_some(mids));
            t.from_user(ts, "delivery", obj! {"mids" => mids, "watermark" => watermark})
        }
        Kind::Read => t.from_user(ts, "read", obj! {"watermark" => ts - rng.between(100, 60_000)}),
        Kind::Postback => t.from_user(ts, "postback", postback(rng, &t)),
        Kind::Optin => t.from_user(ts, "optin", optin(rng, ts)),
        Kind::Reaction => t.from_user(ts, "reaction", reaction(rng, &t)),
        Kind::Referral => t.from_user(ts, "referral", referral(rng, Object::Page)),
        Kind::MessageEdit => {
            let body = obj! {"mid" => t.mid(rng), "text" => *rng.pick(world::EDITS),
            "num_edit" => rng.between(1, 5)};
            t.from_user(ts, "message_edit", body)
        }
        Kind::Handover => handover(rng, &t, ts, &app_id),
        Kind::PolicyEnforcement => {
            let (action, reason) = *rng.pick(POLICY);
            let body = obj! {"action" => action, "reason" => Opt(reason)};
            t.without_sender(ts, "policy_enforcement", body)
        }
        Kind::AccountLinking => {
            let body = if rng.chance(0.8) {
                obj! {"status" => "linked", "authorization_code" => ids::token(rng, 32)}
            } else {
                obj! {"status" => "unlinked"}
            };
            t.from_user(ts, "account_linking", body)
        }
        _ => {
            let body = obj! {"game_id" => rng.digits(16), "player_id" => rng.digits(16),
            "context_type" => "SOLO", "score" => rng.between(0, 9999),
            "payload" => "{\"level\":3}"};
            t.from_user(ts, "game_play", body)
        }
    };
    t.event(kind, ts, item)
}

/// One Instagram messaging event of `kind` with random content.
pub(super) fn instagram(g: &mut Generator, kind: Kind) -> Item {
    let t = g.thread(Object::Instagram);
    let ts = g.tick();
    let app_id = g.world.app_id.clone();
    let rng = &mut g.rng;
    let item = match kind {
        Kind::MessageEcho => {
            let text = *rng.pick(world::REPLIES);
            t.from_account(ts, "message", t.echo_body(&t.mid(rng), text, ""))
        }
        Kind::Read => t.from_user(ts, "read", obj! {"mid" => t.mid(rng)}),
        Kind::Postback => t.from_user(ts, "postback", postback(rng, &t)),
        Kind::Reaction => t.from_user(ts, "reaction", reaction(rng, &t)),
        Kind::Referral => t.from_user(ts, "referral", referral(rng, Object::Instagram)),
        Kind::MessageEdit => {
            let body = obj! {"mid" => t.mid(rng), "num_edit" => rng.between(0, 4)};
            t.from_user(ts, "message_edit", body)
        }
        Kind::Handover => handover(rng, &t, ts, &app_id),
        _ => t.from_user(ts, "message", instagram_message(rng, &t)),
    };
    t.event(kind, ts, item)
}

fn messenger_message(rng: &mut Rng, t: &Thread) -> Json {
    let mid = t.mid(rng);
    let text = *rng.pick(world::INBOUND);
    match rng.weighted(&[60, 10, 10, 10, 5, 5]) {
        0 => obj! {"mid" => mid, "text" => text},
        1 => {
            let (title, payload) = *rng.pick(QUICK_REPLIES);
            obj! {"mid" => mid, "text" => title, "quick_reply" => obj! {"payload" => payload}}
        }
        2 => {
            let reply_to = obj! {"mid" => t.mid(rng), "is_self_reply" => false};
            obj! {"mid" => mid, "text" => text, "reply_to" => reply_to}
        }
        3 => attachment(mid, "image", obj! {"url" => cdn_url(rng, "jpg")}),
        4 => {
            // The thumbs-up "like" sticker, still sent as an image during Meta's transition.
            let payload = obj! {"url" => cdn_url(rng, "png"), "sticker_id" => 369239263222822_u64};
            attachment(mid, "image", payload)
        }
        _ => attachment(mid, "audio", obj! {"url" => cdn_url(rng, "mp4")}),
    }
}

fn instagram_message(rng: &mut Rng, t: &Thread) -> Json {
    let mid = t.mid(rng);
    let text = *rng.pick(world::INBOUND);
    match rng.weighted(&[65, 10, 8, 7, 5, 5]) {
        0 => obj! {"mid" => mid, "text" => text},
        1 => attachment(mid, "image", obj! {"url" => lookaside_url(rng)}),
        2 => attachment(mid, "share", obj! {"url" => lookaside_url(rng)}),
        3 => attachment(mid, "story_mention", obj! {"url" => lookaside_url(rng)}),
        4 => obj! {"mid" => mid, "attachments" => vec![obj! {"type" => "like_heart"}]},
        _ => {
            let url =
                format!("https://scontent.cdninstagram.com/v/t51.2885-15/{}_n.jpg", rng.digits(9));
            let story = obj! {"url" => url, "id" => ids::instagram_object_id(rng)};
            obj! {"mid" => mid, "text" => text, "reply_to" => obj! {"story" => story}}
        }
    }
}

fn attachment(mid: String, kind: &str, payload: Json) -> Json {
    obj! {"mid" => mid, "attachments" => vec![obj! {"type" => kind, "payload" => payload}]}
}

fn lookaside_url(rng: &mut Rng) -> String {
    let (asset, signature) = (rng.digits(17), ids::token(rng, 120));
    format!("https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id={asset}&signature={signature}")
}

fn cdn_url(rng: &mut Rng, ext: &str) -> String {
    format!(
        "https://scontent.xx.fbcdn.net/v/t1.15752-9/{}_{}_{}_n.{ext}?_nc_cat=10&oh={}&oe={:X}",
        rng.digits(9),
        rng.digits(15),
        rng.digits(19),
        ids::hex(rng, 32),
        rng.between(0x6700_0000, 0x6fff_ffff),
    )
}

fn postback(rng: &mut Rng, t: &Thread) -> Json {
    let (title, payload) = *rng.pick(POSTBACKS);
    let referral = (t.object == Object::Page && payload == "GET_STARTED" && rng.chance(0.5))
        .then(|| obj! {"ref" => "summer_promo", "source" => "SHORTLINK", "type" => "OPEN_THREAD"});
    obj! {"title" => title, "payload" => payload, "mid" => t.mid(rng), "referral" => Opt(referral)}
}

fn optin(rng: &mut Rng, ts: i64) -> Json {
    if rng.chance(0.5) {
        return obj! {"ref" => *rng.pick(&["checkout_page", "blog_footer", "ürün_sayfası"])};
    }
    obj! {
        "type" => "notification_messages",
        "payload" => "weekly_deals",
        "notification_messages_token" => rng.digits(19),
        "token_expiry_timestamp" => ts + 180 * 86_400_000,
        "user_token_status" => "NOT_REFRESHED",
        "notification_messages_timezone" => "Europe/Istanbul",
        "title" => "Haftalık fırsatlar",
    }
}

fn reaction(rng: &mut Rng, t: &Thread) -> Json {
    let mid = t.mid(rng);
    if rng.chance(0.15) {
        return obj! {"mid" => mid, "action" => "unreact"};
    }
    let (name, emoji) = match t.object {
        Object::Instagram => ("love", "❤"),
        _ => *rng.pick(world::MESSENGER_REACTIONS),
    };
    obj! {"reaction" => name, "emoji" => emoji, "action" => "react", "mid" => mid}
}

fn referral(rng: &mut Rng, object: Object) -> Json {
    if object == Object::Instagram {
        return obj! {"ref" => "bio_link", "source" => "IGME-SOURCE-LINK", "type" => "OPEN_THREAD"};
    }
    if rng.chance(0.6) {
        return obj! {"ref" => "kampanya_ekim", "source" => "SHORTLINK", "type" => "OPEN_THREAD"};
    }
    let context = obj! {"ad_title" => "Yeni sezon — %20 indirim", "photo_url" => cdn_url(rng, "jpg"),
    "post_id" => rng.digits(16)};
    obj! {"ref" => "ad_autumn", "ad_id" => rng.digits(17), "source" => "ADS",
    "type" => "OPEN_THREAD", "ads_context_data" => context}
}

fn handover(rng: &mut Rng, t: &Thread, ts: i64, app_id: &str) -> Json {
    let other = ids::page_id(rng);
    match rng.below(3) {
        0 => {
            let body = obj! {"previous_owner_app_id" => app_id, "new_owner_app_id" => PAGE_INBOX_APP_ID,
            "metadata" => "escalated to a human agent"};
            t.from_user(ts, "pass_thread_control", body)
        }
        1 => {
            let body = obj! {"previous_owner_app_id" => other, "new_owner_app_id" => app_id,
            "metadata" => "bot resumes"};
            t.from_user(ts, "take_thread_control", body)
        }
        _ => {
            let body =
                obj! {"requested_owner_app_id" => number(&other), "metadata" => "please hand over"};
            t.from_user(ts, "request_thread_control", body)
        }
    }
}

const QUICK_REPLIES: &[(&str, &str)] = &[
    ("Evet", "CONFIRM_YES"),
    ("Hayır", "CONFIRM_NO"),
    ("Sí, por favor", "SIZE_M"),
    ("🔴 Red", "COLOR_RED"),
];

const POSTBACKS: &[(&str, &str)] = &[
    ("Get Started", "GET_STARTED"),
    ("Sipariş durumu", "ORDER_STATUS"),
    ("Falar com um atendente", "HUMAN_AGENT"),
    ("Voir le menu", "MENU"),
];

const POLICY: &[(&str, Option<&str>)] = &[
    ("warning", Some("Your Page sent messages outside the 24-hour window without a tag.")),
    ("block", Some("The Page violated the Messenger platform policies (spam).")),
    ("unblock", None),
];
