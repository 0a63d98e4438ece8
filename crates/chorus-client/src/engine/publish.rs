//! Our tracks on the publisher connection, where we are the only offerer: publishing,
//! unpublishing and muting them, the offer/answer that adds them, sending their media
//! (a camera in three simulcast layers with `MediaProfile::simulcast`, or in VP9 SVC layers
//! in one stream with `MediaProfile::svc`), and the RTCP the
//! server sends about them (a PLI or FIR schedules a keyframe of the stream it names).

use std::time::Instant;

use chorus_protocol::TrackSource;
use chorus_protocol::signal::{ClientMessage, PeerTarget};
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::rtcp;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use tracing::{debug, warn};

use super::{Engine, Outgoing, Publication, peer_stats};
use crate::error::ClientError;
use crate::media::{
    MediaSource, SIMULCAST_LAYERS, SVC_LAYERS, SimulcastParams, SimulcastSource, VideoShape,
};
use crate::stats::{ClientStats, OutboundLayerStats, OutboundTrackStats};
use crate::talk::AudioContent;

impl Engine {
    /// Adds a track to the publisher connection and renegotiates. `cid` becomes the msid
    /// track id, `track_id` (the server's id) the msid stream id and the stats key.
    /// Media starts once the answer is applied and the connection is up.
    pub fn publish(
        &mut self,
        now: Instant,
        cid: &str,
        track_id: &str,
        source: TrackSource,
    ) -> Result<(), ClientError> {
        if self
            .publications
            .iter()
            .any(|p| p.cid == cid || p.track_id == track_id)
        {
            return Err(ClientError::Protocol(format!(
                "track {track_id} ({cid}) is already published"
            )));
        }
        // Room for a simulcast camera's two more SSRCs above it, none of them 0.
        let ssrc = rand::random::<u32>().clamp(1, u32::MAX - 2);
        // An SVC camera is one stream, its layers told by its VP9 payload descriptors.
        let simulcast =
            self.profile.simulcast && !self.profile.svc && source == TrackSource::Camera;
        let layer_ssrcs = simulcast.then(|| [ssrc, ssrc.wrapping_add(1), ssrc.wrapping_add(2)]);
        let sender = match layer_ssrcs {
            Some(ssrcs) => {
                self.publisher
                    .add_simulcast_track(track_id, cid, &SIMULCAST_LAYERS, ssrcs)?
            }
            None => self.publisher.add_track(track_id, cid, source, ssrc)?,
        };
        self.publications.push(Publication {
            cid: cid.to_owned(),
            track_id: track_id.to_owned(),
            source,
            sender,
            ssrc,
            layer_ssrcs,
            media: None,
            muted: false,
        });
        let mut outbound = OutboundTrackStats::new(source.kind(), ssrc);
        outbound.layers = SIMULCAST_LAYERS
            .iter()
            .zip(layer_ssrcs.into_iter().flatten())
            .map(|(layer, ssrc)| OutboundLayerStats::new(layer.rid.as_str(), ssrc))
            .collect();
        self.stats
            .lock()
            .outbound
            .insert(track_id.to_owned(), outbound);
        self.negotiation.waiting.push(cid.to_owned());
        self.negotiation.needs_offer = true;
        self.offer_if_needed(now);
        self.drive(now);
        Ok(())
    }

    /// Removes a track from the publisher connection and renegotiates.
    pub fn unpublish(&mut self, now: Instant, track_id: &str) -> Result<(), ClientError> {
        let index = self
            .publications
            .iter()
            .position(|p| p.track_id == track_id)
            .ok_or_else(|| ClientError::UnknownTrack(track_id.to_owned()))?;
        let publication = self.publications.remove(index);
        if let Some(at) = self
            .negotiation
            .waiting
            .iter()
            .position(|cid| *cid == publication.cid)
        {
            let cid = self.negotiation.waiting.remove(at);
            self.negotiated.push_back((cid, Err(unpublished())));
        }
        self.publisher.remove_track(publication.sender)?;
        self.negotiation.needs_offer = true;
        self.offer_if_needed(now);
        self.drive(now);
        Ok(())
    }

    /// Stops (or resumes) sending a track's media. Video resumes with a keyframe.
    pub fn set_muted(&mut self, track_id: &str, muted: bool) -> Result<(), ClientError> {
        let publication = self
            .publications
            .iter_mut()
            .find(|p| p.track_id == track_id)
            .ok_or_else(|| ClientError::UnknownTrack(track_id.to_owned()))?;
        publication.muted = muted;
        if let (false, Some(media)) = (muted, publication.media.as_mut()) {
            media.request_keyframe();
        }
        Ok(())
    }

