//! The client signaling WebSocket: `GET /v1/rtc?access_token=JWT[&room=NAME]`.
//!
//! The token is checked before any room work. The upgrade always completes, so
//! a refused client can read why: one `error` frame, then a close with a
//! 4xxx code (see [`close_code`]). An admitted client sends `join`, receives
//! `joined`, and from then on every text frame is a [`ClientFrame`] for the
//! room and every event of the room a [`ServerMessage`] frame for the client.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chorus_core::TokenBucket;
use chorus_protocol::LeaveReason;
use chorus_protocol::signal::{ClientFrame, ClientMessage, IceServer, ServerMessage};
use chorus_protocol::token::AccessClaims;
use chorus_room_api::{JoinError, JoinRequest, JoinedSession};
use serde::Deserialize;
use tokio::time::{Instant, timeout};
use tracing::{Instrument, debug, info, warn};

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::token::{Keys, TokenError, check_room};
use crate::{ApiState, Limits, unix_now};

/// Largest client frame the protocol accepts; larger ones close the socket.
pub const MAX_CLIENT_FRAME: usize = 64 * 1024;

/// Frames beyond this are refused by the WebSocket layer itself, before we
/// see them; between [`MAX_CLIENT_FRAME`] and this the client gets an error frame.
const HARD_FRAME_LIMIT: usize = 1024 * 1024;

/// How long a closing socket waits for the client's close frame.
/// The WebSocket's read buffer (tungstenite's default is 128 KiB, kept for the whole
/// session). Signaling messages are small; a larger one grows the buffer as needed.
const READ_BUFFER: usize = 4 * 1024;
const CLOSE_LINGER: std::time::Duration = std::time::Duration::from_secs(2);

/// Close codes of the signaling socket.
pub mod close_code {
    /// The session ended (`left` was sent).
    pub const NORMAL: u16 = 1000;
    /// The server shut down before the client joined.
    pub const GOING_AWAY: u16 = 1001;
    /// A frame was larger than the protocol allows.
    pub const TOO_BIG: u16 = 1009;
    /// The access token was refused.
    pub const UNAUTHORIZED: u16 = 4401;
    /// The room refused the join (full, closed, ...).
    pub const JOIN_REFUSED: u16 = 4403;
    /// No `join` came in time.
    pub const JOIN_TIMEOUT: u16 = 4408;
    /// The room stopped without saying goodbye.
    pub const ROOM_FAILED: u16 = 4500;
    /// The room did not admit the client in time.
    pub const UNAVAILABLE: u16 = 4503;
}

pub fn router() -> Router<ApiState> {
    Router::new().route("/v1/rtc", get(rtc))
}

#[derive(Debug, Default, Deserialize)]
struct RtcQuery {
    access_token: Option<String>,
    room: Option<String>,
}

/// A refusal before or at admission: one error frame, then this close code.
#[derive(Debug, Clone, PartialEq)]
struct Refusal {
    code: &'static str,
    message: String,
    close: u16,
}

impl From<TokenError> for Refusal {
    fn from(e: TokenError) -> Self {
        Self {
            code: e.code(),
            message: e.to_string(),
            close: close_code::UNAUTHORIZED,
        }
    }
}

