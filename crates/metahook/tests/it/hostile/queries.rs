//! Absurd handshake queries: huge, repeated, badly escaped, or past what a request may hold.

use super::Target;
use crate::helpers::VERIFY_TOKEN;

#[tokio::test]
async fn absurd_handshake_queries_get_exact_answers() {
    let target = Target::start().await;
    let token = format!("hub.verify_token={VERIFY_TOKEN}");
    let challenge = "c".repeat(60_000);
    let junk = "junk=1&".repeat(8_000);
    let cases: Vec<(&str, String, u16)> = vec![
        ("a 60 KB challenge", format!("hub.mode=subscribe&{token}&hub.challenge={challenge}"), 200),
        (
            "56 KB of other parameters",
            format!("{junk}hub.mode=subscribe&{token}&hub.challenge=1"),
            200,
        ),
        (
            "the token percent-encoded",
            "hub.mode=subscribe&hub.verify_token=test%2Dverify%2Dtoken&hub.challenge=1".into(),
            200,
        ),
        (
            "a wrong token before the right one",
            format!("hub.verify_token=nope&{token}&hub.mode=subscribe&hub.challenge=1"),
            403,
        ),
        (
            "the right token before a wrong one",
            format!("{token}&hub.verify_token=nope&hub.mode=subscribe&hub.challenge=1"),
            200,
        ),
        (
            "another mode before subscribe",
            format!("hub.mode=unsubscribe&hub.mode=subscribe&{token}&hub.challenge=1"),
            403,
        ),
        ("a bare %", format!("hub.mode=subscribe&{token}&hub.challenge=%"), 400),
        ("%zz", "hub.mode=subscribe&hub.verify_token=%zz&hub.challenge=1".into(), 400),
        (
            "escapes of invalid UTF-8",
            format!("hub.mode=subscribe&{token}&hub.challenge=%ff%fe"),
            400,
        ),
        ("names percent-encoded", format!("hub%2Emode=subscribe&{token}&hub.challenge=1"), 200),
        ("parameters without values", "hub.mode&hub.verify_token&hub.challenge".into(), 403),
        ("only separators", "&&&===&&&".into(), 400),
    ];
    for (case, query, status) in cases {
        let reply = target.raw_get(&format!("/meta/webhook?{query}")).await;
        if status == 200 {
            // The challenge is the last parameter of each: it comes back byte for byte.
            let challenge = query.rsplit_once("hub.challenge=").unwrap().1;
            assert_eq!((reply.status, reply.text().as_str()), (200, challenge), "{case}");
        } else {
            target.refused(case, &[reply], status, b"", "").await;
        }
    }

    // Past what a URI may hold (64 KiB), and past what a request head may hold.
    let reply = target.raw_get(&format!("/meta/webhook?{}", "a".repeat(100_000))).await;
    target.refused("a 100 KB query", &[reply], 414, b"", "").await;
    let reply = target.raw_get(&format!("/meta/webhook?{}", "a".repeat(1_000_000))).await;
    target.refused("a 1 MB query", &[reply], 431, b"", "").await;
    target.assert_serving().await;
}
