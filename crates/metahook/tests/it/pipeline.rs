//! From stored deliveries to the domain: decoding, dedupe, application, retries, replay.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::fixtures;
use crate::helpers::{ADMIN_TOKEN, Options, TestApp, execute_sql};
use crate::payloads::*;

async fn post(app: &TestApp, delivery: &Value) {
    let response = app.post_signed(delivery.to_string()).await;
    assert_eq!(response.status(), 200);
}

fn find<'a>(items: &'a [Value], field: &str, value: &str) -> &'a Value {
    items
        .iter()
        .find(|i| i[field] == value)
        .unwrap_or_else(|| panic!("no {field}={value} in {items:?}"))
}

#[tokio::test]
async fn signed_fixtures_posted_over_http_appear_in_the_admin_api() {
    let app = TestApp::spawn().await;
    for name in [
        "01-fb-text-real-2017.json",
        "02-fb-echo-real-2017.json",
        "17-fb-notification-messages-optin-courier.json",
        "25-fb-duplicate-entries-courier.json",
        "27-fb-message-edit-dashboard-test.json",
        "31-page-feed-comment-reply-2025.json",
        "37-ig-echo-unicode-signed-real.json",
        "48-ig-comment-real.json",
        "50-ig-mentions-and-story-insights-go.json",
        "53-wa-text-docs.json",
        "74-wa-status-sent-real.json",
        "75-wa-status-delivered-real.json",
        "78-wa-status-failed-131049-docs.json",
    ] {
        let body = std::fs::read(fixtures::dir().join(name)).unwrap();
        assert_eq!(app.post_signed(body).await.status(), 200, "{name}");
    }
    let status = app.settle().await;
    assert_eq!(status["store"]["dead"], 0);
    assert!(status["counters"]["processed"].as_u64().unwrap() >= 14);

    let messages = app.items("/api/messages").await;
    let text = find(&messages, "mid", "mid.$cAAC6AFgUYTphs6kk2lbgmPaOon0R");
    assert_eq!(
        (&text["platform"], &text["direction"], &text["text"], &text["status"]),
        (&json!("facebook"), &json!("in"), &json!("hello27"), &json!("received"))
    );
    assert_eq!(text["user_id"], "1846048872078817");
    assert_eq!(text["account_id"], "247349599062786");
    let echo = find(&messages, "mid", "mid.$cAAC6AFgUYTphs9LLnlbgo2DBtZsK");
    assert_eq!((&echo["direction"], &echo["status"]), (&json!("out"), &json!("sent")));
    let ig_echo = messages.iter().find(|m| m["platform"] == "instagram").unwrap();
    assert_eq!(ig_echo["text"], "Olá, testando amor 🥰");
    let wa_in =
        messages.iter().find(|m| m["platform"] == "whatsapp" && m["direction"] == "in").unwrap();
    assert_eq!(wa_in["user_id"], "16505551234");
    assert_eq!(wa_in["account_id"], "106540352242922");
    let sent_then_delivered = messages
        .iter()
        .find(|m| m["mid"] == "wamid.HBgNNTUxNjk5MjMxODIyMhUCABEYEjgxQkVFRDVBQTVDODFDOTg3MQA=")
        .expect("status rows create the outbound message");
    assert_eq!(sent_then_delivered["status"], "delivered");
    let failed = messages.iter().find(|m| m["status"] == "failed").unwrap();
    assert_eq!(failed["error"][0]["code"], 131049);

    // Fixture 25 carries one mid in two entries: one message, one duplicate.
    let events = app.items("/api/events?kind=message&platform=facebook").await;
    let courier: Vec<_> =
        events.iter().filter(|e| e["key"].as_str().unwrap().contains("external_id")).collect();
    assert_eq!(courier.len(), 1);
    assert_eq!(courier[0]["status"], "processed");
    assert!(courier[0]["payload"]["message"].is_object());

    // The dashboard test payload is stored, marked, and changes nothing.
    let tests = app.items("/api/events?kind=message_edit").await;
    assert_eq!(tests.len(), 1);
    assert_eq!(tests[0]["test"], true);
    assert!(messages.iter().all(|m| m["user_id"] != "12334"));

    let comments = app.items("/api/comments").await;
    let comment = find(&comments, "comment_id", "17867301270523379");
    assert_eq!(
        (&comment["text"], &comment["username"]),
        (&json!("LINK"), &json!("m_waqarsikandar"))
    );
    assert!(!app.items("/api/mentions").await.is_empty());
    assert!(!app.items("/api/story-insights").await.is_empty());
    let feed = app.items("/api/feed").await;
    let reply = find(&feed, "comment_id", "122131676912594941_1213590066982748");
    assert_eq!(
        (&reply["item"], &reply["verb"], &reply["message"]),
        (&json!("comment"), &json!("add"), &json!("meow 2"))
    );
    let optins = app.items("/api/optins").await;
    assert_eq!(optins.len(), 1);
    assert_eq!(optins[0]["type"], "notification_messages");
    assert_eq!(optins[0]["state"], "subscribed");

    let deliveries = app.items("/api/deliveries").await;
    assert_eq!(deliveries.len(), 13);
    assert!(deliveries.iter().all(|d| d["events"].as_u64().unwrap() >= 1));
}

