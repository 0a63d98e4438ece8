//! `--svc --view tiles` against an in-process server: cameras publish VP9 in
//! `L3T3_KEY` layers on one SSRC, and each receiver gets the spatial layers that fit how
//! it shows each camera.

mod common;

use chorus_loadtest::{Scenario, ViewArg, run};

/// Four participants, each receiving three VP9 SVC cameras: the two in tiles as the base
/// spatial layer (320x180), the speaker's (participant 0's) with more layers and more
/// bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn svc_cameras_reach_tiles_as_the_base_layer_and_the_speaker_view_larger() {
    let (server, shutdown) = common::start(common::local_config()).await;

    let mut args = common::args(&server, Scenario::Meeting25);
    args.participants = Some(4);
    args.seconds = 3;
    args.svc = true;
    args.view = ViewArg::Tiles;
    let report = run(&args).await.expect("the harness runs to the end");
    println!("{report}");

    assert_eq!(report.joined, 4, "errors: {:?}", report.errors);
    assert!(report.errors.is_empty(), "errors: {:?}", report.errors);
    assert_eq!(report.video_codec, "vp9");
    assert!(report.svc && !report.simulcast);
    assert_eq!(report.receivers_complete, 4, "{report}");
    assert_eq!(report.track_settings_sent, 12);
    // Every receiver has a size for every camera, told by the SS of the VP9 keyframes
    // it got: the tiles (three per receiver but the speaker's own) are the base layer.
    let sizes = &report.received_sizes;
    assert_eq!(sizes.values().sum::<usize>(), 12, "{report}");
    assert!(sizes.get("320x180").copied().unwrap_or(0) >= 9, "{report}");
    let views = report.view_bitrates.as_ref().expect("a tile view");
    assert_eq!((views.tiles, views.speakers), (9, 3), "{report}");
    // A tile gets the base layer (about 150 kbit/s); the speaker's view at least that
    // and the layers above it that fit the subscriber's bandwidth estimate.
    assert!(
        views.tile_bps > 50_000.0 && views.tile_bps < 300_000.0,
        "{report}"
    );
    assert!(views.speaker_bps > 1.5 * views.tile_bps, "{report}");
    assert!(report.loss_ratio < 0.05, "loss {}", report.loss_ratio);
    common::stop(server, shutdown).await;
}
