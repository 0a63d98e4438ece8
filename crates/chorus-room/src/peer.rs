//! One media connection of a participant, as the room drives it, over Chorus's own
//! `ServerConnection` ([`link`]). The room sees one face: datagrams and timers in,
//! [`PeerEvent`]s out, SDP exchanged, RTP sent.
//! What it carries is kept here: down tracks on a subscriber connection, with their
//! offer/answer phase; up tracks on a publisher connection.

pub(crate) mod link;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use chorus_core::Codec;
use chorus_core::{ConnId, Forwarder, NackMap, ResendBudget, TrackId, Vp8Rewrite};
use chorus_protocol::signal::PeerTarget;
use chorus_transport::{IceCredentials, IceEvent, IceLite};
use rtc::rtp::header::Header;

use crate::io::ParticipantKey;
use crate::negotiation::{Negotiation, TrackPhase};
use crate::selection::LayerSelection;
use crate::skips::Skip;
use crate::tracks::LayerIndex;
pub use link::Link;
pub use link::data::DataDrop;

pub struct Peer {
    pub conn: ConnId,
    pub owner: ParticipantKey,
    pub target: PeerTarget,
    link: Link,
    /// The server ufrag the demultiplexer routes to this connection.
    routed_ufrag: Option<String>,
    /// Has output waiting, and is listed for flushing.
    pub dirty: bool,
    /// Subscriber side: the server's offers.
    pub negotiation: Negotiation,
    /// Subscriber side: what this connection forwards, by published track.
    pub downtracks: HashMap<TrackId, DownTrack>,
    /// Publisher side: the client's track (as its SDP names it) → the published track.
    pub uptracks: HashMap<String, TrackId>,
    /// The SRTP protection profile its DTLS handshake negotiated, once it has.
    pub srtp_profile: Option<String>,
    /// Subscriber side: its participant is on hold, so nothing is forwarded to it.
    pub on_hold: bool,
    /// Subscriber side: what resends may still spend of the bandwidth estimate.
    pub resend_budget: ResendBudget,
}

/// One published track as forwarded to one subscriber.
pub struct DownTrack {
    pub ssrc: u32,
    pub payload_type: u8,
    pub forwarder: Forwarder,
    pub phase: TrackPhase,
    /// What went out under each of its sequence numbers, to answer NACKs (video only:
    /// a lost audio packet is late by the time a resend would arrive).
    pub sent: Option<NackMap>,
    /// The track's source its forwarder last took packets from (see `Outgoing::source`).
    pub source: u32,
    /// The client's answer took its m-section without its codec: nothing is sent.
    pub codec_refused: bool,
    /// A simulcast track: the subscriber's layer forwarder, which `forwarder` then
    /// leaves alone (made at its first packet, or when the subscriber sets its size).
    pub layers: Option<Box<LayerSelection>>,
    /// Paused by last-N: nothing goes out; on resume it restarts at a keyframe,
    /// numbered on from the last packet sent.
    pub paused: bool,
    /// Paused by the bandwidth allocation (`core/bandwidth.rs`): the same, counted
    /// under its own name.
    pub bandwidth_paused: bool,
    /// The bandwidth allocation decided about it at least once (until then it is new
    /// to it, and starts at its lowest layer).
    pub allocated: bool,
}

