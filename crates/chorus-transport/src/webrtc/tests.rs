//! The server side against `rtc`'s full peer connection as the client, in memory: the
//! call both run in; the tests are in [`publisher`] (the server answers) and
//! [`subscriber`] (the server offers), the SDP tables in `sdp/tests.rs`.

mod datachannel;
mod publisher;
mod subscriber;

use std::time::Duration;

use bytes::Bytes;
use rtc::data_channel::{RTCDataChannelId, RTCDataChannelMessage};
use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc::interceptor::Registry;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::event::RTCDataChannelEvent;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

use super::*;
use crate::dtls_srtp::DtlsSrtpConfig;
use crate::webrtc::sdp::OutTrack;
use crate::{host_candidate, opus_codec, sending_track, vp8_codec};

const SERVER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 7882);
const CLIENT: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2)),
    5000,
);
const SSRC: u32 = 0x1234_5678;
const CAMERA_SSRC: u32 = 0x1234_0002;

struct Call {
    client: RTCPeerConnection,
    /// The client's senders, in the order its tracks were added.
    senders: Vec<RTCRtpSenderId>,
    /// RTP the client received: (payload type, sequence number, payload).
    client_rtp: Vec<(u8, u16, Bytes)>,
    /// RTCP packets that reached the client's application.
    client_rtcp: Vec<Box<dyn rtc::rtcp::Packet>>,
    /// Whether the client accepted each SRTCP datagram the server sent.
    client_srtcp: Vec<bool>,
    server: ServerConnection,
    /// What the server's `poll_event` gave, in order.
    events: Vec<ConnectionEvent>,
    client_connected: bool,
    /// The client's data channel events, and the messages its channels received.
    client_channels: Vec<RTCDataChannelEvent>,
    client_data: Vec<(RTCDataChannelId, RTCDataChannelMessage)>,
    /// Whether the server's datagrams reach the client (false: they are lost).
    deliver: bool,
    now: Instant,
    seq: u16,
}

/// The client as `chorus-client` builds it (Opus, VP8, the default interceptors), with
/// `profiles` as its SRTP offer when given.
fn client(profiles: Option<Vec<SrtpProtectionProfile>>, now: Instant) -> RTCPeerConnection {
    let mut media = MediaEngine::default();
    media
        .register_codec(opus_codec(), RtpCodecKind::Audio)
        .unwrap();
    media
        .register_codec(vp8_codec(), RtpCodecKind::Video)
        .unwrap();
    let registry = crate::with_rtcp_to_application(Registry::new());
    let registry = register_default_interceptors(registry, &mut media).unwrap();
    let mut settings = SettingEngineBuilder::new();
    if let Some(p) = profiles {
        settings = settings.with_srtp_protection_profiles(p);
    }
    let mut client = RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_setting_engine(settings.build())
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .build(now)
        .unwrap();
    client
        .add_local_candidate(host_candidate(CLIENT).unwrap())
        .unwrap();
    client
}

fn credentials(ufrag: &str) -> IceCredentials {
    IceCredentials {
        ufrag: ufrag.into(),
        pwd: format!("{ufrag}-password-0123456789abcdef"),
    }
}

fn params(dtls: &DtlsSrtpConfig) -> Accept<'_> {
    Accept {
        dtls,
        liveness: LivenessConfig::default(),
        crypto: rtc::crypto::default_provider().unwrap(),
        candidate: SERVER,
        credentials: credentials("srvufrag"),
        session_id: 42,
        ingress: Default::default(),
    }
}

/// The client's offer, set as its local description.
fn client_offer(client: &mut RTCPeerConnection, now: Instant, restart: bool) -> String {
    let options = restart
        .then_some(rtc::peer_connection::configuration::RTCOfferOptions { ice_restart: true });
    let offer = client.create_offer(options).unwrap();
    client.set_local_description(now, offer).unwrap();
    client.local_description().unwrap().sdp
}

/// The client's answer to `offer`, set as its local description.
fn client_answer(client: &mut RTCPeerConnection, offer: String, now: Instant) -> String {
    client
        .set_remote_description(now, RTCSessionDescription::offer(offer).unwrap())
        .unwrap();
    let answer = client.create_answer(None).unwrap();
    client.set_local_description(now, answer).unwrap();
    client.local_description().unwrap().sdp
}

/// A client publishing one microphone, answered by the server: the call, the client's
/// offer and the server's answer.
fn call(profiles: Option<Vec<SrtpProtectionProfile>>) -> (Call, String, String) {
    publish(profiles, &[RtpCodecKind::Audio], |offer| offer)
}

/// A client publishing a track of each of `kinds` (SSRC, then CAMERA_SSRC), its offer
/// passed through `edit` on its way to the server.
fn publish(
    profiles: Option<Vec<SrtpProtectionProfile>>,
    kinds: &[RtpCodecKind],
    edit: impl FnOnce(String) -> String,
) -> (Call, String, String) {
    let now = Instant::now();
    let mut client = client(profiles, now);
    let senders = kinds
        .iter()
        .zip([SSRC, CAMERA_SSRC])
        .map(|(&kind, ssrc)| {
            let id = if kind == RtpCodecKind::Audio {
                "microphone"
            } else {
                "camera"
            };
            let track = sending_track("stream".into(), id.into(), id.into(), kind, ssrc);
            client.add_track(track).unwrap()
        })
        .collect();
    let offer = edit(client_offer(&mut client, now, false));
    let dtls = DtlsSrtpConfig::generate().unwrap();
    let (server, answer) = ServerConnection::accept(&offer, params(&dtls), now).unwrap();
    client
        .set_remote_description(now, RTCSessionDescription::answer(answer.clone()).unwrap())
        .unwrap();
    (Call::new(client, senders, server, now), offer, answer)
}

