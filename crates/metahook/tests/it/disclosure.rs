//! What the routes give away: the admin API answers the same 401 to every missing or wrong
//! token on every path, and without an admin token it is indistinguishable from a route that
//! does not exist; the public routes tell nothing of the configuration.

use reqwest::Method;

use crate::helpers::{
    ADMIN_TOKEN, Options, SECRET, TestApp, Undisclosed, VERIFY_TOKEN, database_url,
};
use crate::raw::Reply;

/// Admin paths of every kind: lists, replays, a path with no route, a method with none.
const ADMIN_REQUESTS: [(Method, &str); 7] = [
    (Method::GET, "/api/events"),
    (Method::GET, "/api/deliveries?limit=5000"),
    (Method::POST, "/api/events/retry?status=dead"),
    (Method::POST, "/api/events/1/retry"),
    (Method::GET, "/api"),
    (Method::GET, "/api/no-such-list"),
    (Method::DELETE, "/api/events"),
];

async fn send(app: &TestApp, method: Method, path: &str, authorization: Option<&str>) -> Reply {
    let mut request = app.client.request(method, app.url(path));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    Reply::from_reqwest(request.send().await.unwrap()).await
}

/// Status, content type, `WWW-Authenticate` and body: what tells one answer from another
/// (`Date` and the length follow from these).
fn face(reply: &Reply) -> (u16, Option<String>, Option<String>, String) {
    let header = |name| reply.header(name).map(str::to_owned);
    (reply.status, header("content-type"), header("www-authenticate"), reply.text())
}

#[tokio::test]
async fn every_missing_or_wrong_admin_token_gets_the_same_401_on_every_path() {
    // Hundreds of refusals from one address: the per-address cap (tested in limits.rs) would
    // answer 429 to most of them.
    let app =
        TestApp::spawn_with(Options::default().with("METAHOOK_REJECT_LIMIT_PER_ADDRESS", "0"))
            .await;
    let near = |token: &str| format!("Bearer {token}");
    let wrong = [
        None,
        Some(String::new()),
        Some("Bearer".into()),
        Some("Bearer ".into()),
        Some(near(&ADMIN_TOKEN[1..])),
        Some(near(&format!("{ADMIN_TOKEN}x"))),
        Some(near(&ADMIN_TOKEN.to_uppercase())),
        Some(near(VERIFY_TOKEN)),
        Some(format!("Basic {ADMIN_TOKEN}")),
        Some(ADMIN_TOKEN.into()),
    ];
    let mut faces = Vec::new();
    for (method, path) in ADMIN_REQUESTS {
        for authorization in &wrong {
            let reply = send(&app, method.clone(), path, authorization.as_deref()).await;
            Undisclosed::configured().assert_absent(path, &reply.text());
            faces.push(face(&reply));
        }
    }
    let body = r#"{"error":"missing or wrong bearer token"}"#;
    let expected = (401, Some("application/json".into()), Some("Bearer".into()), body.into());
    assert!(faces.iter().all(|f| *f == expected), "{faces:?}");

    // The right token reaches the routes, the scheme's name in any case (RFC 9110, 11.1).
    let statuses = [200, 400, 200, 404, 404, 404, 405];
    for ((method, path), status) in ADMIN_REQUESTS.into_iter().zip(statuses) {
        for scheme in ["Bearer", "bearer", "BEARER"] {
            let bearer = format!("{scheme} {ADMIN_TOKEN}");
            let reply = send(&app, method.clone(), path, Some(&bearer)).await;
            assert_eq!(reply.status, status, "{scheme} {path}");
        }
    }
}

#[tokio::test]
async fn without_an_admin_token_the_api_answers_like_a_route_that_does_not_exist() {
    let app = TestApp::spawn_with(Options::default().without("METAHOOK_ADMIN_TOKEN")).await;
    let absent = face(&send(&app, Method::GET, "/nowhere", None).await);
    assert_eq!(absent.0, 404);
    for (method, path) in ADMIN_REQUESTS {
        for authorization in [None, Some(format!("Bearer {ADMIN_TOKEN}"))] {
            let reply = send(&app, method.clone(), path, authorization.as_deref()).await;
            assert_eq!(face(&reply), absent, "{method} {path} {authorization:?}");
        }
    }
}

#[tokio::test]
async fn the_public_routes_disclose_no_configuration() {
    let app = TestApp::spawn().await;
    let url = database_url(app.dir.path()).await;
    let dir = app.dir.path().display().to_string();
    let places = [url.as_str(), &dir, "metahook.db", "metahook.spool", "sqlite://", "postgres://"];
    let undisclosed =
        Undisclosed::new(&[SECRET], &[&[VERIFY_TOKEN, ADMIN_TOKEN][..], &places].concat());
    let requests = [
        (Method::GET, "/meta/webhook/status"),
        (Method::GET, "/healthz"),
        (Method::GET, "/readyz"),
        (Method::GET, "/metrics"),
        (Method::GET, "/nowhere"),
        (Method::POST, "/nowhere"),
        (Method::GET, "/meta/webhook"),
        (Method::GET, "/meta/webhook?hub.mode=subscribe&hub.verify_token=x&hub.challenge=1"),
        (Method::POST, "/meta/webhook"),
        (Method::PUT, "/meta/webhook"),
    ];
    for (method, path) in requests {
        let reply = send(&app, method.clone(), path, None).await;
        let text = format!("{:?} {}", reply.headers, reply.text());
        undisclosed.assert_absent(&format!("{method} {path}"), &text);
    }

    // The status holds the documented figures and nothing else.
    let status = app.status().await;
    let keys = |value: &serde_json::Value| {
        let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    assert_eq!(keys(&status), ["counters", "last_event_time", "spool", "store", "webhook"]);
    assert_eq!(keys(&status["store"]), ["backend", "dead", "deliveries", "events", "pending"]);
    assert_eq!(keys(&status["counters"]), ["errors", "processed", "received", "rejected"]);
    assert_eq!(keys(&status["spool"]), ["bytes", "deliveries"]);
    assert_eq!(keys(&status["webhook"]), ["status"]);

    // No metric is about the secrets (how many there are, which one verified what).
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let names = metrics.lines().filter(|l| !l.starts_with('#')).map(|l| l.split(['{', ' ']));
    assert!(names.flat_map(|mut n| n.next()).all(|n| !n.contains("secret")), "{metrics}");
}
