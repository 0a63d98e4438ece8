//! The server side against `rtc`'s full peer connection as the client, in memory.

use std::time::Duration;

use bytes::Bytes;
use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc::interceptor::Registry;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::RTCOfferOptions;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
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
use crate::{host_candidate, opus_codec, sending_track, vp8_codec};

const SERVER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 7882);
const CLIENT: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2)),
    5000,
);
const SSRC: u32 = 0x1234_5678;

struct Call {
    client: RTCPeerConnection,
    sender: Option<RTCRtpSenderId>,
    /// RTP the client received: (payload type, sequence number, payload).
    client_rtp: Vec<(u8, u16, Bytes)>,
    /// Whether the client accepted each SRTCP datagram the server sent.
    client_srtcp: Vec<bool>,
    server: ServerConnection,
    client_connected: bool,
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

fn params(dtls: &DtlsSrtpConfig) -> Accept<'_> {
    Accept {
        dtls,
        liveness: LivenessConfig::default(),
        crypto: rtc::crypto::default_provider().unwrap(),
        candidate: SERVER,
        credentials: IceCredentials {
            ufrag: "srvufrag".into(),
            pwd: "server-password-0123456789abcdef".into(),
        },
        session_id: 42,
    }
}

/// A client publishing one microphone, answered by the server.
fn call(profiles: Option<Vec<SrtpProtectionProfile>>) -> (Call, String) {
    let now = Instant::now();
    let mut client = client(profiles, now);
    let track = sending_track(
        "mic".into(),
        "stream".into(),
        "microphone".into(),
        RtpCodecKind::Audio,
        SSRC,
    );
    let sender = client.add_track(track).unwrap();
    let offer = client.create_offer(None).unwrap();
    client.set_local_description(now, offer).unwrap();
    let offer = client.local_description().unwrap().sdp;
    let dtls = DtlsSrtpConfig::generate().unwrap();
    let (server, answer) = ServerConnection::accept(&offer, params(&dtls), now).unwrap();
    client
        .set_remote_description(now, RTCSessionDescription::answer(answer.clone()).unwrap())
        .unwrap();
    (Call::new(client, Some(sender), server, now), answer)
}

impl Call {
    fn new(
        client: RTCPeerConnection,
        sender: Option<RTCRtpSenderId>,
        server: ServerConnection,
        now: Instant,
    ) -> Self {
        Self {
            client,
            sender,
            client_rtp: Vec::new(),
            client_srtcp: Vec::new(),
            server,
            client_connected: false,
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
                    if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) = ev {
                        self.client_connected = s == RTCPeerConnectionState::Connected;
                    }
                }
                while let Some(msg) = self.client.poll_read() {
                    if let RTCMessage::RtpPacket(_, p) = msg.message {
                        let h = &p.header;
                        self.client_rtp
                            .push((h.payload_type, h.sequence_number, p.payload));
                    }
                }
                if !moved {
                    break;
                }
            }
            self.now += Duration::from_millis(5);
            let _ = self.client.handle_timeout(self.now);
            self.server.handle_timeout(self.now).unwrap();
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
            "no connection: client {}, server {:?}",
            self.client_connected,
            self.server.profile()
        );
    }

    fn send_audio(&mut self, payload: &'static [u8]) {
        self.seq = self.seq.wrapping_add(1);
        let packet = rtc::rtp::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                payload_type: 111,
                sequence_number: self.seq,
                timestamp: u32::from(self.seq) * 960,
                ssrc: SSRC,
                ..Default::default()
            },
            payload: Bytes::from_static(payload),
        };
        let mut sender = self.client.rtp_sender(self.sender.unwrap()).unwrap();
        sender.write_rtp(self.now, packet).unwrap();
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
}

