//! Data messages between participants, on two data channels the client opens on its
//! publisher connection ([`RELIABLE_LABEL`], [`LOSSY_LABEL`]). A text message is JSON:
//! the client sends a [`DataSend`], the server delivers a [`DataDelivery`] on the
//! channel of the same label of each receiver, with the sender stamped by the server. A
//! binary message is framed ([`write_binary`], [`read_binary`]): a 2-byte length, a JSON
//! header ([`BinarySend`] from the client, [`BinaryDelivery`] from the server), then the
//! payload as it is. `docs/signaling.md` ("Data messages") describes the same for people.

use serde::de::DeserializeOwned;
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

/// Bytes of the header length that starts a binary message (big-endian, as a
/// browser's `DataView.setUint16` writes it).
pub const BINARY_LENGTH_BYTES: usize = 2;

/// The header of a binary message a client sends: [`DataSend`] without its `data` (the
/// payload follows the header). Empty (length 0) or `{}`: to the room, no topic. Any
/// other field, a `from` above all, is ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinarySend {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to_participants: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

/// The header of a binary message the server delivers: [`DataDelivery`] without its
/// `data` (the sender's payload follows, byte for byte).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinaryDelivery {
    pub from: DataSender,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub private: bool,
}

/// Why a binary message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BinaryFramingError {
    #[error(
        "a binary data message starts with its header's length in 2 bytes (big-endian); \
         this one has {0} bytes"
    )]
    NoLength(usize),
    #[error("the header length says {header} bytes, but only {left} follow the 2 length bytes")]
    HeaderPastEnd { header: usize, left: usize },
    #[error("the header is not a JSON object of to, to_participants and topic: {0}")]
    BadHeader(String),
    #[error("a header is at most 65535 bytes; this one is {0}")]
    HeaderTooLong(usize),
}

/// Frames a binary message: `header`'s JSON after its length, then `payload`.
pub fn write_binary(
    header: &impl Serialize,
    payload: &[u8],
) -> Result<Vec<u8>, BinaryFramingError> {
    let json =
        serde_json::to_vec(header).map_err(|e| BinaryFramingError::BadHeader(e.to_string()))?;
    let len =
        u16::try_from(json.len()).map_err(|_| BinaryFramingError::HeaderTooLong(json.len()))?;
    let mut message = Vec::with_capacity(BINARY_LENGTH_BYTES + json.len() + payload.len());
    message.extend_from_slice(&len.to_be_bytes());
    message.extend_from_slice(&json);
    message.extend_from_slice(payload);
    Ok(message)
}

/// Reads a binary message: its header (the default when its length is 0) and the
/// payload after it (`payload_at`: where that starts in `message`).
pub fn read_binary<H: DeserializeOwned + Default>(
    message: &[u8],
) -> Result<(H, usize), BinaryFramingError> {
    let Some((len, rest)) = message.split_first_chunk::<BINARY_LENGTH_BYTES>() else {
        return Err(BinaryFramingError::NoLength(message.len()));
    };
    let header = usize::from(u16::from_be_bytes(*len));
    let Some(json) = rest.get(..header) else {
        return Err(BinaryFramingError::HeaderPastEnd {
            header,
            left: rest.len(),
        });
    };
    let parsed = match json {
        [] => H::default(),
        json => serde_json::from_slice(json)
            .map_err(|e| BinaryFramingError::BadHeader(e.to_string()))?,
    };
    Ok((parsed, BINARY_LENGTH_BYTES + header))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_messages_read_back_what_was_written() {
        let header = BinarySend {
            to: vec!["bob".into()],
            to_participants: Vec::new(),
            topic: Some("file".into()),
        };
        let message = write_binary(&header, &[0, 1, 2, 255]).unwrap();
        assert_eq!(
            &message[..2],
            &[0, 29],
            "{:?}",
            String::from_utf8_lossy(&message)
        );
        assert_eq!(&message[2..31], br#"{"to":["bob"],"topic":"file"}"#);
        let (read, at) = read_binary::<BinarySend>(&message).unwrap();
        assert_eq!((read, &message[at..]), (header, &[0u8, 1, 2, 255][..]));
    }

    #[test]
    fn binary_framing_errors() {
        type Case<'a> = (
            &'a str,
            &'a [u8],
            Result<(BinarySend, usize), BinaryFramingError>,
        );
        let cases: [Case; 7] = [
            ("empty", b"", Err(BinaryFramingError::NoLength(0))),
            ("one byte", b"\x00", Err(BinaryFramingError::NoLength(1))),
            (
                "no header: to the room",
                b"\x00\x00payload",
                Ok((BinarySend::default(), 2)),
            ),
            (
                "no header, no payload",
                b"\x00\x00",
                Ok((BinarySend::default(), 2)),
            ),
            (
                "a forged sender is ignored",
                b"\x00\x1f{\"from\":{\"identity\":\"mallory\"}}x",
                Ok((BinarySend::default(), 33)),
            ),
            (
                "header past the end",
                b"\x01\x00{}",
                Err(BinaryFramingError::HeaderPastEnd {
                    header: 256,
                    left: 2,
                }),
            ),
            (
                "not an object",
                b"\x00\x01[",
                Err(BinaryFramingError::BadHeader(
                    "EOF while parsing a list at line 1 column 1".into(),
                )),
            ),
        ];
        for (name, message, want) in cases {
            assert_eq!(read_binary::<BinarySend>(message), want, "{name}");
        }
    }

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
