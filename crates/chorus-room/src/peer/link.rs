//! A connection over Chorus's own server side of WebRTC (`ServerConnection`: ICE-lite,
//! DTLS-SRTP, SDP written here). The client's tracks are found from its SDP (`a=ssrc`,
//! `a=msid`, else the MID header extension), RTCP is read and written by
//! `chorus_transport::rtcp`, and NACKs are answered by the room from each track's one
//! history.

mod inbound;
mod outbound;
mod sections;
pub(crate) mod streams;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use chorus_core::{TrackId, Vp8Rewrite};
use chorus_protocol::MediaKind;
use chorus_transport::rtcp::{self, Feedback, twcc};
use chorus_transport::webrtc::{
    ConnectionEvent, Received, Refused, ServerConnection, sdp::RemoteMedia,
};
use chorus_transport::{
    IceCredentials, IceLite, IngressKey, MAX_RTP_OVERHEAD, PeerFactory, StunCheck,
};
use rtc::rtp::header::Header;
use rtc::shared::marshal::{Marshal, MarshalSize, Unmarshal};

use super::{PeerEvent, SdpFailed};
use crate::skips::Skip;
use inbound::Inbound;
use outbound::Outbound;
use sections::Sections;
use streams::{UpSection, UpStream, stream_of};

/// How much send arena is allocated at a time: about 50 packets of video, or many more
/// of audio. The arena is its egress shard's, shared by all its connections: a shard
/// holds one chunk (and older ones while packets split off them are in flight).
const ARENA_CHUNK: usize = 64 * 1024;

pub struct Link {
    /// On a publisher connection, made by the client's first offer.
    conn: Option<ServerConnection>,
    factory: PeerFactory,
    /// The server's first credentials (a publisher connection takes them at its first offer).
    credentials: IceCredentials,
    session_id: u64,
    /// Stands in for the connection's paths until a publisher connection exists.
    idle: IceLite,
    /// Handed to the demultiplexer with the first route, before a publisher connection
    /// exists, and to the connection when it is made.
    ingress: IngressKey,
    /// Publisher side: the client's stream of each media SSRC (from its SDP, or learned
    /// from the MID and rid extensions), and of each mid.
    by_ssrc: HashMap<u32, UpStream>,
    by_mid: HashMap<String, UpSection>,
    mid_ext: Option<u8>,
    /// Publisher side: the transport-wide sequence number's extension, if negotiated.
    twcc_ext: Option<u8>,
    /// When the datagram being handled reached the media socket: what transport-wide
    /// feedback reports (the room's own queueing is not the network's delay).
    arrived: Option<Instant>,
    /// Publisher side: what its streams owe it in RTCP (NACKs, reports, TWCC feedback).
    inbound: Inbound,
    /// Subscriber side: the m-sections of the server's offers.
    sections: Sections,
    /// Subscriber side: what the server sends, for its sender reports.
    outbound: Outbound,
    events: VecDeque<PeerEvent>,
    /// One buffer for writing RTCP before protection.
    scratch: Vec<u8>,
    feedback: Vec<Feedback>,
}

impl Link {
    /// A publisher connection (`offering == false`), or a subscriber connection that
    /// will offer.
    pub fn new(
        factory: &PeerFactory,
        credentials: IceCredentials,
        session_id: u64,
        offering: bool,
        now: Instant,
    ) -> Result<Self, SdpFailed> {
        let ingress = IngressKey::default();
        let conn = if offering {
            let mut params = factory.accept_params(credentials.clone(), session_id);
            params.ingress = ingress.clone();
            Some(ServerConnection::offering(params, now).map_err(SdpFailed::of)?)
        } else {
            None
        };
        Ok(Self {
            conn,
            factory: factory.clone(),
            credentials,
            session_id,
            idle: factory.idle_ice(now),
            ingress,
            by_ssrc: HashMap::new(),
            by_mid: HashMap::new(),
            mid_ext: None,
            twcc_ext: None,
            arrived: None,
            inbound: Inbound::default(),
            sections: Sections::default(),
            outbound: Outbound::default(),
            events: VecDeque::new(),
            scratch: Vec::with_capacity(1500),
            feedback: Vec::new(),
        })
    }

