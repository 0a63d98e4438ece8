//! The demo page: `GET /` and its scripts (ES modules, `GET /demo.js` and the modules it
//! imports, [`SCRIPTS`]), and, only when the demo is enabled, `POST /demo/token`, which hands anyone a full-grant token for a
//! random identity (with `can_admit`, unless it asks to be a `guest`), and creates the
//! room with a lobby when asked (`lobby`). Development only: it lets anybody who
//! reaches the server in.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chorus_protocol::Grants;
use chorus_protocol::control::{CreateRoomRequest, TokenResponse};
use chorus_room_api::RoomError;
use rand::Rng;
use serde::Deserialize;

use crate::control::{check_room, mint_error};
use crate::error::{ApiError, JsonBody};
use crate::token::NewToken;
use crate::{ApiState, unix_now};

const INDEX_HTML: &str = include_str!("../static/index.html");

/// The page's scripts, each served at `/{name}`: `demo.js` (the entry), the modules it
/// imports, and `devices.js`. A new module goes here and nowhere else.
pub const SCRIPTS: &[(&str, &str)] = &[
    ("demo.js", include_str!("../static/demo.js")),
    ("state.js", include_str!("../static/state.js")),
    ("notices.js", include_str!("../static/notices.js")),
    ("session.js", include_str!("../static/session.js")),
    ("signaling.js", include_str!("../static/signaling.js")),
    ("frames.js", include_str!("../static/frames.js")),
    ("connection.js", include_str!("../static/connection.js")),
    ("negotiation.js", include_str!("../static/negotiation.js")),
    ("candidates.js", include_str!("../static/candidates.js")),
    ("unreachable.js", include_str!("../static/unreachable.js")),
    ("publish.js", include_str!("../static/publish.js")),
    ("screen.js", include_str!("../static/screen.js")),
    ("controls.js", include_str!("../static/controls.js")),
    ("tracks.js", include_str!("../static/tracks.js")),
    ("roster.js", include_str!("../static/roster.js")),
    ("lobby.js", include_str!("../static/lobby.js")),
    ("tiles.js", include_str!("../static/tiles.js")),
    ("subscription.js", include_str!("../static/subscription.js")),
    ("chat.js", include_str!("../static/chat.js")),
    ("stats.js", include_str!("../static/stats.js")),
    ("devices.js", include_str!("../static/devices.js")),
];

/// Every static file says it may be cached only if checked again (`no-cache`): after a
/// server upgrade a browser must never run new modules next to old ones.
const CACHE_CONTROL: &str = "no-cache";

/// Lifetime of a demo token, in seconds.
const DEMO_TTL_SECS: u64 = 4 * 3600;

/// Longest display name the demo accepts, in characters.
const MAX_DEMO_NAME_CHARS: usize = 64;

pub fn router() -> Router<ApiState> {
    let mut router = Router::new().route("/", get(index));
    for &(name, source) in SCRIPTS {
        router = router.route(&format!("/{name}"), get(move || script(source)));
    }
    router.route("/demo/token", post(token))
}

async fn index() -> Response {
    static_file(Html(INDEX_HTML).into_response())
}

async fn script(source: &'static str) -> Response {
    let mut response = source.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    static_file(response)
}

/// The headers every static file of the page shares.
fn static_file(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    response
}

#[derive(Debug, Deserialize)]
struct DemoTokenRequest {
    room: String,
    #[serde(default)]
    name: Option<String>,
    /// Create the room with a lobby if it does not exist yet.
    #[serde(default)]
    lobby: bool,
    /// A guest: no `can_admit`, so it waits in a room's lobby. Everyone else may admit.
    #[serde(default)]
    guest: bool,
}

