//! One WebRTC peer connection (the `rtc` sans-I/O core) and the UDP socket it speaks through.
//!
//! [`Peer`] turns the core's events and reads into [`PeerOutput`] values and sends its
//! writes; the [`crate::Engine`] decides what to do with them.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use bytes::BytesMut;
use chorus_protocol::signal::{IceCandidate, PeerTarget};
use chorus_protocol::{MediaKind, TrackSource};
use chorus_rtc_profile::AUDIO_LEVEL_URI;
use rtc::data_channel::{RTCDataChannelId, RTCDataChannelInit};
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::configuration::RTCOfferOptions;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_VP8, MIME_TYPE_VP9,
};
use rtc::peer_connection::event::{RTCDataChannelEvent, RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::{RTCIceGatheringState, RTCPeerConnectionState};
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use rtc::statistics::StatsSelector;
use rtc::{rtcp, rtp};
use tokio::net::UdpSocket;
use tracing::{debug, trace};

mod arrival;
mod batch;
mod build;
mod cmsg;
mod drops;
mod paths;
mod receive;
mod simulcast;

use batch::RecvBatch;
use build::build_peer_connection;
pub(crate) use receive::ArrivalCounts;
use receive::bind_stamped;

use crate::error::ClientError;
use crate::profile::{Keepalive, MediaProfile, StreamParams, VideoCodec};
use crate::shaper::Shaper;

/// What a peer connection produced, as a value for the engine to act on.
#[derive(Debug)]
pub(crate) enum PeerOutput {
    /// A local candidate to trickle; `None` marks the end of candidates.
    Candidate(Option<IceCandidate>),
    StateChanged(RTCPeerConnectionState),
    /// The first RTP packet of a remote track arrived.
    TrackOpened {
        /// The msid track id, which tags the track's RTP packets.
        track_id: String,
        /// The msid stream id: the server's track id.
        stream_id: String,
        receiver: RTCRtpReceiverId,
        ssrc: u32,
        kind: MediaKind,
    },
    Rtp {
        track_id: String,
        packet: rtp::Packet,
        /// When its datagram was read from the socket.
        received_at: Instant,
    },
    Rtcp(Vec<Box<dyn rtcp::Packet>>),
    /// A data channel of ours opened (the server acknowledged it).
    DataOpen(RTCDataChannelId),
    /// A message on a data channel: text or binary.
    Data {
        channel: RTCDataChannelId,
        text: bool,
        data: BytesMut,
    },
}

pub(crate) struct Peer {
    target: PeerTarget,
    pc: RTCPeerConnection,
    /// The path in use: sends and receives.
    socket: UdpSocket,
    /// The path before a switch: still receives what was in flight.
    previous: Option<UdpSocket>,
    /// A second path, checked but not nominated ([`Peer::add_path`]).
    spare: Option<UdpSocket>,
    /// The address the connection's first socket had. rtc keeps seeing it whatever
    /// socket carries the datagrams: a path change is invisible to it, as a NAT
    /// rebinding is.
    local_addr: SocketAddr,
    keepalive: Keepalive,
    next_indication: Option<Instant>,
    /// Where the connection sends (the server's media address), once it has sent.
    server: Option<SocketAddr>,
    /// Cut off the network: nothing goes out, what comes in is lost.
    offline: bool,
    /// What the last `recvmmsg` read, handed to the connection one at a time.
    batch: RecvBatch,
    host_candidate_added: bool,
    state: RTCPeerConnectionState,
    /// The video payload format this connection sends (publisher).
    video_codec: VideoCodec,
    /// Subscriber side with [`MediaProfile::downlink_cap`]: the capped link what
    /// arrives goes through first.
    shaper: Option<Shaper>,
    /// The latest time given to the connection: an arrival is never earlier.
    clock: Instant,
    /// Datagrams read with and without a kernel receive time.
    arrivals: ArrivalCounts,
}

impl Peer {
    pub(crate) async fn bind(
        target: PeerTarget,
        ip: IpAddr,
        profile: &MediaProfile,
    ) -> Result<Self, ClientError> {
        let socket = bind_stamped(SocketAddr::new(ip, 0)).await?;
        let local_addr = socket.local_addr()?;
        let now = Instant::now();
        Ok(Self {
            target,
            pc: build_peer_connection(now, target, profile)?,
            clock: now,
            arrivals: ArrivalCounts::default(),
            video_codec: profile.sent_video_codec(),
            socket,
            previous: None,
            spare: None,
            local_addr,
            keepalive: profile.keepalive,
            next_indication: None,
            server: None,
            offline: false,
            batch: RecvBatch::default(),
            host_candidate_added: false,
            state: RTCPeerConnectionState::New,
            shaper: profile
                .downlink_cap
                .filter(|_| target == PeerTarget::Subscriber)
                .map(Shaper::new),
        })
    }

    pub(crate) fn state(&self) -> RTCPeerConnectionState {
        self.state
    }

    /// The SRTP protection profile DTLS negotiated (rtc's transport stats); `None`
    /// before the handshake completed.
    pub(crate) fn srtp_profile(&mut self, now: Instant) -> Option<String> {
        let report = self.pc.get_stats(now, StatsSelector::None);
        report
            .transport()
            .map(|t| t.srtp_cipher.clone())
            .filter(|profile| !profile.is_empty())
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Offer (publisher connection). Carries the host candidate, which is also trickled.
    /// With `ice_restart`, new ICE credentials.
    pub(crate) fn create_offer(
        &mut self,
        now: Instant,
        ice_restart: bool,
    ) -> Result<String, ClientError> {
        self.add_host_candidate()?;
        let options = ice_restart.then_some(RTCOfferOptions { ice_restart: true });
        let offer = self.pc.create_offer(options)?;
        self.pc.set_local_description(now, offer)?;
        self.local_sdp()
    }

    pub(crate) fn accept_answer(&mut self, now: Instant, sdp: &str) -> Result<(), ClientError> {
        let answer = RTCSessionDescription::answer(sdp.to_owned())?;
        self.pc.set_remote_description(now, answer)?;
        Ok(())
    }

    /// Answer (subscriber connection).
    pub(crate) fn accept_offer(&mut self, now: Instant, sdp: &str) -> Result<String, ClientError> {
        let offer = RTCSessionDescription::offer(sdp.to_owned())?;
        self.pc.set_remote_description(now, offer)?;
        self.add_host_candidate()?;
        let answer = self.pc.create_answer(None)?;
        self.pc.set_local_description(now, answer)?;
        self.local_sdp()
    }

    pub(crate) fn add_remote_candidate(
        &mut self,
        candidate: &IceCandidate,
    ) -> Result<(), ClientError> {
        self.pc.add_remote_candidate(RTCIceCandidateInit {
            candidate: candidate.candidate.clone(),
            sdp_mid: candidate.sdp_mid.clone(),
            sdp_mline_index: candidate.sdp_mline_index,
            username_fragment: candidate.username_fragment.clone(),
            url: None,
        })?;
        Ok(())
    }

    fn local_sdp(&self) -> Result<String, ClientError> {
        self.pc
            .local_description()
            .map(|description| description.sdp)
            .ok_or(ClientError::Rtc(
                rtc::shared::error::Error::ErrPeerConnLocalDescriptionNil,
            ))
    }

    /// The core gathers nothing itself: the socket's address is the one host candidate,
    /// followed by the end-of-candidates marker.
    fn add_host_candidate(&mut self) -> Result<(), ClientError> {
        if self.host_candidate_added {
            return Ok(());
        }
        self.pc
            .add_local_candidate(chorus_rtc_profile::host_candidate(self.local_addr)?)?;
        self.pc
            .add_local_candidate(RTCIceCandidateInit::default())?;
        self.host_candidate_added = true;
        Ok(())
    }

    /// Adds a send track; `stream_id`/`track_id` become the msid of its m-line.
    pub(crate) fn add_track(
        &mut self,
        stream_id: &str,
        track_id: &str,
        source: TrackSource,
        ssrc: u32,
    ) -> Result<RTCRtpSenderId, ClientError> {
        let kind = match source.kind() {
            MediaKind::Audio => RtpCodecKind::Audio,
            MediaKind::Video => RtpCodecKind::Video,
        };
        let (stream_id, track_id, label) = (
            stream_id.to_owned(),
            track_id.to_owned(),
            source.as_str().to_owned(),
        );
        let track = if kind == RtpCodecKind::Video && self.video_codec != VideoCodec::Vp8 {
            chorus_rtc_profile::sending_track_with_codec(
                stream_id,
                track_id,
                label,
                kind,
                ssrc,
                self.video_rtp_codec(),
            )
        } else {
            chorus_rtc_profile::sending_track(stream_id, track_id, label, kind, ssrc)
        };
        Ok(self.pc.add_track(track)?)
    }

    pub(crate) fn remove_track(&mut self, sender: RTCRtpSenderId) -> Result<(), ClientError> {
        Ok(self.pc.remove_track(sender)?)
    }

    /// Negotiated payload type and header extension ids of a sender, once answered.
    pub(crate) fn stream_params(
        &mut self,
        sender: RTCRtpSenderId,
        ssrc: u32,
        kind: MediaKind,
    ) -> Option<StreamParams> {
        let mime = match kind {
            MediaKind::Audio => MIME_TYPE_OPUS,
            MediaKind::Video => match self.video_codec {
                VideoCodec::Vp8 => MIME_TYPE_VP8,
                VideoCodec::H264 => MIME_TYPE_H264,
                VideoCodec::Vp9 => MIME_TYPE_VP9,
            },
        };
        let mut rtp_sender = self.pc.rtp_sender(sender)?;
        let parameters = &rtp_sender.get_parameters().rtp_parameters;
        let payload_type = parameters
            .codecs
            .iter()
            .find(|codec| codec.rtp_codec.mime_type.eq_ignore_ascii_case(mime))?
            .payload_type;
        let audio_level_ext = parameters
            .header_extensions
            .iter()
            .find(|ext| ext.uri == AUDIO_LEVEL_URI && kind == MediaKind::Audio)
            .and_then(|ext| u8::try_from(ext.id).ok());
        Some(StreamParams {
            ssrc,
            payload_type,
            audio_level_ext,
        })
    }

    pub(crate) fn write_rtp(
        &mut self,
        now: Instant,
        sender: RTCRtpSenderId,
        packet: rtp::Packet,
    ) -> Result<(), ClientError> {
        let mut rtp_sender = self
            .pc
            .rtp_sender(sender)
            .ok_or(rtc::shared::error::Error::ErrRTPSenderNotExisted)?;
        Ok(rtp_sender.write_rtp(now, packet)?)
    }

    /// Sends `packets` as one compound RTCP packet on a receiver's connection.
    pub(crate) fn write_rtcp(
        &mut self,
        now: Instant,
        receiver: RTCRtpReceiverId,
        packets: Vec<Box<dyn rtcp::Packet>>,
    ) -> Result<(), ClientError> {
        let mut rtp_receiver = self
            .pc
            .rtp_receiver(receiver)
            .ok_or(rtc::shared::error::Error::ErrRTPReceiverNotExisted)?;
        Ok(rtp_receiver.write_rtcp(now, packets)?)
    }

    pub(crate) fn set_offline(&mut self, offline: bool) {
        self.offline = offline;
    }

    /// The next datagram through the capped downlink by `now`, handed to the
    /// connection; false when none is due. Poll the outputs after each.
    pub(crate) fn take_shaped(&mut self, now: Instant) -> bool {
        let Some((from, datagram)) = self.shaper.as_mut().and_then(|s| s.poll_datagram(now)) else {
            return false;
        };
        self.read(now, from, BytesMut::from(&datagram[..]));
        true
    }

    fn read(&mut self, now: Instant, from: SocketAddr, datagram: BytesMut) {
        self.clock = self.clock.max(now);
        let input = TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr: self.local_addr,
                peer_addr: from,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: datagram,
        };
        if let Err(err) = self.pc.handle_read(input) {
            debug!(target = ?self.target, %from, %err, "datagram rejected");
        }
    }

    pub(crate) fn poll_timeout(&mut self) -> Option<Instant> {
        let shaped = self.shaper.as_ref().and_then(Shaper::poll_timeout);
        [self.pc.poll_timeout(), self.next_indication, shaped]
            .into_iter()
            .flatten()
            .min()
    }

    /// The latest time the connection was given (an arrival or a drive).
    pub(crate) fn clock(&self) -> Instant {
        self.clock
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.clock = self.clock.max(now);
        if self.pc.poll_timeout().is_some_and(|at| at <= now)
            && let Err(err) = self.pc.handle_timeout(now)
        {
            debug!(target = ?self.target, %err, "timeout handling failed");
        }
        if let (Keepalive::Indications(every), Some(server)) = (self.keepalive, self.server)
            && self.state == RTCPeerConnectionState::Connected
            && !self.offline
            && self.next_indication.is_none_or(|at| at <= now)
        {
            let indication = chorus_rtc_profile::ice::binding_indication();
            if let Err(err) = self.socket.try_send_to(&indication, server) {
                trace!(target = ?self.target, %err, "keepalive not sent");
            }
            self.next_indication = Some(now + every);
        }
    }

    /// Next output of the connection: events first, then received media and RTCP.
    pub(crate) fn poll_output(&mut self) -> Option<PeerOutput> {
        while let Some(event) = self.pc.poll_event() {
            if let Some(output) = self.on_event(event) {
                return Some(output);
            }
        }
        while let Some(message) = self.pc.poll_read() {
            match message.message {
                RTCMessage::RtpPacket(track_id, packet) => {
                    return Some(PeerOutput::Rtp {
                        track_id,
                        packet,
                        received_at: message.now,
                    });
                }
                RTCMessage::RtcpPacket(_, packets) => return Some(PeerOutput::Rtcp(packets)),
                RTCMessage::DataChannelMessage(channel, message) => {
                    return Some(PeerOutput::Data {
                        channel,
                        text: message.is_string,
                        data: message.data,
                    });
                }
                _ => {}
            }
        }
        None
    }

    fn on_event(&mut self, event: RTCPeerConnectionEvent) -> Option<PeerOutput> {
        match event {
            RTCPeerConnectionEvent::OnIceCandidateEvent(event) => {
                let init = event.candidate.to_json().ok()?;
                Some(PeerOutput::Candidate(Some(IceCandidate {
                    candidate: init.candidate,
                    sdp_mid: None,
                    sdp_mline_index: Some(0),
                    username_fragment: None,
                })))
            }
            RTCPeerConnectionEvent::OnIceGatheringStateChangeEvent(
                RTCIceGatheringState::Complete,
            ) => Some(PeerOutput::Candidate(None)),
            RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                debug!(target = ?self.target, %state, "peer connection state");
                self.state = state;
                Some(PeerOutput::StateChanged(state))
            }
            RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                let kind = match self.pc.rtp_receiver(init.receiver_id)?.track().kind() {
                    RtpCodecKind::Audio => MediaKind::Audio,
                    RtpCodecKind::Video => MediaKind::Video,
                    _ => return None,
                };
                Some(PeerOutput::TrackOpened {
                    stream_id: init.stream_ids.into_iter().next().unwrap_or_default(),
                    track_id: init.track_id,
                    receiver: init.receiver_id,
                    ssrc: init.ssrc,
                    kind,
                })
            }
            RTCPeerConnectionEvent::OnDataChannel(RTCDataChannelEvent::OnOpen(id)) => {
                Some(PeerOutput::DataOpen(id))
            }
            _ => None,
        }
    }

    /// Creates a data channel (negotiated with the next offer).
    pub(crate) fn create_data_channel(
        &mut self,
        label: &str,
        init: RTCDataChannelInit,
    ) -> Result<RTCDataChannelId, ClientError> {
        Ok(self.pc.create_data_channel(label, Some(init))?.id())
    }

    /// Sends one text message on an open data channel.
    pub(crate) fn send_text(
        &mut self,
        now: Instant,
        channel: RTCDataChannelId,
        text: String,
    ) -> Result<(), ClientError> {
        let mut dc = self
            .pc
            .data_channel(channel)
            .ok_or_else(|| ClientError::Protocol("no such data channel".to_owned()))?;
        Ok(dc.send_text(now, text)?)
    }

    /// Sends one binary message on an open data channel.
    pub(crate) fn send_binary(
        &mut self,
        now: Instant,
        channel: RTCDataChannelId,
        message: &[u8],
    ) -> Result<(), ClientError> {
        let mut dc = self
            .pc
            .data_channel(channel)
            .ok_or_else(|| ClientError::Protocol("no such data channel".to_owned()))?;
        Ok(dc.send(now, BytesMut::from(message))?)
    }

    /// Sends everything the connection wants to send. A full socket buffer drops the
    /// datagram, as the network would.
    pub(crate) fn flush(&mut self) {
        while let Some(datagram) = self.pc.poll_write() {
            let to = datagram.transport.peer_addr;
            self.server = Some(to);
            if self.offline {
                continue;
            }
            if let Err(err) = self.socket.try_send_to(&datagram.message, to) {
                trace!(target = ?self.target, %to, %err, "datagram not sent");
            }
        }
    }
}
