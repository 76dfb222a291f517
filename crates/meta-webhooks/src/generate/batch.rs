//! Packing events into deliveries the way Meta batches them.
//!
//! One POST carries one `object` and up to 1000 updates, in `entry[]`. Meta aggregates per
//! object, so the batcher keeps one open delivery per object and sends it when it is full.
//! Inside a delivery, an event joins the previous entry when that entry is for the same
//! account and of the same form (messaging, changes, or WhatsApp), and a draw says so:
//! entries holding several events and one account spread over several entries both occur in
//! real traffic. WhatsApp messages or statuses for one phone number may share one `value`.
//! Entry times are written when the delivery is closed, shortly after its latest event:
//! milliseconds for messaging, seconds for changes, none for WhatsApp messages.

use std::collections::BTreeMap;

use super::changes::change;
use super::json::{Json, obj};
use super::rng::Rng;
use super::whatsapp::{List, WhatsappItem};
use super::wire::meta_escape;
use super::{Item, Object, Slot};

/// The most updates Meta puts in one POST.
pub const MAX_BATCH: usize = 1000;

/// One POST: what it carries and its body as Meta writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The envelope's `object`.
    pub object: Object,
    /// Events in it (messaging items, changes, WhatsApp messages and statuses).
    pub events: usize,
    /// Compact, ASCII-escaped JSON: sign these bytes and send them unchanged.
    pub body: Vec<u8>,
    /// A second sending of an earlier delivery, byte for byte.
    pub redelivery: bool,
}

/// Collects events and hands out deliveries of at most `max` events.
#[derive(Debug)]
pub struct Batcher {
    max: usize,
    rng: Rng,
    open: BTreeMap<Object, Open>,
}

#[derive(Debug, Default)]
struct Open {
    entries: Vec<Entry>,
    events: usize,
}

#[derive(Debug)]
struct Entry {
    id: String,
    form: Form,
    latest_ms: i64,
    items: Vec<Json>,
    values: Vec<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Messaging,
    Changes,
    Whatsapp,
}

/// A WhatsApp `messages` value being filled.
#[derive(Debug)]
struct Value {
    metadata: Json,
    list: List,
    contacts: Vec<Json>,
    items: Vec<Json>,
}

impl Batcher {
    /// A batcher for deliveries of `max` events (1 to [`MAX_BATCH`]); `rng` draws how
    /// events are grouped into entries.
    pub fn new(max: usize, rng: Rng) -> Self {
        Self { max: max.clamp(1, MAX_BATCH), rng, open: BTreeMap::new() }
    }

    /// Adds an event; returns its object's delivery when that is now full.
    pub fn push(&mut self, item: Item) -> Option<Delivery> {
        let object = item.spec.object;
        let open = self.open.entry(object).or_default();
        add(open, item, &mut self.rng);
        if open.events < self.max {
            return None;
        }
        let full = self.open.remove(&object).expect("just filled");
        Some(finish(object, full, &mut self.rng))
    }

    /// Closes every open delivery, in object order.
    pub fn flush(&mut self) -> Vec<Delivery> {
        let open = std::mem::take(&mut self.open);
        open.into_iter().map(|(object, o)| finish(object, o, &mut self.rng)).collect()
    }
}

fn add(open: &mut Open, item: Item, rng: &mut Rng) {
    open.events += 1;
    let form = match &item.slot {
        Slot::Messaging(_) => Form::Messaging,
        Slot::Change(_) => Form::Changes,
        Slot::Whatsapp(_) => Form::Whatsapp,
    };
    let joins = |e: &Entry| e.id == item.entry_id && e.form == form;
    let join_chance = match form {
        Form::Messaging => 0.3,
        Form::Changes => 0.5,
        Form::Whatsapp => 0.6,
    };
    let entry = match open.entries.last_mut() {
        Some(last) if joins(last) && rng.chance(join_chance) => last,
        _ => {
            let id = item.entry_id.clone();
            let entry = Entry { id, form, latest_ms: 0, items: Vec::new(), values: Vec::new() };
            open.entries.push(entry);
            open.entries.last_mut().expect("just pushed")
        }
    };
    entry.latest_ms = entry.latest_ms.max(item.at_ms);
    match item.slot {
        Slot::Messaging(json) | Slot::Change(json) => entry.items.push(json),
        Slot::Whatsapp(wa) => add_whatsapp(&mut entry.values, wa, rng),
    }
}

