//! A connection over webrtc-rs `rtc`'s `RTCPeerConnection` (the default transport until
//! Chorus's own one passes every test): rtc negotiates, encrypts, answers NACKs and sends
//! reports; [`IceLite`] beside it judges paths and liveness.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use chorus_core::TrackId;
use chorus_protocol::MediaKind;
use chorus_protocol::signal::{IceCandidate, PeerTarget};
use chorus_transport::stun::looks_like_stun;
use chorus_transport::{AUDIO_LEVEL_URI, IceCredentials, IceLite, StunCheck, sending_track};
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::configuration::RTCOfferOptions;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp::header::Header;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use rtc::statistics::StatsSelector;

use super::{PeerEvent, SdpFailed};
use crate::skips::Skip;

pub struct RtcLink {
    pc: RTCPeerConnection,
    ice: IceLite,
    /// Subscriber side: the sender of each down track.
    senders: HashMap<TrackId, RTCRtpSenderId>,
    /// Publisher side: the receiver of each of the client's tracks (for keyframe requests).
    receivers: HashMap<String, RTCRtpReceiverId>,
}

impl RtcLink {
    pub fn new(pc: RTCPeerConnection, ice: IceLite) -> Self {
        Self {
            pc,
            ice,
            senders: HashMap::new(),
            receivers: HashMap::new(),
        }
    }

    pub fn ice(&self) -> &IceLite {
        &self.ice
    }

