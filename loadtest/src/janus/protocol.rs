//! The wire side of the Janus HTTP API: ids, the events Janus sends, the requests
//! participants send, and their mapping to and from the engine's signaling.

use chorus_client::{ClientMessage, PeerTarget, ServerMessage};
use chorus_protocol::MediaKind;
use chorus_protocol::signal::IceCandidate;
use serde_json::{Value, json};

/// A Janus session (one per participant, as one per browser tab).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionId(pub u64);

/// A plugin handle inside a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandleId(pub u64);

/// A VideoRoom room (numeric: the plugin's default `string_ids = false`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomId(pub u64);

/// A publisher in a room, as subscribers name it in `streams: [{feed}]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedId(pub u64);

/// Why a request to Janus failed.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    /// Janus refused it (`"janus": "error"`, or a plugin's `error_code`).
    #[error("janus error {code}: {reason}")]
    Janus { code: i64, reason: String },
    /// The reply did not have the shape the Janus API documents.
    #[error("unexpected reply: {0}")]
    Malformed(String),
    /// No reply in time; names what was awaited.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The participant's long-poll ended (its session is gone).
    #[error("event stream closed")]
    Closed,
}

/// An SDP carried next to a Janus message or event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Jsep {
    Offer(String),
    Answer(String),
}

impl Jsep {
    fn parse(value: &Value) -> Option<Self> {
        let sdp = value.get("sdp")?.as_str()?.to_owned();
        match value.get("type")?.as_str()? {
            "offer" => Some(Jsep::Offer(sdp)),
            "answer" => Some(Jsep::Answer(sdp)),
            _ => None,
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Jsep::Offer(sdp) => json!({ "type": "offer", "sdp": sdp }),
            Jsep::Answer(sdp) => json!({ "type": "answer", "sdp": sdp }),
        }
    }
}

/// What one Janus event says, as far as a load-test participant cares.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// VideoRoom: joined the room as a publisher, with this feed id.
    Joined(FeedId),
    /// VideoRoom: subscribed to these streams (Janus's offer is in the jsep).
    Attached(Vec<Relayed>),
    /// VideoRoom: `publish`/`configure` applied (the answer is in the jsep).
    Configured,
    /// VideoRoom: the subscriber's answer was applied.
    Started,
    /// VideoRoom refused a request.
    PluginError { code: i64, reason: String },
    /// Another VideoRoom event (publishers joining, leaving, ...).
    Plugin,
    /// A candidate of Janus; `None` is the end of its candidates.
    Trickle(Option<IceCandidate>),
    /// ICE and DTLS are up on the handle.
    WebrtcUp,
    /// The handle's PeerConnection was closed.
    Hangup(String),
    /// Janus's answer to an idle long-poll.
    Keepalive,
    /// Anything else (`media`, `slowlink`, `ack`, ...), by its `janus` field.
    Other(String),
}

/// A stream Janus relays to a subscriber: its m-line (`mid`) and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relayed {
    pub mid: String,
    pub feed: FeedId,
    pub kind: MediaKind,
}

impl Relayed {
    /// One entry of the `streams` list of `attached`; data channels and entries
    /// without a feed are skipped.
    fn parse(value: &Value) -> Option<Self> {
        let kind = match value.get("type")?.as_str()? {
            "audio" => MediaKind::Audio,
            "video" => MediaKind::Video,
            _ => return None,
        };
        Some(Self {
            mid: value.get("mid")?.as_str()?.to_owned(),
            feed: FeedId(value.get("feed_id")?.as_u64()?),
            kind,
        })
    }
}

/// Names the tracks of a subscriber offer after the publishers' tracks.
///
/// Janus labels every relayed m-line `a=msid:janus janus<mid>`, one stream for all, so
/// its msids cannot tell the tracks apart; apps built on `janus.js` map mids to feeds
/// through the `streams` list instead. This does the same and writes the publisher's
/// track id into the m-line's msid (the engine counts received packets by msid stream
/// id), so loss is counted per track as against Chorus. `names` is (mid, track id);
/// m-lines without a name keep their msid.
pub fn name_tracks(sdp: &str, names: &[(String, String)]) -> String {
    let mut out = String::with_capacity(sdp.len() + 64 * names.len());
    let mut name: Option<&str> = None;
    for line in sdp.split_inclusive('\n') {
        let text = line.trim_end_matches(['\r', '\n']);
        if text.starts_with("m=") {
            name = None;
        } else if let Some(mid) = text.strip_prefix("a=mid:") {
            name = names
                .iter()
                .find(|(m, _)| m == mid)
                .map(|(_, track)| track.as_str());
        } else if let (Some(track), true) = (name, text.starts_with("a=msid:")) {
            out.push_str(&format!("a=msid:{track} {track}\r\n"));
            continue;
        }
        out.push_str(line);
    }
    out
}

/// One Janus event: what it says, the request it answers and the SDP it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub transaction: Option<String>,
    pub kind: EventKind,
    pub jsep: Option<Jsep>,
}

