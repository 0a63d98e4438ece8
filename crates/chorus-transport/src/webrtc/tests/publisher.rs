//! The server answering a publishing client.

use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;

use super::*;

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
        let (mut call, _, _) = call(profiles);
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
    let (call, _, answer) = call(None);
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
    // What the server read from the client's offer.
    let remote = call.server.remote().expect("the offer");
    let media = &remote.media[0];
    assert_eq!(remote.media.len(), 1);
    assert_eq!((media.mid.as_str(), media.kind.as_str()), ("0", "audio"));
    assert_eq!(media.payload_type, 111);
    assert_eq!(media.track_id.as_deref(), Some("microphone"));
    assert_eq!(media.ssrcs, vec![SSRC]);
}

#[test]
fn offers_without_what_the_server_needs_are_refused() {
    let (_, offer, _) = call(None);
    let without = |needle: &str| {
        offer
            .lines()
            .filter(|l| !l.starts_with(needle))
            .collect::<Vec<_>>()
            .join("\r\n")
            + "\r\n"
    };
    let no_opus = offer.replace("opus/48000/2", "PCMU/8000");
    let cases = [
        (without("a=fingerprint"), SdpError::NoFingerprint),
        (without("a=ice-pwd"), SdpError::NoCredentials),
        (no_opus, SdpError::NothingToReceive),
        (
            offer.replace("a=sendrecv", "a=recvonly"),
            SdpError::NothingToReceive,
        ),
    ];
    for (sdp, want) in cases {
        assert_eq!(Remote::parse(&sdp).err(), Some(want.clone()), "{want:?}");
    }
    assert!(matches!(Remote::parse("not sdp"), Err(SdpError::Parse(_))));
}

/// Microphone and camera: the answer's extensions and feedback suit the rtc client, both
/// tracks decrypt, and the client's application hears the server's PLI.
#[test]
fn a_client_publishes_audio_and_video_and_hears_keyframe_requests() {
    let kinds = [RtpCodecKind::Audio, RtpCodecKind::Video];
    let (mut call, _, answer) = publish(None, &kinds, |offer| offer);
    for line in [
        "a=rtcp-fb:96 nack\r\n",
        "a=rtcp-fb:96 nack pli",
        "a=rtcp-fb:96 ccm fir",
    ] {
        assert!(answer.contains(line), "{line:?} missing:\n{answer}");
    }
    let remote = call.server.remote().unwrap();
    let camera = remote.media("1").expect("the camera's m-section");
    assert_eq!(camera.ssrcs, vec![CAMERA_SSRC]);
    assert_eq!(camera.track_id.as_deref(), Some("camera"));
    call.connect();
    for _ in 0..5 {
        call.send(0, b"opus frame");
        call.send(1, b"\x10vp8 frame");
        call.run(4);
    }
    let (rtp, _) = call.received();
    let from = |ssrc: u32| {
        rtp.iter()
            .filter(|p| p[8..12] == ssrc.to_be_bytes())
            .count()
    };
    assert_eq!(
        (from(SSRC), from(CAMERA_SSRC)),
        (5, 5),
        "both tracks decrypt"
    );

    let mut pli = vec![0x81, 206, 0, 2, 0, 0, 0, 1];
    pli.extend_from_slice(&CAMERA_SSRC.to_be_bytes());
    call.server.send_rtcp(&pli).unwrap();
    call.run(2);
    let heard = call.client_rtcp.iter().any(|p| {
        p.as_any()
            .downcast_ref::<PictureLossIndication>()
            .is_some_and(|pli| pli.media_ssrc == CAMERA_SSRC)
    });
    assert!(heard, "the PLI reached the client: {:?}", call.client_rtcp);
}