    /// Binding requests are authenticated here first (the forged and the stale go no
    /// further); anything the connection accepts counts as a sign of life of its path.
    pub fn handle_datagram(
        &mut self,
        local: SocketAddr,
        from: SocketAddr,
        at: Instant,
        data: BytesMut,
    ) -> Result<(), Skip> {
        let stun = looks_like_stun(&data);
        if stun {
            match self.ice.check_stun(from, &data, at) {
                StunCheck::Request { .. } | StunCheck::NotRequest => {}
                StunCheck::BadIntegrity => return Err(Skip::StunBadIntegrity),
                // Stale credentials (an old ufrag after a restart) or garbage: rtc
                // would refuse them too.
                StunCheck::WrongUfrag | StunCheck::Malformed => return Err(Skip::StunRejected),
            }
        }
        let msg = TaggedBytesMut {
            now: at,
            transport: TransportContext {
                local_addr: local,
                peer_addr: from,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: data,
        };
        // Garbage, replays and packets for a closed session are the peer's problem, not ours.
        match self.pc.handle_read(msg) {
            // SRTP, SRTCP and DTLS that decrypted: authenticated. STUN requests were
            // counted above; indications and responses prove nothing.
            Ok(()) if !stun => self.ice.heard(from, at),
            Ok(()) => {}
            Err(e) => tracing::trace!(error = %e, "dropped incoming datagram"),
        }
        Ok(())
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let Err(e) = self.pc.handle_timeout(now) {
            tracing::debug!(error = %e, "timeout handling failed");
        }
        self.ice.handle_timeout(now);
    }

    pub fn drain(&mut self, target: PeerTarget, now: Instant, out: &mut Vec<PeerEvent>) {
        while let Some(ev) = self.pc.poll_event() {
            match ev {
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                    tracing::debug!(?target, %state, "connection state");
                    match state {
                        RTCPeerConnectionState::Connected => {
                            self.ice.connected(now);
                            out.push(self.connected(now));
                        }
                        RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                            out.push(PeerEvent::Failed)
                        }
                        _ => {}
                    }
                }
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init))
                    if target == PeerTarget::Publisher =>
                {
                    out.push(self.up_track(init.track_id, init.receiver_id));
                }
                _ => {}
            }
        }
        while let Some(msg) = self.pc.poll_read() {
            match (target, msg.message) {
                (PeerTarget::Publisher, RTCMessage::RtpPacket(sdp_track, packet)) => {
                    let sdp_track = sdp_track.into();
                    out.push(PeerEvent::Rtp { sdp_track, packet })
                }
                (PeerTarget::Subscriber, RTCMessage::RtcpPacket(_, packets)) => {
                    // rtc tags a compound packet by its first SSRC only; a PLI after an RR
                    // would be misattributed, so look at each request's own media SSRC.
                    for p in &packets {
                        let any = p.as_any();
                        if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
                            out.push(PeerEvent::KeyframeRequest {
                                ssrc: pli.media_ssrc,
                            });
                        } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
                            for entry in &fir.fir {
                                out.push(PeerEvent::KeyframeRequest { ssrc: entry.ssrc });
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        while let Some(ev) = self.ice.poll_event() {
            out.push(PeerEvent::Ice(ev));
        }
    }

    /// The SRTP protection profile and the DTLS cipher suite the handshake settled on,
    /// as rtc's transport stats name them, and the server's DTLS role. rtc fills them in
    /// before it reports the connection `Connected`; its stats are the only place it
    /// exposes them.
    fn connected(&mut self, now: Instant) -> PeerEvent {
        let report = self.pc.get_stats(now, StatsSelector::None);
        let t = report.transport();
        let named = |s: Option<String>| {
            s.filter(|s| !s.is_empty())
                .unwrap_or_else(|| "unknown".to_owned())
        };
        PeerEvent::Connected {
            srtp_profile: named(t.map(|t| t.srtp_cipher.clone())),
            dtls_cipher: named(t.map(|t| t.dtls_cipher.clone())),
            dtls_role: named(t.map(|t| t.dtls_role.to_string())),
        }
    }

    fn up_track(&mut self, sdp_track: String, receiver: RTCRtpReceiverId) -> PeerEvent {
        let mut r = self.pc.rtp_receiver(receiver);
        let kind = r.as_ref().map(|r| match r.track().kind() {
            RtpCodecKind::Audio => MediaKind::Audio,
            _ => MediaKind::Video,
        });
        let audio_level_ext = r.as_mut().and_then(|r| {
            r.get_parameters()
                .rtp_parameters
                .header_extensions
                .iter()
                .find(|ext| ext.uri == AUDIO_LEVEL_URI)
                .and_then(|ext| u8::try_from(ext.id).ok())
        });
        self.receivers.insert(sdp_track.clone(), receiver);
        PeerEvent::UpTrack {
            sdp_track,
            kind,
            audio_level_ext,
        }
    }

    pub fn answer(&mut self, offer: String, now: Instant) -> Result<String, SdpFailed> {
        let offer = RTCSessionDescription::offer(offer).map_err(SdpFailed::of)?;
        self.pc
            .set_remote_description(now, offer)
            .map_err(SdpFailed::of)?;
        let answer = self.pc.create_answer(None).map_err(SdpFailed::of)?;
        self.pc
            .set_local_description(now, answer)
            .map_err(SdpFailed::of)?;
        Ok(self
            .pc
            .local_description()
            .map(|d| d.sdp)
            .unwrap_or_default())
    }

    pub fn add_track(
        &mut self,
        id: &TrackId,
        kind: MediaKind,
        label: String,
        ssrc: u32,
    ) -> Result<(), SdpFailed> {
        let kind = match kind {
            MediaKind::Audio => RtpCodecKind::Audio,
            MediaKind::Video => RtpCodecKind::Video,
        };
        // The stream id is the track id: that is how the client maps what arrives.
        let output = sending_track(id.to_string(), id.to_string(), label, kind, ssrc);
        let sender = self.pc.add_track(output).map_err(SdpFailed::of)?;
        self.senders.insert(id.clone(), sender);
        Ok(())
    }

    pub fn remove_track(&mut self, id: &TrackId) {
        if let Some(sender) = self.senders.remove(id) {
            let _ = self.pc.remove_track(sender);
        }
    }

    pub fn offer(&mut self, ice_restart: bool, now: Instant) -> Result<String, SdpFailed> {
        let options = ice_restart.then_some(RTCOfferOptions { ice_restart: true });
        let offer = self.pc.create_offer(options).map_err(SdpFailed::of)?;
        self.pc
            .set_local_description(now, offer)
            .map_err(SdpFailed::of)?;
        self.pc
            .local_description()
            .map(|d| d.sdp)
            .ok_or_else(|| SdpFailed("no local description".into()))
    }

    pub fn apply_answer(&mut self, answer: String, now: Instant) -> Result<(), SdpFailed> {
        let answer = RTCSessionDescription::answer(answer).map_err(SdpFailed::of)?;
        self.pc
            .set_remote_description(now, answer)
            .map_err(SdpFailed::of)
    }

    pub fn add_remote_candidate(&mut self, c: IceCandidate) {
        let _ = self.pc.add_remote_candidate(RTCIceCandidateInit {
            candidate: c.candidate,
            sdp_mid: c.sdp_mid,
            sdp_mline_index: c.sdp_mline_index,
            username_fragment: c.username_fragment,
            url: None,
        });
    }

    pub fn send_rtp(
        &mut self,
        down: &TrackId,
        header: Header,
        payload: Bytes,
        now: Instant,
    ) -> bool {
        // Straight into the connection: `RTCRtpSender::write_rtp` would rebuild the
        // sender's parameters to validate what the forwarder just set.
        let msg = TaggedRTCMessage {
            now,
            message: RTCMessage::RtpPacket(
                down.as_str().to_owned(),
                rtc::rtp::Packet { header, payload },
            ),
        };
        self.pc.handle_write(msg).is_ok()
    }

    pub fn request_keyframe(&mut self, sdp_track: &str, media_ssrc: u32, now: Instant) -> bool {
        let receiver = self.receivers.get(sdp_track).copied();
        let Some(mut r) = receiver.and_then(|id| self.pc.rtp_receiver(id)) else {
            return false;
        };
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc,
        };
        r.write_rtcp(now, vec![Box::new(pli)]).is_ok()
    }

    pub fn close(&mut self) {
        let _ = self.pc.close();
    }

    /// Takes the ICE credentials of the local description just set: the first ones, or
    /// new ones after an ICE restart. Returns the ufrag.
    pub fn sync_credentials(&mut self, now: Instant) -> Option<String> {
        let sdp = self.pc.local_description()?.sdp;
        let credentials = IceCredentials::from_sdp(&sdp)?;
        let ufrag = credentials.ufrag.clone();
        if self.ice.credentials() != Some(&credentials) {
            self.ice.set_credentials(credentials, now);
        }
        Some(ufrag)
    }

    /// The next datagram, and where to.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, BytesMut)> {
        let msg = self.pc.poll_write()?;
        // rtc keeps the first nominated pair; media goes where the client nominated
        // last. STUN (answers to the client's checks) goes back where it came from.
        let to = match self.ice.destination() {
            Some(path) if !looks_like_stun(&msg.message) => path,
            _ => msg.transport.peer_addr,
        };
        Some((to, msg.message))
    }

    pub fn poll_timeout(&mut self) -> Option<Instant> {
        [self.pc.poll_timeout(), self.ice.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }
}
