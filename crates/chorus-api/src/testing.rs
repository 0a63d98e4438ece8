//! Test helpers: a scripted [`Rooms`] fake and request builders.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chorus_protocol::control::{
    CreateInvitationRequest, CreateRoomRequest, DepartedParticipant, DrainStatus, InvitationEnd,
    InvitationInfo, MediaStats, RoomInfo, RtcpStats, UnroutableStats,
};
use chorus_protocol::signal::{ClientFrame, ServerMessage};
use chorus_protocol::{
    Grants, LeaveReason, MediaKind, ParticipantInfo, ParticipantState, TrackInfo, TrackSource,
};
use chorus_room_api::{
    BoxFuture, JoinError, JoinRequest, JoinedSession, RoomError, Rooms, ServerMetrics, SessionLink,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{ApiConfig, ApiSecret, ApiState, Keys};

pub const SECRET: &str = "devsecret-for-tests-0123456789abcdef";
pub const OTHER_SECRET: &str = "othersecret-for-tests-0123456789abcdef";

pub fn keys() -> Keys {
    Keys::new("devkey", ApiSecret::new(SECRET)).with("otherkey", ApiSecret::new(OTHER_SECRET))
}

pub fn config() -> ApiConfig {
    ApiConfig {
        keys: keys(),
        demo_enabled: true,
        public_url: "http://127.0.0.1:7880".into(),
        allowed_origins: Vec::new(),
        turn: None,
    }
}

pub fn state(rooms: FakeRooms) -> ApiState {
    ApiState::with_rooms(Arc::new(rooms), config(), CancellationToken::new())
}

pub fn app(rooms: FakeRooms) -> Router {
    crate::router(state(rooms))
}

pub fn basic(key: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{key}:{secret}")))
}

pub fn auth() -> String {
    basic("devkey", SECRET)
}

pub fn request(method: Method, uri: &str, body: Option<serde_json::Value>) -> Request<Body> {
    request_as("devkey", SECRET, method, uri, body)
}

pub fn request_as(
    key: &str,
    secret: &str,
    method: Method,
    uri: &str,
    body: Option<serde_json::Value>,
) -> Request<Body> {
    let builder = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, basic(key, secret));
    match body {
        Some(body) => builder
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
        None => builder.body(Body::empty()).unwrap(),
    }
}

pub async fn body_json(response: Response) -> serde_json::Value {
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "body is not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    })
}

/// What the signaling side did to a fake session.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkEvent {
    Sent(ClientFrame),
    Closed(LeaveReason),
}

/// A session the fake admitted; the test plays the room through it.
pub struct FakeSession {
    pub room: String,
    pub who: JoinRequest,
    /// Frames for the client.
    pub events: mpsc::Sender<ServerMessage>,
    /// What the client side sent to the room.
    pub link: mpsc::UnboundedReceiver<LinkEvent>,
}

/// Rooms that answer with canned values, or with `fail_with`.
#[derive(Default)]
pub struct FakeRooms {
    /// Every control operation fails with this.
    pub fail_with: Option<RoomError>,
    /// `join` fails with this.
    pub join_error: Option<JoinError>,
    /// Admitted sessions are handed to the test here.
    pub joined: Option<mpsc::UnboundedSender<FakeSession>>,
    /// Set by `drain`: since 1 000 ms, until then + the timeout asked for (30 s if none).
    pub drain: Arc<std::sync::Mutex<Option<DrainStatus>>>,
}

struct FakeLink(mpsc::UnboundedSender<LinkEvent>);

impl SessionLink for FakeLink {
    fn send(&self, frame: ClientFrame) -> BoxFuture<'_, Result<(), RoomError>> {
        let sent = self.0.send(LinkEvent::Sent(frame));
        Box::pin(async move { sent.map_err(|_| RoomError::RoomClosed) })
    }
    fn close(&self, reason: LeaveReason) -> BoxFuture<'_, ()> {
        let _ = self.0.send(LinkEvent::Closed(reason));
        Box::pin(async {})
    }
}