async fn rtc(
    State(state): State<ApiState>,
    headers: HeaderMap,
    query: Result<Query<RtcQuery>, QueryRejection>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    if let Some(origin) = headers.get(header::ORIGIN)
        && !origin_allowed(&state.config().allowed_origins, origin.as_bytes())
    {
        debug!(origin = ?origin, "signaling refused: origin not allowed");
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "pages of this origin may not open the signaling socket",
        )
        .into_response();
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => {
            return ApiError::new(rejection.status(), "invalid_request", rejection.body_text())
                .into_response();
        }
    };
    let admission = match query {
        Ok(Query(query)) => admit(&state.config().keys, &query, &headers, unix_now()),
        Err(rejection) => Err(Refusal::from(TokenError::Malformed(rejection.body_text()))),
    };
    let sessions = state.sessions().clone();
    // Every line the session logs names the room and the participant, once known.
    let span = match &admission {
        Ok(claims) => tracing::info_span!("session", room = %claims.room, identity = %claims.sub),
        Err(_) => tracing::info_span!("session"),
    };
    ws.read_buffer_size(READ_BUFFER)
        .max_message_size(HARD_FRAME_LIMIT)
        .max_frame_size(HARD_FRAME_LIMIT)
        .on_failed_upgrade(|e| debug!(error = %e, "signaling upgrade failed"))
        .on_upgrade(move |socket| {
            sessions.track_future(serve(socket, state, admission).instrument(span))
        })
}

/// Whether a page of `origin` may open the socket: any when none are configured.
fn origin_allowed(allowed: &[String], origin: &[u8]) -> bool {
    allowed.is_empty() || allowed.iter().any(|a| a.as_bytes() == origin)
}

/// Checks the token (from the query, or an `Authorization: Bearer` header for
/// clients that can set one) and the requested room, at time `now`.
fn admit(
    keys: &Keys,
    query: &RtcQuery,
    headers: &HeaderMap,
    now: u64,
) -> Result<AccessClaims, Refusal> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let token = query.access_token.as_deref().or(bearer).unwrap_or("");
    let claims = keys.verify(token, now)?;
    if let Some(room) = query.room.as_deref().filter(|r| !r.is_empty()) {
        check_room(&claims, room)?;
    }
    Ok(claims)
}

async fn serve(mut socket: WebSocket, state: ApiState, admission: Result<AccessClaims, Refusal>) {
    let _open = state.metrics().session_opened();
    let limits = state.limits();
    let claims = match admission {
        Ok(claims) => claims,
        Err(refusal) => {
            debug!(
                code = refusal.code,
                "signaling refused: {}", refusal.message
            );
            return refuse(socket, refusal, limits).await;
        }
    };
    let waited = tokio::select! {
        _ = state.shutdown().cancelled() => Waited::Shutdown,
        waited = timeout(limits.join_timeout, await_join(&mut socket, limits)) => {
            waited.unwrap_or(Waited::Timeout)
        }
    };
    let refusal = |code: &'static str, message: &str, close: u16| Refusal {
        code,
        message: message.to_owned(),
        close,
    };
    match waited {
        Waited::Joined => {}
        Waited::Gone => return,
        Waited::TooBig => return too_big(socket, limits).await,
        Waited::Timeout => {
            let r = refusal(
                "join_timeout",
                "no join message came in time",
                close_code::JOIN_TIMEOUT,
            );
            return refuse(socket, r, limits).await;
        }
        Waited::Shutdown => {
            let r = refusal(
                "server_shutdown",
                "the server is shutting down",
                close_code::GOING_AWAY,
            );
            return refuse(socket, r, limits).await;
        }
    }
    let name = if claims.name.is_empty() {
        claims.sub.clone()
    } else {
        claims.name.clone()
    };
    let who = JoinRequest {
        identity: claims.sub.clone(),
        name,
        grants: claims.grants.clone(),
        issued_at: claims.iat.unwrap_or(claims.nbf),
    };
    let asked = Instant::now();
    let session = match timeout(limits.admit_timeout, state.rooms().join(&claims.room, who)).await {
        Ok(Ok(session)) => {
            state.metrics().joined(asked.elapsed());
            session
        }
        Ok(Err(e)) => {
            info!(room = %claims.room, identity = %claims.sub, code = e.code(), "join refused: {e}");
            if matches!(e, JoinError::Removed(_)) {
                state.metrics().signaling_error(e.code());
            }
            // Too many joins at once is worth another try; the other refusals are not.
            let close = match e {
                JoinError::RateLimited(_) => close_code::UNAVAILABLE,
                _ => close_code::JOIN_REFUSED,
            };
            let r = Refusal {
                code: e.code(),
                message: e.to_string(),
                close,
            };
            return refuse(socket, r, limits).await;
        }
        Err(_) => {
            warn!(room = %claims.room, identity = %claims.sub, "the room did not admit in time");
            let r = refusal(
                "busy",
                "the room did not answer in time; try again",
                close_code::UNAVAILABLE,
            );
            return refuse(socket, r, limits).await;
        }
    };
    debug!(room = %claims.room, identity = %claims.sub, "joined");
    // Minted at the join, so that a credential's lifetime starts when the client needs it.
    let ice_servers = state
        .config()
        .turn
        .as_ref()
        .map(|turn| turn.ice_servers(&claims.sub, unix_now()))
        .unwrap_or_default();
    pump(socket, session, ice_servers, limits, state.metrics()).await;
    debug!(room = %claims.room, identity = %claims.sub, "signaling ended");
}

