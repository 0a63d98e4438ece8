//! A phone over plain RTP, played by ffmpeg (not our code): it sends a 440 Hz tone as
//! PCMU to the port Chorus opened for it, and records what Chorus sends it. A WebRTC
//! client publishing 880 Hz hears the phone in its room audio; the phone's recording
//! has the 880 Hz tone and not its own 440 Hz. Every packet is addressed to 127.0.0.1
//! (ffmpeg's RTP and RTCP both go to Chorus's port, `rtcpport`). Skipped, saying so,
//! where ffmpeg is not installed (`scripts/setup.sh` installs it). A gateway's call in
//! early media, answered, with packets it drops counted: `plain_rtp/early.rs`.

mod common;
#[path = "plain_rtp/early.rs"]
mod early;

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chorus_client::{AudioContent, LeaveReason, ServerMessage, TrackSource, tone_energy};
use chorus_protocol::signal::ROOM_AUDIO_TRACK;
use common::{LIMIT, TestServer, contains, test_config};
use reqwest::Method;

fn ffmpeg_available() -> bool {
    let found = Command::new("ffmpeg")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!("SKIPPED: ffmpeg is not installed (scripts/setup.sh installs it)");
    }
    found
}

/// An even port whose next one is free too (ffmpeg's RTP receiver takes both).
fn free_port_pair() -> u16 {
    for _ in 0..100 {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if port.is_multiple_of(2) && UdpSocket::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no free pair of UDP ports");
}

/// Kills the child when the test ends, however it ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("chorus-plainrtp-{}-{name}", std::process::id()))
}