#[test]
fn an_rtc_client_connects_and_its_media_decrypts_with_either_profile() {
    // (the client's SRTP offer, the profile expected)
    let cases = [
        (None, SrtpProfile::AeadAes128Gcm),
        (
            Some(vec![SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80]),
            SrtpProfile::Aes128CmHmacSha1_80,
        ),
        // Ordered as Chromium orders them: the server, as DTLS server, still takes GCM.
        (
            Some(vec![
                SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
                SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
            ]),
            SrtpProfile::AeadAes128Gcm,
        ),
    ];
    for (profiles, want) in cases {
        let (mut call, _) = call(profiles);
        call.connect();
        assert_eq!(call.server.profile(), Some(want));
        assert!(call.server.ice().is_up());
        for _ in 0..10 {
            call.send_audio(b"opus frame");
            call.run(4);
        }
        let (rtp, _) = call.received();
        assert_eq!(rtp.len(), 10, "{want:?}: every packet decrypted");
        for p in &rtp {
            assert_eq!(&p[p.len() - 10..], b"opus frame", "{want:?}");
            assert_eq!(
                u32::from_be_bytes(p[8..12].try_into().unwrap()),
                SSRC,
                "{want:?}"
            );
        }
        // The client's sender reports come through SRTCP.
        call.run(1200);
        let (_, rtcp) = call.received();
        assert!(
            rtcp.iter().any(|p| p[1] == 200),
            "{want:?}: a sender report arrived"
        );
        // And the server's feedback reaches the client's SRTCP: a PLI about its microphone.
        let mut pli = vec![0x81, 206, 0, 2, 0, 0, 0, 1];
        pli.extend_from_slice(&SSRC.to_be_bytes());
        call.server.send_rtcp(&pli).unwrap();
        call.run(2);
        assert_eq!(call.client_srtcp, vec![true], "{want:?}: the PLI decrypted");
    }
}

#[test]
fn the_answer_is_ice_lite_dtls_server_receive_only() {
    let (_, answer) = call(None);
    let parsed =
        Remote::parse(&answer).expect("the answer parses as SDP with one accepted m-section");
    assert_eq!(
        parsed.media,
        vec![("0".to_owned(), "audio".to_owned(), 111)]
    );
    for line in [
        "a=ice-lite",
        "a=setup:passive",
        "a=recvonly",
        "a=rtcp-mux",
        "a=group:BUNDLE 0",
        "a=ice-ufrag:srvufrag",
        "a=candidate:1 1 udp 2130706431 127.0.0.1 7882 typ host",
    ] {
        assert!(answer.contains(line), "{line} missing:\n{answer}");
    }
}

#[test]
fn offers_without_what_the_server_needs_are_refused() {
    let (_, answer) = call(None);
    let without = |needle: &str| {
        answer
            .lines()
            .filter(|l| !l.starts_with(needle))
            .collect::<Vec<_>>()
            .join("\r\n")
            + "\r\n"
    };
    let no_opus = answer.replace("opus/48000/2", "PCMU/8000");
    let cases = [
        (without("a=fingerprint"), SdpError::NoFingerprint),
        (without("a=ice-pwd"), SdpError::NoCredentials),
        (no_opus, SdpError::NothingToReceive),
    ];
    for (sdp, want) in cases {
        assert_eq!(Remote::parse(&sdp).err(), Some(want.clone()), "{want:?}");
    }
    assert!(matches!(Remote::parse("not sdp"), Err(SdpError::Parse(_))));
}

