//! Media through the room: datagrams and timers into each connection, and what comes
//! out of it drained (`drain_peer`): peer events, ICE decisions, RTP from publishers
//! forwarded to every subscriber of its track, and keyframe requests from subscribers
//! passed on to the publisher as PLI, throttled per track (per layer for simulcast).

use std::time::Instant;

use chorus_core::Codec;
use chorus_core::{
    ConnId, LayerPacket, SpatialLayer, SvcLayers, SvcPacket, TrackId, Vp8Descriptor, Vp9Descriptor,
};
use chorus_protocol::LeaveReason;
use chorus_protocol::{MediaKind, TrackSource};
use chorus_transport::Datagram;

use super::RoomCore;
use crate::echo::Echoed;
use crate::forward::{Outgoing, Payload};
use crate::peer::PeerEvent;
use crate::selection::{LayeredKind, LayeredPacket};
use crate::skips::{Skip, is_stale};
use crate::tracks::{LayerIndex, UpstreamBinding};

impl RoomCore {
    pub(super) fn handle_datagram(&mut self, dg: Datagram, now: Instant) {
        if is_stale(&dg.data, now.saturating_duration_since(dg.at)) {
            self.skips.count(Skip::Stale);
            let total = self.skips.get(Skip::Stale);
            self.overload.report(now, &self.name, total);
            return;
        }
        let Some(peer) = self.conns.get_mut(dg.conn) else {
            self.skips.count(Skip::UnknownConnection);
            return;
        };
        let at = dg.at.min(now);
        let handled = peer.handle_datagram(dg.from, at, dg.data, dg.unprotected);
        if let Err(skip) = handled {
            self.skips.count(skip);
            return;
        }
        self.drain_peer(dg.conn, now);
    }

    pub(super) fn handle_timeout(&mut self, now: Instant) {
        self.tick_mixer(now);
        self.tick_echo(now);
        self.poll_speakers(now);
        self.reap_media_timeouts(now);
        self.reap_invitations(now);
        while let Some(conn) = self.conns.pop_due(now) {
            if let Some(peer) = self.conns.get_mut(conn) {
                peer.handle_timeout(now);
                self.drain_peer(conn, now);
            }
        }
    }

    /// Acts on everything `conn` produced, and lists it for flushing.
    pub(super) fn drain_peer(&mut self, conn: ConnId, now: Instant) {
        let Some(peer) = self.conns.get_mut(conn) else {
            return;
        };
        // Reused across calls: one allocation per room, not one per incoming packet.
        let mut out = std::mem::take(&mut self.scratch);
        peer.drain(now, &mut out);
        let owner = peer.owner;
        if peer.mark_dirty() {
            self.conns.list_dirty(conn);
        }
        for ev in out.drain(..) {
            match ev {
                PeerEvent::Connected {
                    srtp_profile,
                    dtls_cipher,
                    dtls_role,
                } => self.on_connected(conn, srtp_profile, dtls_cipher, dtls_role),
                PeerEvent::Failed => self.doomed.push((owner, LeaveReason::ConnectionLost)),
                PeerEvent::UpTrack {
                    sdp_track,
                    codec,
                    audio_level_ext,
                    layers,
                    dd_ext,
                } => {
                    let exts = (audio_level_ext, dd_ext);
                    self.on_upstream_track(owner, sdp_track, codec, exts, layers, now)
                }
                PeerEvent::Rtp {
                    sdp_track,
                    layer,
                    packet,
                } => self.forward(conn, &sdp_track, layer, packet, now),
                PeerEvent::KeyframeRequest { ssrc } => {
                    self.feedback.keyframe_requests_received += 1;
                    self.keyframe_requested(conn, ssrc, now)
                }
                PeerEvent::Nack { ssrc, lost } => {
                    self.feedback.nacked_packets += lost.len() as u64;
                    self.repair(conn, ssrc, &lost, now)
                }
                PeerEvent::Ice(ev) => self.on_ice_event(conn, ev),
                PeerEvent::Data { mode, binary, data } => {
                    self.on_data(owner, mode, binary, data, now)
                }
            }
        }
        self.scratch = out;
    }

    /// A subscriber asked for a keyframe of the stream it receives as `ssrc`: of the
    /// track, or of the layer it receives (or waits for) of a simulcast track.
    fn keyframe_requested(&mut self, conn: ConnId, ssrc: u32, now: Instant) {
        let found = self.conns.get(conn).and_then(|peer| {
            peer.downtracks
                .iter()
                // Paused by last-N: nothing to refresh (a resume asks for its own).
                .find(|(_, dt)| dt.ssrc == ssrc && !dt.paused)
                .map(|(id, dt)| (id.clone(), dt.layers.as_ref().map(|l| l.wanted())))
        });
        match found {
            Some((id, None)) => self.request_keyframe(&id, now),
            Some((id, Some(Some(layer)))) => self.request_layer_keyframe(&id, layer, now),
            // Paused: nothing to refresh.
            Some((_, Some(None))) | None => {}
        }
    }

