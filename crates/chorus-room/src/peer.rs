//! One media connection of a participant, as the room drives it, over either transport
//! ([`Link`]): webrtc-rs `rtc`'s `RTCPeerConnection` ([`rtc_link`]) or Chorus's own
//! `ServerConnection` ([`own_link`], issue 9, chosen by `media.transport`). The room
//! sees one face: datagrams and timers in, [`PeerEvent`]s out, SDP exchanged, RTP sent.
//! What it carries is kept here: down tracks on a subscriber connection, with their
//! offer/answer phase; up tracks on a publisher connection.

mod own_link;
mod rtc_link;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use chorus_core::{ConnId, Forwarder, NackMap, TrackId};
use chorus_protocol::MediaKind;
use chorus_protocol::signal::PeerTarget;
use chorus_transport::{IceCredentials, IceEvent, IceLite};
use rtc::rtp::header::Header;

use crate::io::ParticipantKey;
use crate::negotiation::{Negotiation, TrackPhase};
use crate::skips::Skip;
pub use own_link::OwnLink;
pub use rtc_link::RtcLink;

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
}

/// The transport under a connection. `rtc`'s peer connection is large; it goes while
/// Chorus's own transport takes over, so the size difference is left as it is.
#[allow(clippy::large_enum_variant)]
pub enum Link {
    Rtc(RtcLink),
    Own(OwnLink),
}

