//! Media through the room: datagrams and timers into each connection, and what comes
//! out of it drained (`drain_peer`): peer events, ICE decisions, RTP from publishers
//! forwarded to every subscriber (rewritten per listener by `fan_out`), and keyframe
//! requests from subscribers passed on to the publisher as PLI, throttled. Also the
//! rule for media that waited too long in the room's inbox (`Overload`).

use std::cmp::Reverse;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chorus_core::codec::vp8_is_keyframe;
use chorus_core::forward::DropReason;
use chorus_core::{ConnId, ExtSeq, ExtTimestamp, TrackId, Translation};
use chorus_protocol::MediaKind;
use chorus_protocol::signal::PeerTarget;
use chorus_transport::Datagram;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::sansio::Protocol;

use super::{Participant, Room, peer_of};
use crate::command::ParticipantKey;
use crate::peer::{Negotiation, UpstreamBinding};

/// Longest a media datagram may wait in the inbox before it is dropped unprocessed.
pub(super) const MAX_MEDIA_QUEUEING: Duration = Duration::from_millis(200);
/// Least time between two warnings of an overloaded room.
const OVERLOAD_REPORT_EVERY: Duration = Duration::from_secs(5);

/// Counts media dropped because the room fell behind, and says so now and then.
#[derive(Debug, Default)]
pub(super) struct Overload {
    stale: u64,
    reported_at: Option<Instant>,
}

impl Overload {
    pub(super) fn stale(&mut self, now: Instant, room: &str) {
        self.stale += 1;
        if self
            .reported_at
            .is_none_or(|t| now.saturating_duration_since(t) >= OVERLOAD_REPORT_EVERY)
        {
            self.reported_at = Some(now);
            tracing::warn!(
                room,
                dropped_total = self.stale,
                "room overloaded: media waited over {} ms and was dropped",
                MAX_MEDIA_QUEUEING.as_millis()
            );
        }
    }
}

impl Room {
    pub(super) fn handle_datagram(&mut self, dg: Datagram, now: Instant) {
        let Some(&(key, target)) = self.conns.get(&dg.conn) else {
            return;
        };
        let local = self.media.local_addr();
        let counters = self.media.counters();
        let Some(peer) = peer_of(&mut self.participants, key, target) else {
            return;
        };
        peer.handle_datagram(local, dg.from, dg.at.min(now), dg.data, counters);
        self.drain_peer(key, target, now);
    }

    pub(super) fn handle_timers(&mut self, now: Instant) {
        self.tick_mixer(now);
        self.poll_speakers(now);
        while let Some(Reverse((t, conn))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(&(key, target)) = self.conns.get(&conn) else {
                continue;
            };
            let Some(peer) = self.peer_mut(key, target) else {
                continue;
            };
            if peer.scheduled != Some(t) {
                continue; // superseded by a later deadline
            }
            peer.scheduled = None;
            peer.handle_timeout(now);
            self.drain_peer(key, target, now);
        }
    }

