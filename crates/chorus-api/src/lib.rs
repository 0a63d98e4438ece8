//! The HTTP face of Chorus.
//!
//! - `/v1/...` control API for the customer's trusted service (HTTP Basic with an
//!   API key and its secret), see [`control`] and `openapi.json`;
//! - `/v1/rtc` signaling WebSocket for clients holding a user access token, see
//!   [`signaling`] and [`token`];
//! - `/` the demo page, see [`demo`].

pub mod control;
pub mod demo;
pub mod error;
pub mod health;
pub mod metrics;
pub mod openapi;
pub mod signaling;
pub mod token;
pub mod turn;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use chorus_room_api::Rooms;
pub use error::ApiError;
pub use token::{ApiSecret, Keys, TokenError};
pub use turn::TurnConfig;

/// Largest request body the API reads.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Settings of the HTTP side.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// API keys for the control API; their secrets sign and verify access tokens.
    pub keys: Keys,
    /// Serve `POST /demo/token`, which hands anyone a token. Development only.
    pub demo_enabled: bool,
    /// Base URL clients reach this server at, e.g. `http://127.0.0.1:7880`.
    pub public_url: String,
    /// Origins whose pages may open the signaling WebSocket; empty: any. A request
    /// without `Origin` (not a browser) is not checked.
    pub allowed_origins: Vec<String>,
    /// TURN servers handed to joining clients in `joined.ice_servers`; none when unset.
    pub turn: Option<TurnConfig>,
}

impl ApiConfig {
    /// The signaling WebSocket URL derived from `public_url`
    /// (`http://h:p` → `ws://h:p/v1/rtc`, `https` → `wss`).
    pub fn signaling_url(&self) -> String {
        let base = self.public_url.trim_end_matches('/');
        let ws = if let Some(rest) = base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else if let Some(rest) = base.strip_prefix("http://") {
            format!("ws://{rest}")
        } else {
            base.to_owned()
        };
        format!("{ws}/v1/rtc")
    }
}

/// Time bounds of a signaling session.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// How long a client may take to send `join` after the socket opens.
    pub join_timeout: Duration,
    /// How long the room may take to admit a participant.
    pub admit_timeout: Duration,
    /// How long one frame may take to reach the client, and one message the room.
    pub send_timeout: Duration,
    /// Messages a client may send in a burst, and per second on average; beyond
    /// that they are refused with `rate_limited`, so one client cannot flood its room.
    pub message_burst: u32,
    pub messages_per_second: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            join_timeout: Duration::from_secs(10),
            admit_timeout: Duration::from_secs(10),
            send_timeout: Duration::from_secs(10),
            message_burst: 100,
            messages_per_second: 50,
        }
    }
}

/// Everything the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    inner: Arc<Inner>,
}

struct Inner {
    rooms: Arc<dyn Rooms>,
    config: ApiConfig,
    shutdown: CancellationToken,
    sessions: TaskTracker,
    limits: Limits,
    metrics: metrics::Metrics,
}

impl ApiState {
    /// `shutdown` ends signaling sessions still waiting for their `join`; joined
    /// sessions end when their room says `left`.
    pub fn new(rooms: impl Rooms, config: ApiConfig, shutdown: CancellationToken) -> Self {
        Self::with_rooms(Arc::new(rooms), config, shutdown)
    }

    /// Like [`ApiState::new`] over any [`Rooms`] implementation (tests use fakes).
    pub fn with_rooms(
        rooms: Arc<dyn Rooms>,
        config: ApiConfig,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                rooms,
                config,
                shutdown,
                sessions: TaskTracker::new(),
                limits: Limits::default(),
                metrics: metrics::Metrics::default(),
            }),
        }
    }

    #[cfg(test)]
    pub(crate) fn with_limits(self, limits: Limits) -> Self {
        let inner = Arc::into_inner(self.inner).expect("set limits before sharing the state");
        Self {
            inner: Arc::new(Inner { limits, ..inner }),
        }
    }

    /// The signaling sessions (one task per WebSocket). Close and wait on it at
    /// shutdown so the last frames reach the clients.
    pub fn sessions(&self) -> &TaskTracker {
        &self.inner.sessions
    }

    pub fn config(&self) -> &ApiConfig {
        &self.inner.config
    }

    pub(crate) fn rooms(&self) -> &dyn Rooms {
        &*self.inner.rooms
    }

    pub(crate) fn shutdown(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    pub(crate) fn limits(&self) -> Limits {
        self.inner.limits
    }

    pub fn metrics(&self) -> &metrics::Metrics {
        &self.inner.metrics
    }
}

/// The whole HTTP surface: control API, OpenAPI document, signaling, demo.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .merge(control::router(&state))
        .merge(openapi::router())
        .merge(health::router())
        .merge(metrics::router())
        .merge(signaling::router())
        .merge(demo::router())
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::count_requests,
        ))
        .with_state(state)
}

/// Seconds since the Unix epoch, for minting and verifying tokens at the edge.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signaling_url_from_public_url() {
        let cases = [
            ("http://127.0.0.1:7880", "ws://127.0.0.1:7880/v1/rtc"),
            ("http://127.0.0.1:7880/", "ws://127.0.0.1:7880/v1/rtc"),
            ("https://sfu.example.com", "wss://sfu.example.com/v1/rtc"),
        ];
        for (public_url, want) in cases {
            let config = ApiConfig {
                keys: Keys::new("k", ApiSecret::new("s")),
                demo_enabled: false,
                public_url: public_url.into(),
                allowed_origins: Vec::new(),
                turn: None,
            };
            assert_eq!(config.signaling_url(), want);
        }
    }
}
