//! A connection over Chorus's own server side of WebRTC (`ServerConnection`: ICE-lite,
//! DTLS-SRTP, SDP written here). The client's tracks are found from its SDP (`a=ssrc`,
//! `a=msid`, else the MID header extension), RTCP is read and written by
//! `chorus_transport::rtcp`, and NACKs are answered by the room from each track's one
//! history.

pub(crate) mod data;
mod inbound;
mod negotiation;
mod outbound;
mod padding;
mod sections;
pub(crate) mod streams;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use chorus_core::Vp8Rewrite;
use chorus_core::bwe::{BandwidthEstimator, BweStats};
use chorus_transport::rtcp::{self, Feedback, twcc};
use chorus_transport::webrtc::{ConnectionEvent, Received, Refused, ServerConnection};
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
    /// Subscriber side, once its answer took transport-wide CC: the extension id every
    /// packet sent carries its number under, and the estimator of the bandwidth toward
    /// the client that numbers them and reads the client's feedback.
    down_twcc: Option<(u8, Box<BandwidthEstimator>)>,
    events: VecDeque<PeerEvent>,
    /// Publisher side: the client's data channels, by the mode their label names.
    data: data::Channels,
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
            down_twcc: None,
            events: VecDeque::new(),
            data: data::Channels::default(),
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
                ConnectionEvent::Channel(ev) => match self.data.on_event(ev) {
                    Some(ev) => ev,
                    None => continue,
                },
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
                            Feedback::TransportCc { packets, .. } => {
                                if let Some((_, bwe)) = self.down_twcc.as_mut() {
                                    bwe.on_feedback(&packets, now);
                                }
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

    /// Subscriber side: the bandwidth estimate toward the client, once it reports
    /// transport-wide feedback.
    pub fn bandwidth(&self) -> Option<BweStats> {
        self.down_twcc.as_ref().map(|(_, bwe)| bwe.stats())
    }

    /// Subscriber side: whether it reports transport-wide feedback.
    pub fn estimates_bandwidth(&self) -> bool {
        self.down_twcc.is_some()
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
        let twcc = self.down_twcc.as_mut().map(|(id, bwe)| {
            let len = header.marshal_size() + TWCC_EXTENSION_LEN + payload.len();
            (*id, bwe.on_sent(len + SRTP_TAG_LEN, now).0)
        });
        let Some((mut packet, header_len)) = write_packet(arena, header, payload, twcc) else {
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

    /// Publisher side: one message (text, or `binary`) to the client on its data
    /// channel of `mode`.
    pub fn send_data(
        &mut self,
        mode: chorus_protocol::data::DataMode,
        binary: bool,
        message: &[u8],
        now: Instant,
    ) -> Result<(), data::DataDrop> {
        let conn = self.conn.as_mut().ok_or(data::DataDrop::NoChannel)?;
        self.data.send(conn, mode, binary, message, now)
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

/// A one-byte-header extension block holding the transport-wide sequence number alone:
/// the 0xBEDE profile, a length of one word, then id and length, the number, a pad.
const TWCC_EXTENSION_LEN: usize = 8;
/// What SRTP adds to a packet on the wire (the AES-GCM tag, or HMAC-SHA1-80's): counted
/// in the size the estimator is told, as the path carries it.
const SRTP_TAG_LEN: usize = 16;

/// Writes an RTP packet into the send arena, split off it with room for SRTP's tag: it is
/// protected where it lies, and one allocation serves many packets (`split` leaves the
/// rest of the chunk in the arena). With `twcc` (extension id, number) the packet
/// carries the transport-wide sequence number: written straight after the fixed header
/// when the header has no extensions (the room strips the publisher's), else added to
/// them. Returns the packet and its header's length (extensions included).
fn write_packet(
    arena: &mut BytesMut,
    header: &Header,
    payload: &[u8],
    twcc: Option<(u8, u16)>,
) -> Option<(BytesMut, usize)> {
    let extended;
    let (header, block) = match twcc {
        Some((id, seq)) if header.extension => {
            let mut h = header.clone();
            h.set_extension(id, Bytes::copy_from_slice(&seq.to_be_bytes()))
                .ok()?;
            extended = h;
            (&extended, None)
        }
        Some((id, seq)) => {
            let [hi, lo] = seq.to_be_bytes();
            (header, Some([0xbe, 0xde, 0, 1, id << 4 | 1, hi, lo, 0]))
        }
        None => (header, None),
    };
    let fixed_len = header.marshal_size();
    let header_len = fixed_len + block.map_or(0, |b| b.len());
    let body = header_len + payload.len();
    if arena.capacity() < body + MAX_RTP_OVERHEAD {
        arena.reserve(ARENA_CHUNK.max(body + MAX_RTP_OVERHEAD));
    }
    arena.resize(fixed_len, 0);
    if header.marshal_to(&mut arena[..]).is_err() {
        arena.clear();
        return None;
    }
    if let Some(block) = block {
        arena[0] |= 0x10; // the X bit: an extension block follows
        arena.extend_from_slice(&block);
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
        let (first, header_len) = write_packet(&mut arena, &header, &payload, None).unwrap();
        let (second, _) = write_packet(&mut arena, &header, &payload, None).unwrap();
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

    /// The transport-wide number goes into the copy as a one-byte header extension, and
    /// the packet reads back with it and with the publisher's extensions (if any) kept.
    #[test]
    fn the_transport_wide_number_is_written_into_the_header() {
        let plain = Header {
            version: 2,
            ssrc: 7,
            sequence_number: 100,
            ..Default::default()
        };
        let mut with_mid = plain.clone();
        with_mid.set_extension(1, Bytes::from_static(b"0")).unwrap();
        let payload = [0xab; 100];
        // (case, header, extensions expected: (id, value))
        type Case<'a> = (&'a str, &'a Header, &'a [(u8, &'a [u8])]);
        let cases: [Case; 2] = [
            ("no extensions", &plain, &[(3, &[0x12, 0x34])]),
            ("a mid already", &with_mid, &[(1, b"0"), (3, &[0x12, 0x34])]),
        ];
        for (name, header, want) in cases {
            let mut arena = BytesMut::new();
            let (packet, header_len) =
                write_packet(&mut arena, header, &payload, Some((3, 0x1234))).unwrap();
            let mut bytes = packet.clone().freeze();
            let read = rtc::rtp::Packet::unmarshal(&mut bytes).unwrap();
            assert_eq!(read.header.sequence_number, 100, "{name}");
            for (id, value) in want {
                assert_eq!(
                    read.header.get_extension(*id).as_deref(),
                    Some(*value),
                    "{name}: extension {id}"
                );
            }
            assert_eq!(&read.payload[..], &payload[..], "{name}");
            assert_eq!(header_len, packet.len() - payload.len(), "{name}");
            assert!(
                packet.capacity() >= packet.len() + MAX_RTP_OVERHEAD,
                "{name}"
            );
        }
    }
}