impl Call {
    fn new(
        client: RTCPeerConnection,
        senders: Vec<RTCRtpSenderId>,
        server: ServerConnection,
        now: Instant,
    ) -> Self {
        Self {
            client,
            senders,
            client_rtp: Vec::new(),
            client_rtcp: Vec::new(),
            client_srtcp: Vec::new(),
            server,
            events: Vec::new(),
            client_connected: false,
            client_channels: Vec::new(),
            client_data: Vec::new(),
            deliver: true,
            now,
            seq: 0,
        }
    }

    /// Moves every datagram both ways and runs due timers, `steps` times 5 ms.
    fn run(&mut self, steps: usize) {
        for _ in 0..steps {
            for _ in 0..20 {
                let mut moved = false;
                while let Some(msg) = self.client.poll_write() {
                    moved = true;
                    assert_eq!(msg.transport.peer_addr, SERVER);
                    let _ = self.server.handle_datagram(CLIENT, msg.message, self.now);
                }
                while let Some((to, data)) = self.server.poll_transmit() {
                    moved = true;
                    if !self.deliver {
                        continue;
                    }
                    assert_eq!(to, CLIENT, "the server answers where the client is");
                    let first = data.get(1).copied();
                    let res = self.client.handle_read(TaggedBytesMut {
                        now: self.now,
                        transport: TransportContext {
                            local_addr: CLIENT,
                            peer_addr: SERVER,
                            ecn: None,
                            transport_protocol: TransportProtocol::UDP,
                        },
                        message: data,
                    });
                    // SRTCP the client's SRTP layer accepted (decrypted and authenticated).
                    if first.is_some_and(|b| (192..=223).contains(&b)) {
                        self.client_srtcp.push(res.is_ok());
                    }
                }
                while let Some(ev) = self.client.poll_event() {
                    match ev {
                        RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) => {
                            self.client_connected = s == RTCPeerConnectionState::Connected;
                        }
                        RTCPeerConnectionEvent::OnDataChannel(e) => self.client_channels.push(e),
                        _ => {}
                    }
                }
                while let Some(msg) = self.client.poll_read() {
                    match msg.message {
                        RTCMessage::RtpPacket(_, p) => {
                            let h = &p.header;
                            self.client_rtp
                                .push((h.payload_type, h.sequence_number, p.payload));
                        }
                        RTCMessage::RtcpPacket(_, packets) => self.client_rtcp.extend(packets),
                        RTCMessage::DataChannelMessage(id, m) => self.client_data.push((id, m)),
                        _ => {}
                    }
                }
                while let Some(e) = self.server.poll_event() {
                    self.events.push(e);
                }
                if !moved {
                    break;
                }
            }
            self.now += Duration::from_millis(5);
            let _ = self.client.handle_timeout(self.now);
            let _ = self.server.handle_timeout(self.now);
        }
    }

    fn connect(&mut self) {
        for _ in 0..200 {
            self.run(1);
            if self.client_connected && self.server.profile().is_some() {
                return;
            }
        }
        panic!(
            "no connection: client {}, server {:?}, events {:?}",
            self.client_connected,
            self.server.profile(),
            self.events
        );
    }

    /// Sends one packet on the client's `track`-th sender: Opus on the first, else VP8.
    fn send(&mut self, track: usize, payload: &'static [u8]) {
        self.seq = self.seq.wrapping_add(1);
        let (payload_type, ssrc) = if track == 0 {
            (111, SSRC)
        } else {
            (96, CAMERA_SSRC)
        };
        let packet = rtc::rtp::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                payload_type,
                sequence_number: self.seq,
                timestamp: u32::from(self.seq) * 960,
                ssrc,
                ..Default::default()
            },
            payload: Bytes::from_static(payload),
        };
        let mut sender = self.client.rtp_sender(self.senders[track]).unwrap();
        sender.write_rtp(self.now, packet).unwrap();
    }

    fn send_audio(&mut self, payload: &'static [u8]) {
        self.send(0, payload);
    }

    fn received(&mut self) -> (Vec<BytesMut>, Vec<BytesMut>) {
        let (mut rtp, mut rtcp) = (Vec::new(), Vec::new());
        while let Some(r) = self.server.poll_received() {
            match r {
                Received::Rtp(p) => rtp.push(p),
                Received::Rtcp(p) => rtcp.push(p),
            }
        }
        (rtp, rtcp)
    }

    /// How many `Connected` events the server gave so far.
    fn connected_events(&self) -> usize {
        let connected = |e: &&ConnectionEvent| matches!(e, ConnectionEvent::Connected(_));
        self.events.iter().filter(connected).count()
    }
}

/// An RTP packet the server sends: version 2, `pt`, `seq`, `ssrc`, then `payload`.
fn rtp(pt: u8, seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&u32::from(seq).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}
