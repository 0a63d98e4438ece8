//! Requests to the HTTP API as they arrive: the whole router (control API behind Basic
//! authentication, token minting, the demo's token route, health, OpenAPI), over rooms
//! that exist only as answers, so that what is fuzzed is Chorus's reading of requests:
//! paths, the Authorization header, JSON bodies and their checks.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chorus_api::{ApiConfig, ApiSecret, ApiState, Keys};
use chorus_protocol::control::{
    CreateInvitationRequest, CreateRoomRequest, DrainStatus, ForwardingStats, InvitationEnd,
    InvitationInfo, MediaStats, RoomInfo, RtcpStats, UnroutableStats,
};
use chorus_protocol::{Grants, ParticipantInfo, TrackInfo};
use chorus_room_api::{
    BoxFuture, Histogram, JoinError, JoinRequest, JoinedSession, RoomError, Rooms, ServerMetrics,
    WebhookStats,
};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

const KEY: &str = "devkey";
const SECRET: &str = "devsecret-for-fuzzing-0123456789abcdef";

const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
];

/// The input is `method byte, path \n, Authorization \n, body`: the method byte picks
/// one of five methods; its top bit keeps the Authorization line as given, else the
/// right credentials are sent (so the fuzzer reaches the handlers).
pub fn control_api(data: &[u8]) {
    let Some((&method, rest)) = data.split_first() else {
        return;
    };
    let mut parts = rest.splitn(3, |b| *b == b'\n');
    let path = parts.next().unwrap_or_default();
    let auth = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default();
    let Ok(path) = std::str::from_utf8(path) else {
        return;
    };
    let auth = if method & 0x80 != 0 {
        auth.to_vec()
    } else {
        format!("Basic {}", STANDARD.encode(format!("{KEY}:{SECRET}"))).into_bytes()
    };
    let Ok(request) = Request::builder()
        .method(METHODS[usize::from(method & 0x7f) % METHODS.len()].clone())
        .uri(path)
        .header(header::AUTHORIZATION, auth)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_vec()))
    else {
        return;
    };
    let config = ApiConfig {
        keys: Keys::new(KEY, ApiSecret::new(SECRET)),
        demo_enabled: true,
        public_url: "http://127.0.0.1:7880".into(),
        allowed_origins: Vec::new(),
        turn: None,
    };
    let state = ApiState::with_rooms(Arc::new(NoRooms), config, CancellationToken::new());
    let app = chorus_api::router(state);
    RUNTIME.with(|rt| {
        rt.block_on(async {
            let response = app
                .oneshot(request)
                .await
                .expect("the router is infallible");
            let status = response.status();
            assert!(
                !status.is_server_error() || status.as_u16() == 503,
                "{status} for a request"
            );
            let _ = axum::body::to_bytes(response.into_body(), 1 << 20).await;
        })
    });
}

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
}

fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(async move { value })
}

fn zero_media() -> MediaStats {
    MediaStats {
        received: 0,
        receive_syscalls: 0,
        received_bytes: 0,
        sent_bytes: 0,
        rate_limited: 0,
        unroutable: UnroutableStats {
            unknown_addr: 0,
            unknown_ufrag: 0,
            bad_integrity: 0,
        },
        inbox_full: 0,
        sent: 0,
        send_dropped: 0,
        send_errors: 0,
        send_syscalls: 0,
        gso_datagrams: 0,
        srtp_refused: 0,
        rtcp: RtcpStats {
            delivered: 0,
            dropped: Default::default(),
        },
    }
}

/// Rooms that never exist: every lookup answers "not found", a create the request's
/// own checks let through answers "exists".
struct NoRooms;

