//! Counters a test reads through [`crate::Client::stats`] or [`crate::Engine::stats`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use chorus_protocol::MediaKind;
pub use rtc::peer_connection::state::RTCPeerConnectionState as PeerConnectionState;

/// Snapshot of everything the client counted.
#[derive(Debug, Clone, Default)]
pub struct ClientStats {
    pub publisher: PeerStats,
    pub subscriber: PeerStats,
    /// Remote tracks received on the subscriber connection, by server track id
    /// (the media stream id of the track).
    pub inbound: HashMap<String, InboundTrackStats>,
    /// Own published tracks, by server track id.
    pub outbound: HashMap<String, OutboundTrackStats>,
    /// Server events dropped because nobody read them (the queue is bounded).
    pub events_dropped: u64,
    /// Offers or answers from the server that the WebRTC core rejected.
    pub negotiation_failures: u64,
}

/// One peer connection.
#[derive(Debug, Clone, Default)]
pub struct PeerStats {
    /// Latest connection state; `None` before the first change.
    pub state: Option<PeerConnectionState>,
    /// RTCP sender reports received.
    pub sender_reports: u64,
    /// RTCP receiver reports received.
    pub receiver_reports: u64,
    /// PLIs received (publisher: for our tracks).
    pub plis: u64,
    /// FIR entries received.
    pub firs: u64,
    /// Generic NACKs received.
    pub nacks: u64,
}

#[derive(Debug, Clone)]
pub struct InboundTrackStats {
    pub kind: MediaKind,
    pub ssrc: u32,
    pub packets: u64,
    /// RTP payload bytes.
    pub bytes: u64,
    pub first_packet_at: Option<Instant>,
    pub last_packet_at: Option<Instant>,
    /// VP8 keyframes seen (first packet of a keyframe).
    pub keyframes: u64,
    /// PLIs this client sent for the track.
    pub plis_sent: u64,
}

impl InboundTrackStats {
    pub(crate) fn new(kind: MediaKind, ssrc: u32) -> Self {
        Self {
            kind,
            ssrc,
            packets: 0,
            bytes: 0,
            first_packet_at: None,
            last_packet_at: None,
            keyframes: 0,
            plis_sent: 0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct OutboundTrackStats {
    pub kind: MediaKind,
    pub ssrc: u32,
    pub packets: u64,
    /// RTP payload bytes.
    pub bytes: u64,
    pub frames: u64,
    pub keyframes: u64,
    pub plis_received: u64,
    pub firs_received: u64,
    pub nacks_received: u64,
}

impl OutboundTrackStats {
    pub(crate) fn new(kind: MediaKind, ssrc: u32) -> Self {
        Self {
            kind,
            ssrc,
            packets: 0,
            bytes: 0,
            frames: 0,
            keyframes: 0,
            plis_received: 0,
            firs_received: 0,
            nacks_received: 0,
        }
    }
}

/// Stats shared between the client task (writer) and the handle (reader).
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedStats(Arc<Mutex<ClientStats>>);

impl SharedStats {
    pub(crate) fn lock(&self) -> MutexGuard<'_, ClientStats> {
        // A panic while holding the lock leaves plain counters behind; keep using them.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn snapshot(&self) -> ClientStats {
        self.lock().clone()
    }
}
