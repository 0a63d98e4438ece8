//! The tokio task around a [`RoomCore`]: it reads the room's command channel and its
//! two datagram inboxes, feeds the core, and carries out what comes out (datagrams to
//! the media plane's egress, frames to clients' event channels, routes to the shared
//! demultiplexer). It decides nothing about the room.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use chorus_protocol::LeaveReason;
use chorus_protocol::signal::ServerMessage;
use chorus_protocol::webhook::WebhookEvent;
use chorus_transport::{Datagram, Demux, MediaPlane, Route};
use rayon::prelude::*;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::command::RoomCommand;
use crate::command::{Session, SessionHandle};
use crate::core::{CoreParams, RoomCore};
use crate::forward::ShardJob;
use crate::io::{
    Command, Input, Output, ParticipantKey, Recipients, Reply, RouteChange, RtpAdmitted, RtpJoin,
};
use crate::skips::Skip;
use crate::totals::ServerTotals;
use chorus_plainrtp::driver::{MixFrame, ToRoom};
use chorus_plainrtp::{Endpoint, EndpointConfig, Gone};
use chorus_room_api::JoinError;
use chorus_room_api::RoomError;
use chorus_webhooks::Webhooks;

/// Frames queued for one client before it counts as stuck and is dropped.
const EVENTS_PER_PARTICIPANT: usize = 512;
/// Where a plain-RTP participant's endpoint sends, its payload type, its timeout and its
/// SDES keys (the participant's, Chorus's).
type RtpEndpointParams = (
    std::net::SocketAddr,
    u8,
    std::time::Duration,
    Option<(chorus_plainrtp::SdesKey, chorus_plainrtp::SdesKey)>,
);

/// Mix frames queued for a plain-RTP participant's task (100 ms).
const RTP_MIX_FRAMES: usize = 5;
/// Datagrams taken from an inbox per wake-up.
const INBOX_BATCH: usize = 64;

pub(crate) struct DriverParams {
    pub core: CoreParams,
    pub media: MediaPlane,
    /// The room's own command channel, for the sessions it hands out.
    pub commands: mpsc::Sender<RoomCommand>,
    /// Where the room's turn times go, and its counts when it closes.
    pub totals: Arc<ServerTotals>,
    /// Where its events go (to the signaling service's webhooks).
    pub webhooks: Webhooks,
}

struct Driver {
    core: RoomCore,
    media: MediaPlane,
    commands: mpsc::WeakSender<RoomCommand>,
    clients: Clients,
    inbox: mpsc::Sender<Datagram>,
    /// STUN and DTLS of this room's connections: served before media.
    control: mpsc::Sender<Datagram>,
    /// Forged binding requests counted so far, to add to the media plane's counter.
    bad_integrity: u64,
    webhooks: Webhooks,
    totals: Arc<ServerTotals>,
    /// Each plain-RTP participant's endpoint task, by the mix frames it is sent.
    rtp: HashMap<ParticipantKey, mpsc::Sender<MixFrame>>,
    shutdown: CancellationToken,
}

/// Runs the room until it is deleted, stays empty too long, or the server shuts down.
pub(crate) async fn run(
    params: DriverParams,
    mut commands: mpsc::Receiver<RoomCommand>,
    shutdown: CancellationToken,
) {
    let (inbox, mut inbox_rx) = mpsc::channel(4096);
    let (control, mut control_rx) = mpsc::channel(1024);
    let mut d = Driver {
        core: RoomCore::new(params.core, Instant::now()),
        media: params.media,
        commands: params.commands.downgrade(),
        clients: Clients::default(),
        inbox,
        control,
        bad_integrity: 0,
        webhooks: params.webhooks,
        totals: params.totals.clone(),
        rtp: HashMap::new(),
        shutdown: shutdown.clone(),
    };
    drop(params.commands);
    let totals = params.totals;
    tracing::info!(room = %d.core.name(), "room open");
    let mut batch = Vec::with_capacity(INBOX_BATCH);
    let mut control_batch = Vec::with_capacity(INBOX_BATCH);
    while !d.core.is_closed() {
        let deadline = d.core.poll_timeout();
        let woke = tokio::select! {
            biased;
            _ = shutdown.cancelled() => Woke::Shutdown,
            cmd = commands.recv() => match cmd {
                Some(cmd) => Woke::Command(cmd),
                None => break,
            },
            // Handshakes and keepalives first: under overload media waits (and
            // drops at the inbox), connections stay up.
            n = control_rx.recv_many(&mut control_batch, INBOX_BATCH) => {
                if n == 0 { break; }
                Woke::Control
            }
            n = inbox_rx.recv_many(&mut batch, INBOX_BATCH) => {
                if n == 0 { break; }
                Woke::Media
            }
            _ = sleep_until(deadline) => Woke::Timer,
        };
        // One reading of the clock per turn, not per datagram.
        let now = Instant::now();
        match woke {
            Woke::Shutdown => {
                d.core.handle_input(Input::Shutdown, now);
            }
            Woke::Command(cmd) => d.command(cmd),
            Woke::Control => {
                for dg in control_batch.drain(..) {
                    d.core.handle_input(Input::Datagram(dg), now);
                }
            }
            Woke::Media => {
                for dg in batch.drain(..) {
                    d.core.handle_input(Input::Datagram(dg), now);
                }
            }
            Woke::Timer => {}
        }
        // Every turn, not only when the sleep wins: under a steady stream of packets
        // the inbox is always ready, and timers (ICE, DTLS, RTCP, the mixer) must not
        // starve behind it.
        d.input(Input::Timeout);
        d.flush();
        totals.turn(now.elapsed());
    }
    totals.retire(&d.core.forwarding());
    tracing::info!(room = %d.core.name(), "room closed");
}

