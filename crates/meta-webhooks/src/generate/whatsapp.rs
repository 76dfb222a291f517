//! WhatsApp Cloud API changes: inbound messages, statuses and other fields.
//!
//! A `messages` change holds one `value` for one business phone number: `metadata`, the
//! `contacts` who wrote, and `messages[]` or `statuses[]`. Timestamps are strings of seconds
//! and entries have no `time`. [`Line`] holds one number and one person and writes items for
//! them; the batcher later merges items of one number into shared values, as Meta does.

use super::catalog::Object;
use super::changes::change;
use super::json::{Json, Opt, obj};
use super::rng::Rng;
use super::world::{self, Person};
use super::{Generator, Item, Slot, ids};
use crate::event::Kind;

/// Which list of a `messages` value an item belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    /// `value.messages[]`: inbound messages.
    Messages,
    /// `value.statuses[]`: statuses of messages the business sent.
    Statuses,
}

/// One WhatsApp message or status, waiting to be put in a value.
#[derive(Debug, Clone, PartialEq)]
pub struct WhatsappItem {
    /// `value.metadata`.
    pub metadata: Json,
    /// The `value.contacts[]` element for an inbound message.
    pub contact: Option<Json>,
    /// Where the item goes.
    pub list: List,
    /// The message or status.
    pub item: Json,
}

/// A business phone number and a person it talks with.
#[derive(Debug, Clone)]
pub struct Line {
    /// The WABA id: the entry id.
    pub waba: String,
    /// `phone_number_id`.
    pub phone_number_id: String,
    /// `display_phone_number`.
    pub display: String,
    /// The person; their id is their `wa_id`.
    pub person: Person,
}

impl Line {
    /// An inbound message `id` of `kind` carrying `body` under the key named `kind`.
    pub fn message(&self, ts: i64, id: &str, kind: &str, body: Json) -> Item {
        let mut fields = vec![
            ("from".to_owned(), Json::from(&self.person.id)),
            ("id".to_owned(), id.into()),
            ("timestamp".to_owned(), (ts / 1000).to_string().into()),
            ("type".to_owned(), kind.into()),
        ];
        fields.push((kind.to_owned(), body));
        let contact =
            obj! {"profile" => obj! {"name" => self.person.name}, "wa_id" => &self.person.id};
        self.item(Kind::WhatsappMessage, ts, Some(contact), List::Messages, Json::Object(fields))
    }

    /// A status of the business's message `id`; `extra` fields follow the common ones.
    pub fn status(&self, ts: i64, id: &str, status: &str, extra: Vec<(String, Json)>) -> Item {
        let mut fields = vec![
            ("id".to_owned(), Json::from(id)),
            ("status".to_owned(), status.into()),
            ("timestamp".to_owned(), (ts / 1000).to_string().into()),
            ("recipient_id".to_owned(), (&self.person.id).into()),
        ];
        fields.extend(extra);
        self.item(Kind::WhatsappStatus, ts, None, List::Statuses, Json::Object(fields))
    }

    /// A new message id for a message from the person (`inbound`) or to them.
    pub fn wamid(&self, rng: &mut Rng, inbound: bool) -> String {
        ids::wamid(rng, &self.person.id, inbound)
    }

    fn item(&self, kind: Kind, ts: i64, contact: Option<Json>, list: List, item: Json) -> Item {
        let metadata = obj! {"display_phone_number" => &self.display,
        "phone_number_id" => &self.phone_number_id};
        let slot = Slot::Whatsapp(WhatsappItem { metadata, contact, list, item });
        Item::new(Object::Whatsapp, kind, self.waba.clone(), ts, slot)
    }
}