/// What came out of a connection, in the room's terms.
#[derive(Debug)]
pub enum PeerEvent {
    /// DTLS is up (and media can flow): what it negotiated, for the logs and stats.
    Connected {
        srtp_profile: String,
        dtls_cipher: String,
        dtls_role: String,
    },
    /// The connection failed for good (DTLS) or was closed.
    Failed,
    /// Publisher side: the client's description carries a track.
    UpTrack {
        sdp_track: String,
        /// The codec it arrives in (its kind follows).
        codec: Codec,
        /// Negotiated id of the RFC 6464 audio level header extension (audio only).
        audio_level_ext: Option<u8>,
        /// Simulcast: the rids of its layers, lowest quality first; else empty.
        layers: Vec<String>,
        /// AV1: negotiated id of the dependency descriptor header extension.
        dd_ext: Option<u8>,
    },
    /// Publisher side: media of one of its tracks (named as its SDP names it; shared, as
    /// this comes with every packet).
    Rtp {
        sdp_track: Arc<str>,
        /// Simulcast: the layer it belongs to.
        layer: Option<LayerIndex>,
        packet: rtc::rtp::Packet,
    },
    /// Subscriber side: the client asks for a keyframe of what it receives as `ssrc`.
    KeyframeRequest {
        ssrc: u32,
    },
    /// Subscriber side: the client lost these packets of what it receives as `ssrc`.
    Nack {
        ssrc: u32,
        lost: Vec<u16>,
    },
    Ice(IceEvent),
    /// Publisher side: a message on one of the client's data channels; `mode` is `None`
    /// on a channel of another label.
    Data {
        mode: Option<chorus_protocol::data::DataMode>,
        binary: bool,
        data: Bytes,
    },
}

/// Why an SDP step failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SdpFailed(pub String);

impl SdpFailed {
    fn of(e: impl std::fmt::Display) -> Self {
        Self(e.to_string())
    }
}

impl Peer {
    pub fn new(conn: ConnId, owner: ParticipantKey, target: PeerTarget, link: Link) -> Self {
        Self {
            conn,
            owner,
            target,
            link,
            routed_ufrag: None,
            dirty: false,
            negotiation: Negotiation::default(),
            downtracks: HashMap::new(),
            uptracks: HashMap::new(),
            srtp_profile: None,
            on_hold: false,
            resend_budget: ResendBudget::default(),
        }
    }

    /// A connection that nothing has happened to yet.
    #[cfg(test)]
    pub fn for_tests(
        factory: &chorus_transport::PeerFactory,
        conn: ConnId,
        owner: ParticipantKey,
        target: PeerTarget,
    ) -> Self {
        let credentials = IceCredentials {
            ufrag: format!("ufrag{}", conn.0),
            pwd: "a-password-of-twenty-four-chars".to_owned(),
        };
        let offering = target == PeerTarget::Subscriber;
        let link = Link::new(factory, credentials, conn.0, offering, Instant::now())
            .expect("a fresh connection");
        Self::new(conn, owner, target, link)
    }

    /// Which client address media goes to, and whether the client is still there.
    pub fn ice(&self) -> &IceLite {
        self.link.ice()
    }

    /// Feeds one datagram (`unprotected`: plain RTP/RTCP, unprotected by the I/O thread
    /// with [`Self::ingress_key`]); a datagram refused on the way in is counted under its
    /// reason.
    pub fn handle_datagram(
        &mut self,
        from: SocketAddr,
        at: Instant,
        data: BytesMut,
        unprotected: bool,
    ) -> Result<(), Skip> {
        self.link.handle_datagram(from, at, data, unprotected)
    }

    /// What the I/O threads unprotect this connection's SRTP with.
    pub fn ingress_key(&self) -> chorus_transport::IngressKey {
        self.link.ingress_key().clone()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.link.handle_timeout(now)
    }

    /// Takes what the connection produced.
    pub fn drain(&mut self, now: Instant, out: &mut Vec<PeerEvent>) {
        self.link.drain(now, out)
    }