pub fn room_info(name: &str) -> RoomInfo {
    RoomInfo {
        name: name.into(),
        max_participants: 350,
        num_participants: 1,
        num_tracks: 1,
        created_at_ms: 1_700_000_000_000,
        lobby: false,
        num_waiting: 0,
        invitations: Vec::new(),
        recently_left: Vec::new(),
        refused_invitations: 0,
        refused_state_changes: 0,
        forwarding: chorus_protocol::control::ForwardingStats {
            forwarded: 120,
            resent: 4,
            skipped: [("muted".to_owned(), 3)].into(),
            srtp_profiles: [("SRTP_AEAD_AES_128_GCM".to_owned(), 2)].into(),
            plain_rtp_dropped: [("wrong_payload_type".to_owned(), 1)].into(),
            ..Default::default()
        },
        simulcast: Vec::new(),
        subscribers: Vec::new(),
    }
}

/// [`room_info`] with one simulcast video.
pub fn room_info_with_simulcast(name: &str) -> RoomInfo {
    RoomInfo {
        simulcast: vec![simulcast_stats("TR_1")],
        subscribers: vec![subscriber_stats("alice")],
        invitations: vec![invitation("bob")],
        recently_left: vec![departed("carol")],
        ..room_info(name)
    }
}

/// A subscriber's bandwidth estimate.
pub fn subscriber_stats(identity: &str) -> chorus_protocol::control::SubscriberStats {
    chorus_protocol::control::SubscriberStats {
        identity: identity.into(),
        estimated_bitrate_bps: 2_400_000,
        acknowledged_bitrate_bps: Some(1_900_000),
        loss_percent: 0.5,
        rtt_ms: 60,
        probes_sent: 4,
        probes_delivered: 3,
        probes_raised: 2,
        step_probes_asked: 3,
        step_probes_succeeded: 2,
        step_probes_failed: 1,
    }
}

pub fn simulcast_stats(track_id: &str) -> chorus_protocol::control::SimulcastStats {
    let layer = |rid: &str, index: u8| chorus_protocol::control::LayerStats {
        rid: rid.into(),
        index,
        ssrc: Some(1000 + u32::from(index)),
        packets: 300,
        bytes: 90_000,
        bitrate_bps: 150_000,
        fps: 30,
        keyframe_age_ms: Some(1200),
    };
    chorus_protocol::control::SimulcastStats {
        track_id: track_id.into(),
        forwarded: Some("f".into()),
        layers: vec![layer("q", 0), layer("h", 1), layer("f", 2)],
        svc: false,
    }
}

/// A camera in three simulcast layers.
pub fn simulcast_track(track_id: &str) -> TrackInfo {
    TrackInfo {
        source: TrackSource::Camera,
        kind: MediaKind::Video,
        layers: vec!["q".into(), "h".into(), "f".into()],
        ..track(track_id, false)
    }
}

pub fn track(track_id: &str, muted: bool) -> TrackInfo {
    TrackInfo {
        track_id: track_id.into(),
        participant_id: "PA_1".into(),
        source: TrackSource::Microphone,
        kind: MediaKind::Audio,
        muted,
        layers: Vec::new(),
    }
}

pub fn participant(identity: &str, grants: Grants) -> ParticipantInfo {
    ParticipantInfo {
        participant_id: "PA_1".into(),
        identity: identity.into(),
        name: identity.into(),
        state: ParticipantState::Connected,
        grants,
        tracks: vec![track("TR_1", false)],
        joined_at_ms: 1_700_000_000_000,
    }
}

/// Media counters with a different value in every field, so a test sees each one
/// land where it belongs.
pub fn invitation(identity: &str) -> InvitationInfo {
    InvitationInfo {
        invitation_id: "IN_0000000000000001".into(),
        identity: identity.into(),
        name: identity.into(),
        participant_id: "PA_000000000002".into(),
        created_at_ms: 1_700_000_000_000,
        expires_at_ms: 1_700_000_030_000,
    }
}