fn add_whatsapp(values: &mut Vec<Value>, wa: WhatsappItem, rng: &mut Rng) {
    let WhatsappItem { metadata, contact, list, item } = wa;
    let value = match values.last_mut() {
        Some(v) if v.metadata == metadata && v.list == list && rng.chance(0.5) => v,
        _ => {
            values.push(Value { metadata, list, contacts: Vec::new(), items: Vec::new() });
            values.last_mut().expect("just pushed")
        }
    };
    if let Some(contact) = contact
        && !value.contacts.contains(&contact)
    {
        value.contacts.push(contact);
    }
    value.items.push(item);
}

fn finish(object: Object, open: Open, rng: &mut Rng) -> Delivery {
    let entries: Vec<Json> = open.entries.into_iter().map(|e| entry(e, rng)).collect();
    let body = meta_escape(&obj! {"object" => object.as_str(), "entry" => entries});
    Delivery { object, events: open.events, body, redelivery: false }
}

fn entry(entry: Entry, rng: &mut Rng) -> Json {
    // Meta stamps an entry when it sends it, a moment after the latest event in it.
    let sent_ms = entry.latest_ms + rng.between(20, 1500);
    match entry.form {
        Form::Messaging => obj! {"time" => sent_ms, "id" => entry.id, "messaging" => entry.items},
        Form::Changes => {
            obj! {"id" => entry.id, "time" => sent_ms / 1000, "changes" => entry.items}
        }
        Form::Whatsapp => {
            let changes: Vec<Json> = entry.values.into_iter().map(whatsapp_change).collect();
            obj! {"id" => entry.id, "changes" => changes}
        }
    }
}

fn whatsapp_change(value: Value) -> Json {
    let mut fields = vec![
        ("messaging_product".to_owned(), Json::from("whatsapp")),
        ("metadata".to_owned(), value.metadata),
    ];
    if !value.contacts.is_empty() {
        fields.push(("contacts".to_owned(), value.contacts.into()));
    }
    let list = match value.list {
        List::Messages => "messages",
        List::Statuses => "statuses",
    };
    fields.push((list.to_owned(), value.items.into()));
    change("messages", Json::Object(fields))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{CATALOG, Generator};

    fn deliveries(max: usize, count: usize) -> Vec<Delivery> {
        let mut generator = Generator::new(9, 1_760_000_000_000);
        let mut batcher = Batcher::new(max, Rng::new(1));
        let mut out = Vec::new();
        for i in 0..count {
            out.extend(batcher.push(generator.event(&CATALOG[i % CATALOG.len()])));
        }
        out.extend(batcher.flush());
        out
    }

    #[test]
    fn every_event_lands_in_exactly_one_delivery() {
        let all = deliveries(7, 500);
        assert_eq!(all.iter().map(|d| d.events).sum::<usize>(), 500);
        assert!(all.iter().all(|d| d.events <= 7 && !d.redelivery));
        let events: usize = all.iter().map(|d| crate::split(&d.body).unwrap().len()).sum();
        assert_eq!(events, 500);
    }

    #[test]
    fn one_delivery_has_one_object_and_big_batches_have_several_entries() {
        for d in deliveries(1000, 3000) {
            let value: serde_json::Value = serde_json::from_slice(&d.body).unwrap();
            assert_eq!(value["object"], d.object.as_str());
            assert!(value["entry"].as_array().unwrap().len() > 1);
            assert!(d.body.is_ascii());
        }
    }

    #[test]
    fn the_batch_size_is_capped_at_metas_maximum() {
        assert_eq!(Batcher::new(5000, Rng::new(1)).max, MAX_BATCH);
        assert_eq!(Batcher::new(0, Rng::new(1)).max, 1);
    }
}