/// What woke the room for a turn.
enum Woke {
    Shutdown,
    Command(RoomCommand),
    Control,
    Media,
    Timer,
}

impl Driver {
    fn input(&mut self, input: Input) -> Option<Reply> {
        self.core.handle_input(input, Instant::now())
    }

    fn command(&mut self, cmd: RoomCommand) {
        match cmd {
            RoomCommand::Join { req, reply } => {
                let _ = reply.send(self.join(req));
            }
            RoomCommand::Signal { participant, frame } => {
                self.input(Input::Signal { participant, frame });
            }
            RoomCommand::Close {
                participant,
                reason,
            } => {
                self.input(Input::ClientGone {
                    participant,
                    reason,
                });
            }
            RoomCommand::Info { reply } => {
                if let Some(Reply::Info(info)) = self.call(Command::Info) {
                    let _ = reply.send(info);
                }
            }
            RoomCommand::Participants { reply } => {
                if let Some(Reply::Participants(list)) = self.call(Command::Participants) {
                    let _ = reply.send(list);
                }
            }
            RoomCommand::Participant { identity, reply } => {
                if let Some(Reply::Participant(r)) = self.call(Command::Participant { identity }) {
                    let _ = reply.send(r);
                }
            }
            RoomCommand::Remove {
                identity,
                message,
                reply,
            } => {
                if let Some(Reply::Removed(r)) = self.call(Command::Remove { identity, message }) {
                    let _ = reply.send(r);
                }
            }
            RoomCommand::Hold {
                identity,
                held,
                reply,
            } => {
                if let Some(Reply::Held(r)) = self.call(Command::Hold { identity, held }) {
                    let _ = reply.send(r);
                }
            }
            RoomCommand::MuteTrack {
                identity,
                track_id,
                muted,
                reply,
            } => {
                let cmd = Command::MuteTrack {
                    identity,
                    track_id,
                    muted,
                };
                if let Some(Reply::TrackMuted(r)) = self.call(cmd) {
                    let _ = reply.send(r);
                }
            }
            RoomCommand::UpdatePermissions {
                identity,
                grants,
                reply,
            } => {
                let cmd = Command::UpdatePermissions { identity, grants };
                if let Some(Reply::PermissionsChanged(r)) = self.call(cmd) {
                    let _ = reply.send(r);
                }
            }
            RoomCommand::Calling { cmd, reply } => {
                let _ = reply.send(self.call(cmd));
            }
            RoomCommand::AddRtp {
                join,
                socket,
                remote,
                payload_type,
                timeout,
                srtp,
                reply,
            } => {
                let endpoint = (remote, payload_type, timeout, srtp);
                let _ = reply.send(self.add_rtp(join, socket, endpoint));
            }
            RoomCommand::RtpFrame { participant, frame } => {
                self.input(Input::RtpFrame { participant, frame });
            }
            RoomCommand::Delete { reply } => {
                self.call(Command::Delete);
                let _ = reply.send(());
            }
            RoomCommand::Drain { within } => {
                self.input(Input::Drain { within });
            }
            #[cfg(feature = "fault-injection")]
            RoomCommand::PanicShard => self.core.panic_in_shard(),
            #[cfg(feature = "fault-injection")]
            RoomCommand::Panic => panic!(
                "fault injection: room {} panics on request",
                self.core.name()
            ),
        }
    }