/// One published track as forwarded to one subscriber.
pub struct DownTrack {
    pub ssrc: u32,
    pub payload_type: u8,
    pub forwarder: Forwarder,
    pub phase: TrackPhase,
    /// What went out under each of its sequence numbers, to answer NACKs (own transport;
    /// `rtc` keeps a history of its own).
    pub sent: Option<NackMap>,
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
        kind: Option<MediaKind>,
        /// Negotiated id of the RFC 6464 audio level header extension (audio only).
        audio_level_ext: Option<u8>,
    },
    /// Publisher side: media of one of its tracks (named as its SDP names it; shared, as
    /// this comes with every packet).
    Rtp {
        sdp_track: Arc<str>,
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
        }
    }

    /// A connection on Chorus's own transport that nothing has happened to yet.
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
        let link = OwnLink::new(factory, credentials, conn.0, offering, Instant::now())
            .expect("a fresh connection");
        Self::new(conn, owner, target, Link::Own(link))
    }

    /// Whether the room answers this connection's NACKs for a track of `kind` itself
    /// (video on Chorus's own transport; `rtc` answers from a history of its own).
    pub fn answers_nacks(&self, kind: MediaKind) -> bool {
        kind == MediaKind::Video && !matches!(self.link, Link::Rtc(_))
    }

    /// Which client address media goes to, and whether the client is still there.
    pub fn ice(&self) -> &IceLite {
        match &self.link {
            Link::Rtc(l) => l.ice(),
            Link::Own(l) => l.ice(),
        }
    }

    /// Feeds one datagram (`unprotected`: plain RTP/RTCP, unprotected by the I/O thread
    /// with [`Self::ingress_key`]); a datagram refused on the way in is counted under its
    /// reason.
    pub fn handle_datagram(
        &mut self,
        local: SocketAddr,
        from: SocketAddr,
        at: Instant,
        data: BytesMut,
        unprotected: bool,
    ) -> Result<(), Skip> {
        match &mut self.link {
            Link::Rtc(l) => l.handle_datagram(local, from, at, data),
            Link::Own(l) => l.handle_datagram(from, at, data, unprotected),
        }
    }

    /// What the I/O threads unprotect this connection's SRTP with (own transport).
    pub fn ingress_key(&self) -> Option<chorus_transport::IngressKey> {
        match &self.link {
            Link::Rtc(_) => None,
            Link::Own(l) => Some(l.ingress_key().clone()),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        match &mut self.link {
            Link::Rtc(l) => l.handle_timeout(now),
            Link::Own(l) => l.handle_timeout(now),
        }
    }

    /// Takes what the connection produced.
    pub fn drain(&mut self, now: Instant, out: &mut Vec<PeerEvent>) {
        match &mut self.link {
            Link::Rtc(l) => l.drain(self.target, now, out),
            Link::Own(l) => l.drain(now, out),
        }
    }

    /// The next datagram the connection has to send, and where to.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, BytesMut)> {
        match &mut self.link {
            Link::Rtc(l) => l.poll_transmit(),
            Link::Own(l) => l.poll_transmit(),
        }
    }

    /// The connection's next deadline.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        match &mut self.link {
            Link::Rtc(l) => l.poll_timeout(),
            Link::Own(l) => l.poll_timeout(),
        }
    }

    /// Publisher side: answers the client's offer. `fresh` gives new server credentials
    /// when the offer restarts ICE (own transport; `rtc` draws its own).
    pub fn answer(
        &mut self,
        offer: String,
        fresh: impl FnOnce() -> IceCredentials,
        now: Instant,
    ) -> Result<String, SdpFailed> {
        match &mut self.link {
            Link::Rtc(l) => l.answer(offer, now),
            Link::Own(l) => l.answer(&offer, fresh, now),
        }
    }

    /// Subscriber side: adds a track the next offer carries.
    pub fn add_track(
        &mut self,
        id: &TrackId,
        kind: MediaKind,
        label: String,
        ssrc: u32,
    ) -> Result<(), SdpFailed> {
        match &mut self.link {
            Link::Rtc(l) => l.add_track(id, kind, label, ssrc),
            Link::Own(l) => {
                l.add_track(id, kind, ssrc);
                Ok(())
            }
        }
    }

    /// Subscriber side: removes a track (its m-section is rejected in the next offer).
    pub fn remove_track(&mut self, id: &TrackId) {
        match &mut self.link {
            Link::Rtc(l) => l.remove_track(id),
            Link::Own(l) => l.remove_track(id),
        }
    }

    /// Subscriber side: the server's next offer.
    pub fn offer(
        &mut self,
        ice_restart: Option<IceCredentials>,
        now: Instant,
    ) -> Result<String, SdpFailed> {
        match &mut self.link {
            Link::Rtc(l) => l.offer(ice_restart.is_some(), now),
            Link::Own(l) => l.offer(ice_restart, now),
        }
    }

    /// Subscriber side: the client's answer to the offer that is out.
    pub fn apply_answer(&mut self, answer: String, now: Instant) -> Result<(), SdpFailed> {
        match &mut self.link {
            Link::Rtc(l) => l.apply_answer(answer, now),
            Link::Own(l) => l.apply_answer(&answer, now),
        }
    }

    /// A trickled client candidate. ICE-lite never checks them: kept for `rtc`'s
    /// bookkeeping only.
    pub fn add_remote_candidate(&mut self, candidate: chorus_protocol::signal::IceCandidate) {
        if let Link::Rtc(l) = &mut self.link {
            l.add_remote_candidate(candidate);
        }
    }

    /// Sends one RTP packet on the `down` track; false if the transport refused it.
    pub fn send_rtp(
        &mut self,
        down: &TrackId,
        header: Header,
        payload: Bytes,
        now: Instant,
    ) -> bool {
        match &mut self.link {
            Link::Rtc(l) => l.send_rtp(down, header, payload, now),
            Link::Own(l) => {
                let video = header.payload_type != chorus_transport::OPUS_PT;
                l.send_rtp(&header, &payload, video, now)
            }
        }
    }

    /// Publisher side: asks for a keyframe of the client's `sdp_track`, sent as `media_ssrc`.
    pub fn request_keyframe(&mut self, sdp_track: &str, media_ssrc: u32, now: Instant) -> bool {
        match &mut self.link {
            Link::Rtc(l) => l.request_keyframe(sdp_track, media_ssrc, now),
            Link::Own(l) => l.request_keyframe(media_ssrc),
        }
    }

    /// Says goodbye on the transport (what it sends is left for [`Self::poll_transmit`]).
    pub fn close(&mut self, now: Instant) {
        match &mut self.link {
            Link::Rtc(l) => l.close(),
            Link::Own(l) => l.close(now),
        }
    }

    /// The ufrag of the server's latest description, when it differs from the one
    /// routed: the ufrag no longer routed (if any) and the one to route.
    pub fn sync_credentials(&mut self, now: Instant) -> Option<(Option<String>, String)> {
        let current = match &mut self.link {
            Link::Rtc(l) => l.sync_credentials(now)?,
            Link::Own(l) => l.ice().credentials()?.ufrag.clone(),
        };
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
