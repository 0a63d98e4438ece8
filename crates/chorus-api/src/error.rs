//! Every HTTP error answers with a JSON [`ErrorBody`] carrying a stable code.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use chorus_protocol::control::{ErrorBody, ErrorDetail};
use chorus_room_api::{JoinError, RoomError};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// An error answer: HTTP status, stable code, human message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message.clone(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

impl From<RoomError> for ApiError {
    fn from(e: RoomError) -> Self {
        let status = match &e {
            RoomError::RoomNotFound(_)
            | RoomError::ParticipantNotFound(_)
            | RoomError::TrackNotFound(_)
            | RoomError::InvitationNotFound(_)
            | RoomError::NotInLobby(_) => StatusCode::NOT_FOUND,
            RoomError::RoomExists(_)
            | RoomError::RoomClosed
            | RoomError::AlreadyInvited(_)
            | RoomError::AlreadyInRoom(_)
            | RoomError::TooManyInvitations(_)
            | RoomError::TooManyRtpParticipants(_)
            | RoomError::RoomFull(_)
            | RoomError::IdentityInUse(_)
            | RoomError::AlreadyAnswered(_)
            | RoomError::NotAnswered(_) => StatusCode::CONFLICT,
            RoomError::InvalidRoomName(_)
            | RoomError::InvalidMaxParticipants { .. }
            | RoomError::InvalidInvitation(_)
            | RoomError::InvalidRtpParticipant(_) => StatusCode::BAD_REQUEST,
            RoomError::RemoteNotAllowed(_) => StatusCode::FORBIDDEN,
            RoomError::Busy
            | RoomError::TooManyRooms(_)
            | RoomError::Draining
            | RoomError::RtpSocket(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        Self::new(status, e.code(), e.to_string())
    }
}

impl From<JoinError> for ApiError {
    fn from(e: JoinError) -> Self {
        let status = match &e {
            JoinError::RoomNotFound(_) => StatusCode::NOT_FOUND,
            JoinError::RoomFull(_) | JoinError::RoomClosed => StatusCode::CONFLICT,
            JoinError::Removed(_) => StatusCode::FORBIDDEN,
            JoinError::InvalidRoomName(_) => StatusCode::BAD_REQUEST,
            JoinError::TooManyRooms(_) | JoinError::Transport(_) | JoinError::Draining => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            JoinError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
        };
        Self::new(status, e.code(), e.to_string())
    }
}

/// Like [`axum::Json`], but a body that does not parse answers with a JSON
/// `invalid_request` error (`payload_too_large` past the body limit).
pub struct JsonBody<T>(pub T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<Object<T>>::from_request(req, state).await {
            Ok(Json(Object(value))) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// A body read from a JSON object only: serde's derived `Deserialize` for a struct also
/// takes an array of its fields in order (`["standup"]` as a room), which the OpenAPI
/// document does not allow (found by the control API fuzzing).
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Fields<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        deserializer
            .deserialize_map(Fields(std::marker::PhantomData))
            .map(Object)
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    // One status for every malformed body (axum would say 415 or 422), as the OpenAPI document says.
    let (status, code) = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    } else {
        (StatusCode::BAD_REQUEST, "invalid_request")
    };
    ApiError::new(status, code, rejection.body_text())
}

/// Like [`axum::extract::Path`], rejecting with a JSON `invalid_request` error.
pub struct PathParams<T>(pub T);

impl<T, S> FromRequestParts<S> for PathParams<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(rejection) => Err(path_rejection(rejection)),
        }
    }
}

fn path_rejection(rejection: PathRejection) -> ApiError {
    ApiError::new(rejection.status(), "invalid_request", rejection.body_text())
}

/// Answer of every route that does not exist.
pub async fn not_found() -> ApiError {
    ApiError::not_found()
}

/// Answer of a known route asked with a method it does not have.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_errors_map_to_statuses() {
        let cases = [
            (RoomError::RoomNotFound("r".into()), 404, "room_not_found"),
            (RoomError::RoomExists("r".into()), 409, "room_exists"),
            (
                RoomError::InvalidRoomName("x".into()),
                400,
                "invalid_room_name",
            ),
            (
                RoomError::InvalidMaxParticipants {
                    got: 0,
                    ceiling: 350,
                },
                400,
                "invalid_max_participants",
            ),
            (
                RoomError::ParticipantNotFound("p".into()),
                404,
                "participant_not_found",
            ),
            (RoomError::TrackNotFound("t".into()), 404, "track_not_found"),
            (RoomError::RoomClosed, 409, "room_closed"),
            (RoomError::Busy, 503, "busy"),
            (RoomError::TooManyRooms(10), 503, "too_many_rooms"),
            (
                RoomError::AlreadyAnswered("phone".into()),
                409,
                "already_answered",
            ),
            (RoomError::NotAnswered("phone".into()), 409, "not_answered"),
        ];
        for (e, status, code) in cases {
            let api = ApiError::from(e.clone());
            assert_eq!(api.status.as_u16(), status, "{e:?}");
            assert_eq!(api.code, code, "{e:?}");
            assert_eq!(api.message, e.to_string());
        }
    }

    #[test]
    fn error_body_shape() {
        let body = serde_json::to_value(ApiError::from(RoomError::Busy).body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": {"code": "busy", "message": "the server is busy; try again"}})
        );
    }
}