impl Rooms for NoRooms {
    fn create_room(&self, req: CreateRoomRequest) -> BoxFuture<'_, Result<RoomInfo, RoomError>> {
        ready(Err(RoomError::RoomExists(req.name)))
    }
    fn list_rooms(&self) -> BoxFuture<'_, Vec<RoomInfo>> {
        ready(Vec::new())
    }
    fn room_info<'a>(&'a self, room: &'a str) -> BoxFuture<'a, Result<RoomInfo, RoomError>> {
        ready(Err(RoomError::RoomNotFound(room.to_owned())))
    }
    fn delete_room<'a>(&'a self, room: &'a str) -> BoxFuture<'a, Result<(), RoomError>> {
        ready(Err(RoomError::RoomNotFound(room.to_owned())))
    }
    fn list_participants<'a>(
        &'a self,
        room: &'a str,
    ) -> BoxFuture<'a, Result<Vec<ParticipantInfo>, RoomError>> {
        ready(Err(RoomError::RoomNotFound(room.to_owned())))
    }
    fn participant<'a>(
        &'a self,
        room: &'a str,
        _identity: &'a str,
    ) -> BoxFuture<'a, Result<ParticipantInfo, RoomError>> {
        ready(Err(RoomError::RoomNotFound(room.to_owned())))
    }
    fn remove_participant<'a>(
        &'a self,
        room: &'a str,
        _identity: &'a str,
        _message: Option<String>,
    ) -> BoxFuture<'a, Result<(), RoomError>> {
        ready(Err(RoomError::RoomNotFound(room.to_owned())))
    }
    fn hold_participant<'a>(
        &'a self,
        room: &'a str,
        _identity: &'a str,
        _held: bool,
    ) -> BoxFuture<'a, Result<ParticipantInfo, RoomError>> {
        ready(Err(RoomError::RoomNotFound(room.to_owned())))
    }
    fn mute_track<'a>(
        &'a self,
        room: &'a str,
        _identity: &'a str,
        _track_id: &'a str,
        _muted: bool,
    ) -> BoxFuture<'a, Result<TrackInfo, RoomError>> {
        ready(Err(RoomError::RoomNotFound(room.to_owned())))
    }
    fn update_permissions<'a>(
        &'a self,
        room: &'a str,
        _identity: &'a str,
        _grants: Grants,
    ) -> BoxFuture<'a, Result<ParticipantInfo, RoomError>> {
        ready(Err(RoomError::RoomNotFound(room.to_owned())))
    }
    fn create_rtp_participant<'a>(
        &'a self,
        room: &'a str,
        _req: chorus_protocol::control::CreateRtpParticipantRequest,
    ) -> BoxFuture<'a, Result<chorus_protocol::control::RtpParticipantInfo, RoomError>> {
        ready(Err(RoomError::RoomNotFound(room.to_owned())))
    }
    fn answer_rtp_participant<'a>(
        &'a self,
        room: &'a str,
        _identity: &'a str,
    ) -> BoxFuture<'a, Result<ParticipantInfo, RoomError>> {
        ready(Err(RoomError::RoomNotFound(room.to_owned())))
    }
    fn join<'a>(
        &'a self,
        room: &'a str,
        _who: JoinRequest,
    ) -> BoxFuture<'a, Result<JoinedSession, JoinError>> {
        ready(Err(JoinError::RoomNotFound(room.to_owned())))
    }
    fn invite<'a>(
        &'a self,
        room: &'a str,
        _req: CreateInvitationRequest,
    ) -> BoxFuture<'a, Result<InvitationInfo, RoomError>> {
        ready(Err(RoomError::RoomNotFound(room.to_owned())))
    }
    fn end_invitation<'a>(
        &'a self,
        room: &'a str,
        _invitation_id: &'a str,
        _reason: InvitationEnd,
    ) -> BoxFuture<'a, Result<(), RoomError>> {
        ready(Err(RoomError::RoomNotFound(room.to_owned())))
    }
    fn decide_lobby<'a>(
        &'a self,
        room: &'a str,
        _participant: &'a str,
        _admit: bool,
    ) -> BoxFuture<'a, Result<(), RoomError>> {
        ready(Err(RoomError::RoomNotFound(room.to_owned())))
    }
    fn media_stats(&self) -> MediaStats {
        zero_media()
    }
    fn drain(&self, within: Option<Duration>) -> DrainStatus {
        let ms = within.unwrap_or(Duration::from_secs(30)).as_millis() as u64;
        DrainStatus {
            since_unix_ms: 1_000,
            deadline_unix_ms: 1_000u64.saturating_add(ms),
        }
    }
    fn drain_status(&self) -> Option<DrainStatus> {
        None
    }
    fn server_metrics(&self) -> BoxFuture<'_, ServerMetrics> {
        ready(ServerMetrics {
            rooms: 0,
            participants: 0,
            tracks: 0,
            forwarding: ForwardingStats::default(),
            media: zero_media(),
            room_turns: Histogram::default(),
            webhooks: WebhookStats::default(),
            departures: Vec::new(),
            removals: Default::default(),
        })
    }
}