    /// What the microphone sends from now on.
    pub fn set_audio(&mut self, content: AudioContent) {
        self.profile.audio = content;
        for media in self
            .publications
            .iter_mut()
            .filter_map(|p| p.media.as_mut())
        {
            media.set_audio(content);
        }
    }

    /// The silence frame labelled with this RFC 6464 level (in -dBov, 127 = silence)
    /// from now on: see [`AudioContent::from_level`].
    pub fn set_audio_level(&mut self, dbov: u8) {
        self.set_audio(AudioContent::from_level(dbov));
    }

    pub(super) fn offer_if_needed(&mut self, now: Instant) {
        let negotiation = &mut self.negotiation;
        if !negotiation.needs_offer || negotiation.offer_in_flight {
            return;
        }
        negotiation.needs_offer = false;
        let introduced = std::mem::take(&mut negotiation.waiting);
        let ice_restart = std::mem::take(&mut negotiation.ice_restart);
        match self.publisher.create_offer(now, ice_restart) {
            Ok(sdp) => {
                negotiation.offer_in_flight = true;
                negotiation.in_offer = introduced;
                self.signals.push_back(ClientMessage::Offer {
                    target: PeerTarget::Publisher,
                    sdp,
                });
            }
            Err(err) => {
                warn!(%err, "publisher offer failed");
                for cid in introduced {
                    let failure = ClientError::Protocol(format!("offer failed: {err}"));
                    self.negotiated.push_back((cid, Err(failure)));
                }
            }
        }
    }

    pub(super) fn apply_publisher_answer(
        &mut self,
        now: Instant,
        sdp: &str,
    ) -> Result<(), ClientError> {
        if !self.negotiation.offer_in_flight {
            return Err(ClientError::Protocol(
                "answer for the publisher connection without an offer".to_owned(),
            ));
        }
        self.negotiation.offer_in_flight = false;
        let introduced = std::mem::take(&mut self.negotiation.in_offer);
        let applied = self.publisher.accept_answer(now, sdp);
        for cid in introduced {
            let outcome = match &applied {
                Ok(()) => self.start_media(now, &cid),
                Err(err) => Err(ClientError::Protocol(format!("answer rejected: {err}"))),
            };
            self.negotiated.push_back((cid, outcome));
        }
        self.offer_if_needed(now);
        applied
    }

    pub(super) fn start_media(&mut self, now: Instant, cid: &str) -> Result<(), ClientError> {
        let publication = self
            .publications
            .iter_mut()
            .find(|p| p.cid == cid)
            .ok_or_else(unpublished)?;
        let kind = publication.source.kind();
        let params = self
            .publisher
            .stream_params(publication.sender, publication.ssrc, kind)
            .ok_or_else(|| {
                ClientError::Protocol(format!("no codec negotiated for {}", publication.track_id))
            })?;
        if let Some(ssrcs) = publication.layer_ssrcs {
            let (mid_ext, rid_ext) = self
                .publisher
                .simulcast_tags(publication.sender, &publication.cid);
            let rid_ext = rid_ext.ok_or_else(|| {
                ClientError::Protocol(format!(
                    "the answer took no rid extension for {}",
                    publication.track_id
                ))
            })?;
            let layers = SimulcastParams {
                payload_type: params.payload_type,
                ssrcs,
                rid_ext: Some(rid_ext),
            };
            let (codec, fps) = (self.profile.video_codec, self.profile.video_fps);
            let mut source = SimulcastSource::new(layers, codec, SIMULCAST_LAYERS, fps, now);
            if let Some((id, mid)) = mid_ext {
                source.set_mid(id, &mid);
            }
            publication.media = Some(Outgoing::Simulcast(source));
            return Ok(());
        }
        let video = |size| {
            let shape = VideoShape::from_profile(&self.profile, size);
            MediaSource::video(params, self.profile.sent_video_codec(), shape, now)
        };
        publication.media = Some(Outgoing::Single(match publication.source {
            // A tab's sound: Opus like a microphone.
            TrackSource::Microphone | TrackSource::ScreenShareAudio => {
                MediaSource::opus(params, &self.profile, now)
            }
            TrackSource::Camera if self.profile.svc => {
                MediaSource::vp9_svc(params, &SVC_LAYERS, self.profile.video_fps, now)
            }
            TrackSource::Camera => video((640, 360)),
            TrackSource::ScreenShare => video((1280, 720)),
        }));
        Ok(())
    }