async fn token(
    State(state): State<ApiState>,
    body: Result<JsonBody<DemoTokenRequest>, ApiError>,
) -> Result<Json<TokenResponse>, ApiError> {
    let config = state.config();
    if !config.demo_enabled {
        return Err(ApiError::not_found());
    }
    let JsonBody(req) = body?;
    check_room(&req.room)?;
    let identity = format!("guest-{:08x}", rand::rng().random::<u32>());
    let name = req
        .name
        .map(|n| {
            n.trim()
                .chars()
                .take(MAX_DEMO_NAME_CHARS)
                .collect::<String>()
        })
        .filter(|n| !n.is_empty() && !n.chars().any(char::is_control))
        .unwrap_or_else(|| identity.clone());
    if req.lobby {
        let create = CreateRoomRequest {
            name: req.room.clone(),
            max_participants: None,
            lobby: true,
        };
        match state.rooms().create_room(create).await {
            Ok(_) | Err(RoomError::RoomExists(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let grant = NewToken {
        room: req.room,
        identity,
        name,
        grants: Grants {
            can_admit: !req.guest,
            ..Grants::default()
        },
        ttl_secs: DEMO_TTL_SECS,
    };
    let token = config
        .keys
        .mint(config.keys.primary(), grant, unix_now())
        .map_err(mint_error)?;
    Ok(Json(TokenResponse {
        token,
        url: config.signaling_url(),
    }))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use serde_json::json;
    use tokio_util::sync::CancellationToken;
    use tower::ServiceExt;

    use super::*;
    use crate::testing::{self, FakeRooms, body_json};

    fn demo_request(body: serde_json::Value) -> Request<Body> {
        Request::builder()
            .method(Method::POST)
            .uri("/demo/token")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    }

    #[tokio::test]
    async fn demo_token_has_full_grants_for_a_random_identity() {
        let app = testing::app(FakeRooms::default());
        let response = app
            .clone()
            .oneshot(demo_request(json!({"room": "lobby", "name": "Ann"})))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = body_json(response).await;
        assert_eq!(body["url"], "ws://127.0.0.1:7880/v1/rtc");
        let claims = testing::keys()
            .verify(body["token"].as_str().unwrap(), unix_now())
            .unwrap();
        assert_eq!(claims.iss, "devkey");
        assert_eq!(claims.room, "lobby");
        assert_eq!(claims.name, "Ann");
        assert!(claims.sub.starts_with("guest-"));
        let admitter = Grants {
            can_admit: true,
            ..Grants::default()
        };
        assert_eq!(claims.grants, admitter);
        // A guest may not admit; asking for a lobby room goes through the rooms.
        let response = app
            .clone()
            .oneshot(demo_request(
                json!({"room": "lobby", "guest": true, "lobby": true}),
            ))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = body_json(response).await;
        let claims = testing::keys()
            .verify(body["token"].as_str().unwrap(), unix_now())
            .unwrap();
        assert_eq!(claims.grants, Grants::default());

        let response = app
            .oneshot(demo_request(json!({"room": ""})))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn demo_token_is_404_when_disabled() {
        let config = crate::ApiConfig {
            demo_enabled: false,
            ..testing::config()
        };
        let state = ApiState::with_rooms(
            Arc::new(FakeRooms::default()),
            config,
            CancellationToken::new(),
        );
        let response = crate::router(state)
            .oneshot(demo_request(json!({"room": "lobby"})))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(body_json(response).await["error"]["code"], "not_found");
    }

    #[tokio::test]
    async fn static_files_have_their_content_types_and_caching() {
        let app = testing::app(FakeRooms::default());
        let scripts = SCRIPTS
            .iter()
            .map(|(name, _)| (format!("/{name}"), "text/javascript; charset=utf-8"));
        for (uri, content_type) in
            std::iter::once(("/".to_owned(), "text/html; charset=utf-8")).chain(scripts)
        {
            let response = app
                .clone()
                .oneshot(Request::get(&uri).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{uri}");
            assert_eq!(
                response.headers()[header::CONTENT_TYPE],
                content_type,
                "{uri}"
            );
            assert_eq!(
                response.headers()[header::CACHE_CONTROL],
                "no-cache",
                "{uri}"
            );
        }
    }

    /// Every script the page loads and every module a script imports is served, and
    /// every script served is loaded or imported: a module left out of [`SCRIPTS`] would
    /// break the page only in a browser.
    #[test]
    fn every_imported_module_is_served() {
        let served: Vec<&str> = SCRIPTS.iter().map(|(name, _)| *name).collect();
        let loaded = INDEX_HTML
            .split("<script ")
            .skip(1)
            .filter_map(|tag| tag.split("src=\"").nth(1)?.split('"').next());
        let imported = SCRIPTS.iter().flat_map(|(_, source)| {
            source
                .lines()
                .filter(|l| l.starts_with("import "))
                .filter_map(|l| l.split("from './").nth(1)?.split('\'').next())
        });
        let wanted: Vec<&str> = loaded.chain(imported).collect();
        for name in &wanted {
            assert!(served.contains(name), "{name} is loaded but not served");
        }
        for name in &served {
            assert!(
                wanted.contains(name),
                "{name} is served but nothing loads it"
            );
        }
    }
}
