//! Facts about messages and conversations: Messenger and Instagram messaging, WhatsApp
//! messages and statuses.

use meta_webhooks::event::Event;
use meta_webhooks::payload::{self, Direction};

use super::{ConversationFact, Edit, Fact, MessageFact, MessageStatus, ReactionFact};

fn base(event: &Event, platform: &str, mid: &str) -> MessageFact {
    MessageFact {
        platform: platform.to_owned(),
        mid: mid.to_owned(),
        account_id: event.account_id.clone(),
        user_id: event.user_id.clone(),
        at: event.occurred_at,
        ..MessageFact::default()
    }
}

fn conversation(event: &Event, platform: &str) -> Option<ConversationFact> {
    Some(ConversationFact {
        platform: platform.to_owned(),
        account_id: event.account_id.clone()?,
        user_id: event.user_id.clone()?,
        ..ConversationFact::default()
    })
}

pub fn message(event: &Event, platform: &str, m: &payload::Message) -> Vec<Fact> {
    let Some(mid) = m.mid.as_deref() else { return Vec::new() };
    let inbound = m.direction() == Direction::In;
    let mut facts = vec![Fact::Message(MessageFact {
        direction: Some(if inbound { "in" } else { "out" }),
        text: m.text.clone(),
        attachments: m.attachments.as_ref().map(|a| a.to_string()),
        status: Some(if inbound { MessageStatus::Received } else { MessageStatus::Sent }),
        sent_at: event.occurred_at,
        deleted: m.is_deleted,
        ..base(event, platform, mid)
    })];
    if inbound && let Some(conversation) = conversation(event, platform) {
        let last_inbound_at = event.occurred_at;
        facts.push(Fact::Conversation(ConversationFact { last_inbound_at, ..conversation }));
    }
    facts
}

pub fn delivery(event: &Event, platform: &str, d: &payload::Delivery) -> Vec<Fact> {
    let mut facts: Vec<Fact> = d
        .mids
        .iter()
        .map(|mid| {
            Fact::Message(MessageFact {
                direction: Some("out"),
                status: Some(MessageStatus::Delivered),
                ..base(event, platform, mid)
            })
        })
        .collect();
    if let (Some(watermark), Some(conversation)) = (d.watermark, conversation(event, platform)) {
        let delivered_watermark = Some(watermark);
        facts.push(Fact::Conversation(ConversationFact { delivered_watermark, ..conversation }));
    }
    facts
}

pub fn read(event: &Event, platform: &str, r: &payload::Read) -> Vec<Fact> {
    let mut facts = Vec::new();
    // Instagram's messaging_seen names the last message seen instead of a watermark.
    if let Some(mid) = r.mid.as_deref() {
        facts.push(Fact::Message(MessageFact {
            direction: Some("out"),
            status: Some(MessageStatus::Read),
            ..base(event, platform, mid)
        }));
    }
    if let (Some(watermark), Some(conversation)) = (r.watermark, conversation(event, platform)) {
        let read_watermark = Some(watermark);
        facts.push(Fact::Conversation(ConversationFact { read_watermark, ..conversation }));
    }
    facts
}

pub fn reaction(event: &Event, platform: &str, r: &payload::Reaction) -> Option<Fact> {
    let unreact = r.action.as_deref() == Some("unreact");
    Some(Fact::Reaction(ReactionFact {
        platform: platform.to_owned(),
        mid: r.mid.clone()?,
        user_id: event.user_id.clone()?,
        action: if unreact { "unreact" } else { "react" },
        reaction: r.reaction.clone().filter(|_| !unreact),
        emoji: r.emoji.clone().filter(|_| !unreact),
        at: event.occurred_at.unwrap_or(0),
    }))
}

pub fn edit(event: &Event, platform: &str, e: &payload::MessageEdit) -> Option<Fact> {
    let mid = e.mid.as_deref()?;
    let edit = Edit {
        count: e.num_edit.unwrap_or(0),
        text: e.text.clone(),
        at: event.occurred_at.unwrap_or(0),
    };
    Some(Fact::Message(MessageFact { edit: Some(edit), ..base(event, platform, mid) }))
}

pub fn whatsapp_message(event: &Event, m: &payload::WhatsappMessage) -> Vec<Fact> {
    let platform = event.platform.as_str();
    let at = m.timestamp.or(event.occurred_at);
    match m.message_type.as_deref() {
        Some("reaction") => {
            let Some(reaction) = &m.reaction else { return Vec::new() };
            let emoji = reaction.emoji.clone().filter(|e| !e.is_empty());
            let (Some(mid), Some(user_id)) = (m.refers_to(), event.user_id.clone()) else {
                return Vec::new();
            };
            vec![Fact::Reaction(ReactionFact {
                platform: platform.to_owned(),
                mid: mid.to_owned(),
                user_id,
                action: if emoji.is_some() { "react" } else { "unreact" },
                reaction: None,
                emoji,
                at: at.unwrap_or(0),
            })]
        }
        // WhatsApp does not count edits: each one counts as the first, the latest wins.
        Some("edit") => m
            .refers_to()
            .map(|mid| {
                let edit =
                    Edit { count: 1, text: m.text().map(str::to_owned), at: at.unwrap_or(0) };
                Fact::Message(MessageFact { edit: Some(edit), ..base(event, platform, mid) })
            })
            .into_iter()
            .collect(),
        Some("revoke") => m
            .refers_to()
            .map(|mid| Fact::Message(MessageFact { deleted: true, ..base(event, platform, mid) }))
            .into_iter()
            .collect(),
        message_type => {
            let Some(mid) = m.id.as_deref() else { return Vec::new() };
            let attachments = match message_type {
                Some("text") | None => None,
                Some(other) => event.payload.get(other).map(|v| v.to_string()),
            };
            let mut facts = vec![Fact::Message(MessageFact {
                direction: Some("in"),
                text: m.text().map(str::to_owned),
                attachments,
                status: Some(MessageStatus::Received),
                sent_at: at,
                at,
                ..base(event, platform, mid)
            })];
            if let Some(conversation) = conversation(event, platform) {
                facts.push(Fact::Conversation(ConversationFact {
                    last_inbound_at: at,
                    ..conversation
                }));
            }
            facts
        }
    }
}

pub fn whatsapp_status(event: &Event, s: &payload::WhatsappStatus) -> Option<Fact> {
    let status = MessageStatus::from_whatsapp(s.status.as_deref()?);
    let failed = status == MessageStatus::Failed;
    Some(Fact::Message(MessageFact {
        direction: Some("out"),
        user_id: s.recipient_id.clone().or_else(|| event.user_id.clone()),
        status: Some(status),
        sent_at: s.timestamp.filter(|_| status == MessageStatus::Sent),
        at: s.timestamp.or(event.occurred_at),
        error: event.payload.get("errors").filter(|_| failed).map(|e| e.to_string()),
        ..base(event, event.platform.as_str(), s.id.as_deref()?)
    }))
}
