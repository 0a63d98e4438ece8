//! The control API under `/v1`: rooms, participants, tracks, tokens, media
//! counters. Callers
//! authenticate with HTTP Basic `api_key:api_secret`.
//!
//! The routes are a table ([`routes`]) so the OpenAPI test can hold the
//! document against exactly what is served.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use axum::{Extension, Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chorus_protocol::control::{
    CreateRoomRequest, CreateTokenRequest, DrainStatus, MediaStats, MuteTrackRequest,
    ParticipantList, RoomList, TokenResponse, UpdatePermissionsRequest,
};
use serde::Deserialize;

use crate::error::{ApiError, JsonBody, PathParams};
use crate::token::{DEFAULT_TTL_SECS, MAX_TTL_SECS, MintError, NewToken};
use crate::{ApiState, unix_now};

/// Longest room name or identity accepted in a token request, in bytes.
const MAX_NAME_BYTES: usize = 256;

/// One control route: method, path (axum syntax, same as OpenAPI), handler.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    handler: MethodRouter<ApiState>,
}

fn route<H, T>(method: Method, path: &'static str, handler: H) -> Route
where
    H: axum::handler::Handler<T, ApiState>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone()).expect("standard method");
    Route {
        method,
        path,
        handler: on(filter, handler),
    }
}

/// Every control route.
pub fn routes() -> Vec<Route> {
    vec![
        route(Method::POST, "/v1/rooms", create_room),
        route(Method::GET, "/v1/rooms", list_rooms),
        route(Method::GET, "/v1/rooms/{room}", room_info),
        route(Method::DELETE, "/v1/rooms/{room}", delete_room),
        route(
            Method::GET,
            "/v1/rooms/{room}/participants",
            list_participants,
        ),
        route(
            Method::GET,
            "/v1/rooms/{room}/participants/{identity}",
            participant,
        ),
        route(
            Method::DELETE,
            "/v1/rooms/{room}/participants/{identity}",
            remove_participant,
        ),
        route(
            Method::POST,
            "/v1/rooms/{room}/participants/{identity}/tracks/{track_id}/mute",
            mute_track,
        ),
        route(
            Method::PUT,
            "/v1/rooms/{room}/participants/{identity}/permissions",
            update_permissions,
        ),
        route(Method::POST, "/v1/tokens", create_token),
        route(Method::GET, "/v1/media", media_stats),
        route(Method::POST, "/v1/drain", drain),
    ]
}

/// The control routes behind Basic authentication.
pub fn router(state: &ApiState) -> Router<ApiState> {
    routes()
        .into_iter()
        .fold(Router::new(), |router, r| router.route(r.path, r.handler))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate))
}

/// The API key an authenticated request came with.
#[derive(Debug, Clone)]
pub struct Caller {
    pub api_key: String,
}

async fn authenticate(State(state): State<ApiState>, mut req: Request, next: Next) -> Response {
    let credentials = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(parse_basic);
    let Some((api_key, secret)) = credentials else {
        return unauthorized("missing or malformed Basic credentials");
    };
    if !state.config().keys.check_secret(&api_key, &secret) {
        return unauthorized("unknown API key or wrong secret");
    }
    req.extensions_mut().insert(Caller { api_key });
    next.run(req).await
}

fn unauthorized(message: &str) -> Response {
    let mut response =
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"chorus\""),
    );
    response
}

/// `Basic base64(key:secret)` → `(key, secret)`.
fn parse_basic(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (key, secret) = decoded.split_once(':')?;
    if key.is_empty() {
        return None;
    }
    Some((key.to_owned(), secret.to_owned()))
}

async fn create_room(
    State(state): State<ApiState>,
    JsonBody(req): JsonBody<CreateRoomRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let info = state.rooms().create_room(req).await?;
    Ok((StatusCode::CREATED, Json(info)))
}

async fn list_rooms(State(state): State<ApiState>) -> Json<RoomList> {
    Json(RoomList {
        rooms: state.rooms().list_rooms().await,
    })
}

async fn room_info(
    State(state): State<ApiState>,
    PathParams(room): PathParams<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(state.rooms().room_info(&room).await?))
}

