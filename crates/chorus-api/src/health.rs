//! Probes for a process supervisor or a load balancer, without credentials (they carry
//! nothing secret): `GET /healthz` says the process serves HTTP; `GET /readyz` says it
//! takes new rooms and participants, and turns 503 when it drains, so that a load
//! balancer sends new calls elsewhere while the calls here finish.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::ApiState;

pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/healthz", get(live))
        .route("/readyz", get(ready))
}

async fn live() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn ready(State(state): State<ApiState>) -> (StatusCode, Json<Value>) {
    match state.rooms().drain_status() {
        None => (StatusCode::OK, Json(json!({"status": "ready"}))),
        Some(drain) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "draining", "drain": drain})),
        ),
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Method, Request};
    use tower::ServiceExt;

    use crate::testing::{self, FakeRooms};

    async fn get(app: &axum::Router, path: &str) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(Method::GET)
            .uri(path)
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(req).await.unwrap();
        let status = response.status();
        (status, testing::body_json(response).await)
    }

    use super::*;

    /// Live always; ready until a drain starts (through the control API here), then
    /// 503 with the drain's deadline. No credentials needed.
    #[tokio::test]
    async fn ready_until_draining() {
        let app = testing::app(FakeRooms::default());
        assert_eq!(
            get(&app, "/healthz").await,
            (StatusCode::OK, json!({"status": "ok"}))
        );
        assert_eq!(
            get(&app, "/readyz").await,
            (StatusCode::OK, json!({"status": "ready"}))
        );
        let drain = Request::builder()
            .method(Method::POST)
            .uri("/v1/drain")
            .header("authorization", testing::basic("devkey", testing::SECRET))
            .body(Body::from(r#"{"timeout_secs": 5}"#))
            .unwrap();
        let response = app.clone().oneshot(drain).await.unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let status = json!({"since_unix_ms": 1000, "deadline_unix_ms": 6000});
        assert_eq!(testing::body_json(response).await, status);
        assert_eq!(
            get(&app, "/readyz").await,
            (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"status": "draining", "drain": status})
            )
        );
        assert_eq!(get(&app, "/healthz").await.0, StatusCode::OK);
    }
}
