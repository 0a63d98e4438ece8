use super::*;
use crate::testing::{self, FakeRooms, body_json, request};
use crate::unix_now;
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
                Method::POST if r.path.ends_with("/rtp_participants") => {
                    json!({"identity": "phone", "codec": "pcmu", "remote_address": "127.0.0.1:4000"})
                }
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
    const ROOMS: &str = "/v1/rooms";
    const PERMISSIONS: &str = "/v1/rooms/fake/participants/alice/permissions";
    const MUTE: &str = "/v1/rooms/fake/participants/alice/tracks/TR_1/mute";
    let json = Some("application/json");
    let cases: [(&str, Method, &str, Option<&str>, &str); 8] = [
        ("not json", Method::POST, ROOMS, json, "{"),
        ("wrong shape", Method::POST, ROOMS, json, r#"{"nom":"x"}"#),
        ("wrong type", Method::POST, ROOMS, json, r#"{"name":7}"#),
        (
            "no content type",
            Method::POST,
            ROOMS,
            None,
            r#"{"name":"x"}"#,
        ),
        // serde takes a struct's fields as an array too; the API must not (schemathesis
        // found `{"grants": []}` accepted, resetting the grants).
        (
            "an array for a room",
            Method::POST,
            ROOMS,
            json,
            r#"["x", 5]"#,
        ),
        (
            "an array for grants",
            Method::PUT,
            PERMISSIONS,
            json,
            r#"{"grants": []}"#,
        ),
        ("an array body", Method::PUT, PERMISSIONS, json, r#"[{}]"#),
        ("an array for mute", Method::POST, MUTE, json, "[true]"),
    ];
    for (name, method, uri, content_type, body) in cases {
        let mut req = axum::http::Request::builder()
            .method(method)
            .uri(uri)
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