enum Waited {
    Joined,
    /// The client went away.
    Gone,
    Timeout,
    Shutdown,
    /// The client sent a frame larger than [`MAX_CLIENT_FRAME`].
    TooBig,
}

/// Reads until the client's `join`. Pings are answered; anything else gets an error frame.
async fn await_join(socket: &mut WebSocket, limits: Limits) -> Waited {
    loop {
        let text = match socket.recv().await {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Binary(_))) => {
                if send_error(socket, "bad_message", "expected a JSON text frame", limits)
                    .await
                    .is_err()
                {
                    return Waited::Gone;
                }
                continue;
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(_)) | Err(_)) | None => return Waited::Gone,
        };
        if text.len() > MAX_CLIENT_FRAME {
            return Waited::TooBig;
        }
        let reply = match serde_json::from_str::<ClientMessage>(&text) {
            Ok(ClientMessage::Join {}) => return Waited::Joined,
            Ok(ClientMessage::Ping { ts }) => ServerMessage::Pong { ts },
            Ok(_) => error_frame("not_joined", "send join first"),
            Err(e) => error_frame("bad_message", &e.to_string()),
        };
        if send(socket, &reply, limits).await.is_err() {
            return Waited::Gone;
        }
    }
}

/// How a joined session ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// The room sent `left`; the socket was closed normally.
    Left,
    /// The room's event stream ended without `left`.
    RoomGone,
    /// The socket closed, failed or could not keep up.
    SocketGone,
}

