//! Known-answer vectors from `fixtures/meta/SOURCES.md`, over the fixture files' exact
//! bytes, including the raw-UTF-8 re-encoding of a real body that must fail.

use std::path::PathBuf;

use meta_webhooks::Secret;
use meta_webhooks::signature::{SecretIndex, SignatureError, Verifier, sign_sha1, sign_sha256};

const INSTAGRAM_APP_SECRET: &str = "dc074b4cd5c4679002750832c2065bc8";
const FACEBOOK_APP_SECRET_OF_THE_SAME_APP: &str = "8dce0a9be202a564061968aa1a58dcfa";

fn fixture(name: &str) -> Vec<u8> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/meta");
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

fn header(hex: &str) -> Vec<u8> {
    format!("sha256={hex}").into_bytes()
}

#[test]
fn real_instagram_deliveries_verify_with_the_instagram_app_secret() {
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
    let verifier = Verifier::new(&[
        Secret::new(FACEBOOK_APP_SECRET_OF_THE_SAME_APP),
        Secret::new(INSTAGRAM_APP_SECRET),
    ]);
    for (file, expected) in cases {
        let body = fixture(file);
        assert_eq!(verifier.verify(Some(&header(expected)), &body), Ok(SecretIndex(1)), "{file}");
        let alone = Verifier::new(&[Secret::new(FACEBOOK_APP_SECRET_OF_THE_SAME_APP)]);
        assert_eq!(alone.verify(Some(&header(expected)), &body), Err(SignatureError::Mismatch));
    }
}

#[test]
fn legacy_sha1_headers_of_the_real_deliveries_are_reproduced() {
    let secret = Secret::new(INSTAGRAM_APP_SECRET);
    let cases = [
        ("34-ig-text-signed-real-Oi.json", "fffd11b8219cc2d0d5f1aef8846c62ea0477f11c"),
        ("35-ig-text-signed-real-oi.json", "5d3a2b27ff5ea2d84fe8d65ee01a6c349c3e5865"),
        ("36-ig-text-signed-real-OI.json", "9ad552995a1871b62fa105941c909d32c5b3005d"),
        ("37-ig-echo-unicode-signed-real.json", "eb165430f2d912e9ab79cd4372193cf7904d7f18"),
    ];
    for (file, expected) in cases {
        assert_eq!(sign_sha1(&secret, &fixture(file)), format!("sha1={expected}"), "{file}");
    }
}

#[test]
fn the_real_unicode_echo_reencoded_as_raw_utf8_fails() {
    let escaped = fixture("37-ig-echo-unicode-signed-real.json");
    let text = String::from_utf8(escaped.clone()).unwrap();
    assert!(text.contains(r"Ol\u00e1, testando amor \ud83e\udd70"));
    let raw = text.replace(r"\u00e1", "á").replace(r"\ud83e\udd70", "🥰");
    assert_eq!((escaped.len(), raw.len()), (442, 430));

    let secret = Secret::new(INSTAGRAM_APP_SECRET);
    let meta = header("766e10942d149bfe42f2d18fad6c874c0073cde47a0d3387bb429928fa5d9db8");
    let verifier = Verifier::new(std::slice::from_ref(&secret));
    assert_eq!(
        sign_sha256(&secret, raw.as_bytes()),
        "sha256=630298f3598dacda26a276035d516c339c2fe9bb7548b71b6c5349d6f42854b7"
    );
    assert_eq!(verifier.verify(Some(&meta), raw.as_bytes()), Err(SignatureError::Mismatch));
    assert_eq!(verifier.verify(Some(&meta), &escaped), Ok(SecretIndex(0)));
}

#[test]
fn library_vectors_match() {
    let cases: [(&str, &[u8], &str); 4] = [
        (
            "FAKE_SECRET",
            b"rawBody",
            "5ed144e30fbf7b9730f32b3a05200b1a3dd9098811b41742071c847eb9202cf7",
        ),
        ("FAKE_SECRET", b"{}", "448df8785dd36742e43fa3cad9de2eca8ceb6391e79c742e33e52c6637f32dac"),
        (
            "sesame",
            b"hello world",
            "f39034b29165ec6a5104d9aef27266484ab26c8caa7bca8bcb2dd02e8be61b17",
        ),
        (
            "sesame",
            b"hello world2",
            "60905fdf409d0b4f721e99f6f25b31567a68a6b45e933d814e17a246be4c5a53",
        ),
    ];
    for (secret, body, expected) in cases {
        let verifier = Verifier::new(&[Secret::new(secret)]);
        assert_eq!(verifier.verify(Some(&header(expected)), body), Ok(SecretIndex(0)));
    }
    let escaped = "Let's pretend this body is equal to the message object and can handle unicode \
                   characters like \\u307f\\u3069\\u308a\\u3044\\u308d and J'ai mang\\u00e9 des p\\u00e2tes";
    let expected = "0363007aabdf1ab579f35936651a460fb5fa1aaf40df98b1264446b72cc96688";
    let verifier = Verifier::new(&[Secret::new("YOUR_APP_SECRET")]);
    assert_eq!(verifier.verify(Some(&header(expected)), escaped.as_bytes()), Ok(SecretIndex(0)));
}

#[test]
fn botman_fixture_verifies_with_both_algorithms() {
    let body = fixture("03-fb-text-signed-botman.json");
    let secret = Secret::new("Bar");
    assert_eq!(body.len(), 257);
    assert_eq!(sign_sha1(&secret, &body), "sha1=74432bfe572675092cc81b5ac903ff3f971b04e5");
    let expected = header("bcc5bd9f45ededb77ddccb00da4b5f17db1469378185692ca58b6240c6efa167");
    assert_eq!(Verifier::new(&[secret]).verify(Some(&expected), &body), Ok(SecretIndex(0)));
}