    pub(super) fn drain_peer(&mut self, key: ParticipantKey, target: PeerTarget, now: Instant) {
        // Reused across calls: one allocation per room, not one per incoming packet.
        let mut out = std::mem::take(&mut self.scratch);
        match self.peer_mut(key, target) {
            Some(peer) => {
                peer.drain(&mut out);
                let conn = peer.conn;
                if peer.mark_dirty() {
                    self.dirty.push(conn);
                }
            }
            None => {
                self.scratch = out;
                return;
            }
        }
        for ev in out.events.drain(..) {
            self.handle_peer_event(key, target, ev, now);
        }
        for ev in out.ice.drain(..) {
            self.on_ice_event(key, target, ev);
        }
        for msg in out.messages.drain(..) {
            match (target, msg) {
                (PeerTarget::Publisher, RTCMessage::RtpPacket(track, packet)) => {
                    self.forward(key, &track, packet, now)
                }
                (PeerTarget::Subscriber, RTCMessage::RtcpPacket(_, packets)) => {
                    // rtc tags a compound packet by its first SSRC only; a PLI after an RR
                    // would be misattributed, so look at each request's own media SSRC.
                    for p in &packets {
                        let any = p.as_any();
                        if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
                            self.keyframe_requested(key, pli.media_ssrc, now);
                        } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
                            for entry in &fir.fir {
                                self.keyframe_requested(key, entry.ssrc, now);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        self.scratch = out;
    }

    /// A subscriber asked for a keyframe of the stream it receives as `ssrc`.
    fn keyframe_requested(&mut self, key: ParticipantKey, ssrc: u32, now: Instant) {
        let id = self.peer_mut(key, PeerTarget::Subscriber).and_then(|peer| {
            peer.downtracks
                .iter()
                .find(|(_, dt)| dt.ssrc == ssrc)
                .map(|(id, _)| id.clone())
        });
        if let Some(id) = id {
            self.request_keyframe(&id, now);
        }
    }

    fn handle_peer_event(
        &mut self,
        key: ParticipantKey,
        target: PeerTarget,
        ev: RTCPeerConnectionEvent,
        now: Instant,
    ) {
        match ev {
            RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                self.on_connection_state(key, target, state, now)
            }
            RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init))
                if target == PeerTarget::Publisher =>
            {
                self.on_upstream_track(key, init.track_id, init.receiver_id, now)
            }
            _ => {}
        }
    }

    /// One packet from a publisher to every subscriber of its track.
    fn forward(
        &mut self,
        key: ParticipantKey,
        rtc_track: &str,
        mut packet: rtc::rtp::Packet,
        now: Instant,
    ) {
        let Some(id) = self
            .participants
            .get(&key)
            .and_then(|p| p.publisher.as_ref())
            .and_then(|peer| peer.uptracks.get(rtc_track))
            .cloned()
        else {
            return;
        };
        let Some(track) = self.tracks.get_mut(&id) else {
            return;
        };
        let Some(binding) = track.upstream.as_mut() else {
            return;
        };
        if binding.media_ssrc.is_none() {
            binding.media_ssrc = Some(packet.header.ssrc);
            tracing::debug!(
                track = %track.id,
                ssrc = packet.header.ssrc,
                payload_type = packet.header.payload_type,
                "first packet of published track"
            );
        }
        let level_ext = binding.audio_level_ext;
        let seq = track.seq.unwrap(packet.header.sequence_number);
        let ts = track.ts.unwrap(packet.header.timestamp);
        if track.muted {
            return;
        }
        let audio = track.kind() == MediaKind::Audio;
        let keyframe = !audio && vp8_is_keyframe(&packet.payload);
        if audio {
            let level = level_ext.and_then(|ext| audio_level(&packet, ext));
            self.hear(key, seq, level, &packet.payload, now);
        }
        // Extension ids are per connection; the publisher's mean nothing downstream.
        packet.header.extension = false;
        packet.header.extension_profile = 0;
        packet.header.extensions.clear();
        // Audio goes out on each listener's room-audio track (here: the relays).
        let track = &self.tracks[&id];
        let down = if audio { &self.room_audio } else { &id };
        let payload = &packet.payload;
        let wants_keyframe = fan_out(
            &mut self.participants,
            &mut self.dirty,
            &track.subscribers,
            down,
            &packet.header,
            seq,
            ts,
            keyframe,
            now,
            |_| payload.clone(),
        );
        if wants_keyframe {
            self.request_keyframe(&id, now);
        }
    }

    fn request_keyframe(&mut self, id: &TrackId, now: Instant) {
        let Some(track) = self.tracks.get_mut(id) else {
            return;
        };
        let Some(UpstreamBinding {
            receiver,
            media_ssrc: Some(media_ssrc),
            ..
        }) = track.upstream
        else {
            return;
        };
        if track.kind() != MediaKind::Video || !track.keyframes.should_send(now) {
            return;
        }
        let owner = track.owner;
        let Some(peer) = self.peer_mut(owner, PeerTarget::Publisher) else {
            return;
        };
        if let Some(mut r) = peer.pc.rtp_receiver(receiver) {
            let pli = PictureLossIndication {
                sender_ssrc: 0,
                media_ssrc,
            };
            let res = r.write_rtcp(now, vec![Box::new(pli)]);
            tracing::debug!(track = %id, media_ssrc, ok = res.is_ok(), "keyframe requested from publisher");
            let conn = peer.conn;
            if peer.mark_dirty() {
                self.dirty.push(conn);
            }
        }
    }
}

/// Sends one packet on the `down` track of each listener, rewritten for each; returns
/// whether any of them waits for a keyframe. A free function so that the caller can lend
/// the listener list from another part of the room.
#[allow(clippy::too_many_arguments)]
pub(super) fn fan_out(
    participants: &mut HashMap<ParticipantKey, Participant>,
    dirty: &mut Vec<ConnId>,
    listeners: &[ParticipantKey],
    down: &TrackId,
    header: &rtc::rtp::header::Header,
    seq: ExtSeq,
    ts: ExtTimestamp,
    keyframe: bool,
    now: Instant,
    payload_for: impl Fn(ParticipantKey) -> Bytes,
) -> bool {
    let mut wants_keyframe = false;
    for listener in listeners {
        let Some(peer) = participants
            .get_mut(listener)
            .and_then(|p| p.subscriber.as_mut())
        else {
            continue;
        };
        if !peer.ice.is_up() {
            continue;
        }
        let Some(dt) = peer.downtracks.get_mut(down) else {
            continue;
        };
        if dt.negotiation != Negotiation::Live {
            continue;
        }
        match dt.forwarder.translate(seq, ts, header.marker, keyframe) {
            Translation::Forward {
                seq,
                timestamp,
                marker,
            } => {
                let mut header = header.clone();
                header.ssrc = dt.ssrc;
                header.payload_type = dt.payload_type;
                header.sequence_number = seq;
                header.timestamp = timestamp;
                header.marker = marker;
                let out = rtc::rtp::Packet {
                    header,
                    payload: payload_for(*listener),
                };
                // Straight into the connection: `RTCRtpSender::write_rtp` would rebuild
                // the sender's parameters to validate what we just set ourselves.
                let msg = TaggedRTCMessage {
                    now,
                    message: RTCMessage::RtpPacket(down.as_str().to_owned(), out),
                };
                if peer.pc.handle_write(msg).is_ok() && peer.mark_dirty() {
                    dirty.push(peer.conn);
                }
            }
            Translation::Drop(DropReason::AwaitingKeyframe) => wants_keyframe = true,
            Translation::Drop(_) => {}
        }
    }
    wants_keyframe
}

/// The RFC 6464 level (-dBov, 0 loudest) a packet carries under extension `id`.
fn audio_level(packet: &rtc::rtp::Packet, id: u8) -> Option<u8> {
    let value = packet.header.get_extension(id)?;
    value.first().map(|b| b & 0x7F)
}
