//! Two client engines on loopback, no server: A's publisher connection is answered by
//! B's subscriber connection, as the SFU would answer it, with signaling relayed in
//! memory. Proves ICE, DTLS-SRTP, renegotiation, media, PLI and RTCP reports work.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use chorus_client::{
    ClientStats, Engine, MediaKind, MediaProfile, PeerConnectionState, TrackSource,
};

const LIMIT: Duration = Duration::from_secs(10);

struct Pair {
    a: Engine,
    b: Engine,
}

impl Pair {
    async fn new() -> Self {
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        Self {
            a: Engine::bind(ip, MediaProfile::default()).await.unwrap(),
            b: Engine::bind(ip, MediaProfile::default()).await.unwrap(),
        }
    }

    fn exchange_signals(&mut self) {
        let now = Instant::now();
        while let Some(message) = self.a.poll_signal().and_then(common::relay) {
            self.b.handle_signal(now, &message).unwrap();
        }
        while let Some(message) = self.b.poll_signal().and_then(common::relay) {
            self.a.handle_signal(now, &message).unwrap();
        }
    }

    /// Drives both engines until `done(a_stats, b_stats)` or the limit.
    async fn progress_until(&mut self, mut done: impl FnMut(&ClientStats, &ClientStats) -> bool) {
        let deadline = Instant::now() + LIMIT;
        loop {
            self.exchange_signals();
            if let Some((cid, outcome)) = self.a.poll_negotiated() {
                outcome.unwrap_or_else(|err| panic!("negotiation of {cid} failed: {err}"));
            }
            let (a, b) = (self.a.stats(), self.b.stats());
            if done(&a, &b) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "condition not reached\nA: {a:#?}\nB: {b:#?}"
            );
            tokio::select! {
                _ = self.a.step() => {}
                _ = self.b.step() => {}
            }
        }
    }

    async fn run_for(&mut self, duration: Duration) {
        let end = Instant::now() + duration;
        self.progress_until(|_, _| Instant::now() >= end).await;
    }
}

fn packets(stats: &ClientStats, track_id: &str) -> u64 {
    stats.inbound.get(track_id).map_or(0, |t| t.packets)
}

fn keyframes(stats: &ClientStats, track_id: &str) -> u64 {
    stats.inbound.get(track_id).map_or(0, |t| t.keyframes)
}

#[tokio::test]
async fn media_flows_from_a_publisher_to_a_subscriber_connection() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let mut pair = Pair::new().await;

    // Audio: offer, answer, ICE, DTLS, then Opus packets keyed by the msid stream id.
    pair.a
        .publish(Instant::now(), "mic-cid", "TR_mic", TrackSource::Microphone)
        .unwrap();
    pair.progress_until(|_, b| packets(b, "TR_mic") >= 10).await;
    let (a, b) = (pair.a.stats(), pair.b.stats());
    assert_eq!(a.publisher.state, Some(PeerConnectionState::Connected));
    assert_eq!(b.subscriber.state, Some(PeerConnectionState::Connected));
    assert_eq!(b.inbound["TR_mic"].kind, MediaKind::Audio);
    assert_eq!(b.inbound["TR_mic"].ssrc, a.outbound["TR_mic"].ssrc);

    // Video on a second offer over the live connection: starts with a keyframe.
    pair.a
        .publish(Instant::now(), "cam-cid", "TR_cam", TrackSource::Camera)
        .unwrap();
    pair.progress_until(|_, b| packets(b, "TR_cam") >= 20 && keyframes(b, "TR_cam") >= 1)
        .await;
    assert_eq!(pair.b.stats().inbound["TR_cam"].kind, MediaKind::Video);

    // A PLI from the subscriber reaches the publisher's sender and brings a keyframe.
    let before = keyframes(&pair.b.stats(), "TR_cam");
    pair.b.request_keyframe(Instant::now(), "TR_cam").unwrap();
    pair.progress_until(|a, b| {
        a.outbound["TR_cam"].plis_received >= 1 && keyframes(b, "TR_cam") > before
    })
    .await;
    assert_eq!(pair.b.stats().inbound["TR_cam"].plis_sent, 1);
    assert_eq!(pair.a.stats().publisher.plis, 1);

    // The interceptors' RTCP reports arrive: SR at the subscriber, RR at the publisher.
    pair.progress_until(|a, b| {
        a.publisher.receiver_reports >= 1 && b.subscriber.sender_reports >= 1
    })
    .await;

    // Muting stops the packets; unmuting resumes them.
    pair.a.set_muted("TR_mic", true).unwrap();
    pair.run_for(Duration::from_millis(200)).await;
    let muted_at = packets(&pair.b.stats(), "TR_mic");
    pair.run_for(Duration::from_millis(500)).await;
    assert_eq!(packets(&pair.b.stats(), "TR_mic"), muted_at);
    pair.a.set_muted("TR_mic", false).unwrap();
    pair.progress_until(|_, b| packets(b, "TR_mic") >= muted_at + 10)
        .await;

    // Unpublishing renegotiates; the other track keeps flowing.
    pair.a.unpublish(Instant::now(), "TR_cam").unwrap();
    pair.run_for(Duration::from_millis(300)).await;
    let (cam, mic) = (
        packets(&pair.b.stats(), "TR_cam"),
        packets(&pair.b.stats(), "TR_mic"),
    );
    pair.run_for(Duration::from_millis(500)).await;
    assert_eq!(packets(&pair.b.stats(), "TR_cam"), cam);
    assert!(packets(&pair.b.stats(), "TR_mic") >= mic + 15);
    assert_eq!(pair.a.stats().negotiation_failures, 0);
    assert_eq!(pair.b.stats().negotiation_failures, 0);
}