pub fn departed(identity: &str) -> DepartedParticipant {
    DepartedParticipant {
        participant_id: "PA_000000000003".into(),
        identity: identity.into(),
        name: identity.into(),
        state: ParticipantState::Disconnected,
        reason: LeaveReason::NoAnswer,
        left_at_ms: 1_700_000_040_000,
    }
}

pub fn media_stats() -> MediaStats {
    MediaStats {
        received: 1,
        receive_syscalls: 15,
        received_bytes: 16,
        sent_bytes: 17,
        rate_limited: 18,
        unroutable: UnroutableStats {
            unknown_addr: 2,
            unknown_ufrag: 3,
            bad_integrity: 4,
        },
        inbox_full: 5,
        sent: 6,
        send_dropped: 7,
        send_errors: 8,
        send_syscalls: 9,
        gso_datagrams: 10,
        srtp_refused: 11,
        rtcp: RtcpStats {
            delivered: 12,
            dropped: [
                ("malformed".to_owned(), 13),
                ("unknown_type".to_owned(), 14),
            ]
            .into(),
        },
    }
}

impl FakeRooms {
    fn answer<T: Send + 'static>(&self, value: T) -> BoxFuture<'_, Result<T, RoomError>> {
        let result = match &self.fail_with {
            Some(e) => Err(e.clone()),
            None => Ok(value),
        };
        Box::pin(async move { result })
    }
}

