//! A short run of the harness against an in-process server, so it cannot rot.
//! The CPU figure here counts the clients too (same process); only that it is
//! measured is checked, not its value.

use chorus_loadtest::{Args, run};
use chorus_server::config::{Config, DEV_API_KEY, DEV_API_SECRET};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_smoke_run_measures_forwarded_packets() {
    let mut config = Config::default();
    config.http.bind = "127.0.0.1:0".parse().unwrap();
    config.media.bind = "127.0.0.1:0".parse().unwrap();
    let shutdown = CancellationToken::new();
    let server = chorus_server::run(config, shutdown.clone()).await.unwrap();

    let args = Args {
        url: format!("http://{}", server.http_addr),
        api_key: DEV_API_KEY.to_owned(),
        api_secret: DEV_API_SECRET.to_owned(),
        server_pid: std::process::id(),
        publishers: 1,
        subscribers: 3,
        seconds: 2,
        room: "smoke".to_owned(),
    };
    let report = run(&args).await.expect("the harness runs to the end");

    // 3 subscribers × (50 audio + 120 video packets/s) × 2 s, with a wide margin.
    assert!(
        report.egress_packets > 100,
        "subscribers received only {} packets",
        report.egress_packets
    );
    assert!(report.window_secs >= 2.0);
    assert!(report.server_cpu_micros > 0.0);
    assert!(report.cpu_per_packet_micros().is_finite());
    println!("{report}");

    shutdown.cancel();
    server.stopped().await;
}
