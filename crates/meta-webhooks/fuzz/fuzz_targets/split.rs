//! A signed body as the receiver and the pipeline see it: the envelope check that decides
//! whether it is stored, then `split()` into events with their keys.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meta_webhooks::{Envelope, Event, Platform, split};
use serde_json::Value;

fuzz_target!(|body: &[u8]| {
    let envelope = Envelope::parse(body);
    let events = split(body);

    // The receiver stores what the envelope check accepts and the pipeline splits it later:
    // a stored body that does not split is a delivery acknowledged and then lost.
    assert_eq!(
        envelope.is_ok(),
        events.is_ok(),
        "envelope {:?} but split {:?}",
        envelope.as_ref().map(|e| &e.object),
        events.as_ref().map(Vec::len).map_err(ToString::to_string),
    );
    let (Ok(envelope), Ok(events)) = (envelope, events) else {
        return;
    };

    let platform = Platform::from_object(&envelope.object);
    for event in &events {
        assert_eq!(event.platform, platform);
        // Keys are `{kind}:{parts}`, so two events of different kinds never share a key.
        let kind = event.key.split_once(':').map(|(kind, _)| kind);
        assert_eq!(kind, Some(event.kind.as_str()), "key {:?}", event.key);
    }

    assert_eq!(split(body).ok().as_ref(), Some(&events), "split is not deterministic");

    // A redelivery with other whitespace or key order names the same events.
    let value: Value = serde_json::from_slice(body).expect("split parsed it");
    let compact = serde_json::to_vec(&value).expect("a value serialises");
    let again = split(&compact).expect("a re-serialised envelope splits");
    assert_eq!(keys(&again), keys(&events), "keys depend on formatting");
});

fn keys(events: &[Event]) -> Vec<(&str, &str)> {
    events.iter().map(|e| (e.kind.as_str(), e.key.as_str())).collect()
}
