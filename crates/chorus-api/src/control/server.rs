//! The server as a whole: its media plane's counters, and draining it before a restart.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chorus_protocol::control::{DrainStatus, MediaStats};
use serde::Deserialize;

use crate::ApiState;
use crate::error::ApiError;

pub(super) async fn media_stats(State(state): State<ApiState>) -> Json<MediaStats> {
    Json(state.rooms().media_stats())
}

/// `POST /v1/drain`: the body, all optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DrainRequest {
    /// Longest the drain may last; the configured drain timeout when absent.
    timeout_secs: Option<u64>,
}

/// Longest drain asked for through the API: a day.
const MAX_DRAIN_SECS: u64 = 86_400;

/// An empty body is a drain with the defaults: `curl -X POST` is enough.
pub(super) async fn drain(
    State(state): State<ApiState>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<DrainStatus>), ApiError> {
    let req: DrainRequest = if body.iter().all(u8::is_ascii_whitespace) {
        DrainRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", e.to_string()))?
    };
    let within = match req.timeout_secs {
        Some(s) if s > MAX_DRAIN_SECS => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("timeout_secs must be at most {MAX_DRAIN_SECS}"),
            ));
        }
        s => s.map(std::time::Duration::from_secs),
    };
    Ok((StatusCode::ACCEPTED, Json(state.rooms().drain(within))))
}
