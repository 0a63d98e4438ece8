//! Keyframe requests reach the publisher in every RTCP form subscribers send them in:
//! a lone PLI or FIR (reduced-size RTCP, as browsers send it) and GStreamer's compound
//! of an RR without report blocks, an SDES and then the PLI or FIR. rtc drops such a
//! compound whole, for its first packet names no stream, unless the transport splits it.

mod common;

use std::time::{Duration, Instant};

use chorus_client::{ClientStats, KeyframeRequestForm, TrackInfo, TrackSource};
use common::{FLOWING, LIMIT, Participant, TestServer};

/// Longer than the server's keyframe throttle interval (500 ms).
const QUIET: Duration = Duration::from_millis(800);

/// Keyframe requests the publisher received for `cam`, in whatever form the server sent.
fn requests(stats: &ClientStats, cam: &TrackInfo) -> u64 {
    stats
        .outbound
        .get(&cam.track_id)
        .map_or(0, |t| t.plis_received + t.firs_received)
}

/// Waits until no keyframe request reached the publisher for [`QUIET`], so the server's
/// throttle lets the next one through and nothing else is on its way; returns the count.
async fn quiet_requests(publisher: &Participant, cam: &TrackInfo) -> u64 {
    let deadline = Instant::now() + LIMIT;
    let mut count = requests(&publisher.stats(), cam);
    loop {
        tokio::time::sleep(QUIET).await;
        let now = requests(&publisher.stats(), cam);
        if now == count {
            return count;
        }
        count = now;
        assert!(
            Instant::now() < deadline,
            "keyframe requests keep reaching the publisher"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyframe_requests_reach_the_publisher_in_every_rtcp_form() {
    let server = TestServer::start().await;
    let mut a = server.join("rtcp-forms", "alice").await;
    let cam = a.publish_ok(TrackSource::Camera).await;
    let b = server.join("rtcp-forms", "bob").await;
    b.wait_stats("packets and a keyframe of alice's camera", |s| {
        s.inbound
            .get(&cam.track_id)
            .is_some_and(|t| t.packets >= FLOWING && t.keyframes >= 1)
    })
    .await;

    // The compounds first, so a failure is not masked by the server's state after the
    // lone forms; those follow as the control.
    let forms = [
        KeyframeRequestForm::CompoundPli,
        KeyframeRequestForm::CompoundFir,
        KeyframeRequestForm::Pli,
        KeyframeRequestForm::Fir,
    ];
    for form in forms {
        let before = quiet_requests(&a, &cam).await;
        b.request_keyframe_with(&cam.track_id, form)
            .await
            .unwrap_or_else(|e| panic!("{form:?}: {e}"));
        a.wait_stats(&format!("a keyframe request after bob's {form:?}"), |s| {
            requests(s, &cam) > before
        })
        .await;
    }
    // The room counted bob's four requests, and the PLIs it sent alice for them.
    let (status, room) = server
        .call(reqwest::Method::GET, "/v1/rooms/rtcp-forms", None)
        .await;
    assert_eq!(status, 200);
    let feedback = &room["forwarding"]["feedback"];
    let received = feedback["keyframe_requests_received"].as_u64().unwrap();
    let sent = feedback["plis_sent"].as_u64().unwrap();
    assert!(received >= forms.len() as u64, "{feedback}");
    assert!(sent >= forms.len() as u64, "{feedback}");
    server.stop().await;
}
