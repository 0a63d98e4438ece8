//! A short run of the harness against an in-process server, so it cannot rot.
//! The CPU and RSS figures here count the clients too (same process); only that
//! they are measured is checked, not their values.

mod common;

use chorus_loadtest::{Args, CodecArg, Scenario, TalkArg, ViewArg, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meeting_smoke_run_everyone_receives_everyone() {
    let (server, shutdown) = common::start(common::local_config()).await;

    let mut args = common::args(&server, Scenario::Meeting25);
    args.participants = Some(3);
    args.seconds = 2;
    // Everyone talks nearly all the time, and listens to what the server mixed.
    args.talk_pattern = TalkArg::Monologue;
    args.decode_audio = true;
    // And each sends 10 reliable data messages a second to the others.
    args.data_rate = 10;
    let plot = std::env::temp_dir().join(format!("chorus-smoke-{}.svg", std::process::id()));
    args.plot = Some(plot.clone());
    let report = run(&args).await.expect("the harness runs to the end");
    println!("{report}");

    assert_eq!(report.participants, 3);
    assert_eq!(report.video_publishers, 3);
    assert_eq!(report.joined, 3, "errors: {:?}", report.errors);
    assert_eq!(report.join_failures + report.publish_failures, 0);
    assert_eq!(report.join_time.count, 3);
    assert!(report.join_time.p50_ms > 0.0 && report.join_time.p99_ms >= report.join_time.p50_ms);
    // Each of 3 participants receives the room's mixed audio and the other two cameras.
    assert_eq!(report.tracks_expected, 3 * (1 + 2));
    assert_eq!(report.tracks_received, report.tracks_expected);
    assert_eq!(report.receivers_complete, 3);
    assert_eq!(report.publishers, 3);
    assert_eq!(report.publisher_connections_up, 3);
    assert_eq!(report.subscriber_connections_up, 3);
    assert_eq!(report.first_media.count, 3);
    assert_eq!(report.all_media.count, 3);
    assert!(report.all_media.max_ms >= report.first_media.max_ms);
    assert_eq!(report.receivers_without_media, 0);
    // 3 × (50 mix + 2 × 30 video packets/s) × 2 s = 660, with a wide margin.
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
    // Distinct sequence numbers: never more received than expected, never negative loss.
    assert!(report.received_packets <= report.expected_packets);
    assert!(report.loss_ratio >= 0.0);
    assert!(
        report
            .timeline
            .iter()
            .filter_map(|p| p.loss_percent)
            .all(|l| (0.0..=100.0).contains(&l)),
        "{:?}",
        report.timeline
    );
    assert!(report.server_cpu_micros > 0.0);
    assert!(
        report.harness_cpu_per_received_packet_micros > 0.0,
        "{report}"
    );
    assert!(report.cpu_per_egress_packet_micros.is_finite());
    assert!(report.rss_before_kib > 0 && report.rss_after_kib > 0);
    assert!(report.rss_per_participant_kib.is_finite());
    // The mix carries sound, and the decoder took every packet.
    assert_eq!(report.talkers, 3);
    assert!(report.audio_frames_decoded > 50, "{report}");
    assert!(report.audio_frames_loud > 0, "{report}");
    assert_eq!(report.audio_decode_errors, 0);
    // Every video packet's stamp was read: latency over the whole window, on loopback.
    assert!(report.video_latency.count > 100, "{report}");
    assert!(report.video_latency.p50_ms < 500.0, "{report}");
    assert!(report.video_latency.max_ms >= report.video_latency.p99_ms);
    // 3 × 10 data messages a second over 2 s, each to the two others: delivered, but
    // for those in flight when the window closed.
    assert!(report.data_sent >= 40, "{report}");
    assert_eq!(report.data_expected, 2 * report.data_sent);
    assert!(
        report.data_delivered <= report.data_expected + 6,
        "{report}"
    );
    assert!(
        report.data_delivered * 10 >= report.data_expected * 8,
        "{report}"
    );
    let histogram: u64 = report.latency_histogram.iter().map(|b| b.count).sum();
    assert_eq!(histogram, report.video_latency.count as u64);
    // A point about every second, through the window.
    assert!(report.timeline.iter().any(|p| p.phase == "measuring"));
    assert!(
        report
            .timeline
            .iter()
            .any(|p| p.egress_packets_per_sec > 0.0)
    );
    let svg = std::fs::read_to_string(&plot).expect("the chart is written");
    std::fs::remove_file(&plot).ok();
    assert!(svg.contains("egress packets/s"));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["scenario"], "meeting-25");
    assert_eq!(json["joined"], 3);
    assert!(json["timeline"].as_array().is_some_and(|t| !t.is_empty()));

    common::stop(server, shutdown).await;
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
    let steady = plan(Scenario::Churn, |a| a.participants = Some(40));
    assert_eq!(
        steady.len(),
        25,
        "the steady room; --participants sizes the storms"
    );
    assert!(steady.iter().all(|r| r.mic && r.camera && r.subscribe));
}

