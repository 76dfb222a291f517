//! The traffic generator against the decoder and against Meta's own bytes: every kind decodes
//! to itself, every signature checks out with an HMAC computed here, and the escaping
//! reproduces a real Meta-signed body byte for byte.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use hmac::{Hmac, KeyInit, Mac};
use meta_webhooks::generate::{
    CATALOG, Delivery, Json, Object, Plan, Shape, Source, meta_escape, signed_headers,
};
use meta_webhooks::{Secret, split};
use serde_json::Value;

const SECRET: &str = "5f4dcc3b5aa765d61d8327deb882cf99";
const START_MS: i64 = 1_767_225_600_000;

fn hmac_sha256_hex(key: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn hmac_sha1_hex(key: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn run(source: Source, shape: Shape) -> Vec<Delivery> {
    Plan::new(42, START_MS, source, shape).collect()
}

fn fixture(name: &str) -> Vec<u8> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/meta");
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

#[test]
fn every_kind_decodes_to_itself_and_is_signed_as_meta_signs() {
    let secret = Secret::new(SECRET);
    for spec in CATALOG {
        let deliveries = run(Source::Kinds { specs: vec![spec], count: 60 }, Shape::default());
        assert_eq!(deliveries.len(), 60, "{spec}");
        for delivery in deliveries {
            let events = split(&delivery.body).unwrap();
            let [event] = &events[..] else { panic!("{spec}: {} events", events.len()) };
            assert_eq!(
                event.kind,
                spec.kind,
                "{spec}: {}",
                String::from_utf8_lossy(&delivery.body)
            );
            assert_eq!(event.platform.as_str(), spec.object.platform(), "{spec}");
            assert!(!event.test, "{spec}: generated events are not dashboard tests");

            let headers: BTreeMap<&str, String> =
                signed_headers(&secret, &delivery.body).into_iter().collect();
            let expected = format!("sha256={}", hmac_sha256_hex(SECRET, &delivery.body));
            assert_eq!(headers["x-hub-signature-256"], expected, "{spec}");
            let expected = format!("sha1={}", hmac_sha1_hex(SECRET, &delivery.body));
            assert_eq!(headers["x-hub-signature"], expected, "{spec}");
            assert_eq!(headers["content-type"], "application/json");
            assert_eq!(headers["user-agent"], "facebookexternalua");
        }
    }
}

#[test]
fn timestamps_use_the_unit_meta_uses_for_each_kind() {
    let deliveries =
        run(Source::Kinds { specs: CATALOG.iter().collect(), count: 300 }, Shape::default());
    for delivery in deliveries {
        let body: Value = serde_json::from_slice(&delivery.body).unwrap();
        let entry = &body["entry"][0];
        if let Some(items) = entry["messaging"].as_array() {
            assert!(entry["time"].as_i64().unwrap() >= 1_000_000_000_000, "entry.time in ms");
            assert!(
                items[0]["timestamp"].as_i64().unwrap() >= 1_000_000_000_000,
                "timestamp in ms"
            );
        } else if delivery.object == Object::Whatsapp && entry["changes"][0]["field"] == "messages"
        {
            assert!(entry.get("time").is_none(), "WhatsApp entries have no time");
            let value = &entry["changes"][0]["value"];
            let item = value["messages"].get(0).or(value["statuses"].get(0)).unwrap();
            let seconds: i64 = item["timestamp"].as_str().expect("a string").parse().unwrap();
            assert!((1_000_000_000..1_000_000_000_000).contains(&seconds));
        } else {
            let time = entry["time"].as_i64().unwrap();
            assert!((1_000_000_000..1_000_000_000_000).contains(&time), "changes: seconds");
        }
    }
}

#[test]
fn re_escaping_a_real_meta_body_gives_back_its_exact_bytes_and_signature() {
    let real = fixture("37-ig-echo-unicode-signed-real.json");
    let parsed: Json = serde_json::from_slice(&real).unwrap();
    let escaped = meta_escape(&parsed);
    assert_eq!(String::from_utf8_lossy(&escaped), String::from_utf8_lossy(&real));
    assert_eq!(escaped.len(), 442, "the Content-Length Meta sent");

    let instagram_app_secret = "dc074b4cd5c4679002750832c2065bc8";
    assert_eq!(
        hmac_sha256_hex(instagram_app_secret, &escaped),
        "766e10942d149bfe42f2d18fad6c874c0073cde47a0d3387bb429928fa5d9db8"
    );
    assert_eq!(
        hmac_sha1_hex(instagram_app_secret, &escaped),
        "eb165430f2d912e9ab79cd4372193cf7904d7f18"
    );

    // The same object as raw UTF-8 is what a naive re-serialisation sends, and it fails.
    let raw = serde_json::to_vec(&parsed).unwrap();
    assert_eq!(raw.len(), 430);
    assert!(hmac_sha256_hex(instagram_app_secret, &raw).starts_with("630298f3"));
}

#[test]
fn generated_text_in_several_scripts_is_escaped_as_meta_escapes_it() {
    let specs = vec![CATALOG.iter().find(|s| s.name == "facebook.message_echo").unwrap()];
    let mut scripts = BTreeSet::new();
    for delivery in run(Source::Kinds { specs, count: 200 }, Shape::default()) {
        assert!(delivery.body.is_ascii());
        let text = String::from_utf8(delivery.body.clone()).unwrap();
        for (at, _) in text.match_indices("\\u") {
            let digits = &text[at + 2..at + 6];
            assert!(
                digits.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "escape \\u{digits} is not four lowercase hex digits"
            );
        }
        let parsed: Json = serde_json::from_slice(&delivery.body).unwrap();
        assert_eq!(meta_escape(&parsed), delivery.body, "re-escaping is stable");
        let value: Value = serde_json::from_slice(&delivery.body).unwrap();
        let said =
            value["entry"][0]["messaging"][0]["message"]["text"].as_str().unwrap().to_owned();
        if said.contains(['ş', 'ğ', 'ı', 'İ']) {
            scripts.insert("turkish");
        }
        if said.contains(['é', 'ã', 'ç', 'ü', 'á']) {
            scripts.insert("accented latin");
        }
        if said.chars().any(|c| c as u32 > 0xffff) {
            scripts.insert("astral emoji");
            assert!(text.contains("\\ud83"), "astral characters are written as surrogate pairs");
        }
    }
    assert_eq!(scripts.len(), 3, "{scripts:?}");
}

#[test]
fn big_batches_stay_within_metas_limit_and_span_several_entries() {
    let source = Source::Kinds { specs: CATALOG.iter().collect(), count: 5000 };
    let shape = Shape { batch: 1000, shuffle: true, duplicates: 0.0 };
    let deliveries = run(source, shape);
    assert_eq!(deliveries.iter().map(|d| d.events).sum::<usize>(), 5000);
    let mut kinds = BTreeSet::new();
    for d in &deliveries {
        assert!(d.events <= 1000);
        let events = split(&d.body).unwrap();
        assert_eq!(events.len(), d.events);
        kinds.extend(events.iter().map(|e| format!("{}.{}", e.platform, e.kind)));
    }
    assert_eq!(kinds.len(), CATALOG.len());
    let biggest = deliveries.iter().max_by_key(|d| d.events).unwrap();
    let body: Value = serde_json::from_slice(&biggest.body).unwrap();
    assert_eq!(biggest.events, 1000);
    assert!(body["entry"].as_array().unwrap().len() > 10);
}

#[test]
fn a_seed_reproduces_a_run_and_shaping_leaves_the_events_unchanged() {
    let source = Source::Conversations {
        objects: vec![Object::Page, Object::Instagram, Object::Whatsapp],
        count: 9,
        turns: 2,
    };
    let plain = run(source.clone(), Shape::default());
    assert_eq!(plain, run(source.clone(), Shape::default()));
    let other: Vec<Delivery> = Plan::new(43, START_MS, source.clone(), Shape::default()).collect();
    assert_ne!(plain, other);

    let shaped = run(source, Shape { batch: 5, shuffle: true, duplicates: 0.5 });
    assert!(shaped.iter().any(|d| d.redelivery));
    let keys = |ds: &[Delivery]| -> BTreeSet<String> {
        ds.iter().flat_map(|d| split(&d.body).unwrap()).map(|e| e.key).collect()
    };
    assert_eq!(keys(&plain), keys(&shaped));
    let total =
        |ds: &[Delivery]| ds.iter().filter(|d| !d.redelivery).map(|d| d.events).sum::<usize>();
    assert_eq!(total(&plain), total(&shaped));
}
