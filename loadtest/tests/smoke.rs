//! A short run of the harness against an in-process server, so it cannot rot.
//! The CPU and RSS figures here count the clients too (same process); only that
//! they are measured is checked, not their values.

use chorus_loadtest::{Args, Scenario, run};
use chorus_server::config::{Config, DEV_API_KEY, DEV_API_SECRET};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meeting_smoke_run_everyone_receives_everyone() {
    let mut config = Config::default();
    config.http.bind = "127.0.0.1:0".parse().unwrap();
    config.media.bind = "127.0.0.1:0".parse().unwrap();
    let shutdown = CancellationToken::new();
    let server = chorus_server::run(config, shutdown.clone()).await.unwrap();

    let mut args = Args::new(
        format!("http://{}", server.http_addr),
        std::process::id(),
        Scenario::Meeting25,
    );
    args.api_key = DEV_API_KEY.to_owned();
    args.api_secret = DEV_API_SECRET.to_owned();
    args.participants = Some(3);
    args.seconds = 2;
    args.join_timeout = 20;
    args.media_timeout = 20;
    args.quiet = true;
    let report = run(&args).await.expect("the harness runs to the end");
    println!("{report}");

    assert_eq!(report.participants, 3);
    assert_eq!(report.video_publishers, 3);
    assert_eq!(report.joined, 3, "errors: {:?}", report.errors);
    assert_eq!(report.join_failures + report.publish_failures, 0);
    assert_eq!(report.join_time.count, 3);
    assert!(report.join_time.p50_ms > 0.0 && report.join_time.p99_ms >= report.join_time.p50_ms);
    // Each of 3 participants receives the other two's microphone and camera.
    assert_eq!(report.tracks_expected, 3 * 2 * 2);
    assert_eq!(report.tracks_received, report.tracks_expected);
    assert_eq!(report.receivers_complete, 3);
    assert_eq!(report.publishers, 3);
    assert_eq!(report.publisher_connections_up, 3);
    assert_eq!(report.subscriber_connections_up, 3);
    assert_eq!(report.first_media.count, 3);
    assert_eq!(report.all_media.count, 3);
    assert!(report.all_media.max_ms >= report.first_media.max_ms);
    assert_eq!(report.receivers_without_media, 0);
    // 3 × 2 × (50 audio + 30 video packets/s) × 2 s = 960, with a wide margin.
    assert!(report.window_secs >= 2.0);
    assert!(
        report.egress_packets > 300,
        "received only {} packets",
        report.egress_packets
    );
    assert!(report.ingress_packets > 0 && report.egress_bytes > 0);
    assert!(report.egress_bitrate_bps > 0.0);
    assert!(
        report.expected_packets > 0 && report.loss_ratio < 0.5,
        "loss {} ({} of {})",
        report.loss_ratio,
        report.received_packets,
        report.expected_packets
    );
    assert!(report.server_cpu_micros > 0.0);
    assert!(report.cpu_per_egress_packet_micros.is_finite());
    assert!(report.rss_before_kib > 0 && report.rss_after_kib > 0);
    assert!(report.rss_per_participant_kib.is_finite());
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["scenario"], "meeting-25");
    assert_eq!(json["joined"], 3);

    shutdown.cancel();
    server.stopped().await;
}

#[test]
fn scenarios_plan_the_documented_rooms() {
    let plan = |scenario, f: fn(&mut Args)| {
        let mut args = Args::new("http://127.0.0.1:1", 1, scenario);
        f(&mut args);
        args.plan()
    };
    let fanout = plan(Scenario::Fanout, |_| {});
    assert_eq!(fanout.len(), 21);
    assert_eq!(fanout.iter().filter(|r| r.camera && r.mic).count(), 1);
    let meeting = plan(Scenario::Meeting25, |_| {});
    assert_eq!(meeting.len(), 25);
    assert!(meeting.iter().all(|r| r.mic && r.camera && r.subscribe));
    let large = plan(Scenario::Large350, |_| {});
    assert_eq!(large.len(), 350);
    assert!(large.iter().all(|r| r.mic && r.subscribe));
    assert_eq!(large.iter().filter(|r| r.camera).count(), 6);
    let audio = plan(Scenario::Audio350, |a| a.participants = Some(40));
    assert_eq!(audio.len(), 40);
    assert!(audio.iter().all(|r| r.mic && !r.camera));
    let small = plan(Scenario::Large350, |a| {
        a.participants = Some(10);
        a.video_publishers = Some(2);
    });
    assert_eq!(small.iter().filter(|r| r.camera).count(), 2);
}
