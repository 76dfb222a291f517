//! Every payload in the fixture corpus (`fixtures/meta/`, described in its `SOURCES.md`)
//! splits without error into the events written down here, batches into all their events.
//!
//! Four files are fragments rather than deliveries: 28 and 32 hold one `changes[]` element,
//! 52 one Instagram `changes[]` element, and 30 only a feed change's `value`. The table wraps
//! each in the envelope it came from (`{"object":..,"entry":[{"id":..,"time":..,
//! "changes":[..]}]}`), with the Page id found in the fragment where there is one.

use std::collections::HashMap;
use std::path::PathBuf;

use meta_webhooks::event::{Detail, Event, Kind, Platform, Source, split};
use serde_json::{Value, json};

use Kind::*;

/// How a file's text becomes a delivery.
#[derive(Clone, Copy)]
enum Body {
    /// The file is a whole delivery.
    Whole,
    /// The file is one `changes[]` element of this object, for this entry id and time.
    Change(&'static str, &'static str, i64),
    /// The file is the `value` of a change with this field, object, entry id and time.
    Value(&'static str, &'static str, &'static str, i64),
}

use Body::Whole;

#[rustfmt::skip]
const CASES: &[(&str, Body, &[Kind])] = &[
    ("01-fb-text-real-2017.json", Whole, &[Message]),
    ("02-fb-echo-real-2017.json", Whole, &[MessageEcho]),
    ("03-fb-text-signed-botman.json", Whole, &[Message]),
    ("04-fb-quick-reply-botman.json", Whole, &[Message]),
    ("05-fb-multi-event-reply-to.json", Whole,
        &[Message, Message, Message, Message, Message, MessageEcho, Postback]),
    ("06-fb-sticker-as-image-courier.json", Whole, &[Message]),
    ("07-fb-location-courier.json", Whole, &[Message]),
    ("08-fb-fallback-courier.json", Whole, &[Message]),
    ("09-fb-ig-reel-courier.json", Whole, &[Message]),
    ("10-fb-delivery-real.json", Whole, &[Delivery]),
    ("11-fb-delivery-no-timestamp-botman.json", Whole, &[Delivery]),
    ("12-fb-read-fbmq.json", Whole, &[Read]),
    ("13-fb-emoji-text-real.json", Whole, &[Message]),
    ("14-fb-postback-referral-courier.json", Whole, &[Postback]),
    ("15-fb-standby-postback-fbmq.json", Whole, &[Postback]),
    ("16-fb-optin-user-ref-no-sender-botman.json", Whole, &[Optin]),
    ("17-fb-notification-messages-optin-courier.json", Whole, &[Optin]),
    ("18-fb-handover-policy-optin-stop.json", Whole,
        &[Handover, Handover, PolicyEnforcement, Optin]),
    ("19-fb-pass-thread-control-fbmq.json", Whole, &[Handover]),
    ("20-fb-request-thread-control-fbmq.json", Whole, &[Handover]),
    ("21-fb-app-roles-fbmq.json", Whole, &[Handover]),
    ("22-fb-policy-enforcement-hyphen-fbmq.json", Whole, &[PolicyEnforcement]),
    ("23-fb-reaction-and-ads-referral.json", Whole, &[Reaction, Referral]),
    ("24-fb-referral-timestamp-seconds-courier.json", Whole, &[Referral]),
    ("25-fb-duplicate-entries-courier.json", Whole, &[Message, Message]),
    ("26-fb-account-linking-botman.json", Whole, &[AccountLinking]),
    ("27-fb-message-edit-dashboard-test.json", Whole, &[MessageEdit]),
    ("28-page-feed-status-add-change.json",
        Body::Change("page", "100518329516574", 1682963527), &[Feed]),
    ("29-page-feed-like-reaction-batch-2017.json", Whole, &[Feed, Feed]),
    ("30-page-feed-reaction-value-2020.json",
        Body::Value("feed", "page", "100938301365306", 1578474736), &[Feed]),
    ("31-page-feed-comment-reply-2025.json", Whole, &[Feed]),
    ("32-page-leadgen-change.json", Body::Change("page", "119324881085321", 1683790226), &[Change]),
    ("33-user-photos-docs.json", Whole, &[Change]),
    ("34-ig-text-signed-real-Oi.json", Whole, &[Message]),
    ("35-ig-text-signed-real-oi.json", Whole, &[Message]),
    ("36-ig-text-signed-real-OI.json", Whole, &[Message]),
    ("37-ig-echo-unicode-signed-real.json", Whole, &[MessageEcho]),
    ("38-ig-image-real.json", Whole, &[Message]),
    ("39-ig-share-real.json", Whole, &[Message]),
    ("40-ig-message-edit-real.json", Whole, &[MessageEdit]),
    ("41-ig-multi-messaging-go.json", Whole, &[Message, Message, Message]),
    ("42-ig-story-mention-courier.json", Whole, &[Message]),
    ("43-ig-like-heart-courier.json", Whole, &[Message]),
    ("44-ig-unsent-deleted-courier.json", Whole, &[Message]),
    ("45-ig-icebreaker-postback-courier.json", Whole, &[Postback]),
    ("46-ig-referral-igme-go.json", Whole, &[Referral]),
    ("47-ig-reel-attachment-go.json", Whole, &[Message]),
    ("48-ig-comment-real.json", Whole, &[Comment]),
    ("49-ig-mentions-dashboard-test.json", Whole, &[Mention]),
    ("50-ig-mentions-and-story-insights-go.json", Whole, &[Mention, StoryInsights]),
    ("51-ig-batched-entries-go.json", Whole, &[Mention, Mention, Mention]),
    ("52-ig-live-comments-change-docs.json", Body::Change("instagram", "123", 1700000000),
        &[LiveComment]),
    ("53-wa-text-docs.json", Whole, &[WhatsappMessage]),
    ("54-wa-image-real-escaped.json", Whole, &[WhatsappMessage]),
    ("55-wa-text-bsuid-courier.json", Whole, &[WhatsappMessage]),
    ("56-wa-voice-pywa.json", Whole, &[WhatsappMessage]),
    ("57-wa-document-courier.json", Whole, &[WhatsappMessage]),
    ("58-wa-sticker-pywa.json", Whole, &[WhatsappMessage]),
    ("59-wa-location-forwarded-pywa.json", Whole, &[WhatsappMessage]),
    ("60-wa-contacts-pywa.json", Whole, &[WhatsappMessage]),
    ("61-wa-reaction-pywa.json", Whole, &[WhatsappMessage]),
    ("62-wa-unreaction-pywa.json", Whole, &[WhatsappMessage]),
    ("63-wa-template-button-courier.json", Whole, &[WhatsappMessage]),
    ("64-wa-interactive-button-reply-courier.json", Whole, &[WhatsappMessage]),
    ("65-wa-interactive-list-reply-courier.json", Whole, &[WhatsappMessage]),
    ("66-wa-interactive-nfm-reply-courier.json", Whole, &[WhatsappMessage]),
    ("67-wa-order-pywa.json", Whole, &[WhatsappMessage]),
    ("68-wa-reply-context-pywa.json", Whole, &[WhatsappMessage]),
    ("69-wa-ctwa-referral-pywa.json", Whole, &[WhatsappMessage]),
    ("70-wa-unsupported-pywa.json", Whole, &[WhatsappMessage]),
    ("71-wa-interactive-with-value-errors-pywa.json", Whole, &[WhatsappMessage, Change]),
    ("72-wa-value-errors-130429-docs.json", Whole, &[Change]),
    ("73-wa-value-errors-code0-courier.json", Whole, &[Change]),
    ("74-wa-status-sent-real.json", Whole, &[WhatsappStatus]),
    ("75-wa-status-delivered-real.json", Whole, &[WhatsappStatus]),
    ("76-wa-status-read-pywa.json", Whole, &[WhatsappStatus]),
    ("77-wa-status-played-pywa.json", Whole, &[WhatsappStatus]),
    ("78-wa-status-failed-131049-docs.json", Whole, &[WhatsappStatus]),
    ("79-wa-status-failed-131014-courier.json", Whole, &[WhatsappStatus]),
    ("80-wa-status-sent-pmp-docs.json", Whole, &[WhatsappStatus]),
    ("81-wa-status-group-pywa.json", Whole, &[WhatsappStatus]),
    ("82-wa-duplicate-messages-courier.json", Whole, &[WhatsappMessage, WhatsappMessage]),
    ("83-wa-group-message-courier.json", Whole, &[WhatsappMessage]),
    ("84-wa-system-number-change-pywa.json", Whole, &[WhatsappMessage]),
    ("85-wa-edited-message-pywa.json", Whole, &[WhatsappMessage]),
    ("86-wa-deleted-message-pywa.json", Whole, &[WhatsappMessage]),
    ("87-wa-smb-message-echoes-pywa.json", Whole, &[Change]),
    ("88-wa-template-status-approved-pywa.json", Whole, &[Change]),
];

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/meta")
}