#[tokio::test]
async fn every_fixture_is_processed_without_dead_events() {
    let app = TestApp::spawn().await;
    let mut keys = std::collections::HashSet::new();
    let mut total = 0;
    for (name, body) in fixtures::all() {
        let body = fixtures::as_delivery(&name, &body).unwrap_or(body);
        let events = meta_webhooks::split(&body).unwrap();
        total += events.len();
        keys.extend(events.into_iter().map(|e| (e.platform.as_str().to_owned(), e.key)));
        assert_eq!(app.post_signed(body).await.status(), 200, "{name}");
    }
    let status = app.settle().await;
    assert_eq!(status["store"]["dead"], 0, "{status}");
    assert_eq!(status["counters"]["errors"], 0, "{status}");
    // Library fixtures reuse ids across files: those events are stored once.
    assert_eq!(status["store"]["events"], keys.len(), "{status}");
    assert_eq!(status["counters"]["processed"], keys.len(), "{status}");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let duplicates = format!("metahook_event_duplicates_total {}", total - keys.len());
    assert!(metrics.lines().any(|l| l == duplicates), "{duplicates}");
}

#[tokio::test]
async fn a_read_watermark_arriving_before_the_message_it_covers_marks_it_read() {
    let app = TestApp::spawn().await;
    const T: i64 = 1_700_000_000_000;
    post(&app, &messenger(vec![read("U1", T + 2_000)])).await;
    app.settle().await;
    post(&app, &messenger(vec![echo("U1", "m_out_1", "sent before the watermark", T + 1_500)]))
        .await;
    post(&app, &messenger(vec![echo("U1", "m_out_2", "sent after it", T + 2_500)])).await;
    app.settle().await;
    let messages = app.items("/api/messages").await;
    assert_eq!(find(&messages, "mid", "m_out_1")["status"], "read");
    assert_eq!(find(&messages, "mid", "m_out_2")["status"], "sent");
    let conversations = app.items("/api/conversations").await;
    assert_eq!(conversations[0]["read_watermark"], T + 2_000);
}

#[tokio::test]
async fn whatsapp_read_without_delivered_is_read_and_failed_after_delivered_keeps_delivered() {
    let app = TestApp::spawn().await;
    post(&app, &wa_status("wamid.A", "read", "15551234567", 1_700_000_010)).await;
    post(&app, &wa_status("wamid.B", "delivered", "15551234567", 1_700_000_020)).await;
    post(&app, &wa_status("wamid.B", "failed", "15551234567", 1_700_000_030)).await;
    post(&app, &wa_status("wamid.C", "sent", "15551234567", 1_700_000_040)).await;
    post(&app, &wa_status("wamid.C", "failed", "15551234567", 1_700_000_050)).await;
    app.settle().await;
    let messages = app.items("/api/messages?platform=whatsapp").await;
    assert_eq!(find(&messages, "mid", "wamid.A")["status"], "read");
    let b = find(&messages, "mid", "wamid.B");
    assert_eq!(b["status"], "delivered");
    assert_eq!(b["error"][0]["code"], 131049, "the failure is kept");
    let c = find(&messages, "mid", "wamid.C");
    assert_eq!(c["status"], "failed");
    assert_eq!(c["sent_at"], 1_700_000_040_000i64);
}

