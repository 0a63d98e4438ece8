//! A simulated client's media: what its downlink delivers, the RTP and RTCP its
//! connections produce (kept per track as [`RtpIn`]), and what it sends: its
//! publications' media, keyframe requests, RTCP.

use std::time::Instant;

use chorus_core::codec::vp8_is_keyframe;
use chorus_protocol::MediaKind;
use rtc::peer_connection::event::{RTCDataChannelEvent, RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::sansio::Protocol;

use super::{Remote, SimClient};

/// One RTP packet as a client received it (after SRTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpIn {
    pub at: Instant,
    pub ssrc: u32,
    pub seq: u16,
    pub ts: u32,
    pub marker: bool,
    pub payload_len: usize,
    /// Video whose payload starts a VP8 (or, by its payload type, VP9 or AV1) keyframe.
    pub keyframe: bool,
    /// The VP8 picture id, when the payload descriptor carries one.
    pub picture_id: Option<u16>,
    /// Padding-only packets (bandwidth probes) of the same track that arrived since
    /// the packet before this one: they took sequence numbers between the two.
    pub padding_before: u16,
    /// VP9 (its payload type): the layers of the packet, from its payload descriptor.
    pub vp9: Option<chorus_core::SvcLayers>,
    pub payload_type: u8,
}

impl SimClient {
    /// What its downlink delivered by `now`, each at the instant it arrived.
    pub fn take_arrivals(&mut self, now: Instant) {
        while let Some((at, to, data)) = self.downlink.arrived(now) {
            if !self.offline && !self.departed {
                self.pc_at(to).receive(data, at);
            }
        }
    }

    pub fn handle_timeouts(&mut self, now: Instant) {
        self.publisher.handle_timeout(now);
        self.subscriber.handle_timeout(now);
    }

    /// Writes the media due by `now` on the publisher connection, once it is up.
    pub fn send_media(&mut self, now: Instant) {
        if !self.publisher.connected || self.offline || self.departed {
            return;
        }
        for p in &mut self.publications {
            for packet in p.poll_packets(now) {
                if let Some(mut sender) = self.publisher.pc.rtp_sender(p.sender) {
                    let _ = sender.write_rtp(now, packet);
                }
            }
        }
    }

