//! The server's tracks on the subscriber connection, where the server offers:
//! answering its offers, receiving and counting (and, for audio, decoding) each remote
//! track's RTP, and asking for keyframes.

use std::time::Instant;

use chorus_protocol::MediaKind;
use chorus_protocol::signal::{ClientMessage, PeerTarget};
use rtc::rtp;
use rtc::rtp_transceiver::RTCRtpReceiverId;
use tracing::{debug, warn};

use super::{Engine, Subscription};
use crate::decode::AudioDecoder;
use crate::error::ClientError;
use crate::keyframe::KeyframeRequestForm;
use crate::stats::InboundTrackStats;

impl Engine {
    /// Sends a PLI for a remote video track (by server track id).
    pub fn request_keyframe(&mut self, now: Instant, track_id: &str) -> Result<(), ClientError> {
        self.request_keyframe_with(now, track_id, KeyframeRequestForm::Pli)
    }

    /// Asks for a keyframe of a remote video track (by server track id) in the RTCP
    /// `form` some client sends.
    pub fn request_keyframe_with(
        &mut self,
        now: Instant,
        track_id: &str,
        form: KeyframeRequestForm,
    ) -> Result<(), ClientError> {
        let subscription = self
            .subscriptions
            .values_mut()
            .find(|s| s.track_id == track_id && s.kind == MediaKind::Video)
            .ok_or_else(|| ClientError::UnknownTrack(track_id.to_owned()))?;
        if form.is_fir() {
            subscription.fir_seq = subscription.fir_seq.wrapping_add(1);
        }
        let packets = form.packets(subscription.ssrc, subscription.fir_seq);
        self.subscriber
            .write_rtcp(now, subscription.receiver, packets)?;
        if !form.is_fir()
            && let Some(inbound) = self.stats.lock().inbound.get_mut(track_id)
        {
            inbound.plis_sent += 1;
        }
        self.drive(now);
        Ok(())
    }

    pub(super) fn answer_subscriber_offer(
        &mut self,
        now: Instant,
        sdp: &str,
    ) -> Result<(), ClientError> {
        let answer = self.subscriber.accept_offer(now, sdp)?;
        self.signals.push_back(ClientMessage::Answer {
            target: PeerTarget::Subscriber,
            sdp: answer,
        });
        Ok(())
    }

    /// The first RTP packet of a remote track arrived: count it and decode it from now on.
    pub(super) fn on_track_opened(
        &mut self,
        track_id: String,
        stream_id: String,
        receiver: RTCRtpReceiverId,
        ssrc: u32,
        kind: MediaKind,
    ) {
        // The server names the track by the stream it puts it in.
        let remote_id = if stream_id.is_empty() {
            track_id.clone()
        } else {
            stream_id
        };
        debug!(track = %remote_id, ssrc, ?kind, "remote track opened");
        self.stats
            .lock()
            .inbound
            .entry(remote_id.clone())
            .or_insert_with(|| InboundTrackStats::new(kind, ssrc))
            .ssrc = ssrc;
        let decoder = (kind == MediaKind::Audio && self.profile.decode_audio)
            .then(AudioDecoder::new)
            .and_then(|made| {
                made.inspect_err(|err| warn!(%err, "received audio not decoded"))
                    .ok()
            });
        self.subscriptions.insert(
            track_id,
            Subscription {
                track_id: remote_id,
                receiver,
                ssrc,
                kind,
                decoder,
                fir_seq: 0,
            },
        );
    }

    /// Counts a packet of a remote track, received at `received_at`, and decodes it if
    /// the track's audio is decoded.
    pub(super) fn on_rtp(&mut self, received_at: Instant, track_id: String, packet: rtp::Packet) {
        let Some(subscription) = self.subscriptions.get_mut(&track_id) else {
            debug!(%track_id, "rtp for an unknown track");
            return;
        };
        let mut stats = self.stats.lock();
        let Some(inbound) = stats.inbound.get_mut(&subscription.track_id) else {
            return;
        };
        let stuck = inbound.on_rtp(received_at, &packet);
        if let Some(decoder) = subscription.decoder.as_mut() {
            decoder.decode(&packet.payload, inbound.decoded.get_or_insert_default());
        }
        drop(stats);
        if stuck {
            // As a browser does when its decoder waits on a packet that never came.
            let remote_id = subscription.track_id.clone();
            if let Err(err) = self.request_keyframe(received_at, &remote_id) {
                debug!(%err, "keyframe request for a stuck video not sent");
            }
        }
    }
}
