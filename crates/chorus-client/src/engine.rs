//! The media half of a client: the publisher and subscriber peer connections, the
//! synthetic media sources and the counters, with no signaling transport.
//!
//! [`Engine`] takes signaling messages in ([`Engine::handle_signal`]) and hands the
//! ones to send out ([`Engine::poll_signal`]); whoever owns it carries them. The
//! [`crate::Client`] carries them over the Chorus WebSocket; a test can connect one
//! engine's publisher connection to another engine's subscriber connection directly.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chorus_protocol::signal::{ClientMessage, PeerTarget, ServerMessage};
use chorus_protocol::{MediaKind, TrackSource};
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::rtcp;
use rtc::rtcp::payload_feedbacks::full_intra_request::{FirEntry, FullIntraRequest};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::source_description::{
    SdesType, SourceDescription, SourceDescriptionChunk, SourceDescriptionItem,
};
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId};
use tracing::{debug, warn};

use crate::ClientError;
use crate::decode::AudioDecoder;
use crate::media::{MediaProfile, MediaSource, VideoShape};
use crate::peer::{Peer, PeerOutput};
use crate::stats::{ClientStats, InboundTrackStats, OutboundTrackStats, PeerStats, SharedStats};
use crate::talk::AudioContent;

/// Longest sleep of [`Engine::step`] when nothing is scheduled.
const IDLE_WAKE: Duration = Duration::from_secs(1);
/// Pause after a socket error so a persistent one cannot spin the task.
const SOCKET_ERROR_BACKOFF: Duration = Duration::from_millis(10);

/// Result of negotiating one publication: its `cid` and whether media can flow.
pub type NegotiationOutcome = (String, Result<(), ClientError>);

/// One of our tracks on the publisher connection.
struct Publication {
    /// Our `MediaStreamTrack` id, the msid track id.
    cid: String,
    /// The server's track id; also the msid stream id and the stats key.
    track_id: String,
    source: TrackSource,
    sender: RTCRtpSenderId,
    ssrc: u32,
    /// Set once the answer names the payload type.
    media: Option<MediaSource>,
    muted: bool,
}

/// A remote track on the subscriber connection.
struct Subscription {
    /// The server's track id (the media stream id).
    track_id: String,
    receiver: RTCRtpReceiverId,
    ssrc: u32,
    kind: MediaKind,
    /// Audio with `MediaProfile::decode_audio`.
    decoder: Option<AudioDecoder>,
    /// Sequence number of our last FIR for the track (RFC 5104: one more per request).
    fir_seq: u8,
}

/// Offer/answer state of the publisher connection, where we are the only offerer.
#[derive(Default)]
struct PublisherNegotiation {
    needs_offer: bool,
    offer_in_flight: bool,
    /// Publications added since the last offer.
    waiting: Vec<String>,
    /// Publications the offer in flight introduces.
    in_offer: Vec<String>,
    /// The next offer restarts ICE.
    ice_restart: bool,
}

/// Both peer connections of one participant and the media they carry.
pub struct Engine {
    publisher: Peer,
    subscriber: Peer,
    profile: MediaProfile,
    publications: Vec<Publication>,
    /// Remote tracks by the msid track id their RTP packets are tagged with.
    subscriptions: HashMap<String, Subscription>,
    negotiation: PublisherNegotiation,
    signals: VecDeque<ClientMessage>,
    negotiated: VecDeque<NegotiationOutcome>,
    stats: SharedStats,
}

impl Engine {
    /// Binds one UDP socket per peer connection on `bind_ip` (a concrete address, not
    /// a wildcard: it is advertised as the host candidate).
    pub async fn bind(bind_ip: IpAddr, profile: MediaProfile) -> Result<Self, ClientError> {
        Ok(Self {
            publisher: Peer::bind(
                PeerTarget::Publisher,
                bind_ip,
                profile.video_codec,
                profile.keepalive,
            )
            .await?,
            subscriber: Peer::bind(
                PeerTarget::Subscriber,
                bind_ip,
                profile.video_codec,
                profile.keepalive,
            )
            .await?,
            profile,
            publications: Vec::new(),
            subscriptions: HashMap::new(),
            negotiation: PublisherNegotiation::default(),
            signals: VecDeque::new(),
            negotiated: VecDeque::new(),
            stats: SharedStats::default(),
        })
    }

