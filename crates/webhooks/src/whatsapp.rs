//! What a WhatsApp Cloud API delivery says: inbound messages (with their contact) and
//! delivery statuses, from `entry[].changes[].value`.

use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::model::ConversationId;

/// An inbound message, with the contact it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct InboundMessage {
    pub wa_id: String,
    pub contact_name: Option<String>,
    pub phone_number_id: Option<String>,
    pub message_id: String,
    pub message_type: String,
    /// The text, or a media caption; `None` for types without text.
    pub body: Option<String>,
    pub sent_at: OffsetDateTime,
    /// The message object as received.
    pub payload: Value,
}

/// A status update for a message the business sent.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusUpdate {
    pub message_id: String,
    pub status: String,
}

/// Everything a delivery carries for conversations.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Extracted {
    pub messages: Vec<InboundMessage>,
    pub statuses: Vec<StatusUpdate>,
}

impl Extracted {
    /// The message ids, each a dedupe key (a retried message is the same delivery).
    pub fn message_ids(&self) -> impl Iterator<Item = &str> {
        self.messages
            .iter()
            .map(|message| message.message_id.as_str())
    }

    /// Messages and contacts as the store reads them: one record per message, with the
    /// id its conversation takes if it is new (the same for every message of a contact).
    pub fn message_records(&self) -> Value {
        let mut conversation_ids: Vec<(&str, ConversationId)> = Vec::new();
        let records = self
            .messages
            .iter()
            .map(|message| {
                let conversation = match conversation_ids
                    .iter()
                    .find(|(wa_id, _)| *wa_id == message.wa_id)
                {
                    Some((_, id)) => *id,
                    None => {
                        let id = ConversationId::new();
                        conversation_ids.push((message.wa_id.as_str(), id));
                        id
                    }
                };
                serde_json::json!({
                    "id": Uuid::now_v7(),
                    "conversation_id": conversation,
                    "wa_id": message.wa_id,
                    "name": message.contact_name,
                    "phone_number_id": message.phone_number_id,
                    "message_id": message.message_id,
                    "message_type": message.message_type,
                    "body": message.body,
                    "preview": preview(message),
                    "sent_at": message.sent_at.unix_timestamp(),
                    "payload": message.payload,
                })
            })
            .collect();
        Value::Array(records)
    }

    /// Status updates as the store reads them.
    pub fn status_records(&self) -> Value {
        Value::Array(
            self.statuses
                .iter()
                .map(|update| {
                    serde_json::json!({"message_id": update.message_id, "status": update.status})
                })
                .collect(),
        )
    }
}

/// The longest preview kept on a conversation.
pub const PREVIEW_CHARS: usize = 120;

fn preview(message: &InboundMessage) -> String {
    match &message.body {
        Some(text) => text.chars().take(PREVIEW_CHARS).collect(),
        None => format!("[{}]", message.message_type),
    }
}

fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

/// Reads the messages and statuses of a WhatsApp delivery; anything else yields nothing.
pub fn extract(payload: &Value) -> Extracted {
    let mut extracted = Extracted::default();
    let changes = payload["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|entry| entry["changes"].as_array().into_iter().flatten());
    for change in changes {
        let value = &change["value"];
        let phone_number_id = text(&value["metadata"]["phone_number_id"]);
        let contacts = value["contacts"].as_array();
        for message in value["messages"].as_array().into_iter().flatten() {
            let (Some(wa_id), Some(message_id)) = (text(&message["from"]), text(&message["id"]))
            else {
                continue;
            };
            let contact_name = contacts
                .into_iter()
                .flatten()
                .find(|contact| contact["wa_id"].as_str() == Some(wa_id.as_str()))
                .and_then(|contact| text(&contact["profile"]["name"]));
            let message_type = text(&message["type"]).unwrap_or_else(|| "unknown".to_owned());
            let body = text(&message["text"]["body"])
                .or_else(|| text(&message[message_type.as_str()]["caption"]));
            let sent_at = message["timestamp"]
                .as_str()
                .and_then(|seconds| seconds.parse::<i64>().ok())
                .and_then(|seconds| OffsetDateTime::from_unix_timestamp(seconds).ok())
                .unwrap_or_else(OffsetDateTime::now_utc);
            extracted.messages.push(InboundMessage {
                wa_id,
                contact_name,
                phone_number_id: phone_number_id.clone(),
                message_id,
                message_type,
                body,
                sent_at,
                payload: message.clone(),
            });
        }
        for status in value["statuses"].as_array().into_iter().flatten() {
            if let (Some(message_id), Some(state)) = (text(&status["id"]), text(&status["status"]))
            {
                extracted.statuses.push(StatusUpdate {
                    message_id,
                    status: state,
                });
            }
        }
    }
    extracted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(text: &str) -> Value {
        serde_json::from_str(text).unwrap_or_default()
    }

    const TEXT_MESSAGE: &str = include_str!("../../../fixtures/meta/text-message.json");
    const STATUS: &str = include_str!("../../../fixtures/meta/status-delivered.json");
    const BATCHED: &str = include_str!("../../../fixtures/meta/batched-two-entries.json");

    #[test]
    fn a_text_message_yields_its_contact_and_text() {
        let extracted = extract(&fixture(TEXT_MESSAGE));
        assert_eq!(extracted.messages.len(), 1);
        let message = &extracted.messages[0];
        assert_eq!(message.wa_id, "5511987654321");
        assert_eq!(message.contact_name.as_deref(), Some("Ana Souza"));
        assert_eq!(message.message_type, "text");
        assert_eq!(
            message.body.as_deref(),
            Some("Oi! Quero saber o status do meu pedido 4821")
        );
        assert_eq!(message.sent_at.unix_timestamp(), 1_764_072_000);
        assert_eq!(message.phone_number_id.as_deref(), Some("106540352242922"));
        assert!(extracted.statuses.is_empty());
    }

    #[test]
    fn a_status_delivery_has_no_messages() {
        let extracted = extract(&fixture(STATUS));
        assert!(extracted.messages.is_empty());
        assert_eq!(extracted.statuses.len(), 1);
        assert_eq!(extracted.statuses[0].status, "delivered");
    }

    #[test]
    fn messages_of_one_contact_share_a_conversation_id_and_media_shows_its_caption() {
        let payload = serde_json::json!({"entry": [{"changes": [{"value": {
            "contacts": [{"wa_id": "1", "profile": {"name": "A"}}],
            "messages": [
                {"from": "1", "id": "m1", "timestamp": "10", "type": "image", "image": {"caption": "look"}},
                {"from": "1", "id": "m2", "timestamp": "11", "type": "sticker"}
            ]
        }}]}]});
        let extracted = extract(&payload);
        assert_eq!(extracted.messages[0].body.as_deref(), Some("look"));
        let records = extracted.message_records();
        assert_eq!(records[0]["conversation_id"], records[1]["conversation_id"]);
        assert_eq!(records[1]["preview"], "[sticker]");
        assert_eq!(extracted.message_ids().collect::<Vec<_>>(), ["m1", "m2"]);
    }

    #[test]
    fn batched_entries_are_all_read() {
        let extracted = extract(&fixture(BATCHED));
        assert_eq!(extracted.messages.len(), 3, "{extracted:?}");
        let records = extracted.message_records();
        assert_ne!(records[0]["conversation_id"], records[2]["conversation_id"]);
    }

    #[test]
    fn anything_else_yields_nothing() {
        assert_eq!(
            extract(&serde_json::json!({"hello": "world"})),
            Extracted::default()
        );
        assert_eq!(extract(&Value::Null), Extracted::default());
    }
}
