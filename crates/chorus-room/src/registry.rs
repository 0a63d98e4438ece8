//! Room names → room drivers, and the one media plane they all share.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chorus_core::TokenBucket;
use chorus_protocol::control::{
    CreateRoomRequest, DrainStatus, MAX_PARTICIPANTS_CEILING, RoomInfo,
};
use chorus_transport::{MediaPlane, PeerFactory};
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::command::RoomCommand;
use crate::command::Session;
use crate::core::CoreParams;
use crate::driver::{self, DriverParams};
use crate::removals::{RemovalPolicy, SharedRemovals};
use crate::totals::ServerTotals;

mod calling;
mod echo;
mod media;
mod participants;
mod rtp;
mod server;
use chorus_protocol::webhook::WebhookEvent;
use chorus_room_api::{JoinError, JoinRequest, RoomError, valid_room_name};
use chorus_webhooks::Webhooks;

/// Settings of rooms.
#[derive(Debug, Clone)]
pub struct RoomConfig {
    /// Create a room when someone joins one that does not exist.
    pub auto_create_rooms: bool,
    /// Default participant limit of a room (at most 350).
    pub default_max_participants: u32,
    /// Most rooms the server holds at once.
    pub max_rooms: usize,
    /// A room nobody is in for this long is closed.
    pub empty_room_timeout: std::time::Duration,
    /// Egress shards each room's connections are split over (at least 1).
    pub egress_shards: usize,
    /// How long a drain lets participants stay before the server stops.
    pub drain_timeout: Duration,
    /// Joins the whole server admits a second (and at once).
    pub joins_per_second: u32,
    /// Joins one room admits a second (and at once).
    pub room_joins_per_second: u32,
    /// Cameras a subscriber receives until it sends `set_last_n`.
    pub last_n_default: u32,
    /// A participant whose media is not up this long after its first connection was
    /// created is removed (`media_timeout`).
    pub media_setup_timeout: Duration,
    /// Tracks one participant may publish at once (`too_many_tracks` beyond).
    pub max_tracks_per_participant: u32,
    /// What one participant may send as data messages.
    pub data: crate::data::DataLimits,
    /// Phones and bots over plain RTP.
    pub plain_rtp: crate::rtp::PlainRtpConfig,
    /// What a removal by the control API refuses, and how long the server keeps it
    /// (rooms come and go; the records stay).
    pub removals: RemovalPolicy,
    /// The echo test room's name: each join makes a private room of its own, where the
    /// participant gets its own audio back about a second later and its own video.
    pub echo_room: Option<String>,
}

impl Default for RoomConfig {
    fn default() -> Self {
        Self {
            auto_create_rooms: true,
            default_max_participants: chorus_protocol::control::MAX_PARTICIPANTS_CEILING,
            max_rooms: 1000,
            empty_room_timeout: std::time::Duration::from_secs(300),
            egress_shards: std::thread::available_parallelism().map_or(1, |n| n.get()),
            drain_timeout: Duration::from_secs(30),
            joins_per_second: 200,
            room_joins_per_second: 50,
            last_n_default: crate::lastn::DEFAULT_LAST_N,
            media_setup_timeout: Duration::from_secs(30),
            // A camera, a screen share and their audio.
            max_tracks_per_participant: 4,
            data: crate::data::DataLimits::default(),
            plain_rtp: crate::rtp::PlainRtpConfig::default(),
            removals: RemovalPolicy::default(),
            // The customer's SDK calls `8:echo123`; ':' is not allowed in room names.
            echo_room: Some(DEFAULT_ECHO_ROOM.to_owned()),
        }
    }
}

/// The echo test room unless configured otherwise.
pub const DEFAULT_ECHO_ROOM: &str = "echo123";

/// An echo room nobody is in closes after this long.
const ECHO_EMPTY_TIMEOUT: Duration = Duration::from_secs(5);

/// Commands queued for one room before callers wait.
const COMMANDS_PER_ROOM: usize = 1024;
/// A room that does not answer a control request within this time is reported busy.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a drain looks whether everyone has left.
const DRAIN_POLL: Duration = Duration::from_millis(200);

#[derive(Clone)]
struct RoomHandle {
    commands: mpsc::Sender<RoomCommand>,
    generation: u64,
}