    pub fn stats(&self) -> ClientStats {
        self.stats.snapshot()
    }

    pub(crate) fn shared_stats(&self) -> SharedStats {
        self.stats.clone()
    }

    /// Local UDP addresses of the publisher and subscriber connections.
    pub fn local_addrs(&self) -> (SocketAddr, SocketAddr) {
        (self.publisher.local_addr(), self.subscriber.local_addr())
    }

    /// Opens a second path on `target` (a new socket, checked with the server, not
    /// nominated): the client now has two candidate pairs. Returns its address.
    pub async fn add_path(&mut self, target: PeerTarget) -> Result<SocketAddr, ClientError> {
        self.peer_mut(target).add_path().await
    }

    /// Nominates the second path of `target` and sends through it from now on, as a
    /// browser does when it switches pairs mid-call.
    pub async fn switch_path(&mut self, target: PeerTarget) -> Result<SocketAddr, ClientError> {
        let addr = self.peer_mut(target).switch_path().await?;
        self.drive(Instant::now());
        Ok(addr)
    }

    /// Closes the path `target` used before its last switch, as when that interface
    /// goes away: from now on only the nominated path receives.
    pub fn drop_previous_path(&mut self, target: PeerTarget) -> Result<SocketAddr, ClientError> {
        self.peer_mut(target).drop_previous_path()
    }

    /// The client's address changed (a new socket; the old one is closed) and it
    /// restarts ICE on `target` ([`Engine::restart_ice`]).
    pub async fn change_address(&mut self, target: PeerTarget) -> Result<SocketAddr, ClientError> {
        let addr = self.peer_mut(target).change_address().await?;
        self.restart_ice(target);
        Ok(addr)
    }

    /// Restarts ICE on `target`: a new offer with new credentials on the publisher
    /// connection; on the subscriber connection it asks the server to offer one. What a
    /// client does when the server sends `ice_restart`, or when its network changed.
    pub fn restart_ice(&mut self, target: PeerTarget) {
        match target {
            PeerTarget::Publisher => {
                self.negotiation.ice_restart = true;
                self.negotiation.needs_offer = true;
                self.offer_if_needed(Instant::now());
            }
            PeerTarget::Subscriber => self.signals.push_back(ClientMessage::IceRestart { target }),
        }
    }

    /// Cuts `target` off the network (nothing sent, nothing received) or reconnects it,
    /// as an outage does.
    pub fn set_offline(&mut self, target: PeerTarget, offline: bool) {
        self.peer_mut(target).set_offline(offline);
    }

    /// Next signaling message to send (offer, answer, candidate), in order.
    pub fn poll_signal(&mut self) -> Option<ClientMessage> {
        self.signals.pop_front()
    }

    /// Next publication whose negotiation finished.
    pub fn poll_negotiated(&mut self) -> Option<NegotiationOutcome> {
        self.negotiated.pop_front()
    }

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
        let ssrc = rand::random::<u32>().max(1);
        let sender = self.publisher.add_track(track_id, cid, source, ssrc)?;
        self.publications.push(Publication {
            cid: cid.to_owned(),
            track_id: track_id.to_owned(),
            source,
            sender,
            ssrc,
            media: None,
            muted: false,
        });
        self.stats.lock().outbound.insert(
            track_id.to_owned(),
            OutboundTrackStats::new(source.kind(), ssrc),
        );
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

    /// Applies an offer, answer or candidate from the server; other messages are ignored.
    pub fn handle_signal(
        &mut self,
        now: Instant,
        message: &ServerMessage,
    ) -> Result<(), ClientError> {
        let result = match message {
            ServerMessage::Offer {
                target: PeerTarget::Subscriber,
                sdp,
            } => self.answer_subscriber_offer(now, sdp),
            ServerMessage::Answer {
                target: PeerTarget::Publisher,
                sdp,
            } => self.apply_publisher_answer(now, sdp),
            ServerMessage::Offer { target, .. } | ServerMessage::Answer { target, .. } => Err(
                ClientError::Protocol(format!("unexpected SDP direction for {target:?}")),
            ),
            ServerMessage::Candidate {
                target,
                candidate: Some(candidate),
            } => self.peer_mut(*target).add_remote_candidate(candidate),
            _ => Ok(()),
        };
        if result.is_err()
            && matches!(
                message,
                ServerMessage::Offer { .. } | ServerMessage::Answer { .. }
            )
        {
            self.stats.lock().negotiation_failures += 1;
        }
        self.drive(now);
        result
    }

