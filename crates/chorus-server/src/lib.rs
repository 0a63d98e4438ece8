//! The Chorus server: configuration, and [`run`], which starts the HTTP side,
//! the media plane ([`media`]) and the rooms over it, and stops them when the
//! shutdown token fires. The `chorus`
//! binary is a thin command line over this ([`cli`]); integration tests start
//! whole servers in-process with [`run`] on ephemeral ports.

pub mod cli;
pub mod config;
pub mod media;
pub mod tls;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use chorus_api::ApiState;
use chorus_room::RoomRegistry;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

pub use config::Config;

/// Longest a shutdown may take, from the token firing to everything stopped.
pub const SHUTDOWN_CAP: Duration = Duration::from_secs(10);

/// A started server.
pub struct RunningServer {
    /// Where the HTTP server listens (the real port when 0 was asked for).
    pub http_addr: SocketAddr,
    /// Where media flows (UDP).
    pub media_addr: SocketAddr,
    /// Base URL handed to clients, e.g. `http://127.0.0.1:7880`.
    pub public_url: String,
    control: ServerControl,
    task: JoinHandle<()>,
}

/// Stops or drains a running server from elsewhere (a signal handler). Cheap to clone.
#[derive(Clone)]
pub struct ServerControl {
    /// Cancelled when the server is stopping, whoever asked.
    stop: CancellationToken,
    registry: RoomRegistry,
}

impl ServerControl {
    /// Asks the server to stop (as the token given to [`run`] would).
    pub fn shutdown(&self) {
        self.stop.cancel();
    }

    /// Starts a drain (as `POST /v1/drain` would): no new joins, everyone told, and the
    /// server stops when the last participant has left or at the drain timeout.
    pub fn drain(&self) -> chorus_protocol::control::DrainStatus {
        self.registry.drain(None)
    }
}

impl RunningServer {
    /// Asks the server to stop (as the token given to [`run`] would).
    pub fn shutdown(&self) {
        self.control.shutdown();
    }

    /// A handle that stops or drains the server, for another task.
    pub fn control(&self) -> ServerControl {
        self.control.clone()
    }

    /// Waits until the server has stopped: HTTP closed, rooms ended, sessions
    /// said goodbye, or [`SHUTDOWN_CAP`] passed.
    pub async fn stopped(self) {
        if let Err(e) = self.task.await {
            error!("server task failed: {e}");
        }
    }

    /// The signaling WebSocket URL.
    pub fn signaling_url(&self) -> String {
        let base = self.public_url.replacen("http", "ws", 1);
        format!("{base}/v1/rtc")
    }
}

/// Binds HTTP, starts the rooms and the media plane, and serves until
/// `shutdown` fires (or the HTTP server fails).
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<RunningServer> {
    config.validate()?;
    let tls = config.tls_server_config()?;
    let listener = TcpListener::bind(config.http.bind)
        .await
        .with_context(|| format!("cannot bind HTTP on {}", config.http.bind))?;
    let http_addr = listener.local_addr()?;
    let public_url = config.public_url_for(http_addr);
    let stop = shutdown.child_token();
    let media = media::start(&config.media_config())
        .with_context(|| format!("cannot start media on {}", config.media.bind))?;
    let registry = RoomRegistry::new(config.room_config(), media.plane, media.peers, stop.clone());
    if !config.webhooks.urls.is_empty() {
        let hooks = chorus_webhooks::Webhooks::start(
            config.webhook_config(),
            &TaskTracker::new(),
            stop.clone(),
        );
        registry.set_webhooks(hooks);
    }
    let media_addr = registry.media_addr();
    let state = ApiState::new(
        registry.clone(),
        config.api_config(public_url.clone()),
        stop.clone(),
    );
    let sessions = state.sessions().clone();
    let app = chorus_api::router(state.clone());
    let graceful = stop.clone().cancelled_owned();
    let http = match tls {
        None => tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(graceful)
                .await
        }),
        Some(tls) => {
            let listener =
                tls::TlsListener::new(listener, tls, tls::HANDSHAKE_TIMEOUT, move |reason| {
                    state.metrics().tls_handshake_failed(reason)
                })?;
            tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(graceful)
                    .await
            })
        }
    };
    let task = tokio::spawn(supervise(http, registry.clone(), sessions, stop.clone()));
    info!(%http_addr, %media_addr, "chorus is up");
    Ok(RunningServer {
        http_addr,
        media_addr,
        public_url,
        control: ServerControl { stop, registry },
        task,
    })
}

/// Watches the HTTP server (plain or TLS) until `stop`, then stops HTTP and the rooms together and waits for
/// the signaling sessions to send their last frames, all within [`SHUTDOWN_CAP`].
async fn supervise(
    mut http: JoinHandle<std::io::Result<()>>,
    registry: RoomRegistry,
    sessions: TaskTracker,
    stop: CancellationToken,
) {
    let http_ended_early = tokio::select! {
        _ = stop.cancelled() => false,
        result = &mut http => {
            match result {
                Ok(Ok(())) => error!("the HTTP server stopped by itself; shutting down"),
                Ok(Err(e)) => error!("the HTTP server failed: {e}; shutting down"),
                Err(e) => error!("the HTTP server task failed: {e}; shutting down"),
            }
            stop.cancel();
            true
        }
    };
    info!("shutting down");
    // What the media plane saw over the server's life: drops show up here first.
    info!(counters = ?registry.media_counters(), "media plane totals");
    info!(counters = ?registry.rtcp_totals(), "inbound RTCP totals");
    let abort_http = http.abort_handle();
    let drain = async {
        let http = async {
            if !http_ended_early {
                let _ = http.await;
            }
        };
        tokio::join!(http, registry.shutdown());
        sessions.close();
        sessions.wait().await;
    };
    if tokio::time::timeout(SHUTDOWN_CAP, drain).await.is_err() {
        warn!(
            "shutdown took longer than {} s; stopping anyway",
            SHUTDOWN_CAP.as_secs()
        );
        abort_http.abort();
    } else {
        info!("stopped");
    }
}
