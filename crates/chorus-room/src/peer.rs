//! One participant's peer connection as its room drives it: the rtc object, its
//! paths and liveness, its timer and what it carries.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::BytesMut;
use chorus_core::{ConnId, Forwarder, TrackId};
use chorus_transport::stun::looks_like_stun;
use chorus_transport::{
    Demux, Egress, IceCredentials, IceEvent, IceLite, MediaCounters, MediaPlane, StunCheck,
};
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::RTCMessage;
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

pub(crate) struct Peer {
    pub conn: ConnId,
    pub pc: RTCPeerConnection,
    /// Which client address media goes to, and whether the client is still there.
    pub ice: IceLite,
    /// The deadline this connection is filed under in the room's timer heap.
    pub scheduled: Option<Instant>,
    /// Has output waiting in `poll_write`.
    pub dirty: bool,
    /// Subscriber side: an offer is out and not yet answered.
    pub offer_in_flight: bool,
    /// Subscriber side: tracks changed while an offer was out.
    pub needs_offer: bool,
    /// Subscriber side: the next offer restarts ICE.
    pub restart_ice: bool,
    /// Subscriber side: what this connection forwards, by published track.
    pub downtracks: HashMap<TrackId, DownTrack>,
    /// Publisher side: rtc's track id → the published track it carries.
    pub uptracks: HashMap<String, TrackId>,
}

/// One published track as forwarded to one subscriber.
pub(crate) struct DownTrack {
    pub sender: RTCRtpSenderId,
    pub ssrc: u32,
    pub payload_type: u8,
    pub forwarder: Forwarder,
    pub negotiation: Negotiation,
}

/// Where a subscriber's track stands in offer/answer. Packets sent before the client
/// has the track in its SDP would be dropped by it, the first keyframe with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Negotiation {
    /// Added; the next offer will carry it.
    Pending,
    /// In the offer that is out.
    Offered,
    /// The client's answer included it: forward.
    Live,
}

/// Where a publisher's track arrives.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UpstreamBinding {
    pub receiver: RTCRtpReceiverId,
    /// Learned from the first RTP packet.
    pub media_ssrc: Option<u32>,
    /// Negotiated id of the RFC 6464 audio level header extension (audio only).
    pub audio_level_ext: Option<u8>,
}

/// What came out of a connection after feeding it: handled by the room, which
/// may touch other participants, so they are collected first.
#[derive(Default)]
pub(crate) struct PeerOutput {
    pub events: Vec<RTCPeerConnectionEvent>,
    pub messages: Vec<RTCMessage>,
    pub ice: Vec<IceEvent>,
}

impl Peer {
    pub fn new(conn: ConnId, pc: RTCPeerConnection, ice: IceLite) -> Self {
        Self {
            conn,
            pc,
            ice,
            scheduled: None,
            dirty: false,
            offer_in_flight: false,
            needs_offer: false,
            restart_ice: false,
            downtracks: HashMap::new(),
            uptracks: HashMap::new(),
        }
    }

