//! A participant's media connections as links: creating them ([`Room::new_peer`]),
//! routing their ICE credentials to this room in the shared demultiplexer, and acting on
//! what rtc and each connection's `IceLite` decide about them (connected, silent, lost,
//! unreachable). The participant's `connecting`/`connected`/`disconnected` state follows
//! from its links here.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use chorus_core::ConnId;
use chorus_protocol::signal::{PeerTarget, ServerMessage};
use chorus_protocol::{LeaveReason, ParticipantState};
use chorus_transport::{IceEvent, LinkState, PeerRole, Route};
use rtc::peer_connection::state::RTCPeerConnectionState;

use super::{Room, peer_of};
use crate::command::ParticipantKey;
use crate::peer::Peer;

/// What usually keeps a media connection from coming up, for `media_unreachable`.
const UNREACHABLE_HINT: &str = "no ICE connectivity check and DTLS handshake completed: a \
    firewall may block UDP to the server's media port, or the network needs a TURN relay";

/// Connection ids are unique across rooms: routes of all rooms share one table.
static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

impl Room {
    /// Creates a connection for `key` and routes its ufrag here.
    pub(super) fn new_peer(
        &mut self,
        key: ParticipantKey,
        target: PeerTarget,
        now: Instant,
    ) -> Result<Peer, String> {
        let role = match target {
            PeerTarget::Publisher => PeerRole::Publisher,
            PeerTarget::Subscriber => PeerRole::Subscriber,
        };
        let built = self.peers.build(role, now).map_err(|e| e.to_string())?;
        let conn = ConnId(NEXT_CONN.fetch_add(1, Ordering::Relaxed));
        self.conns.insert(conn, (key, target));
        // Routed once its local description names its ufrag (`route_credentials`).
        Ok(Peer::new(conn, built.pc, built.ice))
    }

    /// Routes the ufrag of the local description just set to its connection: the first
    /// one, or a new one after an ICE restart (the old one stops routing; addresses the
    /// client already proved stay until they expire).
    pub(super) fn route_credentials(
        &mut self,
        key: ParticipantKey,
        target: PeerTarget,
        now: Instant,
    ) {
        let demux = self.media.demux();
        let Some(peer) = peer_of(&mut self.participants, key, target) else {
            return;
        };
        let Some((old, new)) = peer.sync_credentials(now) else {
            return;
        };
        let route = Route {
            conn: peer.conn,
            inbox: self.inbox.clone(),
            control: self.control.clone(),
        };
        if let Some(old) = old.filter(|old| *old != new) {
            demux.remove_ufrag(&old, peer.conn);
            tracing::info!(room = %self.name, ?target, "ICE restarted");
        }
        demux.add_ufrag(new, route);
    }

    /// rtc's view of the connection: it says when ICE and DTLS are up, and when DTLS
    /// failed. Silence is judged by the connection's `IceLite` ([`Room::on_ice_event`]):
    /// rtc's own timers are off.
    pub(super) fn on_connection_state(
        &mut self,
        key: ParticipantKey,
        target: PeerTarget,
        state: RTCPeerConnectionState,
        now: Instant,
    ) {
        tracing::debug!(room = %self.name, ?target, %state, "connection state");
        match state {
            RTCPeerConnectionState::Connected => {
                if let Some(peer) = self.peer_mut(key, target) {
                    peer.ice.connected(now);
                }
                self.refresh_state(key);
            }
            RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                self.doomed.push((key, LeaveReason::ConnectionLost));
            }
            _ => {}
        }
    }

    /// A decision of a connection's `IceLite`: routes, the path media takes, liveness.
    pub(super) fn on_ice_event(&mut self, key: ParticipantKey, target: PeerTarget, ev: IceEvent) {
        let demux = self.media.demux();
        let Some(peer) = peer_of(&mut self.participants, key, target) else {
            return;
        };
        let conn = peer.conn;
        match ev {
            IceEvent::RouteConfirmed(addr) => {
                if let Some(ufrag) = peer.ufrag() {
                    demux.confirm_addr(addr, ufrag);
                }
            }
            IceEvent::RouteExpired(addr) => demux.forget_addr(addr, conn),
            IceEvent::Switched { from, to } => {
                tracing::info!(room = %self.name, ?target, ?from, %to, "media path switched");
            }
            IceEvent::State(LinkState::Connecting) => {}
            IceEvent::State(LinkState::Connected) => self.refresh_state(key),
            IceEvent::State(LinkState::Disconnected) => {
                tracing::info!(room = %self.name, ?target, "connection silent: asking for an ICE restart");
                self.refresh_state(key);
                // Asked, not imposed: a client that cannot restart (libnice answers a
                // restart offer with its old credentials and checks nothing) would lose
                // a connection that may only be quiet.
                self.send_to(key, ServerMessage::IceRestart { target });
            }
            IceEvent::State(LinkState::Lost) => {
                self.doomed.push((key, LeaveReason::ConnectionLost));
            }
            IceEvent::Unreachable { after } => {
                tracing::info!(room = %self.name, ?target, "media connection did not come up");
                self.send_to(
                    key,
                    ServerMessage::MediaUnreachable {
                        target,
                        after_ms: after.as_millis() as u64,
                        hint: UNREACHABLE_HINT.to_owned(),
                    },
                );
            }
        }
    }

    /// Restarts ICE on the subscriber connection at the client's request: the next
    /// offer carries new credentials.
    pub(super) fn restart_subscriber_ice(&mut self, key: ParticipantKey, now: Instant) {
        if let Some(peer) = self.peer_mut(key, PeerTarget::Subscriber) {
            peer.restart_ice = true;
            self.negotiate(key, now);
        }
    }

    /// The participant is `disconnected` while any of its connections is, `connected`
    /// once all that are up are live again.
    fn refresh_state(&mut self, key: ParticipantKey) {
        let Some(p) = self.participants.get(&key) else {
            return;
        };
        let links = || {
            [&p.publisher, &p.subscriber]
                .into_iter()
                .flatten()
                .map(|peer| peer.ice.state())
        };
        let state = if links().any(|l| l == LinkState::Disconnected) {
            ParticipantState::Disconnected
        } else if links().any(|l| l == LinkState::Connected) {
            ParticipantState::Connected
        } else {
            return;
        };
        self.set_state(key, state);
    }

    fn set_state(&mut self, key: ParticipantKey, state: ParticipantState) {
        let Some(p) = self.participants.get_mut(&key) else {
            return;
        };
        if p.state == state {
            return;
        }
        p.state = state;
        let participant_id = p.id.to_string();
        self.broadcast(ServerMessage::ParticipantState {
            participant_id,
            state,
        });
    }
}