/// The samples of a 16-bit PCM wav (its `data` chunk).
fn wav_samples(path: &Path) -> Vec<i16> {
    let bytes = std::fs::read(path).unwrap();
    let at = bytes
        .windows(4)
        .position(|w| w == b"data")
        .expect("a data chunk");
    bytes[at + 8..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// The phone's SDES key in the SRTP variant (30 bytes, base64).
const SRTP_KEY: &str = "MTIzNDU2Nzg5MGFiY2RlZmdoaWprbG1ub3BxcnN0";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_phone_hears_the_room_and_is_heard_in_the_mix() {
    phone_call(false).await;
}

/// The same over SRTP, keyed by SDES both ways: ffmpeg encrypts with its key
/// (`-srtp_out_params`) and decrypts with Chorus's (`a=crypto` in its SDP).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_phone_over_srtp() {
    phone_call(true).await;
}

/// One call at a time: four real-time ffmpeg processes and two servers at once on a
/// small machine would make the test about the machine.
static ONE_CALL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn phone_call(srtp: bool) {
    if !ffmpeg_available() {
        return;
    }
    let _one = ONE_CALL.lock().await;
    let server = TestServer::start().await;
    let mut alice = server.join("phone-room", "alice").await;
    alice
        .set_audio(AudioContent::Tone { hz: 880 })
        .await
        .unwrap();
    alice.publish_ok(TrackSource::Microphone).await;

    // ffmpeg's receiving side first: Chorus sends as soon as the phone is in.
    let rx_port = free_port_pair();
    let mut create = serde_json::json!({
        "identity": "phone",
        "name": "Desk phone",
        "codec": "pcmu",
        "remote_address": format!("127.0.0.1:{rx_port}"),
    });
    if srtp {
        create["srtp"] = serde_json::json!({"suite": "AES_CM_128_HMAC_SHA1_80", "key": SRTP_KEY});
    }
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/rooms/phone-room/rtp_participants",
            Some(create),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["payload_type"], 0);
    assert_eq!(body["participant"]["tracks"][0]["source"], "microphone");
    let local = body["local_address"].as_str().unwrap().to_owned();
    assert!(local.starts_with("127.0.0.1:"), "{local}");
    let phone_id = body["participant"]["participant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (profile, crypto) = if srtp {
        let key = body["srtp"]["key"].as_str().expect("Chorus's key");
        assert_ne!(key, SRTP_KEY, "Chorus sends with a key of its own");
        (
            "RTP/SAVP",
            format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}\r\n"),
        )
    } else {
        assert!(body.get("srtp").is_none(), "{body}");
        ("RTP/AVP", String::new())
    };

    // ffmpeg records what Chorus sends (it started sending when the phone came in).
    let tag = if srtp { "srtp" } else { "rtp" };
    let sdp = temp(&format!("{tag}.sdp"));
    std::fs::write(
        &sdp,
        format!(
            "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=chorus-phone\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {rx_port} {profile} 0\r\na=rtpmap:0 PCMU/8000\r\n{crypto}"
        ),
    )
    .unwrap();
    let wav = temp(&format!("{tag}.wav"));
    let receiver = Reaped(
        Command::new("ffmpeg")
            .args(["-nostdin", "-loglevel", "error", "-y"])
            .args(["-protocol_whitelist", "file,udp,rtp", "-i"])
            .arg(&sdp)
            // Four seconds of what Chorus sends, as 8 kHz samples.
            .args(["-t", "4", "-c:a", "pcm_s16le", "-ar", "8000", "-ac", "1"])
            .arg(&wav)
            .stdout(Stdio::null())
            .spawn()
            .expect("ffmpeg starts"),
    );

    // The phone talks: a 440 Hz tone in 20 ms PCMU packets, paced in real time; its
    // RTCP goes to the same port (Chorus counts it as not RTP and drops it).
    let port = local.rsplit(':').next().unwrap();
    let mut sender = Command::new("ffmpeg");
    sender
        .args(["-nostdin", "-loglevel", "error", "-re", "-f", "lavfi", "-i"])
        .arg("sine=frequency=440:sample_rate=8000:samples_per_frame=160:duration=15")
        .args(["-c:a", "pcm_mulaw", "-ar", "8000", "-ac", "1", "-f", "rtp"]);
    if srtp {
        sender.args([
            "-srtp_out_suite",
            "AES_CM_128_HMAC_SHA1_80",
            "-srtp_out_params",
            SRTP_KEY,
        ]);
    }
    let _sender = Reaped(
        sender
            // ffmpeg encrypts in its srtp:// protocol, around the RTP one.
            .arg(format!("{tag}://127.0.0.1:{port}?rtcpport={port}"))
            .stdout(Stdio::null())
            .spawn()
            .expect("ffmpeg starts"),
    );

    // Alice hears the phone in the mix, and not herself.
    alice
        .until("the phone is connected", |log| {
            contains(log, |m| {
                matches!(m, ServerMessage::ParticipantState { participant_id, .. } if *participant_id == phone_id)
            })
        })
        .await;
    let mut heard = 0.0;
    let deadline = std::time::Instant::now() + LIMIT;
    while heard < 0.002 {
        assert!(
            std::time::Instant::now() < deadline,
            "alice never heard 440 Hz: {heard}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        let stats = alice.stats();
        let pcm: Vec<i16> = stats
            .inbound
            .get(ROOM_AUDIO_TRACK)
            .and_then(|t| t.decoded.as_ref())
            .map(|d| d.recent.iter().copied().collect())
            .unwrap_or_default();
        if pcm.len() == 48_000 {
            heard = tone_energy(&pcm, 440.0, 48_000);
            let own = tone_energy(&pcm, 880.0, 48_000);
            assert!(
                own * 100.0 < heard.max(0.002),
                "alice hears herself: 880 Hz {own} vs 440 Hz {heard}"
            );
        }
    }

    // The phone's recording: alice's 880 Hz, not its own 440 Hz.
    let mut receiver = receiver;
    let done = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + LIMIT;
        loop {
            if let Ok(Some(status)) = receiver.0.try_wait() {
                return Some(status);
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .await
    .unwrap()
    .expect("ffmpeg records 4 s of what Chorus sends");
    assert!(done.success(), "ffmpeg's receiver: {done}");
    let samples = wav_samples(&wav);
    if std::env::var_os("PLAINRTP_KEEP").is_none() {
        let _ = std::fs::remove_file(&wav);
    }
    let _ = std::fs::remove_file(&sdp);
    assert!(
        samples.len() >= 30_000,
        "{} samples recorded",
        samples.len()
    );
    // Over quarter seconds of the last two: a frame the mixer skipped (a phase jump)
    // must not cancel the tone in one long window.
    let tail = &samples[samples.len() - 16_000..];
    let mut others: Vec<f32> = tail
        .chunks(2_000)
        .map(|w| tone_energy(w, 880.0, 8_000))
        .collect();
    others.sort_by(f32::total_cmp);
    let others = others[others.len() / 2];
    let own = tail
        .chunks(2_000)
        .map(|w| tone_energy(w, 440.0, 8_000))
        .fold(0.0f32, f32::max);
    let silent = tail.iter().filter(|s| s.abs() < 64).count();
    eprintln!(
        "{tag}: recorded {} samples; last 2 s: 880 Hz {others:.5} (median of 1/4 s), 440 Hz {own:.7} (max), {silent} near-silent",
        samples.len()
    );
    assert!(others > 0.002, "the phone hears alice at 880 Hz: {others}");
    assert!(
        own * 100.0 < others,
        "the phone hears itself: 440 Hz {own} vs 880 Hz {others}"
    );

    // In the roster like anyone; deleting it tells everyone.
    let (status, body) = server
        .call(Method::GET, "/v1/rooms/phone-room/participants/phone", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "Desk phone");
    assert_eq!(body["state"], "connected");
    let (status, _) = server
        .call(
            Method::DELETE,
            "/v1/rooms/phone-room/rtp_participants/phone",
            None,
        )
        .await;
    assert_eq!(status, 204);
    alice
        .until("the phone left", |log| {
            contains(log, |m| {
                matches!(m, ServerMessage::ParticipantLeft { identity, reason: LeaveReason::RemovedByServer, .. } if identity == "phone")
            })
        })
        .await;
}

/// A phone that sends nothing leaves with `rtp_timeout` after `plain_rtp.timeout_ms`;
/// requests out of bounds are refused with their code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_phone_times_out_and_bad_requests_are_refused() {
    let mut config = test_config();
    config.plain_rtp.timeout_ms = 500;
    config.plain_rtp.max_per_room = 1;
    let server = TestServer::start_with(config).await;
    let mut alice = server.join("quiet", "alice").await;
    let create = |identity: &str, codec: &str, remote: &str| serde_json::json!({"identity": identity, "codec": codec, "remote_address": remote});
    let path = "/v1/rooms/quiet/rtp_participants";
    // (body, status, code)
    let cases = [
        (
            create("p", "g729", "127.0.0.1:9"),
            400,
            "invalid_rtp_participant",
        ),
        (
            create("p", "pcmu", "8.8.8.8:9"),
            403,
            "remote_address_not_allowed",
        ),
        (create("", "pcmu", "127.0.0.1:9"), 400, "invalid_request"),
        (
            serde_json::json!({"identity": "p", "codec": "pcmu", "remote_address": "127.0.0.1:9", "dtmf": true}),
            400,
            "invalid_request",
        ),
        (
            serde_json::json!({"identity": "p", "codec": "pcmu", "remote_address": "127.0.0.1:9",
                "srtp": {"suite": "AES_CM_128_HMAC_SHA1_32", "key": SRTP_KEY}}),
            400,
            "invalid_rtp_participant",
        ),
        (
            serde_json::json!({"identity": "p", "codec": "pcmu", "remote_address": "127.0.0.1:9",
                "srtp": {"suite": "AES_CM_128_HMAC_SHA1_80", "key": "c2hvcnQ="}}),
            400,
            "invalid_rtp_participant",
        ),
        (
            create("alice", "pcmu", "127.0.0.1:9"),
            409,
            "identity_in_use",
        ),
        (create("p", "pcma", "127.0.0.1:9"), 201, ""),
        (
            create("q", "pcma", "127.0.0.1:9"),
            409,
            "too_many_rtp_participants",
        ),
    ];
    for (body, want, code) in cases {
        let (status, answer) = server.call(Method::POST, path, Some(body.clone())).await;
        assert_eq!(status, want, "{body}: {answer}");
        if !code.is_empty() {
            assert_eq!(answer["error"]["code"], code, "{body}");
        }
    }
    let (status, _) = server
        .call(
            Method::POST,
            "/v1/rooms/nowhere/rtp_participants",
            Some(create("p", "pcmu", "127.0.0.1:9")),
        )
        .await;
    assert_eq!(status, 404);
    alice
        .until("the silent phone left with rtp_timeout", |log| {
            contains(log, |m| {
                matches!(m, ServerMessage::ParticipantLeft { identity, reason: LeaveReason::RtpTimeout, .. } if identity == "p")
            })
        })
        .await;
}
