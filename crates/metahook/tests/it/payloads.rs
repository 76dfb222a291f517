//! Small builders for Meta deliveries used by the pipeline tests: one event each, in the
//! shapes of `fixtures/meta`, so that tests can combine and reorder them.

use serde_json::{Value, json};

pub const PAGE: &str = "111899832631525";
pub const PHONE_ID: &str = "106540352242922";

/// A Messenger delivery holding `events` in one entry of `PAGE`.
pub fn messenger(events: Vec<Value>) -> Value {
    json!({"object": "page", "entry": [{"id": PAGE, "time": 1_700_000_000_000i64, "messaging": events}]})
}

/// A WhatsApp delivery holding one `messages` change value.
pub fn whatsapp(value: Value) -> Value {
    let mut value = value;
    value["messaging_product"] = json!("whatsapp");
    value["metadata"] = json!({"display_phone_number": "15550783881", "phone_number_id": PHONE_ID});
    json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398",
        "changes": [{"field": "messages", "value": value}]}]})
}

pub fn inbound(user: &str, mid: &str, text: &str, ts: i64) -> Value {
    json!({"sender": {"id": user}, "recipient": {"id": PAGE}, "timestamp": ts,
           "message": {"mid": mid, "text": text}})
}

pub fn echo(user: &str, mid: &str, text: &str, ts: i64) -> Value {
    json!({"sender": {"id": PAGE}, "recipient": {"id": user}, "timestamp": ts,
           "message": {"mid": mid, "text": text, "is_echo": true, "app_id": 1517776481860111i64}})
}

pub fn delivery(user: &str, watermark: i64, mids: &[&str]) -> Value {
    let mut delivery = json!({"watermark": watermark});
    if !mids.is_empty() {
        delivery["mids"] = json!(mids);
    }
    json!({"sender": {"id": user}, "recipient": {"id": PAGE}, "timestamp": watermark + 5,
           "delivery": delivery})
}

pub fn read(user: &str, watermark: i64) -> Value {
    json!({"sender": {"id": user}, "recipient": {"id": PAGE}, "timestamp": watermark + 7,
           "read": {"watermark": watermark}})
}

pub fn edit(user: &str, mid: &str, text: &str, num_edit: i64, ts: i64) -> Value {
    json!({"sender": {"id": user}, "recipient": {"id": PAGE}, "timestamp": ts,
           "message_edit": {"mid": mid, "text": text, "num_edit": num_edit}})
}

pub fn reaction(user: &str, mid: &str, emoji: Option<&str>, ts: i64) -> Value {
    let reaction = match emoji {
        Some(e) => json!({"mid": mid, "action": "react", "reaction": "love", "emoji": e}),
        None => json!({"mid": mid, "action": "unreact"}),
    };
    json!({"sender": {"id": user}, "recipient": {"id": PAGE}, "timestamp": ts, "reaction": reaction})
}

pub fn wa_status(wamid: &str, status: &str, recipient: &str, ts_seconds: i64) -> Value {
    let mut item = json!({"id": wamid, "status": status, "timestamp": ts_seconds.to_string(),
                          "recipient_id": recipient});
    if status == "failed" {
        item["errors"] = json!([{"code": 131049, "title": "This message was not delivered to maintain healthy ecosystem engagement."}]);
    }
    whatsapp(json!({"statuses": [item]}))
}

pub fn wa_text(wamid: &str, from: &str, text: &str, ts_seconds: i64) -> Value {
    whatsapp(json!({
        "contacts": [{"profile": {"name": "Ayşe"}, "wa_id": from}],
        "messages": [{"from": from, "id": wamid, "timestamp": ts_seconds.to_string(), "type": "text",
                      "text": {"body": text}}]
    }))
}