/// One WhatsApp event of `kind` with random content.
pub(super) fn whatsapp(g: &mut Generator, kind: Kind) -> Item {
    let line = g.line();
    let ts = g.tick();
    let rng = &mut g.rng;
    match kind {
        Kind::WhatsappMessage => inbound(rng, &line, ts),
        Kind::WhatsappStatus => {
            let id = line.wamid(rng, false);
            match rng.weighted(&[35, 30, 30, 5]) {
                0 => line.status(ts, &id, "sent", billing(rng, ts, true)),
                1 => line.status(ts, &id, "delivered", billing(rng, ts, false)),
                2 => line.status(ts, &id, "read", Vec::new()),
                _ => line.status(ts, &id, "failed", failure(rng)),
            }
        }
        _ => {
            let (event, reason) = *rng.pick(TEMPLATE_EVENTS);
            let value = obj! {"event" => event, "message_template_id" => rng.digits(16).parse::<u64>().unwrap_or(1),
            "message_template_name" => *rng.pick(&["siparis_onayi", "order_confirmation", "lembrete_consulta"]),
            "message_template_language" => *rng.pick(&["tr", "en_US", "pt_BR"]),
            "reason" => reason, "message_template_category" => "UTILITY"};
            let item = change("message_template_status_update", value);
            Item::new(Object::Whatsapp, kind, line.waba, ts, Slot::Change(item))
        }
    }
}

fn inbound(rng: &mut Rng, line: &Line, ts: i64) -> Item {
    let id = line.wamid(rng, true);
    match rng.weighted(&[55, 10, 10, 8, 9, 8]) {
        0 => line.message(ts, &id, "text", obj! {"body" => *rng.pick(world::INBOUND)}),
        1 => {
            let caption = Opt(rng.chance(0.5).then(|| *rng.pick(world::INBOUND)));
            let image = obj! {"caption" => caption, "mime_type" => "image/jpeg",
            "sha256" => ids::media_sha256(rng), "id" => ids::media_id(rng)};
            line.message(ts, &id, "image", image)
        }
        2 => {
            let audio = obj! {"mime_type" => "audio/ogg; codecs=opus", "sha256" => ids::media_sha256(rng),
            "id" => ids::media_id(rng), "voice" => true};
            line.message(ts, &id, "audio", audio)
        }
        3 => {
            let location = obj! {"latitude" => 41.0 + rng.unit(), "longitude" => 28.5 + rng.unit(),
            "name" => "Kadıköy İskelesi", "address" => "Caferağa, 34710 Kadıköy/İstanbul"};
            line.message(ts, &id, "location", location)
        }
        4 => {
            let (reply_id, title) =
                *rng.pick(&[("yes", "Evet ✅"), ("no", "Hayır"), ("later", "Mais tarde")]);
            let interactive = obj! {"type" => "button_reply",
            "button_reply" => obj! {"id" => reply_id, "title" => title}};
            line.message(ts, &id, "interactive", interactive)
        }
        _ => {
            let target = line.wamid(rng, false);
            let reaction =
                obj! {"message_id" => target, "emoji" => *rng.pick(world::WHATSAPP_REACTIONS)};
            line.message(ts, &id, "reaction", reaction)
        }
    }
}

/// The `conversation` and `pricing` of a `sent` or `delivered` status (per-message pricing).
pub fn billing(rng: &mut Rng, ts: i64, sent: bool) -> Vec<(String, Json)> {
    let expiration = Opt(sent.then(|| (ts / 1000 + 86_400).to_string()));
    let conversation = obj! {"id" => ids::hex(rng, 32), "expiration_timestamp" => expiration,
    "origin" => obj! {"type" => "service"}};
    let pricing = obj! {"billable" => false, "pricing_model" => "PMP",
    "type" => "free_customer_service", "category" => "service"};
    vec![("conversation".into(), conversation), ("pricing".into(), pricing)]
}

fn failure(rng: &mut Rng) -> Vec<(String, Json)> {
    let (code, title, details) = *rng.pick(FAILURES);
    let error = obj! {"code" => code, "title" => title, "message" => title,
    "error_data" => obj! {"details" => details},
    "href" => "/documentation/business-messaging/whatsapp/support/error-codes"};
    vec![("errors".into(), vec![error].into())]
}

const TEMPLATE_EVENTS: &[(&str, &str)] =
    &[("APPROVED", "NONE"), ("REJECTED", "INCORRECT_CATEGORY"), ("PAUSED", "NONE")];

const FAILURES: &[(i64, &str, &str)] = &[
    (
        131049,
        "This message was not delivered to maintain healthy ecosystem engagement.",
        "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.",
    ),
    (
        131047,
        "Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
    ),
    (
        131026,
        "Message undeliverable",
        "Unable to deliver message. Reasons can include: the recipient phone number is not a WhatsApp phone number.",
    ),
];