#[test]
fn a_publisher_restarts_ice_and_keeps_its_media() {
    let (mut call, _, _) = call(None);
    call.connect();
    call.send_audio(b"before");
    call.run(4);
    assert_eq!(call.received().0.len(), 1);
    let now = call.now;
    let offer = client_offer(&mut call.client, now, true);
    let answer = call
        .server
        .reanswer(&offer, || credentials("newufrag"), now)
        .unwrap();
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
        "srvufrag-password-0123456789abcdef",
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
fn the_server_changes_credentials_only_when_the_client_restarts() {
    // (the client restarts ICE, the server's ufrag after the new offer)
    let cases = [(false, "srvufrag"), (true, "newufrag")];
    for (restart, want) in cases {
        let (mut call, _, _) = call(None);
        call.connect();
        let now = call.now;
        let offer = client_offer(&mut call.client, now, restart);
        let mut drawn = 0;
        let answer = call
            .server
            .reanswer(
                &offer,
                || {
                    drawn += 1;
                    credentials("newufrag")
                },
                now,
            )
            .unwrap();
        assert_eq!(drawn, usize::from(restart), "restart {restart}");
        assert!(
            answer.contains(&format!("a=ice-ufrag:{want}\r\n")),
            "{answer}"
        );
        let remote = call.server.remote().unwrap();
        assert_eq!(remote.ice_ufrag, Remote::parse(&offer).unwrap().ice_ufrag);
        call.client
            .set_remote_description(now, RTCSessionDescription::answer(answer).unwrap())
            .unwrap();
        call.run(400);
        assert_eq!(call.server.ice().credentials().unwrap().ufrag, want);
        call.send_audio(b"after");
        call.run(4);
        let (rtp, _) = call.received();
        assert!(
            rtp.iter().any(|p| p.ends_with(b"after")),
            "restart {restart}"
        );
    }
}

#[test]
fn a_new_certificate_on_the_same_connection_is_refused() {
    let (mut first, _, _) = call(None);
    let mut other = client(None, Instant::now());
    let track = sending_track(
        "s".into(),
        "mic".into(),
        "microphone".into(),
        RtpCodecKind::Audio,
        1,
    );
    other.add_track(track).unwrap();
    let offer = client_offer(&mut other, first.now, false);
    assert!(matches!(
        first.server.reanswer(
            &offer,
            || panic!("no credentials for a refused offer"),
            first.now
        ),
        Err(ConnectionError::FingerprintChanged)
    ));
    first.connect();
}

#[test]
fn the_publisher_side_reports_ice_then_connected_once() {
    let (mut call, _, _) = call(None);
    call.connect();
    call.run(40);
    let profile = call.server.profile().unwrap();
    assert_eq!(
        call.events,
        vec![
            ConnectionEvent::Ice(IceEvent::RouteConfirmed(CLIENT)),
            ConnectionEvent::Ice(IceEvent::Switched {
                from: None,
                to: CLIENT
            }),
            ConnectionEvent::Connected(profile),
            ConnectionEvent::Ice(IceEvent::State(crate::ice::LinkState::Connected)),
        ]
    );
}

#[test]
fn a_certificate_other_than_the_announced_one_fails_the_connection() {
    let stranger = DtlsSrtpConfig::generate().unwrap().fingerprint().unwrap();
    let (mut call, _, _) = publish(None, &[RtpCodecKind::Audio], |offer| {
        let announced = offer
            .lines()
            .find_map(|l| l.strip_prefix("a=fingerprint:"))
            .unwrap()
            .to_owned();
        offer.replace(&announced, &stranger)
    });
    call.run(200);
    assert_eq!(call.server.profile(), None);
    let failed: Vec<&str> = call
        .events
        .iter()
        .filter_map(|e| match e {
            ConnectionEvent::Failed(why) => Some(why.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 1, "{:?}", call.events);
    assert!(failed[0].contains("certificate"), "{failed:?}");
    assert_eq!(call.connected_events(), 0);
}

#[test]
fn a_client_that_closes_fails_the_connection_once() {
    let (mut call, _, _) = call(None);
    call.connect();
    call.client.close().unwrap();
    call.run(10);
    let failed = call
        .events
        .iter()
        .filter(|e| matches!(e, ConnectionEvent::Failed(_)))
        .count();
    assert_eq!(failed, 1, "{:?}", call.events);
    assert_eq!(call.connected_events(), 1);
}

#[test]
fn a_server_that_closes_tells_the_client() {
    let (mut call, _, _) = call(None);
    call.connect();
    call.server.close(call.now);
    let mut alerts = 0;
    let mut queued = Vec::new();
    while let Some((to, data)) = call.server.poll_transmit() {
        assert_eq!(to, CLIENT);
        // Content type 21: an alert (close_notify, encrypted under the epoch's keys).
        alerts += usize::from(data.first() == Some(&21));
        queued.push(data);
    }
    assert_eq!(alerts, 1, "one close_notify");
    // (rtc's client takes a close_notify in without changing its connection state, so
    // that is not asserted here.)
    drop(queued);
    // Nothing is protected after the close.
    assert!(
        call.server
            .send_rtp(&rtp(111, 1, 0x1234, &[1, 2, 3]))
            .is_err()
    );
}