struct Inner {
    rooms: DashMap<String, RoomHandle>,
    config: RoomConfig,
    media: MediaPlane,
    peers: PeerFactory,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    generation: AtomicU64,
    /// Set once, when the drain begins; never unset (the server then stops).
    drain: OnceLock<DrainStatus>,
    totals: Arc<ServerTotals>,
    joins: Mutex<TokenBucket>,
    /// Echo rooms made so far (each join makes one).
    echo_rooms: AtomicU64,
    /// Where rooms' events go; none until the server sets it.
    webhooks: OnceLock<Webhooks>,
    /// Every room's removals: they outlive the rooms.
    removals: SharedRemovals,
}

/// Routes room names to room drivers. Cheap to clone.
#[derive(Clone)]
pub struct RoomRegistry {
    inner: Arc<Inner>,
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl RoomRegistry {
    /// Rooms over a started media plane and the factory of their peer connections
    /// (the server builds both). Rooms stop when `shutdown` fires; the media plane
    /// stops at [`Self::shutdown`].
    pub fn new(
        config: RoomConfig,
        media: MediaPlane,
        peers: PeerFactory,
        shutdown: CancellationToken,
    ) -> Self {
        // The rooms' egress shards run on rayon's pool: one thread per shard, named so
        // that an operator sees them (`top -H`). Only the first registry of a process
        // sets it up; later ones (tests) share it.
        let shards = config.egress_shards.max(1);
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(shards)
            .thread_name(|i| format!("chorus-egress-{i}"))
            .build_global();
        Self {
            inner: Arc::new(Inner {
                rooms: DashMap::new(),
                media,
                peers,
                shutdown,
                tasks: TaskTracker::new(),
                generation: AtomicU64::new(1),
                echo_rooms: AtomicU64::new(1),
                drain: OnceLock::new(),
                totals: Arc::default(),
                webhooks: OnceLock::new(),
                removals: SharedRemovals::new(config.removals),
                joins: Mutex::new(TokenBucket::new(
                    config.joins_per_second,
                    config.joins_per_second,
                )),
                config,
            }),
        }
    }

    /// Starts a room driver and a supervisor that unregisters it when it ends, panics included.
    fn spawn_room(&self, name: &str, max_participants: u32, lobby: bool) -> RoomHandle {
        self.spawn(name, name, max_participants, lobby, false)
    }

    /// Starts a room `name`, registered under `key` (its name, but for echo rooms).
    fn spawn(
        &self,
        key: &str,
        name: &str,
        max_participants: u32,
        lobby: bool,
        echo: bool,
    ) -> RoomHandle {
        let inner = &self.inner;
        let (tx, rx) = mpsc::channel(COMMANDS_PER_ROOM);
        let generation = inner.generation.fetch_add(1, Ordering::Relaxed);
        let params = DriverParams {
            core: CoreParams {
                name: name.to_owned(),
                max_participants,
                // An echo room is its one participant's: it goes soon after it leaves.
                empty_timeout: if echo {
                    ECHO_EMPTY_TIMEOUT.min(inner.config.empty_room_timeout)
                } else {
                    inner.config.empty_room_timeout
                },
                peers: inner.peers.clone(),
                seed: rand::random(),
                // Routes of all rooms share one table: each room its own id range.
                first_conn_id: generation << 32,
                egress_shards: inner.config.egress_shards,
                created_at_ms: unix_ms(),
                joins_per_second: inner.config.room_joins_per_second,
                last_n: inner.config.last_n_default,
                media_setup_timeout: inner.config.media_setup_timeout,
                max_tracks_per_participant: inner.config.max_tracks_per_participant,
                lobby,
                data: inner.config.data,
                removals: inner.removals.clone(),
                echo,
            },
            media: inner.media.clone(),
            commands: tx.clone(),
            totals: inner.totals.clone(),
            webhooks: inner.webhooks.get().cloned().unwrap_or_else(Webhooks::none),
        };
        // Every line the room logs names it.
        let span = tracing::info_span!("room", room = %name);
        let actor =
            tokio::spawn(driver::run(params, rx, inner.shutdown.child_token()).instrument(span));
        let registry = Arc::downgrade(inner);
        let room_name = name.to_owned();
        let room_key = key.to_owned();
        self.event(WebhookEvent::RoomStarted {
            room: room_name.clone(),
        });
        let webhooks = inner.webhooks.get().cloned();
        inner.tasks.spawn(async move {
            if let Err(e) = actor.await
                && e.is_panic()
            {
                // The room's channels drop with it: its clients see their event
                // stream end without `left` and are told the room failed.
                tracing::error!(room = %room_name, "room failed: {e}");
            }
            if let Some(inner) = registry.upgrade() {
                inner
                    .rooms
                    .remove_if(&room_key, |_, h| h.generation == generation);
            }
            if let Some(hooks) = webhooks {
                hooks.send(WebhookEvent::RoomFinished { room: room_name });
            }
        });
        RoomHandle {
            commands: tx,
            generation,
        }
    }

    fn check_capacity(&self) -> Result<(), usize> {
        let max = self.inner.config.max_rooms;
        if self.inner.rooms.len() >= max {
            return Err(max);
        }
        Ok(())
    }

    pub async fn create_room(&self, req: CreateRoomRequest) -> Result<RoomInfo, RoomError> {
        if self.is_draining() {
            return Err(RoomError::Draining);
        }
        if !valid_room_name(&req.name) {
            return Err(RoomError::InvalidRoomName(req.name));
        }
        if self.is_echo_room(&req.name) {
            return Err(RoomError::InvalidRoomName(format!(
                "{}: reserved for the echo test (rooms.echo_room)",
                req.name
            )));
        }
        let max = req
            .max_participants
            .unwrap_or(self.inner.config.default_max_participants);
        if max == 0 || max > MAX_PARTICIPANTS_CEILING {
            return Err(RoomError::InvalidMaxParticipants {
                got: max,
                ceiling: MAX_PARTICIPANTS_CEILING,
            });
        }
        self.check_capacity().map_err(RoomError::TooManyRooms)?;
        match self.inner.rooms.entry(req.name.clone()) {
            Entry::Occupied(_) => return Err(RoomError::RoomExists(req.name)),
            Entry::Vacant(v) => {
                v.insert(self.spawn_room(&req.name, max, req.lobby));
            }
        }
        self.room_info(&req.name).await
    }

    pub async fn list_rooms(&self) -> Vec<RoomInfo> {
        let names: Vec<String> = self.inner.rooms.iter().map(|e| e.key().clone()).collect();
        let mut rooms = Vec::with_capacity(names.len());
        for name in names {
            if let Ok(info) = self.room_info(&name).await {
                rooms.push(info);
            }
        }
        rooms.sort_by(|a, b| a.name.cmp(&b.name));
        rooms
    }

    fn handle(&self, room: &str) -> Result<RoomHandle, RoomError> {
        self.inner
            .rooms
            .get(room)
            .map(|h| h.clone())
            .ok_or_else(|| RoomError::RoomNotFound(room.to_owned()))
    }

    /// Sends a request to a room and waits for its answer.
    pub(crate) fn config(&self) -> &RoomConfig {
        &self.inner.config
    }

    pub(crate) async fn call<T>(
        &self,
        room: &str,
        make: impl FnOnce(oneshot::Sender<T>) -> RoomCommand,
    ) -> Result<T, RoomError> {
        let handle = self.handle(room)?;
        let (tx, rx) = oneshot::channel();
        let exchange = async {
            handle
                .commands
                .send(make(tx))
                .await
                .map_err(|_| RoomError::RoomClosed)?;
            rx.await.map_err(|_| RoomError::RoomClosed)
        };
        tokio::time::timeout(CALL_TIMEOUT, exchange)
            .await
            .map_err(|_| RoomError::Busy)?
    }

    pub async fn room_info(&self, room: &str) -> Result<RoomInfo, RoomError> {
        self.call(room, |reply| RoomCommand::Info { reply }).await
    }

    /// Removes everyone (reason `room_deleted`) and closes the room.
    pub async fn delete_room(&self, room: &str) -> Result<(), RoomError> {
        self.call(room, |reply| RoomCommand::Delete { reply })
            .await?;
        self.inner.rooms.remove(room);
        Ok(())
    }

    /// Admits a participant. The first event of the session is `joined`.
    pub async fn join(&self, room: &str, who: JoinRequest) -> Result<Session, JoinError> {
        if self.is_draining() {
            return Err(JoinError::Draining);
        }
        let allowed = self
            .inner
            .joins
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .allow(std::time::Instant::now());
        if !allowed {
            return Err(JoinError::RateLimited("server"));
        }
        if !valid_room_name(room) {
            return Err(JoinError::InvalidRoomName(room.to_owned()));
        }
        if self.is_echo_room(room) {
            return self.join_echo(room, who).await;
        }
        // A room may close (empty timeout) between lookup and join: try once more.
        for _ in 0..2 {
            let handle = match self.inner.rooms.get(room).map(|h| h.clone()) {
                Some(h) => h,
                None if self.inner.config.auto_create_rooms => {
                    self.check_capacity().map_err(JoinError::TooManyRooms)?;
                    self.inner
                        .rooms
                        .entry(room.to_owned())
                        .or_insert_with(|| {
                            let max = self.inner.config.default_max_participants;
                            self.spawn_room(room, max, false)
                        })
                        .clone()
                }
                None => return Err(JoinError::RoomNotFound(room.to_owned())),
            };
            let (tx, rx) = oneshot::channel();
            let req = RoomCommand::Join {
                req: who.clone(),
                reply: tx,
            };
            if handle.commands.send(req).await.is_err() {
                self.inner
                    .rooms
                    .remove_if(room, |_, h| h.generation == handle.generation);
                continue;
            }
            match rx.await {
                Ok(result) => return result,
                Err(_) => continue,
            }
        }
        Err(JoinError::RoomClosed)
    }

    /// Makes a room panic, to prove that the others keep running.
    #[cfg(feature = "fault-injection")]
    pub async fn inject_panic(&self, room: &str) -> Result<(), RoomError> {
        self.inject(room, RoomCommand::Panic).await
    }

    /// Makes one of a room's egress shards panic (on a thread of the shards' pool when
    /// the room has more than one), to prove that it fails like a room.
    #[cfg(feature = "fault-injection")]
    pub async fn inject_shard_panic(&self, room: &str) -> Result<(), RoomError> {
        self.inject(room, RoomCommand::PanicShard).await
    }

    #[cfg(feature = "fault-injection")]
    async fn inject(&self, room: &str, fault: RoomCommand) -> Result<(), RoomError> {
        let handle = self.handle(room)?;
        handle
            .commands
            .send(fault)
            .await
            .map_err(|_| RoomError::RoomClosed)
    }

    /// Tells every participant `left{server_shutdown}` and waits for the rooms to end.
    /// The rooms stop when the shutdown token given to [`RoomRegistry::new`] fires.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
        let media = self.inner.media.clone();
        let _ = tokio::task::spawn_blocking(move || media.stop()).await;
    }
}

