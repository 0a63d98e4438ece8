//! An in-process server on free loopback ports, and harness arguments that reach it
//! with the development keys.

use chorus_loadtest::{Args, Scenario};
use chorus_server::RunningServer;
use chorus_server::config::{Config, DEV_API_KEY, DEV_API_SECRET};
use tokio_util::sync::CancellationToken;

/// The default configuration on free loopback ports.
pub fn local_config() -> Config {
    let mut config = Config::default();
    config.http.bind = "127.0.0.1:0".parse().unwrap();
    config.media.bind = "127.0.0.1:0".parse().unwrap();
    config
}

/// A server run with `config`, and what stops it.
pub async fn start(config: Config) -> (RunningServer, CancellationToken) {
    let shutdown = CancellationToken::new();
    let server = chorus_server::run(config, shutdown.clone()).await.unwrap();
    (server, shutdown)
}

/// `scenario` against `server`, quiet, waiting up to 20 s for joins and media.
pub fn args(server: &RunningServer, scenario: Scenario) -> Args {
    let mut args = Args::new(
        format!("http://{}", server.http_addr),
        std::process::id(),
        scenario,
    );
    args.api_key = DEV_API_KEY.to_owned();
    args.api_secret = DEV_API_SECRET.to_owned();
    args.join_timeout = 20;
    args.media_timeout = 20;
    args.quiet = true;
    args
}

/// Stops `server` and waits until it has.
pub async fn stop(server: RunningServer, shutdown: CancellationToken) {
    shutdown.cancel();
    server.stopped().await;
}
