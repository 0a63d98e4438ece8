//! What the synthetic media carries, end to end over real WebRTC between two engines
//! (no server): B decodes A's Opus and finds A's tone in it, and reads the send-time
//! stamps of A's video (VP8 and H.264) into its latency histogram.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use chorus_client::{
    AudioContent, ClientStats, Engine, MediaProfile, TrackSource, VideoCodec, tone_energy,
};

const LIMIT: Duration = Duration::from_secs(10);

async fn pair(a: MediaProfile, b: MediaProfile) -> (Engine, Engine) {
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    (
        Engine::bind(ip, a).await.unwrap(),
        Engine::bind(ip, b).await.unwrap(),
    )
}

/// Drives A (publishing) and B (receiving) until `done(b)` or the limit.
async fn progress_until(a: &mut Engine, b: &mut Engine, done: impl Fn(&ClientStats) -> bool) {
    let deadline = Instant::now() + LIMIT;
    loop {
        let now = Instant::now();
        while let Some(message) = a.poll_signal().and_then(common::relay) {
            b.handle_signal(now, &message).unwrap();
        }
        while let Some(message) = b.poll_signal().and_then(common::relay) {
            a.handle_signal(now, &message).unwrap();
        }
        if let Some((cid, outcome)) = a.poll_negotiated() {
            outcome.unwrap_or_else(|err| panic!("negotiation of {cid} failed: {err}"));
        }
        let stats = b.stats();
        if done(&stats) {
            return;
        }
        assert!(Instant::now() < deadline, "not reached: {stats:#?}");
        tokio::select! {
            _ = a.step() => {}
            _ = b.step() => {}
        }
    }
}

#[tokio::test]
async fn a_decoding_receiver_hears_the_senders_tone() {
    let talker = MediaProfile {
        audio: AudioContent::Tone { hz: 500 },
        ..MediaProfile::default()
    };
    let (mut a, mut b) = pair(talker, MediaProfile::default()).await;
    a.publish(Instant::now(), "mic", "TR_mic", TrackSource::Microphone)
        .unwrap();
    let decoded = |s: &ClientStats| {
        s.inbound
            .get("TR_mic")
            .and_then(|t| t.decoded.as_ref())
            .map_or(0, |d| d.frames)
    };
    progress_until(&mut a, &mut b, |s| decoded(s) >= 40).await;

    let stats = b.stats();
    let track = &stats.inbound["TR_mic"];
    let audio = track.decoded.as_ref().unwrap();
    assert_eq!(audio.errors, 0);
    assert!(audio.loud_frames >= 30, "{audio:?}");
    // -15 dBov tone: mean level near it once the decoder has settled.
    assert!(audio.mean_dbov() > -25.0, "{audio:?}");
    let pcm = audio.recent_pcm();
    let last = &pcm[pcm.len().saturating_sub(9600)..];
    assert!(tone_energy(last, 500.0, 48_000) > 0.04);
    assert!(tone_energy(last, 1100.0, 48_000) < 0.001);
    // The sender numbered every packet the receiver got, with no gap on loopback.
    assert_eq!(track.expected_packets(), track.packets);
}

#[tokio::test]
async fn a_silent_sender_decodes_to_silence_and_a_non_decoding_receiver_decodes_nothing() {
    let silent = MediaProfile {
        audio: AudioContent::Silence,
        ..MediaProfile::default()
    };
    let cases = [(silent.clone(), true), (silent, false)];
    for (talker, decode) in cases {
        let listener = MediaProfile {
            decode_audio: decode,
            ..MediaProfile::default()
        };
        let (mut a, mut b) = pair(talker, listener).await;
        a.publish(Instant::now(), "mic", "TR_mic", TrackSource::Microphone)
            .unwrap();
        progress_until(&mut a, &mut b, |s| {
            s.inbound.get("TR_mic").is_some_and(|t| t.packets >= 20)
        })
        .await;
        let stats = b.stats();
        let decoded = stats.inbound["TR_mic"].decoded.as_ref();
        match decoded {
            Some(audio) => {
                assert!(decode);
                assert!(audio.frames >= 20);
                assert_eq!(audio.loud_frames, 0, "{audio:?}");
            }
            None => assert!(!decode),
        }
    }
}

#[tokio::test]
async fn video_stamps_give_a_latency_histogram_for_both_codecs() {
    for codec in [VideoCodec::Vp8, VideoCodec::H264] {
        let sender = MediaProfile {
            video_codec: codec,
            ..MediaProfile::default()
        };
        let (mut a, mut b) = pair(sender, MediaProfile::default()).await;
        a.publish(Instant::now(), "cam", "TR_cam", TrackSource::Camera)
            .unwrap();
        progress_until(&mut a, &mut b, |s| {
            s.inbound.get("TR_cam").is_some_and(|t| t.packets >= 30)
        })
        .await;
        let stats = b.stats();
        let track = &stats.inbound["TR_cam"];
        let latency = &track.latency;
        // Every packet is stamped but an H.264 keyframe's parameter sets.
        let unstamped = track.packets - latency.count();
        assert!(unstamped <= track.keyframes.max(1), "{codec:?}: {track:?}");
        // Loopback within one process: well under 50 ms, and never negative.
        assert!(
            latency.quantile(0.5) < Duration::from_millis(50),
            "{latency:?}"
        );
        assert!(latency.max() < Duration::from_secs(1), "{latency:?}");
    }
}