    /// Runs a command and carries out its effects before the caller hears the answer
    /// (a removed participant has its `left` frame before the API call returns).
    fn call(&mut self, cmd: Command) -> Option<Reply> {
        let reply = self.input(Input::Command(cmd));
        self.flush();
        reply
    }

    fn join(&mut self, req: crate::JoinRequest) -> Result<Session, JoinError> {
        let commands = self.commands.upgrade().ok_or(JoinError::RoomClosed)?;
        let admitted = match self.input(Input::Command(Command::Join(req))) {
            Some(Reply::Joined(r)) => r?,
            _ => return Err(JoinError::RoomClosed),
        };
        let (events, events_rx) = mpsc::channel(EVENTS_PER_PARTICIPANT);
        self.clients.channels.insert(admitted.participant, events);
        self.flush();
        Ok(Session {
            events: events_rx,
            handle: SessionHandle {
                participant: admitted.participant,
                participant_id: admitted.participant_id.to_string(),
                room: commands,
            },
        })
    }

    /// Carries out everything the core has to do, then lets clients that could not take
    /// their frames go.
    fn flush(&mut self) {
        let media = &self.media;
        self.core
            .run_egress(Instant::now(), |jobs| run_shards(media, jobs));
        loop {
            // Everything leaves in one batch: GSO runs per destination.
            let mut egress = self.media.egress();
            while let Some(out) = self.core.poll_output() {
                match out {
                    Output::Transmit { to, data } => egress.push(to, &data),
                    Output::ToClient { to, msg } => self.clients.send(to, msg),
                    Output::Departed(key) => {
                        self.clients.channels.remove(&key);
                        self.clients.waiting.remove(&key);
                        // Its endpoint task ends when its side of the channel closes.
                        self.rtp.remove(&key);
                    }
                    Output::Lobby {
                        participant,
                        waiting,
                    } => {
                        if waiting {
                            self.clients.waiting.insert(participant);
                        } else {
                            self.clients.waiting.remove(&participant);
                        }
                    }
                    Output::RtpMix { participant, frame } => {
                        // A full channel: the task is behind; this frame is lost.
                        if let Some(tx) = self.rtp.get(&participant) {
                            crate::rtp::mix_to_task(tx, frame, self.core.plain_rtp_drops());
                        }
                    }
                    Output::Route(change) => self.route(change),
                    Output::Event(event) => {
                        if let WebhookEvent::ParticipantLeft { reason, .. } = &event {
                            self.totals.left(*reason);
                        }
                        self.webhooks.send(event)
                    }
                }
            }
            egress.send();
            let forged = self.core.skips().get(Skip::StunBadIntegrity);
            if forged > self.bad_integrity {
                self.media
                    .counters()
                    .stun_bad_integrity
                    .fetch_add(forged - self.bad_integrity, Ordering::Relaxed);
                self.bad_integrity = forged;
            }
            if self.clients.gone.is_empty() {
                return;
            }
            for participant in std::mem::take(&mut self.clients.gone) {
                let reason = LeaveReason::SignalingClosed;
                self.input(Input::ClientGone {
                    participant,
                    reason,
                });
            }
        }
    }

    /// Lets a plain-RTP participant in and starts its endpoint's task on `socket`.
    fn add_rtp(
        &mut self,
        join: RtpJoin,
        socket: std::net::UdpSocket,
        (remote, payload_type, timeout, srtp): RtpEndpointParams,
    ) -> Result<RtpAdmitted, RoomError> {
        let commands = self.commands.upgrade().ok_or(RoomError::RoomClosed)?;
        let codec = join.codec;
        let admitted = match self.input(Input::Command(Command::AddRtpParticipant(join))) {
            Some(Reply::RtpAdded(r)) => r?,
            _ => return Err(RoomError::RoomClosed),
        };
        let key = admitted.participant;
        let config = EndpointConfig {
            codec,
            payload_type,
            remote,
            ssrc: admitted.ssrc,
            initial_timestamp: admitted.initial_timestamp,
            timeout,
            srtp,
        };
        let started = Endpoint::new(config, Instant::now())
            .map_err(|e| RoomError::RtpSocket(e.to_string()))
            .and_then(|endpoint| {
                let socket = tokio::net::UdpSocket::from_std(socket)
                    .map_err(|e| RoomError::RtpSocket(e.to_string()))?;
                Ok((endpoint, socket))
            });
        let (endpoint, socket) = match started {
            Ok(s) => s,
            Err(e) => {
                let reason = LeaveReason::RoomFailed;
                self.input(Input::ClientGone {
                    participant: key,
                    reason,
                });
                self.flush();
                return Err(e);
            }
        };
        let (tx, rx) = mpsc::channel(RTP_MIX_FRAMES);
        self.rtp.insert(key, tx);
        // Its frames go through the command channel: 50 a second each, and a full
        // channel (an overloaded room) drops them rather than waiting.
        let drops = self.core.plain_rtp_drops().clone();
        let to_room = move |event: ToRoom| match event {
            ToRoom::Frame(frame) => crate::rtp::frame_to_room(&commands, key, frame, &drops),
            ToRoom::Gone(Gone::RtpTimeout) => commands
                .try_send(RoomCommand::Close {
                    participant: key,
                    reason: LeaveReason::RtpTimeout,
                })
                .is_ok(),
        };
        tokio::spawn(chorus_plainrtp::driver::run(
            socket,
            endpoint,
            rx,
            to_room,
            self.core.plain_rtp_drops().clone(),
            self.shutdown.child_token(),
        ));
        self.flush();
        Ok(admitted)
    }