    /// Waits for a datagram or the next timer, handles it and drives both connections.
    /// Cancel-safe: nothing is lost when the future is dropped before it completes.
    pub async fn step(&mut self) {
        let deadline = self.poll_timeout(Instant::now());
        let received = tokio::select! {
            received = self.publisher.recv() => Some((PeerTarget::Publisher, received)),
            received = self.subscriber.recv() => Some((PeerTarget::Subscriber, received)),
            _ = tokio::time::sleep_until(deadline.into()) => None,
        };
        let now = Instant::now();
        match received {
            Some((target, Ok((len, from)))) => {
                self.peer_mut(target).handle_received(now, len, from)
            }
            Some((target, Err(err))) => {
                debug!(?target, %err, "socket receive failed");
                tokio::time::sleep(SOCKET_ERROR_BACKOFF).await;
            }
            None => {}
        }
        self.drive(Instant::now());
    }

    /// Runs timers, sends due media, processes everything both connections produced
    /// and sends their datagrams.
    pub fn drive(&mut self, now: Instant) {
        self.publisher.handle_timeout(now);
        self.subscriber.handle_timeout(now);
        self.send_media(now);
        while let Some(output) = self.publisher.poll_output() {
            self.on_output(PeerTarget::Publisher, now, output);
        }
        while let Some(output) = self.subscriber.poll_output() {
            self.on_output(PeerTarget::Subscriber, now, output);
        }
        self.publisher.flush();
        self.subscriber.flush();
    }