    /// The next datagram the connection has to send, and where to.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, BytesMut)> {
        self.link.poll_transmit()
    }

    /// The connection's next deadline.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        self.link.poll_timeout()
    }

    /// Publisher side: answers the client's offer. `fresh` gives new server credentials
    /// when the offer restarts ICE.
    pub fn answer(
        &mut self,
        offer: &str,
        fresh: impl FnOnce() -> IceCredentials,
        now: Instant,
    ) -> Result<String, SdpFailed> {
        self.link.answer(offer, fresh, now)
    }

    /// Subscriber side: adds a track the next offer carries.
    pub fn add_track(&mut self, id: &TrackId, codec: Codec, ssrc: u32) {
        self.link.add_track(id, codec, ssrc)
    }

    /// Subscriber side: removes a track (its m-section is rejected in the next offer).
    pub fn remove_track(&mut self, id: &TrackId) {
        self.link.remove_track(id)
    }

    /// Subscriber side: the server's next offer.
    pub fn offer(
        &mut self,
        ice_restart: Option<IceCredentials>,
        now: Instant,
    ) -> Result<String, SdpFailed> {
        self.link.offer(ice_restart, now)
    }

    /// Subscriber side: the client's answer to the offer that is out.
    pub fn apply_answer(&mut self, answer: &str, now: Instant) -> Result<(), SdpFailed> {
        self.link.apply_answer(answer, now)
    }

    /// Subscriber side: the tracks the client's last answer took without the codec they
    /// are sent in; it cannot decode them.
    pub fn refused_tracks(&self) -> Vec<TrackId> {
        self.link.refused_tracks()
    }

    /// Sends one RTP packet, written and protected in `arena` (its shard's); false if
    /// the transport refused it.
    pub fn send_rtp(
        &mut self,
        arena: &mut BytesMut,
        header: &Header,
        payload: &Bytes,
        vp8: Option<&Vp8Rewrite>,
        now: Instant,
    ) -> bool {
        let video = header.payload_type != chorus_transport::OPUS_PT;
        self.link.send_rtp(arena, header, payload, vp8, video, now)
    }

    /// Subscriber side: starts a bandwidth probe cluster (see `core/probe.rs`).
    pub fn start_probe(&mut self, now: Instant) -> Option<chorus_core::bwe::ProbeId> {
        self.link.start_probe(now)
    }

    pub fn end_probe(&mut self, probe: chorus_core::bwe::ProbeId) {
        self.link.end_probe(probe);
    }

    /// Subscriber side: one padding-only packet of a probe cluster under `header`'s
    /// SSRC, number and timestamp; false if the transport refused it.
    pub fn send_padding(
        &mut self,
        arena: &mut BytesMut,
        header: &Header,
        probe: chorus_core::bwe::ProbeId,
        now: Instant,
    ) -> bool {
        self.link.send_padding(arena, header, probe, now)
    }

    /// Subscriber side: the bandwidth estimate toward the client, once its answer took
    /// transport-wide congestion control.
    pub fn bandwidth(&self) -> Option<chorus_core::bwe::BweStats> {
        self.link.bandwidth()
    }

    /// Subscriber side: whether it has a bandwidth estimate (and so an allocation).
    pub fn estimates_bandwidth(&self) -> bool {
        self.link.estimates_bandwidth()
    }

    /// Publisher side: one message (text, or `binary`) to the client on its data
    /// channel of `mode`.
    pub fn send_data(
        &mut self,
        mode: chorus_protocol::data::DataMode,
        binary: bool,
        message: &[u8],
        now: Instant,
    ) -> Result<(), DataDrop> {
        self.link.send_data(mode, binary, message, now)
    }

    /// Publisher side: asks for a keyframe of what the client sends as `media_ssrc`.
    pub fn request_keyframe(&mut self, media_ssrc: u32) -> bool {
        self.link.request_keyframe(media_ssrc)
    }

    /// Says goodbye on the transport (what it sends is left for [`Self::poll_transmit`]).
    pub fn close(&mut self, now: Instant) {
        self.link.close(now)
    }

    /// The server's ufrag, when it differs from the one routed: the ufrag no longer
    /// routed (if any) and the one to route.
    pub fn sync_credentials(&mut self) -> Option<(Option<String>, String)> {
        let current = self.link.ice().credentials()?.ufrag.clone();
        if self.routed_ufrag.as_deref() == Some(current.as_str()) {
            return None;
        }
        let old = self.routed_ufrag.replace(current.clone());
        Some((old, current))
    }

    /// The server ufrag routed to this connection.
    pub fn ufrag(&self) -> Option<&str> {
        self.routed_ufrag.as_deref()
    }

    /// Notes that output may be waiting; true if the room must list it for flushing.
    pub fn mark_dirty(&mut self) -> bool {
        !std::mem::replace(&mut self.dirty, true)
    }
}