    fn route(&self, change: RouteChange) {
        apply_route(self.media.demux(), change, &self.inbox, &self.control);
    }
}

/// Copies queued in one turn below which the shards run one after the other on the
/// room's thread (about 0.3 ms of work): waking the pool's threads, which then spin a
/// while for more, costs more than it saves on a small turn (measured: 1 µs more per
/// copy in `fanout` 1 → 100 at 64).
const PARALLEL_COPIES: usize = 256;

/// Runs the room's egress shards, each sending its own batch; on every core at once
/// (rayon's pool) when the turn is big enough. A shard that panics makes the room panic.
fn run_shards(media: &MediaPlane, jobs: &mut [ShardJob<'_>]) {
    let copies: usize = jobs.iter().map(ShardJob::copies).sum();
    // An injected fault runs in the pool whatever the size: it is meant to be found on
    // another thread.
    if jobs.len() > 1 && (copies >= PARALLEL_COPIES || jobs.iter().any(ShardJob::panics)) {
        jobs.par_iter_mut().for_each(|job| {
            let mut egress = media.egress();
            job.run(&mut |to, data| egress.push(to, &data));
            egress.send();
        });
    } else {
        // One batch for all: GSO runs and `sendmmsg` calls are not split by shard.
        let mut egress = media.egress();
        for job in jobs {
            job.run(&mut |to, data| egress.push(to, &data));
        }
        egress.send();
    }
}

/// Carries out a route change on the shared demultiplexer; new routes lead to the
/// room's two inboxes (media, and STUN/DTLS).
pub(crate) fn apply_route(
    demux: &Demux,
    change: RouteChange,
    inbox: &mpsc::Sender<Datagram>,
    control: &mpsc::Sender<Datagram>,
) {
    match change {
        RouteChange::AddUfrag {
            ufrag,
            conn,
            ingress,
        } => demux.add_ufrag(
            ufrag,
            Route {
                conn,
                inbox: inbox.clone(),
                control: control.clone(),
                ingress: Some(ingress),
            },
        ),
        RouteChange::RemoveUfrag { ufrag, conn } => demux.remove_ufrag(&ufrag, conn),
        RouteChange::ConfirmAddr { addr, ufrag } => {
            demux.confirm_addr(addr, &ufrag);
        }
        RouteChange::ForgetAddr { addr, conn } => demux.forget_addr(addr, conn),
        RouteChange::RemoveConn { ufrag, conn, addrs } => demux.remove_conn(&ufrag, conn, addrs),
    }
}

/// The participants' event channels.
#[derive(Default)]
struct Clients {
    channels: HashMap<ParticipantKey, mpsc::Sender<ServerMessage>>,
    /// Those waiting in the lobby: frames to the room skip them.
    waiting: HashSet<ParticipantKey>,
    /// Clients whose channel was full or closed: they leave.
    gone: Vec<ParticipantKey>,
}

impl Clients {
    fn send(&mut self, to: Recipients, msg: ServerMessage) {
        // Full: the client does not read; closed: it is gone. Either way it leaves.
        if let Recipients::One(key) = to {
            if let Some(tx) = self.channels.get(&key)
                && tx.try_send(msg).is_err()
            {
                self.gone.push(key);
            }
            return;
        }
        for (key, tx) in &self.channels {
            if to.includes(*key) && !self.waiting.contains(key) && tx.try_send(msg.clone()).is_err()
            {
                self.gone.push(*key);
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