#[test]
fn the_server_offers_a_track_and_the_client_receives_it() {
    let now = Instant::now();
    let dtls = DtlsSrtpConfig::generate().unwrap();
    let track = OutTrack {
        mid: "0".into(),
        kind: "audio".into(),
        ssrc: 0xabcd_0001,
        stream_id: "mix".into(),
        track_id: "mix".into(),
        stopped: false,
    };
    let (server, offer) =
        ServerConnection::offer(std::slice::from_ref(&track), params(&dtls), now).unwrap();
    let mut client = client(None, now);
    client
        .set_remote_description(now, RTCSessionDescription::offer(offer).unwrap())
        .unwrap();
    let answer = client.create_answer(None).unwrap();
    client.set_local_description(now, answer).unwrap();
    let answer = client.local_description().unwrap().sdp;
    let mut call = Call::new(client, None, server, now);
    call.server.apply_answer(&answer, now).unwrap();
    call.connect();
    assert_eq!(call.server.profile(), Some(SrtpProfile::AeadAes128Gcm));
    for seq in 1..=20u16 {
        let mut rtp = vec![0x80, 111, (seq >> 8) as u8, seq as u8, 0, 0, 0, 0];
        rtp.extend_from_slice(&0xabcd_0001u32.to_be_bytes());
        rtp.extend_from_slice(b"mixed audio");
        call.server.send_rtp(&rtp).unwrap();
        call.run(4);
    }
    let got: Vec<u16> = call.client_rtp.iter().map(|(_, seq, _)| *seq).collect();
    assert_eq!(got, (1..=20).collect::<Vec<_>>(), "every packet, in order");
    assert!(
        call.client_rtp
            .iter()
            .all(|(pt, _, p)| *pt == 111 && &p[..] == b"mixed audio")
    );
    // An answer the connection did not ask for is refused.
    assert!(matches!(
        call.server.apply_answer(&answer, call.now),
        Err(ConnectionError::NotNegotiated)
    ));

    // A camera is added and the audio stopped: one more offer, the same DTLS association.
    let camera = OutTrack {
        mid: "1".into(),
        kind: "video".into(),
        ssrc: 0xabcd_0002,
        stream_id: "TR_cam".into(),
        track_id: "TR_cam".into(),
        stopped: false,
    };
    let stopped = OutTrack {
        stopped: true,
        ..track
    };
    let offer = call.server.reoffer(&[stopped, camera], None, call.now);
    assert!(offer.contains("a=group:BUNDLE 1\r\n"), "{offer}");
    let now = call.now;
    call.client
        .set_remote_description(now, RTCSessionDescription::offer(offer).unwrap())
        .unwrap();
    let answer = call.client.create_answer(None).unwrap();
    call.client.set_local_description(now, answer).unwrap();
    let answer = call.client.local_description().unwrap().sdp;
    call.server.apply_answer(&answer, now).unwrap();
    call.run(4);
    call.client_rtp.clear();
    for seq in 1..=5u16 {
        let mut rtp = vec![0x80, 96, 0, seq as u8, 0, 0, 0, 0];
        rtp.extend_from_slice(&0xabcd_0002u32.to_be_bytes());
        rtp.extend_from_slice(&[0x10, 0, 0, 0]);
        call.server.send_rtp(&rtp).unwrap();
        call.run(4);
    }
    let video: Vec<u16> = call
        .client_rtp
        .iter()
        .filter(|(pt, _, _)| *pt == 96)
        .map(|(_, s, _)| *s)
        .collect();
    assert_eq!(
        video,
        vec![1, 2, 3, 4, 5],
        "the added track plays on the same association"
    );
}

#[test]
fn a_publisher_restarts_ice_and_keeps_its_media() {
    let (mut call, _) = call(None);
    call.connect();
    call.send_audio(b"before");
    call.run(4);
    assert_eq!(call.received().0.len(), 1);
    let now = call.now;
    let offer = call
        .client
        .create_offer(Some(RTCOfferOptions { ice_restart: true }))
        .unwrap();
    call.client.set_local_description(now, offer).unwrap();
    let offer = call.client.local_description().unwrap().sdp;
    let fresh = IceCredentials {
        ufrag: "newufrag".into(),
        pwd: "another-password-0123456789abcd".into(),
    };
    let answer = call.server.reanswer(&offer, Some(fresh), now).unwrap();
    assert!(answer.contains("a=ice-ufrag:newufrag"), "{answer}");
    call.client
        .set_remote_description(now, RTCSessionDescription::answer(answer).unwrap())
        .unwrap();
    call.run(400);
    assert_eq!(call.server.ice().credentials().unwrap().ufrag, "newufrag");
    call.send_audio(b"after");
    call.run(4);
    let (rtp, _) = call.received();
    assert!(
        rtp.iter().any(|p| p.ends_with(b"after")),
        "media after the restart"
    );
    // The old credentials no longer authenticate.
    let crypto = rtc::crypto::default_provider().unwrap();
    let stale = crate::stun::binding_request(
        "srvufrag",
        "cli",
        "server-password-0123456789abcdef",
        true,
        crypto.crypto(),
    );
    assert_eq!(
        call.server
            .handle_datagram(CLIENT, BytesMut::from(&stale[..]), call.now),
        Err(Refused::Stun(StunCheck::WrongUfrag))
    );
}

#[test]
fn a_new_certificate_on_the_same_connection_is_refused() {
    let (mut first, _) = call(None);
    let other = client(None, Instant::now());
    let mut other = other;
    let track = sending_track(
        "mic".into(),
        "s".into(),
        "microphone".into(),
        RtpCodecKind::Audio,
        1,
    );
    other.add_track(track).unwrap();
    let offer = other.create_offer(None).unwrap();
    other.set_local_description(first.now, offer).unwrap();
    let offer = other.local_description().unwrap().sdp;
    assert!(matches!(
        first.server.reanswer(&offer, None, first.now),
        Err(ConnectionError::FingerprintChanged)
    ));
    first.connect();
}
