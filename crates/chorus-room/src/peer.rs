//! One participant's peer connection as its room drives it: the rtc object,
//! its routes, its timer and what it carries.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::BytesMut;
use chorus_core::{ConnId, Forwarder, TrackId};
use chorus_transport::{Demux, Egress, MediaPlane};
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::RTCMessage;
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

/// Remote addresses remembered per connection (for route cleanup); ICE rarely uses more than one.
const MAX_ADDRS: usize = 4;

pub(crate) struct Peer {
    pub conn: ConnId,
    pub pc: RTCPeerConnection,
    pub ufrag: String,
    pub addrs: Vec<SocketAddr>,
    pub connected: bool,
    /// The deadline this connection is filed under in the room's timer heap.
    pub scheduled: Option<Instant>,
    /// Has output waiting in `poll_write`.
    pub dirty: bool,
    /// Subscriber side: an offer is out and not yet answered.
    pub offer_in_flight: bool,
    /// Subscriber side: tracks changed while an offer was out.
    pub needs_offer: bool,
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
}

impl Peer {
    pub fn new(conn: ConnId, pc: RTCPeerConnection, ufrag: String) -> Self {
        Self {
            conn,
            pc,
            ufrag,
            addrs: Vec::new(),
            connected: false,
            scheduled: None,
            dirty: false,
            offer_in_flight: false,
            needs_offer: false,
            downtracks: HashMap::new(),
            uptracks: HashMap::new(),
        }
    }

    pub fn handle_datagram(
        &mut self,
        local: SocketAddr,
        from: SocketAddr,
        at: Instant,
        data: BytesMut,
    ) {
        if !self.addrs.contains(&from) && self.addrs.len() < MAX_ADDRS {
            self.addrs.push(from);
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
        if let Err(e) = self.pc.handle_read(msg) {
            tracing::trace!(conn = self.conn.0, error = %e, "dropped incoming datagram");
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let Err(e) = self.pc.handle_timeout(now) {
            tracing::debug!(conn = self.conn.0, error = %e, "timeout handling failed");
        }
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
    }

    /// Queues what the connection has to send in the turn's batch (sent at the end of
    /// the turn); returns its next deadline.
    pub fn flush(&mut self, egress: &mut Egress<'_>) -> Option<Instant> {
        while let Some(msg) = self.pc.poll_write() {
            egress.push(msg.transport.peer_addr, &msg.message);
        }
        self.dirty = false;
        self.pc.poll_timeout()
    }

    pub fn close(&mut self, media: &MediaPlane, demux: &Demux) {
        let _ = self.pc.close();
        // Its own batch: a close can happen in the middle of a turn (the goodbye goes now).
        let mut egress = media.egress();
        self.flush(&mut egress);
        egress.send();
        demux.remove_conn(&self.ufrag, self.conn, &self.addrs);
    }
}