/// A tiny churn run: storms of 4 beside a steady room of 2, half vanishing; the server's
/// ICE timeouts are short, so the vanished are gone before the harness gives up waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_smoke_run_storms_and_empties_the_churn_room() {
    let mut config = common::local_config();
    config.media.ice_disconnected_timeout_ms = 1_000;
    config.media.ice_failed_timeout_ms = 1_000;
    let (server, shutdown) = common::start(config).await;

    let mut args = common::args(&server, Scenario::Churn);
    args.steady = 2;
    args.participants = Some(4);
    args.duration = 1;
    args.storm_seconds = 0.5;
    args.stay_min = 0.2;
    args.stay_max = 0.5;
    args.vanish_share = 0.5;
    let report = run(&args).await.expect("the harness runs to the end");
    println!("{report}");

    assert_eq!(report.scenario, "churn");
    assert_eq!(report.joined, 2, "errors: {:?}", report.errors);
    let churn = report.churn.as_ref().expect("a churn report");
    assert!(churn.storms >= 1);
    assert_eq!(churn.joins_started, 4 * churn.storms);
    assert_eq!(
        churn.joins_completed, churn.joins_started,
        "{:?}",
        churn.errors
    );
    assert_eq!(
        churn.left_with_leave + churn.closed_socket + churn.vanished,
        churn.joins_completed
    );
    assert_eq!(churn.churn_room_left, 0, "the vanished were removed");
    assert_eq!(churn.samples.len(), churn.storms + 1);
    assert!(churn.api_latency.count > 0 && churn.api_failures == 0);
    assert!(churn.tasks_start > 0 && churn.tasks_end > 0);
    assert!(churn.rss_start_kib > 0 && churn.rss_end_kib > 0);
    // The steady room was measured across the storms.
    assert!(
        report.expected_packets > 0 && report.loss_ratio < 0.5,
        "{report}"
    );
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["churn"]["api_latency"]["p99_ms"].is_number());

    common::stop(server, shutdown).await;
}

/// `--cap-subscribers`: the capped receiver of a simulcast camera ends on the low layer
/// within its cap; the uncapped one keeps the top layer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capped_subscriber_gets_the_low_layer() {
    let (server, shutdown) = common::start(common::local_config()).await;

    let mut args = common::args(&server, Scenario::Fanout);
    args.subscribers = 2;
    args.simulcast = true;
    args.video_fps = Some(15);
    args.cap_subscribers = 1;
    args.cap_kbps = 300;
    args.seconds = 6;
    let report = run(&args).await.expect("the harness runs to the end");
    println!("{report}");

    assert_eq!(report.joined, 3, "errors: {:?}", report.errors);
    assert_eq!(report.capped.len(), 1, "{report}");
    let capped = &report.capped[0];
    assert_eq!(capped.index, 2, "the last receiver");
    assert_eq!(capped.layers, ["320x180"], "{report}");
    assert!(
        capped.video_bitrate_bps < 300_000.0 && capped.frames_per_sec > 5.0,
        "{report}"
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["capped"][0]["layers"][0], "320x180");
    common::stop(server, shutdown).await;
}

/// `--simulcast --view tiles`: every receiver asks for 320x180 tiles and one 1280x720
/// speaker view, and the server sends each the layer that fits, as the receivers'
/// keyframe sizes show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tile_view_gets_the_low_layer_and_one_top_layer() {
    let (server, shutdown) = common::start(common::local_config()).await;

    let mut args = common::args(&server, Scenario::Meeting25);
    args.participants = Some(4);
    args.seconds = 2;
    args.simulcast = true;
    args.view = ViewArg::Tiles;
    let report = run(&args).await.expect("the harness runs to the end");
    println!("{report}");

    assert_eq!(report.joined, 4, "errors: {:?}", report.errors);
    assert!(report.errors.is_empty(), "errors: {:?}", report.errors);
    // Four receivers, three cameras each.
    assert_eq!(report.track_settings_sent, 12);
    assert_eq!(report.receivers_complete, 4);
    // Every camera but the speaker's (participant 0's) in a small tile, for everyone: the
    // lowest layer. The speaker's view may get the top layer, or less while the
    // subscriber's bandwidth estimate has not climbed that far yet (the allocator steps
    // up one layer per 3 s), so at least nine pairs are small and every pair has a size.
    let sizes = &report.received_sizes;
    assert_eq!(sizes.values().sum::<usize>(), 12, "{report}");
    assert!(sizes.get("320x180").copied().unwrap_or(0) >= 9, "{report}");
    assert!(report.loss_ratio < 0.05, "loss {}", report.loss_ratio);
    common::stop(server, shutdown).await;
}

/// H.264 in simulcast layers (`--codec h264 --simulcast --view tiles`): the tiles get the
/// low layer and the speaker's view more, as with VP8 (the harness reads no size from
/// H.264, so the bitrates tell).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_simulcast_tiles_get_the_low_layer() {
    let (server, shutdown) = common::start(common::local_config()).await;

    let mut args = common::args(&server, Scenario::Meeting25);
    args.participants = Some(4);
    args.seconds = 3;
    args.codec = CodecArg::H264;
    args.simulcast = true;
    args.view = ViewArg::Tiles;
    let report = run(&args).await.expect("the harness runs to the end");
    println!("{report}");

    assert_eq!(report.joined, 4, "errors: {:?}", report.errors);
    assert_eq!(report.video_codec, "h264");
    assert_eq!(report.receivers_complete, 4, "{report}");
    let views = report.view_bitrates.as_ref().expect("a tile view");
    assert_eq!((views.tiles, views.speakers), (9, 3), "{report}");
    // The low layer is 150 kbit/s; the speaker's view climbs to 500 or 1500.
    assert!(
        views.tile_bps > 50_000.0 && views.tile_bps < 300_000.0,
        "{report}"
    );
    assert!(views.speaker_bps > 2.0 * views.tile_bps, "{report}");
    assert!(report.loss_ratio < 0.05, "loss {}", report.loss_ratio);
    common::stop(server, shutdown).await;
}
