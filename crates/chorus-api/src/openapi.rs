//! The OpenAPI 3.0 document of the control API, served at `GET /v1/openapi.json`
//! without authentication.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::ApiState;

/// The document, as written in `openapi.json`.
pub const DOCUMENT: &str = include_str!("../openapi.json");

pub fn router() -> Router<ApiState> {
    Router::new().route("/v1/openapi.json", get(document))
}

async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::control::routes;
    use crate::testing::{self, FakeRooms};
    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use chorus_protocol::control::{
        CreateInvitationRequest, CreateRoomRequest, CreateRtpParticipantRequest,
        CreateTokenRequest, ErrorBody, ErrorDetail, HoldRequest, MuteTrackRequest, ParticipantList,
        RoomList, RtpParticipantInfo, TokenResponse, UpdatePermissionsRequest,
    };
    use chorus_protocol::{Grants, LeaveReason, ParticipantState, TrackSource};
    use serde_json::Value;
    use tower::ServiceExt;

    fn doc() -> Value {
        serde_json::from_str(DOCUMENT).expect("openapi.json parses")
    }

    const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

    #[test]
    fn documents_exactly_the_served_routes() {
        let doc = doc();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.0"));
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in METHODS {
                if item.get(method).is_some() {
                    documented.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        let served: BTreeSet<_> = routes()
            .iter()
            .map(|r| (r.method.as_str().to_owned(), r.path.to_owned()))
            .collect();
        assert_eq!(documented, served);
    }

    #[test]
    fn every_operation_is_secured_and_lists_its_errors() {
        let doc = doc();
        assert_eq!(
            doc["components"]["securitySchemes"]["basicAuth"]["scheme"],
            "basic"
        );
        assert!(doc["security"][0]["basicAuth"].is_array());
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in METHODS {
                let Some(op) = item.get(method) else { continue };
                let responses = op["responses"].as_object().unwrap();
                assert!(responses.contains_key("401"), "{method} {path}: no 401");
                assert!(
                    responses.keys().any(|k| k.starts_with('2')),
                    "{method} {path}: no success"
                );
                assert!(op["operationId"].is_string(), "{method} {path}");
                // Whatever a route asks a room can meet it missing, closing (schemathesis
                // found `409 room_closed` undocumented on the reads) or busy.
                if path.starts_with("/v1/rooms/{room}") {
                    for status in ["404", "409", "503"] {
                        assert!(
                            responses.contains_key(status),
                            "{method} {path}: no {status}"
                        );
                    }
                }
            }
        }
    }

    /// Every `$ref` points at a schema or response that exists.
    #[test]
    fn references_resolve() {
        fn walk(value: &Value, doc: &Value) {
            match value {
                Value::Object(map) => {
                    if let Some(Value::String(r)) = map.get("$ref") {
                        let pointer = r.strip_prefix('#').expect("local reference");
                        assert!(doc.pointer(pointer).is_some(), "dangling {r}");
                    }
                    map.values().for_each(|v| walk(v, doc));
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, doc)),
                _ => {}
            }
        }
        let doc = doc();
        walk(&doc, &doc);
    }

    /// The schemas name every field the wire types serialize, and require the
    /// ones that are not optional.
    #[test]
    fn schemas_match_the_wire_types() {
        let doc = doc();
        let participant = testing::participant("alice", Grants::default());
        let samples: Vec<(&str, Value)> = vec![
            (
                "CreateRoomRequest",
                serde_json::to_value(CreateRoomRequest {
                    name: "r".into(),
                    max_participants: Some(3),
                    lobby: true,
                })
                .unwrap(),
            ),
            (
                "RoomInfo",
                serde_json::to_value(testing::room_info_with_simulcast("r")).unwrap(),
            ),
            (
                "SimulcastStats",
                // `svc` is written only when true.
                serde_json::to_value(chorus_protocol::control::SimulcastStats {
                    svc: true,
                    ..testing::simulcast_stats("TR_1")
                })
                .unwrap(),
            ),
            (
                "SubscriberStats",
                serde_json::to_value(testing::subscriber_stats("alice")).unwrap(),
            ),
            (
                "LayerStats",
                serde_json::to_value(&testing::simulcast_stats("TR_1").layers[0]).unwrap(),
            ),
            (
                "ForwardingStats",
                serde_json::to_value(testing::room_info("r").forwarding).unwrap(),
            ),
            (
                "RoomList",
                serde_json::to_value(RoomList { rooms: vec![] }).unwrap(),
            ),
            (
                "ParticipantInfo",
                serde_json::to_value(&participant).unwrap(),
            ),
            (
                "ParticipantList",
                serde_json::to_value(ParticipantList {
                    participants: vec![],
                })
                .unwrap(),
            ),
            (
                "TrackInfo",
                serde_json::to_value(testing::simulcast_track("TR_1")).unwrap(),
            ),
            (
                "Grants",
                serde_json::to_value(Grants {
                    can_publish_sources: vec![TrackSource::Camera],
                    can_admit: true,
                    ..Grants::default()
                })
                .unwrap(),
            ),
            (
                "CreateInvitationRequest",
                serde_json::to_value(CreateInvitationRequest {
                    identity: "bob".into(),
                    name: Some("Bob".into()),
                    timeout_secs: Some(30),
                })
                .unwrap(),
            ),
            (
                "InvitationInfo",
                serde_json::to_value(testing::invitation("bob")).unwrap(),
            ),
            (
                "DepartedParticipant",
                serde_json::to_value(testing::departed("carol")).unwrap(),
            ),
            (
                "HoldRequest",
                serde_json::to_value(HoldRequest { held: true }).unwrap(),
            ),
            (
                "MuteTrackRequest",
                serde_json::to_value(MuteTrackRequest { muted: true }).unwrap(),
            ),
            (
                "UpdatePermissionsRequest",
                serde_json::to_value(UpdatePermissionsRequest {
                    grants: Grants::default(),
                })
                .unwrap(),
            ),
            (
                "CreateTokenRequest",
                serde_json::to_value(CreateTokenRequest {
                    room: "r".into(),
                    identity: "i".into(),
                    name: Some("n".into()),
                    ttl_secs: Some(60),
                    grants: Some(Grants::default()),
                })
                .unwrap(),
            ),
            (
                "TokenResponse",
                serde_json::to_value(TokenResponse {
                    token: "t".into(),
                    url: "u".into(),
                })
                .unwrap(),
            ),
            (
                "MediaStats",
                serde_json::to_value(testing::media_stats()).unwrap(),
            ),
            (
                "UnroutableStats",
                serde_json::to_value(testing::media_stats().unroutable).unwrap(),
            ),
            (
                "RtcpStats",
                serde_json::to_value(testing::media_stats().rtcp).unwrap(),
            ),
            (
                "CreateRtpParticipantRequest",
                serde_json::to_value(CreateRtpParticipantRequest {
                    identity: "phone".into(),
                    name: Some("Phone".into()),
                    codec: "pcmu".into(),
                    remote_address: "127.0.0.1:4000".into(),
                    payload_type: Some(0),
                    srtp: Some(chorus_protocol::control::SdesParams {
                        suite: "AES_CM_128_HMAC_SHA1_80".into(),
                        key: "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH".into(),
                    }),
                    early_media: true,
                })
                .unwrap(),
            ),
            (
                "RtpParticipantInfo",
                serde_json::to_value(RtpParticipantInfo {
                    participant: participant.clone(),
                    codec: "pcmu".into(),
                    payload_type: 0,
                    local_address: "127.0.0.1:40000".into(),
                    remote_address: "127.0.0.1:4000".into(),
                    ssrc: 7,
                    srtp: Some(chorus_protocol::control::SdesParams {
                        suite: "AES_CM_128_HMAC_SHA1_80".into(),
                        key: "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJ".into(),
                    }),
                })
                .unwrap(),
            ),
            (
                "ErrorBody",
                serde_json::to_value(ErrorBody {
                    error: ErrorDetail {
                        code: "c".into(),
                        message: "m".into(),
                    },
                })
                .unwrap(),
            ),
        ];
        for (name, sample) in samples {
            let schema = &doc["components"]["schemas"][name];
            let properties = schema["properties"]
                .as_object()
                .unwrap_or_else(|| panic!("schema {name} has no properties"));
            let fields = sample.as_object().unwrap();
            let field_names: BTreeSet<_> = fields.keys().collect();
            let documented: BTreeSet<_> = properties.keys().collect();
            assert_eq!(field_names, documented, "fields of {name}");
            for required in schema["required"].as_array().into_iter().flatten() {
                let required = required.as_str().unwrap();
                assert!(fields.contains_key(required), "{name}.{required}");
            }
        }
        let enums = [
            (
                "TrackSource",
                ["microphone", "camera", "screen_share", "screen_share_audio"]
                    .map(str::to_owned)
                    .to_vec(),
            ),
            ("MediaKind", ["audio", "video"].map(str::to_owned).to_vec()),
            (
                "ParticipantState",
                ParticipantState::ALL
                    .iter()
                    .map(|s| serde_json::to_value(s).unwrap())
                    .map(|v| v.as_str().unwrap().to_owned())
                    .collect(),
            ),
            (
                "LeaveReason",
                LeaveReason::ALL
                    .iter()
                    .map(|r| r.as_str().to_owned())
                    .collect(),
            ),
        ];
        for (name, values) in enums {
            let documented: Vec<&str> = doc["components"]["schemas"][name]["enum"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert_eq!(documented, values, "{name}");
        }
    }

    #[tokio::test]
    async fn served_without_credentials() {
        let app = testing::app(FakeRooms::default());
        let response = app
            .oneshot(
                Request::builder()
                    .method(Method::GET)
                    .uri("/v1/openapi.json")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body = testing::body_json(response).await;
        assert_eq!(body, doc());
    }

    /// Every place the document takes a room name describes the rule the server applies
    /// (`valid_room_name`): schemathesis found `POST /v1/rooms` and `POST /v1/tokens`
    /// refusing names the document allowed.
    #[test]
    fn room_names_are_documented_as_the_server_checks_them() {
        let doc = doc();
        let schemas = [
            (
                "CreateRoomRequest.name",
                &doc["components"]["schemas"]["CreateRoomRequest"]["properties"]["name"],
            ),
            (
                "CreateTokenRequest.room",
                &doc["components"]["schemas"]["CreateTokenRequest"]["properties"]["room"],
            ),
            (
                "parameter room",
                &doc["components"]["parameters"]["Room"]["schema"],
            ),
        ];
        let long = "a".repeat(chorus_room_api::MAX_ROOM_NAME);
        let too_long = "a".repeat(chorus_room_api::MAX_ROOM_NAME + 1);
        let names = [
            "", "a", "standup", "a.b-c_D9", &long, &too_long, "a b", "a/b", "ä", "a\n", "%41",
        ];
        for (place, schema) in schemas {
            let pattern = regex::Regex::new(schema["pattern"].as_str().unwrap()).unwrap();
            let min = schema["minLength"].as_u64().unwrap() as usize;
            let max = schema["maxLength"].as_u64().unwrap() as usize;
            for name in names {
                let documented =
                    pattern.is_match(name) && (min..=max).contains(&name.chars().count());
                assert_eq!(
                    documented,
                    chorus_room_api::valid_room_name(name),
                    "{place}: {name:?}"
                );
            }
        }
    }

    /// The token request's identity is documented as the server checks it: characters
    /// (what `maxLength` counts), not bytes, and no control characters. Schemathesis
    /// found identities the document allowed refused (a control character; and the limit
    /// was in bytes).
    #[test]
    fn identities_are_documented_as_the_server_checks_them() {
        let doc = doc();
        let schema = &doc["components"]["schemas"]["CreateTokenRequest"]["properties"]["identity"];
        let pattern = regex::Regex::new(schema["pattern"].as_str().unwrap()).unwrap();
        let min = schema["minLength"].as_u64().unwrap() as usize;
        let max = schema["maxLength"].as_u64().unwrap() as usize;
        let max_chars = "é".repeat(crate::control::MAX_IDENTITY_CHARS);
        let too_many = "a".repeat(crate::control::MAX_IDENTITY_CHARS + 1);
        let identities = [
            "",
            "alice",
            "Alice Smith",
            "user/42",
            "\u{1F600}",
            &max_chars,
            &too_many,
            "a\u{7}",
            "\u{0}",
            "a\nb",
            "\u{7F}",
            "\u{85}",
            "\u{9F}",
            "\u{A0}",
            "a\u{200B}",
        ];
        for identity in identities {
            let documented =
                pattern.is_match(identity) && (min..=max).contains(&identity.chars().count());
            assert_eq!(
                documented,
                crate::control::check_name("identity", identity).is_ok(),
                "{identity:?}"
            );
        }
    }
}