#[cfg(test)]
mod tests {
    use chorus_transport::MediaPlaneConfig;

    use super::*;

    /// Each counter lands in its own field: distinct values in, the same values out.
    #[tokio::test]
    async fn media_stats_map_every_counter() {
        let media = MediaPlane::start(MediaPlaneConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            workers: 1,
        })
        .unwrap();
        let peers = PeerFactory::new(media.local_addr()).unwrap();
        let registry = RoomRegistry::new(
            RoomConfig::default(),
            media,
            peers,
            CancellationToken::new(),
        );
        let c = registry.media_counters();
        let counters = [
            (&c.received, 1),
            (&c.unroutable_unknown_addr, 2),
            (&c.unroutable_unknown_ufrag, 3),
            (&c.stun_bad_integrity, 4),
            (&c.inbox_full, 5),
            (&c.sent, 6),
            (&c.send_dropped, 7),
            (&c.send_errors, 8),
            (&c.send_syscalls, 9),
            (&c.gso_datagrams, 10),
            (&c.srtp_refused, 11),
            (&c.receive_syscalls, 12),
            (&c.received_bytes, 13),
            (&c.sent_bytes, 14),
            (&c.rate_limited, 15),
        ];
        for (counter, n) in counters {
            counter.fetch_add(n, Ordering::Relaxed);
        }
        let stats = registry.media_stats();
        let got = [
            stats.received,
            stats.unroutable.unknown_addr,
            stats.unroutable.unknown_ufrag,
            stats.unroutable.bad_integrity,
            stats.inbox_full,
            stats.sent,
            stats.send_dropped,
            stats.send_errors,
            stats.send_syscalls,
            stats.gso_datagrams,
            stats.srtp_refused,
            stats.receive_syscalls,
            stats.received_bytes,
            stats.sent_bytes,
            stats.rate_limited,
        ];
        assert_eq!(got, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
        assert_eq!(stats.rtcp.delivered, 0);
        let reasons: Vec<&str> = stats.rtcp.dropped.keys().map(String::as_str).collect();
        assert_eq!(reasons, ["malformed", "unknown_type"]);
        registry.shutdown().await;
    }
}
