//! The property behind "one effect per distinct event, whatever the order": any permutation
//! of a set of events, with any of them repeated, leaves exactly the state that applying the
//! distinct events once, in timestamp order, leaves.

use bytes::Bytes;
use metahook::metrics::Metrics;
use metahook::pipeline::{Limits, Pipeline};
use metahook::store::work::RetryPolicy;
use metahook::store::{ListQuery, NewDelivery};
use serde_json::Value;

use crate::payloads::*;

/// splitmix64: small, seeded, good enough to shuffle test inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// One event: the time it happened, and how to wrap it in a delivery.
#[derive(Clone)]
enum Item {
    Messenger(i64, Value),
    Whatsapp(i64, Value),
}

impl Item {
    fn at(&self) -> i64 {
        match self {
            Item::Messenger(t, _) | Item::Whatsapp(t, _) => *t,
        }
    }
}

const T0: i64 = 1_700_000_000_000;

/// A random but coherent set of distinct events: messages both ways, echoes, deliveries and
/// reads with watermarks, edits, reactions, WhatsApp messages and statuses in any order.
fn events(rng: &mut Rng) -> Vec<Item> {
    let mut items = Vec::new();
    let time = |rng: &mut Rng| T0 + rng.below(100_000) as i64;
    for user in ["U1", "U2"] {
        let mut mids = Vec::new();
        for k in 0..4 {
            let (mid_in, mid_out) = (format!("m_in_{user}_{k}"), format!("m_out_{user}_{k}"));
            items.push(Item::Messenger(
                0,
                inbound(user, &mid_in, &format!("merhaba {k} ğüş"), time(rng)),
            ));
            items.push(Item::Messenger(
                0,
                echo(user, &mid_out, &format!("réponse {k} 🙂"), time(rng)),
            ));
            mids.push(mid_in);
            mids.push(mid_out);
        }
        for _ in 0..2 {
            let watermark = time(rng);
            let covered: Vec<&str> = mids
                .iter()
                .filter(|m| m.contains("out") && rng.chance(30))
                .map(String::as_str)
                .collect();
            items.push(Item::Messenger(0, delivery(user, watermark, &covered)));
            items.push(Item::Messenger(0, read(user, time(rng))));
        }
        for n in 1..=2 {
            let mid = &mids[rng.below(mids.len() as u64) as usize];
            items.push(Item::Messenger(
                0,
                edit(user, mid, &format!("edited {n} of {mid}"), n, time(rng)),
            ));
        }
        for _ in 0..3 {
            let mid = &mids[rng.below(mids.len() as u64) as usize];
            let emoji = if rng.chance(70) { Some("❤️") } else { None };
            items.push(Item::Messenger(0, reaction(user, mid, emoji, time(rng))));
        }
    }
    for w in 0..4 {
        let wamid = format!("wamid.W{w}");
        for status in ["sent", "delivered", "read", "failed"] {
            if rng.chance(60) {
                let seconds = (time(rng) / 1000) + w;
                items.push(Item::Whatsapp(
                    seconds * 1000,
                    wa_status(&wamid, status, "905551112233", seconds),
                ));
            }
        }
        let seconds = time(rng) / 1000;
        items.push(Item::Whatsapp(
            seconds * 1000,
            wa_text(&format!("wamid.IN{w}"), "905551112233", "selam", seconds),
        ));
    }
    for item in &mut items {
        if let Item::Messenger(t, event) = item {
            *t = event["timestamp"].as_i64().unwrap();
        }
    }
    items
}

/// Deliveries carrying `items` in this order; consecutive Messenger events may share one.
fn deliveries(items: &[Item], rng: &mut Rng) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut pending: Vec<Value> = Vec::new();
    for item in items {
        match item {
            Item::Messenger(_, event) => {
                pending.push(event.clone());
                if rng.chance(60) {
                    out.push(messenger(std::mem::take(&mut pending)).to_string().into_bytes());
                }
            }
            Item::Whatsapp(_, delivery) => out.push(delivery.to_string().into_bytes()),
        }
    }
    if !pending.is_empty() {
        out.push(messenger(pending).to_string().into_bytes());
    }
    out
}

/// Stores `bodies` in a fresh database, running pipeline steps in between, and returns the
/// resulting messages and conversations, sorted.
async fn final_state(bodies: Vec<Vec<u8>>, rng: &mut Rng) -> (Vec<Value>, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::helpers::store_in(dir.path()).await;
    let policy = RetryPolicy { max_attempts: 3, base_ms: 1, max_ms: 1 };
    let pipeline = Pipeline::new(
        store.clone(),
        Metrics::new(),
        policy,
        Limits { deliveries: 4, events: 8, retries: 16, lease_ms: 60_000 },
    );
    let mut chunk = Vec::new();
    for body in bodies {
        chunk.push(NewDelivery {
            received_at: T0,
            object: String::new(),
            entries: 1,
            secret_index: 0,
            body: Bytes::from(body),
        });
        if rng.chance(30) {
            store.append(std::mem::take(&mut chunk), 0).await.unwrap();
            if rng.chance(50) {
                pipeline.step().await.unwrap();
            }
        }
    }
    store.append(chunk, 0).await.unwrap();
    while !pipeline.step().await.unwrap().is_idle() {}
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.pending, stats.dead), (0, 0));
    let mut lists = Vec::new();
    for resource in ["messages", "conversations"] {
        let page = store
            .list(resource, ListQuery { after: 0, limit: 1000, ..ListQuery::default() })
            .await
            .unwrap();
        let mut items = page.items;
        items.sort_by_key(|i| i.to_string());
        lists.push(items);
    }
    let conversations = lists.pop().unwrap();
    (lists.pop().unwrap(), conversations)
}

#[tokio::test]
async fn any_order_with_repeats_ends_in_the_state_of_the_distinct_events_in_time_order() {
    for seed in 0..12u64 {
        let mut rng = Rng(seed);
        let distinct = events(&mut rng);

        let mut in_order = distinct.clone();
        in_order.sort_by_key(Item::at);
        let reference: Vec<Vec<u8>> = in_order
            .iter()
            .map(|item| match item {
                Item::Messenger(_, event) => {
                    messenger(vec![event.clone()]).to_string().into_bytes()
                }
                Item::Whatsapp(_, delivery) => delivery.to_string().into_bytes(),
            })
            .collect();
        let expected = final_state(reference, &mut Rng(seed)).await;
        assert!(expected.0.len() >= 16, "seed {seed}: too few messages to mean anything");

        let mut shuffled = distinct.clone();
        for _ in 0..shuffled.len() / 3 {
            let repeat = shuffled[rng.below(shuffled.len() as u64) as usize].clone();
            shuffled.push(repeat);
        }
        for i in (1..shuffled.len()).rev() {
            shuffled.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let bodies = deliveries(&shuffled, &mut rng);
        let actual = final_state(bodies, &mut rng).await;
        assert_eq!(actual.0, expected.0, "seed {seed}: messages differ");
        assert_eq!(actual.1, expected.1, "seed {seed}: conversations differ");
    }
}