    /// One packet from a publisher to every subscriber of its track.
    fn forward(
        &mut self,
        conn: ConnId,
        sdp_track: &str,
        layer: Option<LayerIndex>,
        mut packet: rtc::rtp::Packet,
        now: Instant,
    ) {
        let id = self
            .conns
            .get(conn)
            .and_then(|peer| peer.uptracks.get(sdp_track));
        let Some(track) = id.and_then(|id| self.tracks.get_mut(id)) else {
            self.skips.count(Skip::UnknownTrack);
            return;
        };
        let audio = track.kind() == MediaKind::Audio;
        // Microphones reach listeners in the room audio; anything else on its own track.
        let mic = track.source == TrackSource::Microphone;
        let Some(binding) = track.upstream.as_mut() else {
            self.skips.count(Skip::UnknownTrack);
            return;
        };
        let codec = binding.codec;
        let keyframe = codec.is_keyframe(&packet.payload);
        // Every layer of a simulcast track goes to the queue in its own numbering (each
        // subscriber's layer forwarder picks), kept in the history in arrival order.
        let mut layered = None;
        let (seq, ts) = if let Some(simulcast) = binding.simulcast.as_mut() {
            let h = &packet.header;
            let (ssrc, len) = (h.ssrc, packet.payload.len());
            let received = layer.and_then(|l| {
                let r =
                    simulcast.received(l, ssrc, h.sequence_number, h.timestamp, len, keyframe, now);
                Some((r?, l.spatial()?))
            });
            let Some((r, spatial)) = received else {
                self.skips.count(Skip::LayerNotForwarded);
                return;
            };
            if let Some(ssrc) = r.switched_to {
                // Keyframe requests without a layer go to the highest.
                binding.media_ssrc = Some(ssrc);
                let layer = simulcast.forwarded();
                tracing::debug!(track = %track.id, ssrc, ?layer, "simulcast: highest layer arriving");
            }
            layered = Some(LayeredPacket {
                packet: LayeredKind::Simulcast(LayerPacket {
                    layer: spatial,
                    seq: r.seq,
                    timestamp: r.ts,
                    marker: h.marker,
                    keyframe,
                    vp8: (codec == Codec::Vp8)
                        .then(|| Vp8Descriptor::parse(&packet.payload))
                        .flatten(),
                }),
                active: r.active,
            });
            (r.index, r.ts)
        } else {
            if binding.media_ssrc.is_none() {
                binding.media_ssrc = Some(packet.header.ssrc);
                tracing::debug!(
                    track = %track.id,
                    ssrc = packet.header.ssrc,
                    payload_type = packet.header.payload_type,
                    "first packet of published track"
                );
            }
            if !audio {
                let (ts, len) = (packet.header.timestamp, packet.payload.len());
                track.rate.record(now, len, ts, keyframe);
            }
            let seq = track.seq.unwrap(packet.header.sequence_number);
            let ts = track.ts.unwrap(packet.header.timestamp);
            // A VP9 stream, or an AV1 one with dependency descriptors: each
            // subscriber's SVC forwarder picks the layers it gets.
            if let Some(svc) = binding.svc.as_mut() {
                let h = &packet.header;
                let len = packet.payload.len();
                let (layers, changed) = match svc.dd_ext() {
                    Some(ext) => {
                        let dd = h.get_extension(ext);
                        svc.received_dd(dd.as_deref(), h.timestamp, len, now)
                    }
                    None => {
                        let d = Vp9Descriptor::parse(&packet.payload);
                        let changed = svc.received(d.as_ref(), h.timestamp, len, now);
                        (d.as_ref().map(SvcLayers::of), changed)
                    }
                };
                if changed {
                    let (layers, top) = (svc.layer_count(), svc.top_size());
                    tracing::debug!(track = %track.id, layers, ?top, "svc: layers changed");
                    self.layers_due.push(track.id.clone());
                    self.dynacast_due.track(&track.id);
                    for &conn in &track.subscribers {
                        let dt = self
                            .conns
                            .get_mut(conn)
                            .and_then(|p| p.downtracks.get_mut(&track.id));
                        if let Some(selection) = dt.and_then(|dt| dt.layers.as_mut()) {
                            selection.layers_changed(layers, top);
                        }
                    }
                }
                layered = Some(LayeredPacket {
                    packet: LayeredKind::Svc(SvcPacket {
                        seq,
                        timestamp: ts,
                        marker: h.marker,
                        keyframe,
                        layers,
                    }),
                    // AV1: the base layer alone (see `forwardable`).
                    active: svc.forwardable(now),
                });
            }
            (seq, ts)
        };
        let level_ext = binding.audio_level_ext;
        if track.held {
            self.skips.count(Skip::PublisherOnHold);
            return;
        }
        if track.muted {
            self.skips.count(Skip::Muted);
            return;
        }
        if mic {
            let level = level_ext.and_then(|ext| audio_level(&packet, ext));
            self.audio
                .hear(track.owner, seq, level, &packet.payload, now);
        }
        // Extension ids are per connection; the publisher's mean nothing downstream.
        // Padding was stripped on the way in (a padding-only packet goes on empty, which
        // the receiver takes as padding).
        packet.header.padding = false;
        packet.header.extension = false;
        packet.header.extension_profile = 0;
        packet.header.extensions.clear();
        if let Some(history) = track.history.as_mut() {
            history.insert(seq, (packet.header.clone(), packet.payload.clone()));
        }
        if mic && let Some(line) = self.echo.as_mut() {
            let echoed = Echoed {
                owner: track.owner,
                header: packet.header,
                seq,
                ts,
                payload: packet.payload,
            };
            if !line.push(echoed, now) {
                self.skips.count(Skip::EchoOverflow);
            }
            return;
        }
        // A microphone goes out on each listener's room-audio track (here: the relays).
        let down = if mic { &self.room_audio } else { &track.id };
        let out = Outgoing {
            header: packet.header,
            seq,
            ts,
            keyframe,
            down: down.clone(),
            keyframes_of: (!audio).then(|| track.id.clone()),
            source: 0,
            layered,
            payload: Payload::Shared(packet.payload),
        };
        self.queue.push(out, &track.subscribers);
    }

