//! Every payload in `fixtures/meta/` goes through the real endpoint.

use std::path::PathBuf;

use crate::helpers::{Options, TestApp};

pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/meta")
}

/// All 88 fixture files, sorted by name.
pub fn all() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir())
        .expect("fixtures directory")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    assert_eq!(files.len(), 88, "the corpus has 88 payloads");
    files
}

/// Four fixtures are fragments (a change object or a bare value) rather than whole
/// deliveries; these wrap them, byte for byte, in the envelope Meta would send them in.
pub fn as_delivery(name: &str, bytes: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(bytes).unwrap();
    let wrapped = match &name[..2] {
        "28" | "32" => {
            format!(r#"{{"object":"page","entry":[{{"id":"1","time":1,"changes":[{text}]}}]}}"#)
        }
        "30" => format!(
            r#"{{"object":"page","entry":[{{"id":"1","time":1,"changes":[{{"field":"feed","value":{text}}}]}}]}}"#
        ),
        "52" => format!(
            r#"{{"object":"instagram","entry":[{{"id":"1","time":1,"changes":[{text}]}}]}}"#
        ),
        _ => return None,
    };
    Some(wrapped.into_bytes())
}

#[tokio::test]
async fn every_fixture_signed_with_a_test_secret_is_accepted_and_stored_byte_for_byte() {
    let app = TestApp::spawn().await;
    let mut sent = Vec::new();
    for (name, bytes) in all() {
        let body = match as_delivery(&name, &bytes) {
            Some(wrapped) => {
                let response = app.post_signed(bytes.clone()).await;
                assert_eq!(response.status(), 400, "{name} is a fragment, not a delivery");
                wrapped
            }
            None => bytes,
        };
        let response = app.post_signed(body.clone()).await;
        assert_eq!(response.status(), 200, "{name}");
        sent.push((name, body));
    }
    let stored = app.stored().await;
    assert_eq!(stored.len(), sent.len());
    for ((name, body), delivery) in sent.iter().zip(&stored) {
        assert_eq!(&delivery.body, body, "{name} stored differently");
    }
    assert_eq!(app.status().await["counters"]["received"], 88);
}

#[tokio::test]
async fn real_instagram_deliveries_verify_with_their_real_secret() {
    let options = Options::default().with(
        "METAHOOK_APP_SECRET",
        "8dce0a9be202a564061968aa1a58dcfa,dc074b4cd5c4679002750832c2065bc8",
    );
    let app = TestApp::spawn_with(options).await;
    let cases = [
        (
            "34-ig-text-signed-real-Oi.json",
            "636bb435ef0ed4b731acefdaec1b27e53aa108b5de4bf4ef6c0cf72913e2a288",
        ),
        (
            "35-ig-text-signed-real-oi.json",
            "4d9f9a4cb4256267b89fe0a048dfe2d9344a7286981278e750e9be5699dab1e5",
        ),
        (
            "36-ig-text-signed-real-OI.json",
            "8938af1e36b6490b7368222da434e255534915859cd6e43968a51f66c8309f2e",
        ),
        (
            "37-ig-echo-unicode-signed-real.json",
            "766e10942d149bfe42f2d18fad6c874c0073cde47a0d3387bb429928fa5d9db8",
        ),
    ];
    for (name, hex) in cases {
        let body = std::fs::read(dir().join(name)).unwrap();
        let header = format!("sha256={hex}");
        let response = app.post_with(body, &[("x-hub-signature-256", &header)]).await;
        assert_eq!(response.status(), 200, "{name}");
    }
    // The same real echo re-encoded as raw UTF-8, with Meta's header: refused.
    let escaped =
        std::fs::read_to_string(dir().join("37-ig-echo-unicode-signed-real.json")).unwrap();
    let raw = escaped.replace(r"\u00e1", "á").replace(r"\ud83e\udd70", "🥰");
    let header = format!("sha256={}", cases[3].1);
    assert_eq!(app.post_with(raw, &[("x-hub-signature-256", &header)]).await.status(), 401);

    let stored = app.stored().await;
    assert_eq!(stored.len(), 4);
    assert!(stored.iter().all(|d| d.secret_index == 1 && d.object == "instagram"));
}