    pub(super) fn send_media(&mut self, now: Instant) {
        if self.publisher.state() != RTCPeerConnectionState::Connected {
            return;
        }
        for publication in &mut self.publications {
            let Some(media) = publication.media.as_mut() else {
                continue;
            };
            if publication.muted {
                media.skip_until(now);
                continue;
            }
            while let Some((rid, frame)) = media.poll_frame(now) {
                let (mut packets, mut bytes) = (0, 0);
                for packet in frame.packets {
                    let size = packet.payload.len() as u64;
                    match self.publisher.write_rtp(now, publication.sender, packet) {
                        Ok(()) => (packets, bytes) = (packets + 1, bytes + size),
                        Err(err) => debug!(track = %publication.track_id, %err, "rtp not sent"),
                    }
                }
                let mut stats = self.stats.lock();
                if let Some(outbound) = stats.outbound.get_mut(&publication.track_id) {
                    outbound.packets += packets;
                    outbound.bytes += bytes;
                    outbound.frames += 1;
                    outbound.keyframes += u64::from(frame.keyframe);
                    let layer = rid.and_then(|rid| {
                        let rid = rid.as_str();
                        outbound.layers.iter_mut().find(|l| l.rid == rid)
                    });
                    if let Some(layer) = layer {
                        layer.packets += packets;
                        layer.bytes += bytes;
                        layer.frames += 1;
                        layer.keyframes += u64::from(frame.keyframe);
                    }
                }
            }
        }
    }

    /// Counts reports and feedback; a PLI or FIR for one of our tracks schedules a keyframe.
    /// Feedback is matched by media SSRC, not by the track id the core tags the compound
    /// packet with (that comes from its first packet only).
    pub(super) fn on_rtcp(&mut self, target: PeerTarget, packets: &[Box<dyn rtcp::Packet>]) {
        let mut stats = self.stats.lock();
        for packet in packets {
            let packet = packet.as_any();
            if packet.is::<SenderReport>() {
                peer_stats(&mut stats, target).sender_reports += 1;
            } else if packet.is::<ReceiverReport>() {
                peer_stats(&mut stats, target).receiver_reports += 1;
            } else if let Some(pli) = packet.downcast_ref::<PictureLossIndication>() {
                peer_stats(&mut stats, target).plis += 1;
                if let Some(outbound) =
                    feedback_target(&mut self.publications, &mut stats, pli.media_ssrc, true)
                {
                    outbound.plis_received += 1;
                }
            } else if let Some(fir) = packet.downcast_ref::<FullIntraRequest>() {
                for entry in &fir.fir {
                    peer_stats(&mut stats, target).firs += 1;
                    if let Some(outbound) =
                        feedback_target(&mut self.publications, &mut stats, entry.ssrc, true)
                    {
                        outbound.firs_received += 1;
                    }
                }
            } else if let Some(nack) = packet.downcast_ref::<TransportLayerNack>() {
                peer_stats(&mut stats, target).nacks += 1;
                if let Some(outbound) =
                    feedback_target(&mut self.publications, &mut stats, nack.media_ssrc, false)
                {
                    outbound.nacks_received += 1;
                }
            }
        }
    }
}

fn unpublished() -> ClientError {
    ClientError::Protocol("track was unpublished before negotiation finished".to_owned())
}

/// The outbound stats of the publication sending `ssrc`; with `keyframe`, its next
/// video frame becomes a keyframe.
fn feedback_target<'a>(
    publications: &mut [Publication],
    stats: &'a mut ClientStats,
    ssrc: u32,
    keyframe: bool,
) -> Option<&'a mut OutboundTrackStats> {
    let publication = publications
        .iter_mut()
        .find(|p| p.ssrc == ssrc || p.layer_ssrcs.is_some_and(|l| l.contains(&ssrc)))?;
    if let (true, Some(media)) = (keyframe, publication.media.as_mut()) {
        media.request_keyframe_for(ssrc);
    }
    let outbound = stats.outbound.get_mut(&publication.track_id)?;
    if let (true, Some(layer)) = (
        keyframe,
        outbound.layers.iter_mut().find(|l| l.ssrc == ssrc),
    ) {
        layer.keyframe_requests += 1;
    }
    Some(outbound)
}
