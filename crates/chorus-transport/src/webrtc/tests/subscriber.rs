//! The server offering tracks to a subscribing client.

use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;

use super::*;

fn track(mid: &str, kind: &str, ssrc: u32) -> OutTrack {
    OutTrack {
        mid: mid.into(),
        kind: kind.into(),
        codec: if kind == "audio" {
            chorus_core::Codec::Opus
        } else {
            chorus_core::Codec::Vp8
        },
        ssrc,
        stream_id: format!("TR_{mid}"),
        track_id: format!("TR_{mid}"),
        idle: false,
    }
}

/// A subscriber connection made with `offering`, its first offer of `tracks` answered.
fn subscribe(tracks: &[OutTrack]) -> Call {
    let now = Instant::now();
    let dtls = DtlsSrtpConfig::generate().unwrap();
    let mut server = ServerConnection::offering(params(&dtls), now).unwrap();
    assert!(
        matches!(
            server.apply_answer("v=0", now),
            Err(ConnectionError::NotNegotiated)
        ),
        "nothing offered yet"
    );
    assert!(server.remote().is_none());
    let offer = server.reoffer(tracks, None, now);
    let mut client = client(None, now);
    let answer = client_answer(&mut client, offer, now);
    server.apply_answer(&answer, now).unwrap();
    Call::new(client, Vec::new(), server, now)
}

#[test]
fn the_server_offers_a_track_and_the_client_receives_it() {
    let audio = track("0", "audio", 0xabcd_0001);
    let mut call = subscribe(std::slice::from_ref(&audio));
    call.connect();
    assert_eq!(call.server.profile(), Some(SrtpProfile::AeadAes128Gcm));
    assert_eq!(call.connected_events(), 1);
    let remote = call.server.remote().expect("the client's answer");
    assert!(remote.media.is_empty(), "the client only receives");
    for seq in 1..=20u16 {
        let packet = rtp(111, seq, 0xabcd_0001, b"mixed audio");
        call.server.send_rtp(&packet).unwrap();
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
    let answer = call.client.local_description().unwrap().sdp;
    assert!(matches!(
        call.server.apply_answer(&answer, call.now),
        Err(ConnectionError::NotNegotiated)
    ));

    // A camera is added and the audio stopped: one more offer, the same DTLS association;
    // the idle audio m-section stays bundled, inactive.
    let camera = track("1", "video", 0xabcd_0002);
    let stopped = OutTrack {
        idle: true,
        ..audio
    };
    let offer = call.server.reoffer(&[stopped, camera], None, call.now);
    assert!(offer.contains("a=group:BUNDLE 0 1\r\n"), "{offer}");
    let audio_section = &offer[offer.find("m=audio").unwrap()..offer.find("m=video").unwrap()];
    assert!(audio_section.contains("a=inactive"), "{audio_section}");
    assert!(!audio_section.contains("a=msid"), "{audio_section}");
    let now = call.now;
    let answer = client_answer(&mut call.client, offer, now);
    call.server.apply_answer(&answer, now).unwrap();
    call.run(4);
    call.client_rtp.clear();
    for seq in 1..=5u16 {
        let packet = rtp(96, seq, 0xabcd_0002, &[0x10, 0, 0, 0]);
        call.server.send_rtp(&packet).unwrap();
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
    assert_eq!(
        call.connected_events(),
        1,
        "one DTLS association, one event"
    );
}

/// The offer's `a=rtcp-fb:96 nack` is taken up: a VP8 packet lost on the way makes the
/// rtc client ask for it again.
#[test]
fn the_client_asks_for_lost_video_again() {
    let mut call = subscribe(&[track("0", "video", 0xabcd_0002)]);
    call.connect();
    for seq in [1u16, 2, 3, 5, 6, 7] {
        let packet = rtp(96, seq, 0xabcd_0002, &[0x10, 0, 0, 0]);
        call.server.send_rtp(&packet).unwrap();
        call.run(4);
    }
    call.run(100);
    let (_, rtcp) = call.received();
    let nacked: Vec<u16> = rtcp
        .iter()
        .flat_map(|compound| {
            let mut buf = &compound[..];
            rtc::rtcp::packet::unmarshal(&mut buf).unwrap_or_default()
        })
        .filter_map(|p| p.as_any().downcast_ref::<TransportLayerNack>().cloned())
        .flat_map(|n| {
            n.nacks
                .iter()
                .flat_map(|p| p.packet_list())
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(nacked.contains(&4), "a NACK for 4: {nacked:?}");
}

#[test]
fn the_subscriber_side_reports_ice_then_connected_once() {
    let mut call = subscribe(&[track("0", "audio", 7)]);
    call.connect();
    call.run(40);
    let profile = call.server.profile().unwrap();
    let connected = ConnectionEvent::Connected(profile);
    let at = call.events.iter().position(|e| *e == connected);
    assert_eq!(call.connected_events(), 1, "{:?}", call.events);
    let before = &call.events[..at.unwrap()];
    assert!(
        before.contains(&ConnectionEvent::Ice(IceEvent::RouteConfirmed(CLIENT))),
        "the route came first: {:?}",
        call.events
    );
    assert!(
        call.events.contains(&ConnectionEvent::Ice(IceEvent::State(
            crate::ice::LinkState::Connected
        ))),
        "{:?}",
        call.events
    );
}
