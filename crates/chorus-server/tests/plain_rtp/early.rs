//! A gateway's call in early media, answered, with the packets its port drops counted:
//! played by a plain UDP socket (no ffmpeg needed).

use std::net::UdpSocket;
use std::time::Duration;

use chorus_client::{AudioContent, ServerMessage, TrackSource};
use chorus_protocol::ParticipantState;
use reqwest::Method;

use crate::common::{LIMIT, TestServer, contains};

/// One RTP packet of 20 ms PCMU (a 1 kHz square wave, loud), or of payload type `pt`.
fn pcmu_packet(seq: u16, pt: u8) -> Vec<u8> {
    let mut p = vec![0x80, pt, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend((0..160).map(|i| if (i / 4) % 2 == 0 { 0x80 } else { 0x00 }));
    p
}

/// A gateway's call in early media: its ringback is heard (the phone becomes an active
/// speaker) while Chorus sends it nothing; the answer makes it `connected` and its
/// mix starts; answers and holds that do not fit are refused by code. Packets its port
/// does not take show in the room's stats and in `/metrics`, by reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_media_call_is_answered_and_its_drops_are_counted() {
    let server = TestServer::start().await;
    let mut alice = server.join("ring", "alice").await;
    alice
        .set_audio(AudioContent::Tone { hz: 880 })
        .await
        .unwrap();
    alice.publish_ok(TrackSource::Microphone).await;
    let gateway = UdpSocket::bind("127.0.0.1:0").unwrap();
    let create = serde_json::json!({"identity": "pstn", "codec": "pcmu", "early_media": true,
        "remote_address": gateway.local_addr().unwrap().to_string()});
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/rooms/ring/rtp_participants",
            Some(create),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["participant"]["state"], "early_media");
    let pstn_id = body["participant"]["participant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let chorus: std::net::SocketAddr = body["local_address"].as_str().unwrap().parse().unwrap();

    // Ringback every 20 ms from a thread, as a gateway plays it; then two packets its
    // port does not take.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = gateway.try_clone().unwrap();
    let ringing = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut seq = 0u16;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                sender.send_to(&pcmu_packet(seq, 0), chorus).unwrap();
                seq = seq.wrapping_add(1);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    gateway.send_to(&pcmu_packet(7, 8), chorus).unwrap(); // PCMA's type
    gateway.send_to(b"junk", chorus).unwrap();
    alice
        .until("the ringback is heard in the room", |log| {
            contains(log, |m| {
                matches!(m, ServerMessage::ActiveSpeakers { speakers } if speakers.iter().any(|s| s.participant_id == pstn_id))
            })
        })
        .await;
    // The room mixed alice's tone all along: a mix sent to the gateway would be here.
    gateway.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 1500];
    assert!(
        gateway.recv_from(&mut buf).is_err(),
        "nothing goes to a call in early media"
    );
    gateway.set_nonblocking(false).unwrap();

    // Its drops, by reason, in the room's stats and in the metrics.
    let dropped = |body: &serde_json::Value, reason: &str| {
        body["forwarding"]["plain_rtp_dropped"][reason].as_u64()
    };
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let (status, room) = server.call(Method::GET, "/v1/rooms/ring", None).await;
        assert_eq!(status, 200);
        let counted = (
            dropped(&room, "wrong_payload_type"),
            dropped(&room, "bad_packet"),
        );
        if counted == (Some(1), Some(1)) {
            assert_eq!(dropped(&room, "srtp_auth"), Some(0), "{room}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{room}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = reqwest::get(format!("{}/metrics", server.http_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "chorus_plain_rtp_dropped_packets_total{reason=\"wrong_payload_type\"} 1",
        "chorus_plain_rtp_dropped_packets_total{reason=\"bad_packet\"} 1",
        "chorus_plain_rtp_dropped_packets_total{reason=\"late\"} 0",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }

    // Not held before the answer; answered once; then it hears the room.
    let hold = serde_json::json!({"held": true});
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/rooms/ring/participants/pstn/hold",
            Some(hold),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("not_answered"))
    );
    let answer = "/v1/rooms/ring/rtp_participants/pstn/answer";
    let (status, body) = server.call(Method::POST, answer, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "connected");
    alice
        .until("the room sees the answer", |log| {
            contains(log, |m| {
                matches!(m, ServerMessage::ParticipantState { participant_id, previous: Some(ParticipantState::EarlyMedia), state: ParticipantState::Connected, .. }
                    if *participant_id == pstn_id)
            })
        })
        .await;
    gateway.set_read_timeout(Some(LIMIT)).unwrap();
    let (n, from) = gateway.recv_from(&mut buf).expect("the mix once answered");
    assert_eq!(from, chorus);
    assert!(
        n == 12 + 160 && buf[1] & 0x7f == 0,
        "PCMU: {n} bytes, {:#x}",
        buf[1]
    );

    // (path, status, code)
    let cases = [
        (answer, 409, "already_answered"),
        (
            "/v1/rooms/ring/rtp_participants/alice/answer",
            404,
            "participant_not_found",
        ),
        (
            "/v1/rooms/ring/rtp_participants/nobody/answer",
            404,
            "participant_not_found",
        ),
        (
            "/v1/rooms/nowhere/rtp_participants/pstn/answer",
            404,
            "room_not_found",
        ),
    ];
    for (path, want, code) in cases {
        let (status, body) = server.call(Method::POST, path, None).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (want, Some(code)),
            "{path}"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    ringing.join().unwrap();
}