    fn poll_timeout(&mut self, now: Instant) -> Instant {
        let media = if self.publisher.state() == RTCPeerConnectionState::Connected {
            self.publications
                .iter()
                .filter_map(|p| p.media.as_ref())
                .map(MediaSource::poll_timeout)
                .min()
        } else {
            None
        };
        [
            self.publisher.poll_timeout(),
            self.subscriber.poll_timeout(),
            media,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(now + IDLE_WAKE)
        .min(now + IDLE_WAKE)
    }

    fn peer_mut(&mut self, target: PeerTarget) -> &mut Peer {
        match target {
            PeerTarget::Publisher => &mut self.publisher,
            PeerTarget::Subscriber => &mut self.subscriber,
        }
    }

    fn offer_if_needed(&mut self, now: Instant) {
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

    fn apply_publisher_answer(&mut self, now: Instant, sdp: &str) -> Result<(), ClientError> {
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

    fn start_media(&mut self, now: Instant, cid: &str) -> Result<(), ClientError> {
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
        let video = |size| {
            let shape = VideoShape::from_profile(&self.profile, size);
            MediaSource::video(params, self.profile.video_codec, shape, now)
        };
        publication.media = Some(match publication.source {
            TrackSource::Microphone => MediaSource::opus(params, &self.profile, now),
            TrackSource::Camera => video((640, 360)),
            TrackSource::ScreenShare => video((1280, 720)),
        });
        Ok(())
    }

    fn answer_subscriber_offer(&mut self, now: Instant, sdp: &str) -> Result<(), ClientError> {
        let answer = self.subscriber.accept_offer(now, sdp)?;
        self.signals.push_back(ClientMessage::Answer {
            target: PeerTarget::Subscriber,
            sdp: answer,
        });
        Ok(())
    }

    fn send_media(&mut self, now: Instant) {
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
            while let Some(frame) = media.poll_frame(now) {
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
                }
            }
        }
    }

    fn on_output(&mut self, target: PeerTarget, now: Instant, output: PeerOutput) {
        match output {
            PeerOutput::Candidate(candidate) => {
                self.signals
                    .push_back(ClientMessage::Candidate { target, candidate });
            }
            PeerOutput::StateChanged(state) => {
                let mut stats = self.stats.lock();
                peer_stats(&mut stats, target).state = Some(state);
            }
            PeerOutput::TrackOpened {
                track_id,
                stream_id,
                receiver,
                ssrc,
                kind,
            } => {
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
            PeerOutput::Rtp { track_id, packet } => {
                let Some(subscription) = self.subscriptions.get_mut(&track_id) else {
                    debug!(%track_id, "rtp for an unknown track");
                    return;
                };
                let mut stats = self.stats.lock();
                let Some(inbound) = stats.inbound.get_mut(&subscription.track_id) else {
                    return;
                };
                inbound.on_rtp(now, &packet);
                if let Some(decoder) = subscription.decoder.as_mut() {
                    decoder.decode(&packet.payload, inbound.decoded.get_or_insert_default());
                }
            }
            PeerOutput::Rtcp(packets) => self.on_rtcp(target, &packets),
        }
    }

    /// Counts reports and feedback; a PLI or FIR for one of our tracks schedules a keyframe.
    /// Feedback is matched by media SSRC, not by the track id the core tags the compound
    /// packet with (that comes from its first packet only).
    fn on_rtcp(&mut self, target: PeerTarget, packets: &[Box<dyn rtcp::Packet>]) {
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

fn peer_stats(stats: &mut ClientStats, target: PeerTarget) -> &mut PeerStats {
    match target {
        PeerTarget::Publisher => &mut stats.publisher,
        PeerTarget::Subscriber => &mut stats.subscriber,
    }
}

/// The outbound stats of the publication sending `ssrc`; with `keyframe`, its next
/// video frame becomes a keyframe.
fn feedback_target<'a>(
    publications: &mut [Publication],
    stats: &'a mut ClientStats,
    ssrc: u32,
    keyframe: bool,
) -> Option<&'a mut OutboundTrackStats> {
    let publication = publications.iter_mut().find(|p| p.ssrc == ssrc)?;
    if let (true, Some(media)) = (keyframe, publication.media.as_mut()) {
        media.request_keyframe();
    }
    stats.outbound.get_mut(&publication.track_id)
}

/// The RTCP in which a subscriber asks for a keyframe, as different clients send it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyframeRequestForm {
    /// A lone PLI (reduced-size RTCP, as browsers send it).
    Pli,
    /// A lone FIR.
    Fir,
    /// An RR without report blocks, an SDES with a CNAME, then a PLI: what GStreamer's
    /// webrtcbin sends.
    CompoundPli,
    /// An RR without report blocks, an SDES with a CNAME, then a FIR.
    CompoundFir,
}

impl KeyframeRequestForm {
    /// Our SSRC as the sender of compound feedback: a receive-only endpoint has no
    /// media SSRC of its own to report from.
    const FEEDBACK_SSRC: u32 = 0xC40C_0001;

    fn is_fir(self) -> bool {
        matches!(self, Self::Fir | Self::CompoundFir)
    }

    /// The packets asking `media_ssrc` for a keyframe; `fir_seq` numbers a FIR.
    fn packets(self, media_ssrc: u32, fir_seq: u8) -> Vec<Box<dyn rtcp::Packet>> {
        let sender_ssrc = Self::FEEDBACK_SSRC;
        let mut packets: Vec<Box<dyn rtcp::Packet>> = Vec::with_capacity(3);
        if matches!(self, Self::CompoundPli | Self::CompoundFir) {
            packets.push(Box::new(ReceiverReport {
                ssrc: sender_ssrc,
                ..Default::default()
            }));
            packets.push(Box::new(SourceDescription {
                chunks: vec![SourceDescriptionChunk {
                    source: sender_ssrc,
                    items: vec![SourceDescriptionItem {
                        sdes_type: SdesType::SdesCname,
                        text: Bytes::from_static(b"chorus-client"),
                    }],
                }],
            }));
        }
        if self.is_fir() {
            packets.push(Box::new(FullIntraRequest {
                sender_ssrc,
                // RFC 5104: unused in a FIR, whose entries name the streams.
                media_ssrc: 0,
                fir: vec![FirEntry {
                    ssrc: media_ssrc,
                    sequence_number: fir_seq,
                }],
            }));
        } else {
            packets.push(Box::new(PictureLossIndication {
                sender_ssrc,
                media_ssrc,
            }));
        }
        packets
    }
}
