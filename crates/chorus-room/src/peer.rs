//! One media connection of a participant, as the room drives it: the rtc object, its
//! paths and liveness ([`IceLite`]), and what it carries (down tracks on a subscriber
//! connection, with their offer/answer phase; up tracks on a publisher connection).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::BytesMut;
use chorus_core::{ConnId, Forwarder, TrackId};
use chorus_protocol::signal::PeerTarget;
use chorus_transport::stun::looks_like_stun;
use chorus_transport::{IceCredentials, IceEvent, IceLite, StunCheck};
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::RTCMessage;
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

use crate::io::ParticipantKey;
use crate::negotiation::{Negotiation, TrackPhase};
use crate::skips::Skip;

pub struct Peer {
    pub conn: ConnId,
    pub owner: ParticipantKey,
    pub target: PeerTarget,
    pub pc: RTCPeerConnection,
    /// Which client address media goes to, and whether the client is still there.
    pub ice: IceLite,
    /// Has output waiting in `poll_write`, and is listed for flushing.
    pub dirty: bool,
    /// Subscriber side: the server's offers.
    pub negotiation: Negotiation,
    /// Subscriber side: what this connection forwards, by published track.
    pub downtracks: HashMap<TrackId, DownTrack>,
    /// Publisher side: rtc's track id → the published track it carries.
    pub uptracks: HashMap<String, TrackId>,
    /// The SRTP protection profile its DTLS handshake negotiated, once it has.
    pub srtp_profile: Option<String>,
}

/// One published track as forwarded to one subscriber.
pub struct DownTrack {
    pub sender: RTCRtpSenderId,
    pub ssrc: u32,
    pub payload_type: u8,
    pub forwarder: Forwarder,
    pub phase: TrackPhase,
}

/// What came out of a connection after feeding it: handled by the room, which
/// may touch other participants, so they are collected first.
#[derive(Default)]
pub struct PeerOutput {
    pub events: Vec<RTCPeerConnectionEvent>,
    pub messages: Vec<RTCMessage>,
    pub ice: Vec<IceEvent>,
}

impl Peer {
    pub fn new(
        conn: ConnId,
        owner: ParticipantKey,
        target: PeerTarget,
        pc: RTCPeerConnection,
        ice: IceLite,
    ) -> Self {
        Self {
            conn,
            owner,
            target,
            pc,
            ice,
            dirty: false,
            negotiation: Negotiation::default(),
            downtracks: HashMap::new(),
            uptracks: HashMap::new(),
            srtp_profile: None,
        }
    }

    /// Feeds one datagram. Binding requests are authenticated here first (the forged
    /// and the stale go no further); anything the connection accepts counts as a sign
    /// of life of the path it came on.
    pub fn handle_datagram(
        &mut self,
        local: SocketAddr,
        from: SocketAddr,
        at: Instant,
        data: BytesMut,
    ) -> Result<(), Skip> {
        let stun = looks_like_stun(&data);
        if stun {
            match self.ice.check_stun(from, &data, at) {
                StunCheck::Request { .. } | StunCheck::NotRequest => {}
                StunCheck::BadIntegrity => return Err(Skip::StunBadIntegrity),
                // Stale credentials (an old ufrag after a restart) or garbage: rtc
                // would refuse them too.
                StunCheck::WrongUfrag | StunCheck::Malformed => return Err(Skip::StunRejected),
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
        Ok(())
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let Err(e) = self.pc.handle_timeout(now) {
            tracing::debug!(conn = self.conn.0, error = %e, "timeout handling failed");
        }
        self.ice.handle_timeout(now);
    }

    /// Takes the ICE credentials of the local description just set: the first ones, or
    /// new ones after an ICE restart. Returns the ufrag no longer routed (if any) and
    /// the one to route, when they changed.
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

    /// The next datagram the connection has to send, and where to.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, BytesMut)> {
        let msg = self.pc.poll_write()?;
        // rtc keeps the first nominated pair; media goes where the client nominated
        // last. STUN (answers to the client's checks) goes back where it came from.
        let to = match self.ice.destination() {
            Some(path) if !looks_like_stun(&msg.message) => path,
            _ => msg.transport.peer_addr,
        };
        Some((to, msg.message))
    }

    /// The connection's next deadline (rtc's or its liveness).
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        [self.pc.poll_timeout(), self.ice.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }
}
