//! The signaling WebSocket to `/v1/rtc`: opening it with the `join` handshake, and
//! sending one message.

use std::time::Duration;

use chorus_protocol::ParticipantInfo;
use chorus_protocol::signal::{ClientMessage, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tracing::warn;

use crate::error::ClientError;

pub(crate) type WebSocket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long closing the WebSocket may take.
pub(crate) const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// The WebSocket's read buffer. tungstenite zeroes all of it (128 KiB by default) each
/// time the socket is polled, and the session polls it at every datagram; signaling
/// messages are small, and a larger one grows the buffer as needed.
const READ_BUFFER: usize = 4 * 1024;

/// The content of `joined`, with the whole roster.
pub(crate) struct Joined {
    pub(crate) room: String,
    pub(crate) participant: ParticipantInfo,
    /// `joined.participants` and every `roster` page after it.
    pub(crate) participants: Vec<ParticipantInfo>,
}

/// Connects to `url` and joins; returns the socket, messages that came before the
/// roster was complete, and `joined` with the whole roster.
pub(crate) async fn join(
    url: String,
) -> Result<(WebSocket, Vec<ServerMessage>, Joined), ClientError> {
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(url, Some(config), false).await?;
    send(&mut ws, &ClientMessage::Join {}).await?;
    let mut early = Vec::new();
    let (mut joined, mut complete) = loop {
        match receive(&mut ws).await? {
            ServerMessage::Joined {
                room,
                participant,
                participants,
                roster_complete,
                // This client reaches the server directly; TURN is for browsers behind
                // networks that block UDP.
                ice_servers: _,
            } => {
                let joined = Joined {
                    room,
                    participant,
                    participants,
                };
                break (joined, roster_complete);
            }
            ServerMessage::Error { code, message, .. } => {
                return Err(ClientError::Refused { code, message });
            }
            other => early.push(other),
        }
    };
    // The server sends the rest of a large roster in `roster` pages right after
    // `joined`; the join is done when the roster is whole.
    while !complete {
        match receive(&mut ws).await? {
            ServerMessage::Roster {
                participants,
                complete: last,
            } => {
                joined.participants.extend(participants);
                complete = last;
            }
            other => early.push(other),
        }
    }
    Ok((ws, early, joined))
}

/// The next message from the server; a close is an error.
async fn receive(ws: &mut WebSocket) -> Result<ServerMessage, ClientError> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => match serde_json::from_str::<ServerMessage>(&text) {
                Ok(message) => return Ok(message),
                Err(err) => warn!(%err, "unparsable server message"),
            },
            Some(Ok(Message::Close(Some(frame)))) => {
                return Err(ClientError::Refused {
                    code: format!("close_{}", u16::from(frame.code)),
                    message: frame.reason.to_string(),
                });
            }
            Some(Ok(Message::Close(None))) | None => return Err(ClientError::Closed),
            Some(Ok(_)) => {}
            Some(Err(err)) => return Err(err.into()),
        }
    }
}

pub(crate) async fn send(ws: &mut WebSocket, message: &ClientMessage) -> Result<(), ClientError> {
    let text = serde_json::to_string(message)
        .map_err(|err| ClientError::Protocol(format!("cannot encode message: {err}")))?;
    ws.send(Message::text(text)).await?;
    Ok(())
}
