//! Data messages between participants: JSON text messages on two data channels the
//! client opens on its publisher connection ([`RELIABLE_LABEL`], [`LOSSY_LABEL`]). The
//! client sends a [`DataSend`] on one; the server delivers a [`DataDelivery`] on the
//! channel of the same label of each receiver, with the sender stamped by the server.
//! `docs/signaling.md` ("Data messages") describes the same for people.

use serde::{Deserialize, Serialize};

/// The channel of reliable, ordered messages (`createDataChannel("_reliable")`).
pub const RELIABLE_LABEL: &str = "_reliable";
/// The channel of unreliable, unordered messages (`createDataChannel("_lossy",
/// {ordered: false, maxRetransmits: 0})`).
pub const LOSSY_LABEL: &str = "_lossy";

/// Which of the two channels a message travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataMode {
    /// Reliable and ordered: every message arrives, in order (while the receiver keeps
    /// up; see docs/signaling.md).
    Reliable,
    /// Unreliable and unordered: sent once, dropped rather than late.
    Lossy,
}

impl DataMode {
    pub const ALL: [DataMode; 2] = [DataMode::Reliable, DataMode::Lossy];

    pub fn label(self) -> &'static str {
        match self {
            DataMode::Reliable => RELIABLE_LABEL,
            DataMode::Lossy => LOSSY_LABEL,
        }
    }

    pub fn from_label(label: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.label() == label)
    }
}

/// What a client sends on a data channel: to the whole room when `to` and
/// `to_participants` are both empty, else only to those named. Any other field (a
/// `from` above all) is ignored: the server says who sent it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSend {
    /// Identities to deliver to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    /// Participant ids to deliver to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to_participants: Vec<String>,
    /// A label of the application's (`chat`, `cursor`), passed on as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Any JSON value, passed on as it is.
    pub data: serde_json::Value,
}

/// What a receiver gets: the message as sent, and who sent it, stamped by the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataDelivery {
    pub from: DataSender,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    pub data: serde_json::Value,
    /// Sent to named receivers only (not to the whole room).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub private: bool,
}

/// The sender of a delivered message, as the server knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataSender {
    pub identity: String,
    pub participant_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_send_reads_with_defaults_and_ignores_a_forged_sender() {
        let sent: DataSend = serde_json::from_str(
            r#"{"data": {"text": "hi"}, "from": {"identity": "mallory"}, "topic": "chat"}"#,
        )
        .unwrap();
        assert!(sent.to.is_empty() && sent.to_participants.is_empty());
        assert_eq!(sent.topic.as_deref(), Some("chat"));
        assert_eq!(sent.data, serde_json::json!({"text": "hi"}));
        assert!(serde_json::from_str::<DataSend>(r#"{"to": ["a"]}"#).is_err());
    }

    #[test]
    fn labels_name_the_modes() {
        for mode in DataMode::ALL {
            assert_eq!(DataMode::from_label(mode.label()), Some(mode));
        }
        assert_eq!(DataMode::from_label("chat"), None);
    }
}