impl Rooms for FakeRooms {
    fn create_room(&self, req: CreateRoomRequest) -> BoxFuture<'_, Result<RoomInfo, RoomError>> {
        let mut info = room_info(&req.name);
        info.max_participants = req.max_participants.unwrap_or(350);
        self.answer(info)
    }
    fn list_rooms(&self) -> BoxFuture<'_, Vec<RoomInfo>> {
        Box::pin(async { vec![room_info("fake")] })
    }
    fn room_info<'a>(&'a self, room: &'a str) -> BoxFuture<'a, Result<RoomInfo, RoomError>> {
        self.answer(room_info(room))
    }
    fn delete_room<'a>(&'a self, _room: &'a str) -> BoxFuture<'a, Result<(), RoomError>> {
        self.answer(())
    }
    fn list_participants<'a>(
        &'a self,
        _room: &'a str,
    ) -> BoxFuture<'a, Result<Vec<ParticipantInfo>, RoomError>> {
        self.answer(vec![participant("alice", Grants::default())])
    }
    fn participant<'a>(
        &'a self,
        _room: &'a str,
        identity: &'a str,
    ) -> BoxFuture<'a, Result<ParticipantInfo, RoomError>> {
        self.answer(participant(identity, Grants::default()))
    }
    fn remove_participant<'a>(
        &'a self,
        _room: &'a str,
        _identity: &'a str,
        _message: Option<String>,
    ) -> BoxFuture<'a, Result<(), RoomError>> {
        self.answer(())
    }
    fn create_rtp_participant<'a>(
        &'a self,
        _room: &'a str,
        req: chorus_protocol::control::CreateRtpParticipantRequest,
    ) -> BoxFuture<'a, Result<chorus_protocol::control::RtpParticipantInfo, RoomError>> {
        self.answer(chorus_protocol::control::RtpParticipantInfo {
            participant: participant(&req.identity, Grants::default()),
            codec: req.codec,
            payload_type: req.payload_type.unwrap_or(0),
            local_address: "127.0.0.1:40000".into(),
            remote_address: req.remote_address,
            ssrc: 1,
            srtp: req.srtp,
        })
    }
    fn answer_rtp_participant<'a>(
        &'a self,
        _room: &'a str,
        identity: &'a str,
    ) -> BoxFuture<'a, Result<ParticipantInfo, RoomError>> {
        self.answer(participant(identity, Grants::default()))
    }
    fn hold_participant<'a>(
        &'a self,
        _room: &'a str,
        identity: &'a str,
        _held: bool,
    ) -> BoxFuture<'a, Result<ParticipantInfo, RoomError>> {
        self.answer(participant(identity, Grants::default()))
    }
    fn mute_track<'a>(
        &'a self,
        _room: &'a str,
        _identity: &'a str,
        track_id: &'a str,
        muted: bool,
    ) -> BoxFuture<'a, Result<TrackInfo, RoomError>> {
        self.answer(track(track_id, muted))
    }
    fn update_permissions<'a>(
        &'a self,
        _room: &'a str,
        identity: &'a str,
        grants: Grants,
    ) -> BoxFuture<'a, Result<ParticipantInfo, RoomError>> {
        self.answer(participant(identity, grants))
    }
    fn join<'a>(
        &'a self,
        room: &'a str,
        who: JoinRequest,
    ) -> BoxFuture<'a, Result<JoinedSession, JoinError>> {
        let result = match (&self.join_error, &self.joined) {
            (Some(e), _) => Err(e.clone()),
            (None, Some(joined)) => {
                let (events_tx, events_rx) = mpsc::channel(16);
                let (link_tx, link_rx) = mpsc::unbounded_channel();
                let _ = joined.send(FakeSession {
                    room: room.to_owned(),
                    who,
                    events: events_tx,
                    link: link_rx,
                });
                Ok(JoinedSession {
                    events: events_rx,
                    link: Box::new(FakeLink(link_tx)),
                })
            }
            (None, None) => Err(JoinError::RoomClosed),
        };
        Box::pin(async move { result })
    }
    fn invite<'a>(
        &'a self,
        _room: &'a str,
        req: CreateInvitationRequest,
    ) -> BoxFuture<'a, Result<InvitationInfo, RoomError>> {
        self.answer(invitation(&req.identity))
    }
    fn end_invitation<'a>(
        &'a self,
        _room: &'a str,
        _invitation_id: &'a str,
        _reason: InvitationEnd,
    ) -> BoxFuture<'a, Result<(), RoomError>> {
        self.answer(())
    }
    fn decide_lobby<'a>(
        &'a self,
        _room: &'a str,
        _participant: &'a str,
        _admit: bool,
    ) -> BoxFuture<'a, Result<(), RoomError>> {
        self.answer(())
    }
    fn media_stats(&self) -> MediaStats {
        media_stats()
    }
    fn drain(&self, within: Option<Duration>) -> DrainStatus {
        let ms = within.unwrap_or(Duration::from_secs(30)).as_millis() as u64;
        *self
            .drain
            .lock()
            .expect("not poisoned")
            .get_or_insert(DrainStatus {
                since_unix_ms: 1_000,
                deadline_unix_ms: 1_000 + ms,
            })
    }
    fn server_metrics(&self) -> BoxFuture<'_, ServerMetrics> {
        let mut forwarding = room_info("demo").forwarding;
        forwarding.forwarded = 42;
        forwarding.skipped.insert("muted".into(), 3);
        forwarding.feedback.plis_sent = 2;
        let reading = ServerMetrics {
            rooms: 1,
            participants: 2,
            tracks: 3,
            forwarding,
            media: media_stats(),
            room_turns: chorus_room_api::Histogram {
                buckets: vec![(0.001, 5), (f64::INFINITY, 1)],
                sum: 0.5,
                count: 6,
            },
            webhooks: chorus_room_api::WebhookStats {
                delivered: 7,
                failed: 1,
                dropped: 0,
            },
            departures: vec![("client_left", 4), ("media_timeout", 1)],
            removals: chorus_room_api::RemovalStats {
                records: 2,
                evicted: 1,
                expired: 3,
            },
        };
        Box::pin(async move { reading })
    }
    fn drain_status(&self) -> Option<DrainStatus> {
        *self.drain.lock().expect("not poisoned")
    }
}