    /// Takes what both connections produced: states, remote tracks, RTP, RTCP.
    pub fn drain(&mut self, now: Instant) {
        for publisher in [true, false] {
            let pc = if publisher {
                &mut self.publisher
            } else {
                &mut self.subscriber
            };
            while let Some(ev) = pc.pc.poll_event() {
                match ev {
                    RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                        pc.connected = state == RTCPeerConnectionState::Connected;
                    }
                    RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                        let kind = match pc.pc.rtp_receiver(init.receiver_id) {
                            Some(r) if r.track().kind() == RtpCodecKind::Audio => MediaKind::Audio,
                            _ => MediaKind::Video,
                        };
                        let track = init.stream_ids.first().cloned();
                        let remote = Remote {
                            track: track.unwrap_or_else(|| init.track_id.clone()),
                            receiver: init.receiver_id,
                            ssrc: init.ssrc,
                            kind,
                        };
                        self.remotes.insert(init.track_id, remote);
                    }
                    RTCPeerConnectionEvent::OnDataChannel(RTCDataChannelEvent::OnOpen(id))
                        if publisher =>
                    {
                        self.data.opened(id)
                    }
                    _ => {}
                }
            }
            while let Some(msg) = pc.pc.poll_read() {
                match msg.message {
                    RTCMessage::RtpPacket(tag, packet) => {
                        let remote = self.remotes.get(&tag);
                        let video = remote.is_some_and(|r| r.kind == MediaKind::Video);
                        let track = remote.map_or(tag, |r| r.track.clone());
                        // The padding was stripped: nothing is left of a padding-only one.
                        let padding = packet.header.padding && packet.payload.is_empty();
                        let padded = self.padded_since.entry(track.clone()).or_default();
                        let padding_before = if padding { 0 } else { std::mem::take(padded) };
                        if padding {
                            *padded = padded.saturating_add(1);
                        }
                        let list = if padding {
                            &mut self.padding
                        } else {
                            &mut self.rtp
                        };
                        list.entry(track).or_default().push(RtpIn {
                            at: now,
                            ssrc: packet.header.ssrc,
                            seq: packet.header.sequence_number,
                            ts: packet.header.timestamp,
                            marker: packet.header.marker,
                            payload_len: packet.payload.len(),
                            keyframe: video
                                && match packet.header.payload_type {
                                    chorus_transport::VP9_PT => {
                                        chorus_core::vp9::vp9_is_keyframe(&packet.payload)
                                    }
                                    chorus_transport::AV1_PT => {
                                        chorus_core::codec::av1_is_keyframe(&packet.payload)
                                    }
                                    _ => vp8_is_keyframe(&packet.payload),
                                },
                            picture_id: video
                                .then(|| chorus_core::Vp8Descriptor::parse(&packet.payload))
                                .flatten()
                                .and_then(|d| d.picture_id)
                                .map(|p| p.value),
                            padding_before,
                            vp9: (packet.header.payload_type == chorus_transport::VP9_PT)
                                .then(|| chorus_core::Vp9Descriptor::parse(&packet.payload))
                                .flatten()
                                .map(|d| chorus_core::SvcLayers::of(&d)),
                            payload_type: packet.header.payload_type,
                        });
                    }
                    RTCMessage::DataChannelMessage(id, m) if publisher => {
                        self.data.on_message(id, m, now)
                    }
                    RTCMessage::RtcpPacket(_, packets) if publisher => {
                        for p in &packets {
                            let any = p.as_any();
                            let mut ssrcs = Vec::new();
                            if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
                                ssrcs.push(pli.media_ssrc);
                            } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
                                ssrcs.extend(fir.fir.iter().map(|e| e.ssrc));
                            }
                            for ssrc in ssrcs {
                                self.plis.push(now);
                                for p in self.publications.iter_mut() {
                                    if p.ssrc == ssrc {
                                        p.keyframe_due = true;
                                    }
                                    if let Some(layers) = p.simulcast.as_mut() {
                                        layers.request_keyframe(ssrc);
                                    }
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// Sends a PLI for the server's track `track` on the subscriber connection; false
    /// if no media of it arrived yet.
    pub fn request_keyframe(&mut self, track: &str, now: Instant) -> bool {
        let Some(ssrc) = self
            .remotes
            .values()
            .find(|r| r.track == track)
            .map(|r| r.ssrc)
        else {
            return false;
        };
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc: ssrc,
        };
        self.send_rtcp(track, vec![Box::new(pli)], now)
    }

    /// Writes `packets` as one compound packet through the receiver of the server's
    /// track `track` on the subscriber connection; false if no media of it arrived yet.
    pub fn send_rtcp(
        &mut self,
        track: &str,
        packets: Vec<Box<dyn rtc::rtcp::Packet>>,
        now: Instant,
    ) -> bool {
        let Some(remote) = self.remotes.values().find(|r| r.track == track) else {
            return false;
        };
        let Some(mut receiver) = self.subscriber.pc.rtp_receiver(remote.receiver) else {
            return false;
        };
        receiver.write_rtcp(now, packets).is_ok()
    }

    /// Writes one extra packet of its video track `track` now (see
    /// `Publication::extra_video_packet`); false if it has none to send yet.
    pub fn send_extra_video(&mut self, track: &str, now: Instant) -> bool {
        if !self.publisher.connected || self.offline || self.departed {
            return false;
        }
        let Some(p) = self.publications.iter_mut().find(|p| p.track_id == track) else {
            return false;
        };
        let Some(packet) = p.extra_video_packet() else {
            return false;
        };
        let Some(mut sender) = self.publisher.pc.rtp_sender(p.sender) else {
            return false;
        };
        sender.write_rtp(now, packet).is_ok()
    }
}