    /// Asks the publisher of a simulcast track for a keyframe of one layer (a PLI to its
    /// SSRC), at most once per throttle interval per layer however many subscribers ask;
    /// of a track in one stream (VP9 SVC), for the stream's keyframe.
    pub(super) fn request_layer_keyframe(
        &mut self,
        id: &TrackId,
        layer: SpatialLayer,
        now: Instant,
    ) {
        let Some(track) = self.tracks.get_mut(id) else {
            return;
        };
        if track
            .upstream
            .as_ref()
            .is_some_and(|b| b.simulcast.is_none())
        {
            // One stream (VP9 SVC): its keyframe starts every layer.
            return self.request_keyframe(id, now);
        }
        let simulcast = track.upstream.as_mut().and_then(|b| b.simulcast.as_mut());
        let index = LayerIndex(layer.index() as u8);
        let Some(ssrc) = simulcast.and_then(|s| s.keyframe_due(index, now)) else {
            return;
        };
        // Nothing is asked of a publisher on hold.
        let publisher = self
            .participants
            .get(track.owner)
            .filter(|p| !p.held)
            .and_then(|p| p.publisher);
        let Some(peer) = publisher.and_then(|c| self.conns.get_mut(c)) else {
            return;
        };
        let ok = peer.request_keyframe(ssrc);
        self.feedback.plis_sent += u64::from(ok);
        tracing::debug!(track = %id, ssrc, ?layer, ok, "keyframe of a layer requested");
        let conn = peer.conn;
        self.conns.mark_dirty(conn);
    }

    /// Asks the publisher of a video track for a keyframe, at most once per throttle
    /// interval however many subscribers ask.
    pub(super) fn request_keyframe(&mut self, id: &TrackId, now: Instant) {
        let Some(track) = self.tracks.get_mut(id) else {
            return;
        };
        let Some(UpstreamBinding {
            media_ssrc: Some(media_ssrc),
            ..
        }) = &track.upstream
        else {
            return;
        };
        let media_ssrc = *media_ssrc;
        let owner = self.participants.get(track.owner);
        // Nothing is asked of a publisher on hold (its unhold asks).
        if track.kind() != MediaKind::Video || owner.is_none_or(|p| p.held) {
            return;
        }
        if !track.keyframes.should_send(now) {
            return;
        }
        let publisher = owner.and_then(|p| p.publisher);
        let Some(peer) = publisher.and_then(|c| self.conns.get_mut(c)) else {
            return;
        };
        let ok = peer.request_keyframe(media_ssrc);
        self.feedback.plis_sent += u64::from(ok);
        tracing::debug!(track = %id, media_ssrc, ok, "keyframe requested from publisher");
        let conn = peer.conn;
        self.conns.mark_dirty(conn);
    }
}

/// The RFC 6464 level (-dBov, 0 loudest) a packet carries under extension `id`.
fn audio_level(packet: &rtc::rtp::Packet, id: u8) -> Option<u8> {
    let value = packet.header.get_extension(id)?;
    value.first().map(|b| b & 0x7F)
}