async fn delete_room(
    State(state): State<ApiState>,
    PathParams(room): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    state.rooms().delete_room(&room).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_participants(
    State(state): State<ApiState>,
    PathParams(room): PathParams<String>,
) -> Result<Json<ParticipantList>, ApiError> {
    let participants = state.rooms().list_participants(&room).await?;
    Ok(Json(ParticipantList { participants }))
}

async fn participant(
    State(state): State<ApiState>,
    PathParams((room, identity)): PathParams<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(state.rooms().participant(&room, &identity).await?))
}

async fn remove_participant(
    State(state): State<ApiState>,
    PathParams((room, identity)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.rooms().remove_participant(&room, &identity).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn mute_track(
    State(state): State<ApiState>,
    PathParams((room, identity, track_id)): PathParams<(String, String, String)>,
    JsonBody(req): JsonBody<MuteTrackRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let track = state
        .rooms()
        .mute_track(&room, &identity, &track_id, req.muted)
        .await?;
    Ok(Json(track))
}

async fn update_permissions(
    State(state): State<ApiState>,
    PathParams((room, identity)): PathParams<(String, String)>,
    JsonBody(req): JsonBody<UpdatePermissionsRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let info = state
        .rooms()
        .update_permissions(&room, &identity, req.grants)
        .await?;
    Ok(Json(info))
}

async fn create_token(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    JsonBody(req): JsonBody<CreateTokenRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let grant = new_token(req)?;
    let token = state
        .config()
        .keys
        .mint(&caller.api_key, grant, unix_now())
        .map_err(mint_error)?;
    Ok(Json(TokenResponse {
        token,
        url: state.config().signaling_url(),
    }))
}

async fn media_stats(State(state): State<ApiState>) -> Json<MediaStats> {
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
async fn drain(
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

/// Checks a token request and fills in its defaults.
fn new_token(req: CreateTokenRequest) -> Result<NewToken, ApiError> {
    check_room(&req.room)?;
    check_name("identity", &req.identity)?;
    let ttl_secs = req.ttl_secs.unwrap_or(DEFAULT_TTL_SECS);
    if ttl_secs == 0 || ttl_secs > MAX_TTL_SECS {
        return Err(ApiError::invalid_request(format!(
            "ttl_secs must be between 1 and {MAX_TTL_SECS}"
        )));
    }
    Ok(NewToken {
        room: req.room,
        identity: req.identity,
        name: req.name.unwrap_or_default(),
        grants: req.grants.unwrap_or_default(),
        ttl_secs,
    })
}

/// Rooms follow the registry's naming rule, so a token is never minted for a room no one can join.
pub(crate) fn check_room(value: &str) -> Result<(), ApiError> {
    if !chorus_room_api::valid_room_name(value) {
        return Err(ApiError::invalid_request(format!(
            "room must be 1 to {} bytes of A-Z a-z 0-9 - _ .",
            chorus_room_api::MAX_ROOM_NAME
        )));
    }
    Ok(())
}

pub(crate) fn check_name(what: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() || value.len() > MAX_NAME_BYTES || value.chars().any(char::is_control) {
        return Err(ApiError::invalid_request(format!(
            "{what} must be 1 to {MAX_NAME_BYTES} bytes without control characters"
        )));
    }
    Ok(())
}

pub(crate) fn mint_error(e: MintError) -> ApiError {
    match e {
        MintError::InvalidTtl(_) => ApiError::invalid_request(e.to_string()),
        MintError::UnknownKey(_) | MintError::Encode(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "cannot mint the token",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{self, FakeRooms, body_json, request};
    use axum::body::Body;
    use chorus_protocol::Grants;
    use chorus_room_api::RoomError;
    use serde_json::json;
    use tower::ServiceExt;

    fn sample_path(path: &str) -> String {
        path.replace("{room}", "standup")
            .replace("{identity}", "alice")
            .replace("{track_id}", "TR_1")
    }

    #[tokio::test]
    async fn every_route_demands_credentials() {
        let app = testing::app(FakeRooms::default());
        let bad_auths = [
            None,
            Some("Bearer abc".to_owned()),
            Some("Basic !!!notbase64".to_owned()),
            Some(format!("Basic {}", STANDARD.encode("no-colon"))),
            Some(testing::basic("devkey", "wrong-secret")),
            Some(testing::basic("nokey", testing::SECRET)),
            Some(testing::basic("", testing::SECRET)),
        ];
        for r in routes() {
            for auth in &bad_auths {
                let mut req = axum::http::Request::builder()
                    .method(r.method.clone())
                    .uri(sample_path(r.path))
                    .header(header::CONTENT_TYPE, "application/json");
                if let Some(auth) = auth {
                    req = req.header(header::AUTHORIZATION, auth);
                }
                let response = app
                    .clone()
                    .oneshot(req.body(Body::from("{}")).unwrap())
                    .await
                    .unwrap();
                assert_eq!(
                    response.status(),
                    StatusCode::UNAUTHORIZED,
                    "{} {} with {auth:?}",
                    r.method,
                    r.path
                );
                assert_eq!(
                    response.headers()[header::WWW_AUTHENTICATE],
                    "Basic realm=\"chorus\""
                );
                let body = body_json(response).await;
                assert_eq!(body["error"]["code"], "unauthorized");
                assert!(body["error"]["message"].is_string());
            }
        }
    }

    #[tokio::test]
    async fn room_errors_come_back_as_json() {
        let cases = [
            (RoomError::RoomNotFound("standup".into()), 404),
            (RoomError::ParticipantNotFound("alice".into()), 404),
            (RoomError::Busy, 503),
        ];
        for (err, status) in cases {
            let rooms = FakeRooms {
                fail_with: Some(err.clone()),
                ..FakeRooms::default()
            };
            let app = testing::app(rooms);
            for r in routes().iter().filter(|r| r.path.starts_with("/v1/rooms/")) {
                let body = match r.method {
                    Method::POST => json!({"muted": true}),
                    Method::PUT => json!({"grants": {}}),
                    _ => json!(null),
                };
                let response = app
                    .clone()
                    .oneshot(request(r.method.clone(), &sample_path(r.path), Some(body)))
                    .await
                    .unwrap();
                assert_eq!(
                    response.status().as_u16(),
                    status,
                    "{} {}",
                    r.method,
                    r.path
                );
                let body = body_json(response).await;
                assert_eq!(body["error"]["code"], err.code());
                assert_eq!(body["error"]["message"], err.to_string());
            }
        }
    }

    #[tokio::test]
    async fn create_room_is_201_and_delete_is_204() {
        let app = testing::app(FakeRooms::default());
        let response = app
            .clone()
            .oneshot(request(
                Method::POST,
                "/v1/rooms",
                Some(json!({"name": "standup", "max_participants": 10})),
            ))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let body = body_json(response).await;
        assert_eq!(body["name"], "standup");
        assert_eq!(body["max_participants"], 10);

        let response = app
            .clone()
            .oneshot(request(Method::DELETE, "/v1/rooms/standup", None))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);

        let response = app
            .oneshot(request(Method::GET, "/v1/rooms", None))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(body_json(response).await["rooms"][0]["name"], "fake");
    }

    #[tokio::test]
    async fn bad_bodies_are_invalid_request() {
        let app = testing::app(FakeRooms::default());
        let cases: [(&str, Option<&str>, &str); 4] = [
            ("not json", Some("application/json"), "{"),
            ("wrong shape", Some("application/json"), r#"{"nom":"x"}"#),
            ("wrong type", Some("application/json"), r#"{"name":7}"#),
            ("no content type", None, r#"{"name":"x"}"#),
        ];
        for (name, content_type, body) in cases {
            let mut req = axum::http::Request::builder()
                .method(Method::POST)
                .uri("/v1/rooms")
                .header(header::AUTHORIZATION, testing::auth());
            if let Some(ct) = content_type {
                req = req.header(header::CONTENT_TYPE, ct);
            }
            let response = app
                .clone()
                .oneshot(req.body(Body::from(body)).unwrap())
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{name}");
            let body = body_json(response).await;
            assert_eq!(body["error"]["code"], "invalid_request", "{name}");
        }
    }

    #[tokio::test]
    async fn oversized_body_is_refused() {
        let app = testing::app(FakeRooms::default());
        let name = "x".repeat(crate::MAX_BODY_BYTES + 1);
        let response = app
            .oneshot(request(
                Method::POST,
                "/v1/rooms",
                Some(json!({"name": name})),
            ))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            body_json(response).await["error"]["code"],
            "payload_too_large"
        );
    }

    #[tokio::test]
    async fn unknown_routes_and_methods_are_json() {
        let app = testing::app(FakeRooms::default());
        let response = app
            .clone()
            .oneshot(request(Method::GET, "/v1/nothing", None))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(body_json(response).await["error"]["code"], "not_found");

        let response = app
            .oneshot(request(Method::PATCH, "/v1/rooms", None))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            body_json(response).await["error"]["code"],
            "method_not_allowed"
        );
    }

    #[tokio::test]
    async fn tokens_are_signed_with_the_callers_key() {
        let app = testing::app(FakeRooms::default());
        let response = app
            .clone()
            .oneshot(testing::request_as(
                "otherkey",
                testing::OTHER_SECRET,
                Method::POST,
                "/v1/tokens",
                Some(json!({
                    "room": "standup", "identity": "alice", "ttl_secs": 60,
                    "grants": {"can_publish": false}
                })),
            ))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = body_json(response).await;
        assert_eq!(body["url"], "ws://127.0.0.1:7880/v1/rtc");
        let claims = testing::keys()
            .verify(body["token"].as_str().unwrap(), unix_now())
            .unwrap();
        assert_eq!(claims.iss, "otherkey");
        assert_eq!(claims.sub, "alice");
        assert_eq!(claims.room, "standup");
        assert!(claims.exp <= unix_now() + 60);
        assert!(!claims.grants.can_publish);
        assert_eq!(
            claims.grants,
            Grants {
                can_publish: false,
                ..Grants::default()
            }
        );

        for bad in [
            json!({"room": "standup", "identity": "alice", "ttl_secs": 0}),
            json!({"room": "standup", "identity": "alice", "ttl_secs": 86401}),
            json!({"room": "", "identity": "alice"}),
            json!({"room": "bad name/x", "identity": "alice"}), // nobody could join it
            json!({"room": "standup", "identity": ""}),
            json!({"room": "standup", "identity": "a\nb"}),
        ] {
            let response = app
                .clone()
                .oneshot(request(Method::POST, "/v1/tokens", Some(bad.clone())))
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
            assert_eq!(
                body_json(response).await["error"]["code"],
                "invalid_request"
            );
        }
    }

    #[tokio::test]
    async fn media_counters_need_credentials_and_keep_every_field_apart() {
        let app = testing::app(FakeRooms::default());
        let anonymous = axum::http::Request::builder()
            .uri("/v1/media")
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(anonymous).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

        let response = app
            .oneshot(request(Method::GET, "/v1/media", None))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        // The fake's counters are 1, 2, 3, ... in declaration order (those added later, 15 on, last).
        let want = json!({
            "received": 1,
            "receive_syscalls": 15,
            "received_bytes": 16,
            "sent_bytes": 17,
            "rate_limited": 18,
            "unroutable": {"unknown_addr": 2, "unknown_ufrag": 3, "bad_integrity": 4},
            "inbox_full": 5,
            "sent": 6,
            "send_dropped": 7,
            "send_errors": 8,
            "send_syscalls": 9,
            "gso_datagrams": 10,
            "srtp_refused": 11,
            "rtcp": {"delivered": 12, "dropped": {"malformed": 13, "unknown_type": 14}},
        });
        assert_eq!(body_json(response).await, want);
    }

    #[test]
    fn basic_header_parsing() {
        let encoded = |s: &str| STANDARD.encode(s);
        let cases = [
            (format!("Basic {}", encoded("k:s")), Some(("k", "s"))),
            (format!("basic {}", encoded("k:s:t")), Some(("k", "s:t"))),
            (format!("Basic {}", encoded("k:")), Some(("k", ""))),
            (format!("Basic {}", encoded(":s")), None),
            (format!("Basic {}", encoded("ks")), None),
            ("Basic".to_owned(), None),
            ("Bearer xyz".to_owned(), None),
        ];
        for (header, want) in cases {
            let got = parse_basic(&header);
            let want = want.map(|(k, s)| (k.to_owned(), s.to_owned()));
            assert_eq!(got, want, "{header}");
        }
    }
}
