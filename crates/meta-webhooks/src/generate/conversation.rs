//! Coherent threads: events that refer to each other as a real conversation's do.
//!
//! Each turn is a message from the person and the business's reply, then what Meta reports
//! about the reply: on Messenger a delivery watermark and a read watermark, on Instagram a
//! read by mid, on WhatsApp `sent`, `delivered` and `read` statuses. After the last turn the
//! person reacts to the last reply and edits their first message. Times grow through the
//! thread (seconds to minutes apart), so a receiver can be checked for reaching the same
//! state whatever order and however many times the events arrive.

use super::catalog::Object;
use super::json::obj;
use super::whatsapp::{Line, billing};
use super::world::{self, PAGE_INBOX_APP_ID};
use super::{Generator, Item};
use crate::event::Kind;

/// A thread of `turns` exchanges (at least one) on `object`, with its reaction and edit.
pub(super) fn build(g: &mut Generator, object: Object, turns: usize) -> Vec<Item> {
    match object {
        Object::Whatsapp => whatsapp(g, turns.max(1)),
        _ => messaging(g, object, turns.max(1)),
    }
}

fn messaging(g: &mut Generator, object: Object, turns: usize) -> Vec<Item> {
    let t = g.thread(object);
    let mut ts = g.tick();
    let app_id =
        if g.rng.chance(0.5) { g.world.app_id.clone() } else { PAGE_INBOX_APP_ID.to_owned() };
    let rng = &mut g.rng;
    let mut items = Vec::new();
    let (mut first, mut reply) = (None, String::new());
    for _ in 0..turns {
        let mid = t.mid(rng);
        let body = obj! {"mid" => &mid, "text" => *rng.pick(world::INBOUND)};
        items.push(t.event(Kind::Message, ts, t.from_user(ts, "message", body)));
        first.get_or_insert(mid);

        ts += rng.between(3_000, 90_000);
        reply = t.mid(rng);
        let text = *rng.pick(world::REPLIES);
        let echo = t.echo_body(&reply, text, &app_id);
        items.push(t.event(Kind::MessageEcho, ts, t.from_account(ts, "message", echo)));
        let sent = ts;

        if object == Object::Page {
            ts += rng.between(300, 4_000);
            let delivery = obj! {"mids" => vec![(&reply).into()], "watermark" => sent};
            items.push(t.event(Kind::Delivery, ts, t.from_user(ts, "delivery", delivery)));
            ts += rng.between(1_000, 60_000);
            let read = obj! {"watermark" => ts - rng.between(0, ts - sent)};
            items.push(t.event(Kind::Read, ts, t.from_user(ts, "read", read)));
        } else {
            ts += rng.between(1_000, 60_000);
            items.push(t.event(Kind::Read, ts, t.from_user(ts, "read", obj! {"mid" => &reply})));
        }
        ts += rng.between(2_000, 120_000);
    }

    let (name, emoji) = match object {
        Object::Instagram => ("love", "❤"),
        _ => *rng.pick(world::MESSENGER_REACTIONS),
    };
    let reaction = obj! {"reaction" => name, "emoji" => emoji, "action" => "react", "mid" => reply};
    items.push(t.event(Kind::Reaction, ts, t.from_user(ts, "reaction", reaction)));

    ts += rng.between(1_000, 30_000);
    let first = first.expect("at least one turn");
    let edit = match object {
        // Instagram reports only that a message was edited, not the new text.
        Object::Instagram => obj! {"mid" => first, "num_edit" => 1_i64},
        _ => obj! {"mid" => first, "text" => *rng.pick(world::EDITS), "num_edit" => 1_i64},
    };
    items.push(t.event(Kind::MessageEdit, ts, t.from_user(ts, "message_edit", edit)));
    items
}

fn whatsapp(g: &mut Generator, turns: usize) -> Vec<Item> {
    let line: Line = g.line();
    let mut ts = g.tick();
    let rng = &mut g.rng;
    let mut items = Vec::new();
    let (mut first, mut reply) = (None, String::new());
    for _ in 0..turns {
        let id = line.wamid(rng, true);
        let text = obj! {"body" => *rng.pick(world::INBOUND)};
        items.push(line.message(ts, &id, "text", text));
        first.get_or_insert(id);

        // The reply is sent through the Cloud API: WhatsApp reports it only by statuses.
        ts += rng.between(3_000, 90_000);
        reply = line.wamid(rng, false);
        items.push(line.status(ts, &reply, "sent", billing(rng, ts, true)));
        ts += rng.between(300, 4_000);
        items.push(line.status(ts, &reply, "delivered", billing(rng, ts, false)));
        ts += rng.between(1_000, 60_000);
        items.push(line.status(ts, &reply, "read", Vec::new()));
        ts += rng.between(2_000, 120_000);
    }

    let reaction = obj! {"message_id" => &reply, "emoji" => *rng.pick(world::WHATSAPP_REACTIONS)};
    items.push(line.message(ts, &line.wamid(rng, true), "reaction", reaction));

    ts += rng.between(1_000, 30_000);
    let first = first.expect("at least one turn");
    let new_text = obj! {"type" => "text", "text" => obj! {"body" => *rng.pick(world::EDITS)}};
    let edit = obj! {"original_message_id" => first, "message" => new_text};
    items.push(line.message(ts, &line.wamid(rng, true), "edit", edit));
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Detail;
    use crate::generate::{Batcher, Rng};

    fn decoded(object: Object) -> Vec<crate::Event> {
        let mut g = Generator::new(5, 1_760_000_000_000);
        let mut batcher = Batcher::new(1000, Rng::new(2));
        for item in g.conversation(object, 2) {
            assert!(batcher.push(item).is_none());
        }
        batcher.flush().iter().flat_map(|d| crate::split(&d.body).unwrap()).collect()
    }

    #[test]
    fn a_messenger_thread_refers_to_its_own_messages() {
        let events = decoded(Object::Page);
        let kinds: Vec<Kind> = events.iter().map(|e| e.kind).collect();
        use Kind::*;
        let turn = [Message, MessageEcho, Delivery, Read];
        assert_eq!(kinds, [&turn[..], &turn[..], &[Reaction, MessageEdit]].concat());
        let user = events[0].user_id.clone();
        assert!(events.iter().all(|e| e.user_id == user && e.account_id == events[0].account_id));
        let (Detail::Message(echo), Detail::Reaction(reaction)) =
            (&events[5].detail, &events[8].detail)
        else {
            panic!("unexpected details")
        };
        assert_eq!(reaction.mid, echo.mid);
        let Detail::MessageEdit(edit) = &events[9].detail else { panic!() };
        let Detail::Message(first) = &events[0].detail else { panic!() };
        assert_eq!(edit.mid, first.mid);
        let times: Vec<i64> = events.iter().map(|e| e.occurred_at.unwrap()).collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    }

    #[test]
    fn instagram_and_whatsapp_threads_have_their_own_shapes() {
        use Kind::*;
        let ig: Vec<Kind> = decoded(Object::Instagram).iter().map(|e| e.kind).collect();
        assert_eq!(
            ig,
            [Message, MessageEcho, Read, Message, MessageEcho, Read, Reaction, MessageEdit]
        );
        let wa = decoded(Object::Whatsapp);
        let statuses = wa.iter().filter(|e| e.kind == WhatsappStatus).count();
        assert_eq!((wa.len(), statuses), (10, 6));
    }
}