/// Carries frames both ways until one side ends. `ice_servers` go into the room's
/// `joined` (the room knows nothing of TURN).
async fn pump(
    mut socket: WebSocket,
    session: JoinedSession,
    mut ice_servers: Vec<IceServer>,
    limits: Limits,
    metrics: &Metrics,
) {
    let JoinedSession { mut events, link } = session;
    let mut sent_leave = false;
    let mut rate = TokenBucket::new(limits.message_burst, limits.messages_per_second);
    let end = loop {
        tokio::select! {
            event = events.recv() => {
                let Some(mut event) = event else {
                    let r = Refusal {
                        code: "room_closed",
                        message: "the room stopped unexpectedly".into(),
                        close: close_code::ROOM_FAILED,
                    };
                    refuse(socket, r, limits).await;
                    break End::RoomGone;
                };
                if let ServerMessage::Joined { ice_servers: slot, .. } = &mut event {
                    *slot = std::mem::take(&mut ice_servers);
                }
                if let ServerMessage::Error { code, .. } = &event {
                    metrics.signaling_error(code);
                }
                let left = matches!(event, ServerMessage::Left { .. });
                if send(&mut socket, &event, limits).await.is_err() {
                    break End::SocketGone;
                }
                if left {
                    close(socket, close_code::NORMAL, "left").await;
                    break End::Left;
                }
            }
            incoming = socket.recv() => {
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Binary(_))) => {
                        if send_error(&mut socket, "bad_message", "expected a JSON text frame", limits).await.is_err() {
                            break End::SocketGone;
                        }
                        continue;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break End::SocketGone,
                };
                if text.len() > MAX_CLIENT_FRAME {
                    too_big(socket, limits).await;
                    break End::SocketGone;
                }
                if !rate.allow(std::time::Instant::now()) {
                    metrics.signaling_error("rate_limited");
                    if send_error(&mut socket, "rate_limited", "too many messages; this one was dropped", limits).await.is_err() {
                        break End::SocketGone;
                    }
                    continue;
                }
                let frame = match serde_json::from_str::<ClientFrame>(&text) {
                    Ok(frame) => frame,
                    Err(e) => {
                        if send_error(&mut socket, "bad_message", &e.to_string(), limits).await.is_err() {
                            break End::SocketGone;
                        }
                        continue;
                    }
                };
                let leaving = matches!(frame.msg, ClientMessage::Leave {});
                let request_id = frame.request_id.clone();
                let error = match timeout(limits.send_timeout, link.send(frame)).await {
                    Ok(Ok(())) => {
                        sent_leave |= leaving;
                        None
                    }
                    Ok(Err(e)) => Some((e.code(), e.to_string())),
                    Err(_) => Some(("busy", "the room is not keeping up; message dropped".to_owned())),
                };
                let error = error.map(|(code, message)| ServerMessage::Error {
                    code: code.to_owned(),
                    message,
                    request_id,
                });
                if let Some(ServerMessage::Error { code, .. }) = &error {
                    metrics.signaling_error(code);
                }
                if let Some(error) = error
                    && send(&mut socket, &error, limits).await.is_err()
                {
                    break End::SocketGone;
                }
            }
        }
    };
    if end == End::SocketGone && !sent_leave {
        let _ = timeout(
            limits.send_timeout,
            link.close(LeaveReason::SignalingClosed),
        )
        .await;
    }
}

fn error_frame(code: &str, message: &str) -> ServerMessage {
    ServerMessage::Error {
        code: code.to_owned(),
        message: message.to_owned(),
        request_id: None,
    }
}

/// The socket is unusable (closed, failed or too slow).
struct SocketGone;

async fn send(
    socket: &mut WebSocket,
    msg: &ServerMessage,
    limits: Limits,
) -> Result<(), SocketGone> {
    let json = match serde_json::to_string(msg) {
        Ok(json) => json,
        Err(e) => {
            warn!(error = %e, "cannot encode a signaling frame; dropped");
            return Ok(());
        }
    };
    match timeout(limits.send_timeout, socket.send(Message::Text(json.into()))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) | Err(_) => Err(SocketGone),
    }
}

async fn send_error(
    socket: &mut WebSocket,
    code: &str,
    message: &str,
    limits: Limits,
) -> Result<(), SocketGone> {
    send(socket, &error_frame(code, message), limits).await
}

async fn too_big(socket: WebSocket, limits: Limits) {
    let r = Refusal {
        code: "message_too_large",
        message: format!("frames are limited to {MAX_CLIENT_FRAME} bytes"),
        close: close_code::TOO_BIG,
    };
    refuse(socket, r, limits).await;
}

/// One error frame, then close.
async fn refuse(mut socket: WebSocket, refusal: Refusal, limits: Limits) {
    if send_error(&mut socket, refusal.code, &refusal.message, limits)
        .await
        .is_ok()
    {
        close(socket, refusal.close, refusal.code).await;
    }
}

/// Sends a close frame and waits briefly for the client's, so the close is clean.
async fn close(mut socket: WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    if let Ok(Ok(())) = timeout(CLOSE_LINGER, socket.send(Message::Close(Some(frame)))).await {
        let _ = timeout(CLOSE_LINGER, async {
            while let Some(Ok(msg)) = socket.recv().await {
                if matches!(msg, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests;