/// The delivery a fixture stands for, as bytes.
fn delivery(file: &str, body: Body) -> Vec<u8> {
    let text = std::fs::read(fixtures().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let entry = |object: &str, id: &str, time: i64, change: Value| {
        let entry = json!({"id": id, "time": time, "changes": [change]});
        json!({"object": object, "entry": [entry]})
    };
    let parsed = || serde_json::from_slice::<Value>(&text).unwrap();
    match body {
        Body::Whole => text,
        Body::Change(object, id, time) => entry(object, id, time, parsed()).to_string().into(),
        Body::Value(field, object, id, time) => {
            let change = json!({"field": field, "value": parsed()});
            entry(object, id, time, change).to_string().into()
        }
    }
}

fn events(file: &str) -> Vec<Event> {
    let (_, body, _) = CASES.iter().find(|(name, ..)| *name == file).expect("file in the table");
    split(&delivery(file, *body)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn distinct_keys(events: &[Event]) -> usize {
    let mut keys: Vec<_> = events.iter().map(|e| e.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    keys.len()
}

#[test]
fn every_fixture_splits_into_the_kinds_written_down() {
    let mut wrong = Vec::new();
    for (file, body, expected) in CASES {
        match split(&delivery(file, *body)) {
            Ok(events) => {
                let kinds: Vec<Kind> = events.iter().map(|e| e.kind).collect();
                if kinds != *expected {
                    wrong.push(format!("{file}: got {kinds:?}, expected {expected:?}"));
                }
            }
            Err(e) => wrong.push(format!("{file}: {e}")),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_table_lists_every_fixture_in_the_corpus() {
    let mut on_disk: Vec<String> = std::fs::read_dir(fixtures())
        .expect("the fixtures folder")
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".json"))
        .collect();
    on_disk.sort();
    let listed: Vec<&str> = CASES.iter().map(|(file, ..)| *file).collect();
    assert_eq!(on_disk, listed);
    assert_eq!(listed.len(), 88);
}

#[test]
fn every_event_has_a_key_and_its_own_json() {
    for (file, body, _) in CASES {
        for event in split(&delivery(file, *body)).unwrap() {
            assert!(event.key.starts_with(event.kind.as_str()), "{file}: {}", event.key);
            assert!(!event.payload.is_null(), "{file}: {}", event.key);
        }
    }
}

#[test]
fn keys_survive_reformatting_and_reordering_of_a_redelivery() {
    for (file, body, _) in CASES {
        let bytes = delivery(file, *body);
        // serde_json's map sorts keys, so this changes both whitespace and key order.
        let reordered =
            serde_json::to_vec_pretty(&serde_json::from_slice::<Value>(&bytes).unwrap());
        let keys = |b: &[u8]| split(b).unwrap().into_iter().map(|e| e.key).collect::<Vec<_>>();
        assert_eq!(keys(&bytes), keys(&reordered.unwrap()), "{file}");
    }
}

#[test]
fn events_of_one_delivery_share_a_key_only_when_they_are_the_same_event() {
    for (file, body, _) in CASES {
        let mut seen: HashMap<String, Value> = HashMap::new();
        for event in split(&delivery(file, *body)).unwrap() {
            let previous = seen.entry(event.key.clone()).or_insert_with(|| event.payload.clone());
            assert_eq!(*previous, event.payload, "{file}: two events share {}", event.key);
        }
    }
}

#[test]
fn duplicated_events_in_one_delivery_get_one_key() {
    for (file, count) in [
        ("25-fb-duplicate-entries-courier.json", 2),
        ("51-ig-batched-entries-go.json", 3),
        ("82-wa-duplicate-messages-courier.json", 2),
    ] {
        let events = events(file);
        assert_eq!((events.len(), distinct_keys(&events)), (count, 1), "{file}");
    }
    // A Go fixture gives three senders the same mid; the sender keeps them apart.
    assert_eq!(distinct_keys(&events("41-ig-multi-messaging-go.json")), 3);
    assert_eq!(distinct_keys(&events("05-fb-multi-event-reply-to.json")), 7);
}

#[test]
fn messaging_events_carry_account_user_and_time() {
    let [echo] = &events("02-fb-echo-real-2017.json")[..] else { panic!() };
    assert_eq!(echo.account_id.as_deref(), Some("247349599062786"));
    assert_eq!(
        echo.user_id.as_deref(),
        Some("1846048872078817"),
        "an echo's user is its recipient"
    );
    let Detail::Message(message) = &echo.detail else { panic!("{:?}", echo.detail) };
    assert_eq!((message.is_echo, message.app_id.as_deref()), (true, Some("276959789397329")));

    let [standby] = &events("15-fb-standby-postback-fbmq.json")[..] else { panic!() };
    assert_eq!(standby.source, Source::Standby);

    let [delivery] = &events("11-fb-delivery-no-timestamp-botman.json")[..] else { panic!() };
    assert_eq!(delivery.occurred_at, Some(1480279487271), "falls back to entry.time");

    let [referral] = &events("24-fb-referral-timestamp-seconds-courier.json")[..] else { panic!() };
    assert_eq!(referral.occurred_at, Some(1_701_599_111_000), "seconds become milliseconds");

    let [policy] = &events("22-fb-policy-enforcement-hyphen-fbmq.json")[..] else { panic!() };
    let Detail::PolicyEnforcement(p) = &policy.detail else { panic!("{:?}", policy.detail) };
    assert_eq!((p.action.as_deref(), policy.user_id.as_deref()), (Some("block"), None));

    let [optin] = &events("16-fb-optin-user-ref-no-sender-botman.json")[..] else { panic!() };
    assert_eq!(optin.user_id, None, "a checkbox opt-in has only a user_ref");
}

#[test]
fn dashboard_tests_are_marked() {
    let [edit] = &events("27-fb-message-edit-dashboard-test.json")[..] else { panic!() };
    assert!(edit.test);
    assert_eq!(edit.occurred_at, Some(1_527_459_824_000), "a string of seconds");
    assert!(events("49-ig-mentions-dashboard-test.json")[0].test);
    assert!(!events("34-ig-text-signed-real-Oi.json")[0].test);
}

#[test]
fn an_unsent_instagram_message_does_not_pass_for_the_message() {
    let [unsent] = &events("44-ig-unsent-deleted-courier.json")[..] else { panic!() };
    assert_eq!(unsent.key, "message:5678:external_id:deleted");
}

#[test]
fn other_objects_and_fields_keep_their_names() {
    let [photos] = &events("33-user-photos-docs.json")[..] else { panic!() };
    assert_eq!(photos.platform, Platform::Other("user".into()));
    assert_eq!(photos.platform.as_str(), "user");
    let [template] = &events("88-wa-template-status-approved-pywa.json")[..] else { panic!() };
    let Detail::Change { field, value } = &template.detail else { panic!() };
    assert_eq!(
        (field.as_str(), &value["event"]),
        ("message_template_status_update", &json!("APPROVED"))
    );
}

#[test]
fn whatsapp_events_belong_to_the_phone_number() {
    let [text] = &events("53-wa-text-docs.json")[..] else { panic!() };
    assert_eq!(text.account_id.as_deref(), Some("106540352242922"));
    assert_eq!(text.user_id.as_deref(), Some("16505551234"));
    let Detail::WhatsappMessage(message) = &text.detail else { panic!() };
    assert_eq!(message.text(), Some("Does it come in another color?"));
    let name = message.contact.as_ref().and_then(|c| c.profile.as_ref()?.name.as_deref());
    assert_eq!(name, Some("Sheena Nelson"));

    let [failed] = &events("78-wa-status-failed-131049-docs.json")[..] else { panic!() };
    let Detail::WhatsappStatus(status) = &failed.detail else { panic!() };
    assert_eq!((status.status.as_deref(), status.errors[0].code), (Some("failed"), Some(131049)));
    assert_eq!(failed.user_id.as_deref(), Some("16505551234"));

    let [sent] = &events("80-wa-status-sent-pmp-docs.json")[..] else { panic!() };
    let Detail::WhatsappStatus(status) = &sent.detail else { panic!() };
    assert_eq!(status.pricing.as_ref().unwrap().pricing_model.as_deref(), Some("PMP"));

    let [errors] = &events("72-wa-value-errors-130429-docs.json")[..] else { panic!() };
    let Detail::WhatsappErrors(list) = &errors.detail else { panic!("{:?}", errors.detail) };
    assert_eq!(
        (list[0].code, errors.account_id.as_deref()),
        (Some(130429), Some("106540352242922"))
    );
}

#[test]
fn each_group_participant_reading_a_message_is_its_own_status() {
    let [read] = &events("81-wa-status-group-pywa.json")[..] else { panic!() };
    assert!(read.key.ends_with(":read:<GROUP_PARTICIPANT_USER_PHONE_NUMBER>"), "{}", read.key);
}

/// Every way of replacing one value of `value` with a value of another type.
fn mutations(value: &Value) -> Vec<Value> {
    let others = [json!(null), json!(7), json!("7"), json!([]), json!({}), json!([{}])];
    let mut out: Vec<Value> = others.iter().filter(|o| *o != value).cloned().collect();
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                for m in mutations(item) {
                    let mut copy = items.clone();
                    copy[i] = m;
                    out.push(Value::Array(copy));
                }
            }
        }
        Value::Object(fields) => {
            for (name, item) in fields {
                for m in mutations(item) {
                    let mut copy = fields.clone();
                    copy[name] = m;
                    out.push(Value::Object(copy));
                }
            }
        }
        _ => {}
    }
    out
}

#[test]
fn no_value_inside_an_envelope_makes_the_split_fail() {
    for (file, body, _) in CASES {
        let delivery: Value = serde_json::from_slice(&delivery(file, *body)).unwrap();
        let object = delivery["object"].clone();
        for entry in mutations(&delivery["entry"]).into_iter().filter(Value::is_array) {
            let body = json!({"object": object, "entry": entry}).to_string();
            assert!(split(body.as_bytes()).is_ok(), "{file}: {body}");
        }
    }
}