    pub fn ice(&self) -> &IceLite {
        self.conn.as_ref().map_or(&self.idle, ServerConnection::ice)
    }

    pub fn ingress_key(&self) -> &IngressKey {
        &self.ingress
    }

    pub fn handle_datagram(
        &mut self,
        from: SocketAddr,
        at: Instant,
        data: BytesMut,
        unprotected: bool,
    ) -> Result<(), Skip> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(Skip::NotConnected);
        };
        self.arrived = Some(at);
        let handled = if unprotected {
            conn.handle_unprotected(from, data, at)
        } else {
            conn.handle_datagram(from, data, at)
        };
        match handled {
            Ok(()) => Ok(()),
            Err(Refused::Stun(StunCheck::BadIntegrity)) => Err(Skip::StunBadIntegrity),
            Err(Refused::Stun(_)) => Err(Skip::StunRejected),
            // Garbage, replays and records for a closed association are the peer's
            // problem, not ours.
            Err(refused) => {
                tracing::trace!(?refused, "dropped incoming datagram");
                Ok(())
            }
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        if let Err(e) = conn.handle_timeout(now) {
            tracing::debug!(error = %e, "timeout handling failed");
        }
        self.scratch.clear();
        self.inbound.poll_rtcp(now, &mut self.scratch);
        self.outbound
            .poll_rtcp(now, self.factory.ntp(now), &mut self.scratch);
        if !self.scratch.is_empty() {
            let _ = conn.send_rtcp(&self.scratch);
        }
    }

    pub fn drain(&mut self, now: Instant, out: &mut Vec<PeerEvent>) {
        out.extend(self.events.drain(..));
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        while let Some(ev) = conn.poll_event() {
            out.push(match ev {
                ConnectionEvent::Connected(profile) => PeerEvent::Connected {
                    srtp_profile: profile.as_str().to_owned(),
                    dtls_cipher: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".to_owned(),
                    dtls_role: "chorus".to_owned(),
                },
                ConnectionEvent::Failed(reason) => {
                    tracing::info!(%reason, "DTLS failed");
                    PeerEvent::Failed
                }
                ConnectionEvent::Ice(ev) => PeerEvent::Ice(ev),
                // Data between participants is a later issue: nothing carries it yet.
                ConnectionEvent::Channel(_) => continue,
            });
        }
        while let Some(received) = conn.poll_received() {
            match received {
                Received::Rtp(data) => {
                    let mut data = data.freeze();
                    let Ok(packet) = rtc::rtp::Packet::unmarshal(&mut data) else {
                        continue;
                    };
                    let (by_ssrc, by_mid) = (&mut self.by_ssrc, &self.by_mid);
                    let Some(up) = stream_of(by_ssrc, by_mid, self.mid_ext, &packet.header) else {
                        continue;
                    };
                    let h = &packet.header;
                    self.inbound
                        .received(h.ssrc, h.sequence_number, h.timestamp, up.video, now);
                    let numbered = self.twcc_ext.and_then(|id| h.get_extension(id));
                    if let Some(seq) = numbered.and_then(|v| twcc::read_extension(&v)) {
                        self.inbound
                            .numbered(h.ssrc, seq, self.arrived.unwrap_or(now));
                    }
                    out.push(PeerEvent::Rtp {
                        sdp_track: up.sdp_track,
                        layer: up.layer,
                        packet,
                    });
                }
                Received::Rtcp(data) => {
                    self.feedback.clear();
                    let parsed = rtcp::parse_compound(&data, &mut self.feedback);
                    self.factory.rtcp_totals().count(&parsed);
                    if parsed.is_err() {
                        continue;
                    }
                    for fb in self.feedback.drain(..) {
                        match fb {
                            Feedback::Pli { media_ssrc, .. } | Feedback::Fir { media_ssrc, .. } => {
                                out.push(PeerEvent::KeyframeRequest { ssrc: media_ssrc })
                            }
                            Feedback::Nack {
                                media_ssrc, lost, ..
                            } => out.push(PeerEvent::Nack {
                                ssrc: media_ssrc,
                                lost,
                            }),
                            Feedback::SenderReport { ssrc, ntp, .. } => {
                                self.inbound.sender_report(ssrc, ntp, now)
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
    }

    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, BytesMut)> {
        self.conn.as_mut()?.poll_transmit()
    }

    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let conn = self.conn.as_ref()?.poll_timeout();
        [
            conn,
            self.inbound.poll_timeout(),
            self.outbound.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Publisher side: answers the client's offer, and learns its tracks from it.
    pub fn answer(
        &mut self,
        offer: &str,
        fresh: impl FnOnce() -> IceCredentials,
        now: Instant,
    ) -> Result<String, SdpFailed> {
        let answer = match self.conn.as_mut() {
            Some(conn) => conn.reanswer(offer, fresh, now).map_err(SdpFailed::of)?,
            None => {
                let mut params = self
                    .factory
                    .accept_params(self.credentials.clone(), self.session_id);
                params.ingress = self.ingress.clone();
                let (conn, answer) =
                    ServerConnection::accept(offer, params, now).map_err(SdpFailed::of)?;
                self.conn = Some(conn);
                answer
            }
        };
        let media = self
            .conn
            .as_ref()
            .and_then(ServerConnection::remote)
            .map(|r| r.media.clone())
            .unwrap_or_default();
        for m in media {
            self.learn(m);
        }
        Ok(answer)
    }

    /// One m-section of the client's offer: its SSRCs and mid lead to its track, which
    /// the room hears of once.
    fn learn(&mut self, m: RemoteMedia) {
        let video = m.kind == "video";
        let up = UpStream {
            sdp_track: m.track_id.as_deref().unwrap_or(&m.mid).into(),
            video,
            layer: None,
        };
        // A simulcast section's SSRCs (Firefox lists them) say nothing of their layer:
        // those are learned from the rid extension.
        if m.rids.is_empty() {
            for ssrc in &m.ssrcs {
                self.by_ssrc.insert(*ssrc, up.clone());
            }
        }
        if m.mid_ext.is_some() {
            self.mid_ext = m.mid_ext;
        }
        if m.twcc_ext.is_some() {
            self.twcc_ext = m.twcc_ext;
        }
        let section = UpSection {
            stream: up.clone(),
            rids: m.rids.clone(),
            rid_ext: m.rid_ext,
        };
        if self.by_mid.insert(m.mid.clone(), section.clone()).as_ref() == Some(&section) {
            return;
        }
        let kind = if video {
            MediaKind::Video
        } else {
            MediaKind::Audio
        };
        self.events.push_back(PeerEvent::UpTrack {
            sdp_track: up.sdp_track.to_string(),
            kind,
            audio_level_ext: m.audio_level_ext,
            layers: m.rids,
        });
    }

    pub fn add_track(&mut self, id: &TrackId, kind: MediaKind, ssrc: u32) {
        self.sections.add(id, kind, ssrc);
    }

    pub fn remove_track(&mut self, id: &TrackId) {
        if let Some(ssrc) = self.sections.remove(id) {
            self.outbound.forget(ssrc);
        }
    }

    pub fn offer(
        &mut self,
        restart: Option<IceCredentials>,
        now: Instant,
    ) -> Result<String, SdpFailed> {
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| SdpFailed("not an offering connection".into()))?;
        Ok(conn.reoffer(self.sections.offer(), restart, now))
    }

    pub fn apply_answer(&mut self, answer: &str, now: Instant) -> Result<(), SdpFailed> {
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| SdpFailed("not an offering connection".into()))?;
        conn.apply_answer(answer, now).map_err(SdpFailed::of)?;
        self.sections.answered();
        Ok(())
    }

    /// Writes the packet into `arena` (its shard's), with `vp8`'s numbering written into
    /// that copy of the payload (the shared payload is left as it is), protects it there
    /// and queues it.
    pub fn send_rtp(
        &mut self,
        arena: &mut BytesMut,
        header: &Header,
        payload: &Bytes,
        vp8: Option<&Vp8Rewrite>,
        video: bool,
        now: Instant,
    ) -> bool {
        let Some(conn) = self.conn.as_mut() else {
            return false;
        };
        self.outbound
            .sent(header.ssrc, header.timestamp, payload.len(), video, now);
        let Some((mut packet, header_len)) = write_packet(arena, header, payload) else {
            return false;
        };
        if let Some(rewrite) = vp8
            && rewrite.apply(&mut packet[header_len..]).is_err()
        {
            return false;
        }
        conn.send_rtp_in_place(packet, header_len, header.ssrc, header.sequence_number)
            .is_ok()
    }

    /// Publisher side: a PLI for `media_ssrc`.
    pub fn request_keyframe(&mut self, media_ssrc: u32) -> bool {
        let Some(conn) = self.conn.as_mut() else {
            return false;
        };
        self.scratch.clear();
        rtcp::write_pli(&mut self.scratch, 0, media_ssrc);
        conn.send_rtcp(&self.scratch).is_ok()
    }

    pub fn close(&mut self, now: Instant) {
        if let Some(conn) = self.conn.as_mut() {
            conn.close(now);
        }
    }
}

/// Writes an RTP packet into the send arena, split off it with room for SRTP's tag: it is
/// protected where it lies, and one allocation serves many packets (`split` leaves the
/// rest of the chunk in the arena). Returns the packet and its header's length.
fn write_packet(
    arena: &mut BytesMut,
    header: &Header,
    payload: &[u8],
) -> Option<(BytesMut, usize)> {
    let header_len = header.marshal_size();
    let body = header_len + payload.len();
    if arena.capacity() < body + MAX_RTP_OVERHEAD {
        arena.reserve(ARENA_CHUNK.max(body + MAX_RTP_OVERHEAD));
    }
    arena.resize(header_len, 0);
    if header.marshal_to(&mut arena[..]).is_err() {
        arena.clear();
        return None;
    }
    arena.extend_from_slice(payload);
    // The tag's room goes with the packet: `split` hands over exactly what is written,
    // and a packet without spare capacity would be copied anew to grow by the tag.
    arena.resize(body + MAX_RTP_OVERHEAD, 0);
    let mut packet = arena.split();
    packet.truncate(body);
    Some((packet, header_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packets share the arena's chunk, and each has room for its tag: protecting it
    /// allocates nothing.
    #[test]
    fn packets_are_written_back_to_back_with_room_for_the_tag() {
        let mut arena = BytesMut::new();
        let header = Header {
            version: 2,
            ssrc: 7,
            ..Default::default()
        };
        let payload = [0xab; 1000];
        let (first, header_len) = write_packet(&mut arena, &header, &payload).unwrap();
        let (second, _) = write_packet(&mut arena, &header, &payload).unwrap();
        assert_eq!(header_len, 12);
        for p in [&first, &second] {
            assert_eq!(p.len(), 1012);
            assert!(
                p.capacity() >= p.len() + MAX_RTP_OVERHEAD,
                "{}",
                p.capacity()
            );
            assert_eq!(&p[12..], &payload[..]);
        }
        let gap = second.as_ptr() as usize - first.as_ptr() as usize;
        assert_eq!(gap, 1012 + MAX_RTP_OVERHEAD, "one chunk, back to back");
        let mut grown = first;
        let at = grown.as_ptr();
        grown.extend_from_slice(&[0; MAX_RTP_OVERHEAD]);
        assert_eq!(grown.as_ptr(), at, "the tag fits where the packet lies");
    }
}
