//! The control API under `/v1`: rooms, participants, tracks, tokens, media
//! counters. Callers
//! authenticate with HTTP Basic `api_key:api_secret`.
//!
//! The routes are a table ([`routes`]) so the OpenAPI test can hold the
//! document against exactly what is served.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::ApiState;
use crate::error::ApiError;

mod calling;
mod rooms;
mod rtp;
mod server;
#[cfg(test)]
mod tests;
mod tokens;

use calling::{admit, cancel_invitation, decline_invitation, invite, reject};
use rooms::{
    create_room, delete_room, hold_participant, list_participants, list_rooms, mute_track,
    participant, remove_participant, room_info, update_permissions,
};
use rtp::{answer_rtp_participant, create_rtp_participant, delete_rtp_participant};
use server::{drain, media_stats};
use tokens::create_token;
#[cfg(test)]
pub(crate) use tokens::{MAX_IDENTITY_CHARS, check_name};
pub(crate) use tokens::{check_room, mint_error};

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
            "/v1/rooms/{room}/participants/{identity}/hold",
            hold_participant,
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
        route(Method::POST, "/v1/rooms/{room}/invitations", invite),
        route(
            Method::DELETE,
            "/v1/rooms/{room}/invitations/{invitation_id}",
            cancel_invitation,
        ),
        route(
            Method::POST,
            "/v1/rooms/{room}/invitations/{invitation_id}/decline",
            decline_invitation,
        ),
        route(
            Method::POST,
            "/v1/rooms/{room}/lobby/{participant}/admit",
            admit,
        ),
        route(
            Method::POST,
            "/v1/rooms/{room}/lobby/{participant}/reject",
            reject,
        ),
        route(
            Method::POST,
            "/v1/rooms/{room}/rtp_participants",
            create_rtp_participant,
        ),
        route(
            Method::DELETE,
            "/v1/rooms/{room}/rtp_participants/{identity}",
            delete_rtp_participant,
        ),
        route(
            Method::POST,
            "/v1/rooms/{room}/rtp_participants/{identity}/answer",
            answer_rtp_participant,
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