#[tokio::test]
async fn the_same_mid_in_two_entries_of_one_delivery_is_applied_once() {
    let app = TestApp::spawn().await;
    let event = inbound("U1", "m_twice", "hello", 1_000);
    let body = json!({"object": "page", "entry": [
        {"id": PAGE, "time": 1, "messaging": [event.clone()]},
        {"id": PAGE, "time": 2, "messaging": [event]},
    ]});
    post(&app, &body).await;
    post(&app, &body).await;
    let status = app.settle().await;
    assert_eq!(status["store"]["events"], 1);
    assert_eq!(app.items("/api/messages").await.len(), 1);
    assert!(
        app.get("/metrics")
            .await
            .text()
            .await
            .unwrap()
            .contains("metahook_event_duplicates_total 3")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_rests_while_requests_crowd_the_inbox_and_catches_up_after() {
    // A crowd from one delivery per commit on: every commit counts, so the pipeline rests
    // after each step for as long as deliveries keep arriving.
    let options = Options::default()
        .with("METAHOOK_PIPELINE_YIELD_BATCH", "1")
        .with("METAHOOK_PIPELINE_YIELD", "8");
    let app = Arc::new(TestApp::spawn_with(options).await);
    let mut posters = JoinSet::new();
    for poster in 0..32 {
        let app = app.clone();
        posters.spawn(async move {
            for i in 0..25 {
                let mid = format!("m_crowd_{poster}_{i}");
                let body = json!({"object": "page", "entry": [{"id": PAGE, "time": i,
                    "messaging": [inbound("U1", &mid, "hello", 1_000 + i)]}]});
                assert_eq!(app.post_signed(body.to_string()).await.status(), 200);
            }
        });
    }
    while let Some(done) = posters.join_next().await {
        done.unwrap();
    }
    let status = app.settle().await;
    // Read once the backlog is applied: a rest is counted when it ends.
    let rested = app.metric("metahook_pipeline_yield_seconds_total").await;
    assert!(rested > 0.0, "the pipeline never gave way to the requests");
    assert_eq!(status["store"]["events"], 800);
    assert_eq!(status["counters"]["processed"], 800);
    assert_eq!(app.all_items("/api/messages").await.len(), 800);
}

#[tokio::test]
async fn a_failing_event_is_retried_parked_dead_and_applied_once_on_replay() {
    let app = TestApp::spawn_with(
        Options::default()
            .with("METAHOOK_PIPELINE_MAX_ATTEMPTS", "3")
            .with("METAHOOK_PIPELINE_RETRY_BASE_MS", "10"),
    )
    .await;
    // Inject a failure for one message only, from outside, through the database itself.
    execute_sql(
        app.dir.path(),
        "CREATE TRIGGER poison BEFORE INSERT ON messages WHEN NEW.mid = 'm_poison'
         BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'injected failure'; END $$;
         CREATE TRIGGER poison BEFORE INSERT ON messages FOR EACH ROW
         WHEN (NEW.mid = 'm_poison') EXECUTE FUNCTION poison();",
    )
    .await;
    let batch = messenger(vec![
        inbound("U1", "m_ok_1", "one", 1_000),
        inbound("U1", "m_poison", "two", 2_000),
        inbound("U1", "m_ok_3", "three", 3_000),
    ]);
    post(&app, &batch).await;
    let status = app.settle().await;
    assert_eq!(status["store"]["dead"], 1);
    let mids: Vec<Value> =
        app.items("/api/messages").await.iter().map(|m| m["mid"].clone()).collect();
    assert_eq!(mids, vec![json!("m_ok_1"), json!("m_ok_3")]);
    let dead = app.items("/api/events?status=dead").await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["attempts"], 3);
    assert!(dead[0]["error"].as_str().unwrap().contains("injected failure"));
    assert!(
        app.get("/metrics").await.text().await.unwrap().contains("metahook_dead_events_total 1")
    );

    execute_sql(app.dir.path(), "DROP TRIGGER poison", "DROP TRIGGER poison ON messages").await;
    let response = app
        .client
        .post(app.url("/api/events/retry?status=dead"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.json::<Value>().await.unwrap()["replayed"], 1);
    let status = app.settle().await;
    assert_eq!(status["store"]["dead"], 0);
    let messages = app.items("/api/messages").await;
    assert_eq!(messages.len(), 3);
    assert_eq!(find(&messages, "mid", "m_poison")["text"], "two");
    let id = dead[0]["id"].as_i64().unwrap();
    let log = crate::helpers::event_log(app.dir.path(), id).await;
    assert_eq!(log, ["error", "error", "dead", "processed"]);
}

#[tokio::test]
async fn the_admin_api_needs_the_token_and_pages_with_a_cursor() {
    let app = TestApp::spawn().await;
    for n in 0..5 {
        post(&app, &messenger(vec![inbound("U1", &format!("m_{n}"), "x", 1_700_000_000_000 + n)]))
            .await;
    }
    app.settle().await;
    let unauthorized = app.client.get(app.url("/api/messages")).send().await.unwrap();
    assert_eq!(unauthorized.status(), 401);
    let wrong = app.client.get(app.url("/api/messages")).bearer_auth("nope").send().await.unwrap();
    assert_eq!(wrong.status(), 401);

    let first = app.admin("/api/messages?limit=2").await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let mut seen = first["items"].as_array().unwrap().clone();
    let mut next = Some(cursor);
    while let Some(cursor) = next {
        let page = app.admin(&format!("/api/messages?limit=2&cursor={cursor}")).await;
        seen.extend(page["items"].as_array().unwrap().iter().cloned());
        next = page["next_cursor"].as_str().map(str::to_owned);
    }
    let mids: Vec<&str> = seen.iter().map(|m| m["mid"].as_str().unwrap()).collect();
    assert_eq!(mids, ["m_0", "m_1", "m_2", "m_3", "m_4"]);
    let bad = app
        .client
        .get(app.url("/api/messages?limit=5000"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn an_event_id_that_is_not_a_number_gets_the_apis_json_error() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .post(app.url("/api/events/not-a-number/retry"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "an event id is a number");
}

#[tokio::test]
async fn without_an_admin_token_the_admin_api_does_not_exist() {
    let app =
        TestApp::spawn_with(crate::helpers::Options::default().without("METAHOOK_ADMIN_TOKEN"))
            .await;
    let response =
        app.client.get(app.url("/api/messages")).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(response.status(), 404);
}