impl Event {
    /// Reads one event of the Janus API. Unknown shapes become [`EventKind::Other`]:
    /// this is network input, so nothing here may fail hard.
    pub fn parse(value: &Value) -> Self {
        let janus = value.get("janus").and_then(Value::as_str).unwrap_or("");
        let kind = match janus {
            "event" => plugin_event(value.pointer("/plugindata/data").unwrap_or(&Value::Null)),
            "trickle" => EventKind::Trickle(value.get("candidate").and_then(candidate)),
            "webrtcup" => EventKind::WebrtcUp,
            "hangup" => EventKind::Hangup(
                value
                    .get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            ),
            "keepalive" => EventKind::Keepalive,
            other => EventKind::Other(other.to_owned()),
        };
        Self {
            transaction: value
                .get("transaction")
                .and_then(Value::as_str)
                .map(str::to_owned),
            kind,
            jsep: value.get("jsep").and_then(Jsep::parse),
        }
    }
}

pub(super) fn plugin_event(data: &Value) -> EventKind {
    if let Some(code) = data.get("error_code").and_then(Value::as_i64) {
        let reason = data.get("error").and_then(Value::as_str).unwrap_or("");
        return EventKind::PluginError {
            code,
            reason: reason.to_owned(),
        };
    }
    match data.get("videoroom").and_then(Value::as_str) {
        Some("joined") => match data.get("id").and_then(Value::as_u64) {
            Some(id) => EventKind::Joined(FeedId(id)),
            None => EventKind::Plugin,
        },
        Some("attached") => EventKind::Attached(
            data.get("streams")
                .and_then(Value::as_array)
                .map(|streams| streams.iter().filter_map(Relayed::parse).collect())
                .unwrap_or_default(),
        ),
        Some("event") if data.get("configured").is_some() => EventKind::Configured,
        Some("event") if data.get("started").is_some() => EventKind::Started,
        _ => EventKind::Plugin,
    }
}

/// A trickled candidate; `{"completed": true}` (or anything without a candidate line)
/// is the end of candidates.
fn candidate(value: &Value) -> Option<IceCandidate> {
    let line = value.get("candidate")?.as_str()?;
    Some(IceCandidate {
        candidate: line.to_owned(),
        sdp_mid: value
            .get("sdpMid")
            .and_then(Value::as_str)
            .map(str::to_owned),
        sdp_mline_index: value
            .get("sdpMLineIndex")
            .and_then(Value::as_u64)
            .and_then(|i| u16::try_from(i).ok()),
        username_fragment: None,
    })
}

/// A request to Janus on a participant's handle.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// A VideoRoom request, with an SDP or not.
    Message { body: Value, jsep: Option<Jsep> },
    /// One of our candidates; `None` is the end of them.
    Trickle(Option<IceCandidate>),
}

impl Request {
    /// The Janus request for a message of the engine, or `None` for ones that have no
    /// Janus counterpart. `published`: the publisher connection was offered before, so a
    /// new offer renegotiates (`configure`) instead of starting to publish.
    pub fn for_engine(message: &ClientMessage, published: bool) -> Option<Self> {
        match message {
            ClientMessage::Offer {
                target: PeerTarget::Publisher,
                sdp,
            } => {
                let request = if published { "configure" } else { "publish" };
                Some(Request::Message {
                    body: json!({ "request": request }),
                    jsep: Some(Jsep::Offer(sdp.clone())),
                })
            }
            ClientMessage::Answer {
                target: PeerTarget::Subscriber,
                sdp,
            } => Some(Request::Message {
                body: json!({ "request": "start" }),
                jsep: Some(Jsep::Answer(sdp.clone())),
            }),
            ClientMessage::Candidate { candidate, .. } => Some(Request::Trickle(candidate.clone())),
            _ => None,
        }
    }

    pub(super) fn to_json(&self, transaction: &str) -> Value {
        match self {
            Request::Message { body, jsep } => {
                let mut request =
                    json!({ "janus": "message", "transaction": transaction, "body": body });
                if let Some(jsep) = jsep {
                    request["jsep"] = jsep.to_json();
                }
                request
            }
            Request::Trickle(Some(c)) => json!({
                "janus": "trickle",
                "transaction": transaction,
                "candidate": {
                    "candidate": c.candidate,
                    "sdpMid": c.sdp_mid,
                    "sdpMLineIndex": c.sdp_mline_index.unwrap_or(0),
                },
            }),
            Request::Trickle(None) => json!({
                "janus": "trickle",
                "transaction": transaction,
                "candidate": { "completed": true },
            }),
        }
    }
}

/// The engine message for a Janus event on the handle of `target`, if it has one.
/// A mismatched SDP direction is passed on and refused by the engine.
pub fn engine_message(target: PeerTarget, event: &Event) -> Option<ServerMessage> {
    if let Some(jsep) = &event.jsep {
        return Some(match jsep {
            Jsep::Offer(sdp) => ServerMessage::Offer {
                target,
                sdp: sdp.clone(),
            },
            Jsep::Answer(sdp) => ServerMessage::Answer {
                target,
                sdp: sdp.clone(),
            },
        });
    }
    match &event.kind {
        EventKind::Trickle(candidate) => Some(ServerMessage::Candidate {
            target,
            candidate: candidate.clone(),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