    /// Feeds one datagram. Binding requests are authenticated here first (the forged
    /// and the stale are counted and go no further); anything the connection accepts
    /// counts as a sign of life of the path it came on.
    pub fn handle_datagram(
        &mut self,
        local: SocketAddr,
        from: SocketAddr,
        at: Instant,
        data: BytesMut,
        counters: &MediaCounters,
    ) {
        let stun = looks_like_stun(&data);
        if stun {
            match self.ice.check_stun(from, &data, at) {
                StunCheck::Request { .. } | StunCheck::NotRequest => {}
                StunCheck::BadIntegrity => {
                    counters
                        .stun_bad_integrity
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    return;
                }
                // Stale credentials (an old ufrag after a restart) or garbage: rtc
                // would refuse them too.
                StunCheck::WrongUfrag | StunCheck::Malformed => return,
            }
        }
        let msg = TaggedBytesMut {
            now: at,
            transport: TransportContext {
                local_addr: local,
                peer_addr: from,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: data,
        };
        // Garbage, replays and packets for a closed session are the peer's problem, not ours.
        match self.pc.handle_read(msg) {
            // SRTP, SRTCP and DTLS that decrypted: authenticated. STUN requests were
            // counted above; indications and responses prove nothing.
            Ok(()) if !stun => self.ice.heard(from, at),
            Ok(()) => {}
            Err(e) => {
                tracing::trace!(conn = self.conn.0, error = %e, "dropped incoming datagram")
            }
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let Err(e) = self.pc.handle_timeout(now) {
            tracing::debug!(conn = self.conn.0, error = %e, "timeout handling failed");
        }
        self.ice.handle_timeout(now);
    }

    /// Takes the ICE credentials of the local description just set: the first ones, or
    /// new ones after an ICE restart. Returns the ufrag to stop routing, if any, and
    /// whether routing changed.
    pub fn sync_credentials(&mut self, now: Instant) -> Option<(Option<String>, String)> {
        let sdp = self.pc.local_description()?.sdp;
        let credentials = IceCredentials::from_sdp(&sdp)?;
        if self.ice.credentials() == Some(&credentials) {
            return None;
        }
        let new = credentials.ufrag.clone();
        let old = self.ice.set_credentials(credentials, now).map(|c| c.ufrag);
        Some((old, new))
    }

    /// The server ufrag routed to this connection (of its latest local description).
    pub fn ufrag(&self) -> Option<&str> {
        self.ice.credentials().map(|c| c.ufrag.as_str())
    }

    /// Notes that output may be waiting; true if the room must list it for flushing.
    pub fn mark_dirty(&mut self) -> bool {
        !std::mem::replace(&mut self.dirty, true)
    }

    /// An offer carrying every pending track went out.
    pub fn offer_sent(&mut self) {
        self.offer_in_flight = true;
        for dt in self.downtracks.values_mut() {
            if dt.negotiation == Negotiation::Pending {
                dt.negotiation = Negotiation::Offered;
            }
        }
    }

    /// The client answered the offer that was out.
    pub fn answer_applied(&mut self) {
        self.offer_in_flight = false;
        for dt in self.downtracks.values_mut() {
            if dt.negotiation == Negotiation::Offered {
                dt.negotiation = Negotiation::Live;
            }
        }
    }

    /// Takes the events and messages the connection produced.
    pub fn drain(&mut self, out: &mut PeerOutput) {
        while let Some(ev) = self.pc.poll_event() {
            out.events.push(ev);
        }
        while let Some(msg) = self.pc.poll_read() {
            out.messages.push(msg.message);
        }
        while let Some(ev) = self.ice.poll_event() {
            out.ice.push(ev);
        }
    }

    /// Queues what the connection has to send in the turn's batch (sent at the end of
    /// the turn); returns its next deadline.
    pub fn flush(&mut self, egress: &mut Egress<'_>) -> Option<Instant> {
        // rtc keeps the first nominated pair; media goes where the client nominated
        // last. STUN (answers to the client's checks) goes back where it came from.
        let path = self.ice.destination();
        while let Some(msg) = self.pc.poll_write() {
            let to = match path {
                Some(path) if !looks_like_stun(&msg.message) => path,
                _ => msg.transport.peer_addr,
            };
            egress.push(to, &msg.message);
        }
        self.dirty = false;
        [self.pc.poll_timeout(), self.ice.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn close(&mut self, media: &MediaPlane, demux: &Demux) {
        let _ = self.pc.close();
        // Its own batch: a close can happen in the middle of a turn (the goodbye goes now).
        let mut egress = media.egress();
        self.flush(&mut egress);
        egress.send();
        if let Some(ufrag) = self.ufrag() {
            demux.remove_conn(ufrag, self.conn, self.ice.routes());
        }
    }
}
