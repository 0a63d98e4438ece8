//! A participant's media connections as links: creating and closing them, routing
//! their ICE credentials and confirmed addresses to this room (as [`RouteChange`]s for
//! the shared demultiplexer), and acting on what each connection's DTLS and `IceLite`
//! decide about them (connected, silent, lost, unreachable). The participant's
//! `connecting`/`connected`/`disconnected` state follows from its links here, and a
//! participant whose media never comes up is given up (`media_timeout`).

use std::time::Instant;

use chorus_core::ConnId;
use chorus_protocol::signal::{PeerTarget, ServerMessage};
use chorus_protocol::{LeaveReason, ParticipantState};
use chorus_transport::{IceEvent, LinkState};
use rand::Rng;

use super::{RoomCore, draw_credentials};
use crate::io::{Output, ParticipantKey, Recipients, RouteChange};
use crate::participants::state_from_links;
use crate::peer::{Link, Peer};

/// What usually keeps a media connection from coming up, for `media_unreachable`.
const UNREACHABLE_HINT: &str = "no ICE connectivity check and DTLS handshake completed: a \
    firewall may block UDP to the server's media port, or the network needs a TURN relay";

impl RoomCore {
    /// Creates `key`'s connection for `target`. It is routed once its local
    /// description names its ufrag ([`Self::route_credentials`]).
    pub(super) fn new_peer(
        &mut self,
        key: ParticipantKey,
        target: PeerTarget,
        now: Instant,
    ) -> Result<ConnId, String> {
        let credentials = draw_credentials(&mut self.rng);
        let session_id = self.rng.random::<u64>() >> 1;
        let offering = target == PeerTarget::Subscriber;
        let link = Link::new(&self.peers, credentials, session_id, offering, now)
            .map_err(|e| e.to_string())?;
        let conn = self.conns.next_id(target);
        let mut peer = Peer::new(conn, key, target, link);
        let p = self.participants.get_mut(key).expect("caller checked");
        peer.on_hold = p.held && target == PeerTarget::Subscriber;
        self.conns.insert(peer);
        // Its first connection: media has something to come up on from now. (Before,
        // e.g. a listener alone in a room, there is nothing to set up, so no clock.)
        if p.publisher.is_none()
            && p.subscriber.is_none()
            && p.state == ParticipantState::Connecting
        {
            self.setup.schedule(key, Some(now + self.setup_timeout));
        }
        match target {
            PeerTarget::Publisher => p.publisher = Some(conn),
            PeerTarget::Subscriber => p.subscriber = Some(conn),
        }
        // Flushed (and so scheduled) at the end of this input.
        self.conns.mark_dirty(conn);
        Ok(conn)
    }

    /// Closes a connection: its goodbye goes out, its routes go.
    pub(super) fn close_conn(&mut self, conn: ConnId, now: Instant) {
        let Some(mut peer) = self.conns.remove(conn) else {
            return;
        };
        peer.close(now);
        while let Some((to, data)) = peer.poll_transmit() {
            self.outputs.push_back(Output::Transmit { to, data });
        }
        if let Some(ufrag) = peer.ufrag() {
            self.outputs
                .push_back(Output::Route(RouteChange::RemoveConn {
                    ufrag: ufrag.to_owned(),
                    conn,
                    addrs: peer.ice().routes().collect(),
                }));
        }
        self.tracks.forget_subscriber(conn);
    }

    /// Routes the ufrag of the local description just set to its connection: the first
    /// one, or a new one after an ICE restart (the old one stops routing; addresses the
    /// client already proved stay until they expire).
    pub(super) fn route_credentials(&mut self, conn: ConnId) {
        let Some(peer) = self.conns.get_mut(conn) else {
            return;
        };
        let Some((old, new)) = peer.sync_credentials() else {
            return;
        };
        if let Some(old) = old.filter(|old| *old != new) {
            tracing::info!(room = %self.name, target = ?peer.target, "ICE restarted");
            self.outputs
                .push_back(Output::Route(RouteChange::RemoveUfrag { ufrag: old, conn }));
        }
        let ingress = peer.ingress_key();
        self.outputs.push_back(Output::Route(RouteChange::AddUfrag {
            ufrag: new,
            conn,
            ingress,
        }));
    }

    /// The connection's DTLS came up (and with it SRTP): logged and counted once.
    pub(super) fn on_connected(
        &mut self,
        conn: ConnId,
        srtp_profile: String,
        dtls_cipher: String,
        dtls_role: String,
    ) {
        let Some(peer) = self.conns.get_mut(conn) else {
            return;
        };
        let owner = peer.owner;
        if peer.srtp_profile.is_none() {
            let identity = self.participants.get(owner).map(|p| p.identity.as_str());
            tracing::info!(
                room = %self.name,
                identity = identity.unwrap_or_default(),
                target = ?peer.target,
                %srtp_profile,
                %dtls_cipher,
                %dtls_role,
                "connection up"
            );
            *self.srtp_profiles.entry(srtp_profile.clone()).or_default() += 1;
            peer.srtp_profile = Some(srtp_profile);
        }
        self.refresh_state(owner);
    }

    /// A decision of a connection's `IceLite`: routes, the path media takes, liveness.
    pub(super) fn on_ice_event(&mut self, conn: ConnId, ev: IceEvent) {
        let Some(peer) = self.conns.get(conn) else {
            return;
        };
        let (owner, target) = (peer.owner, peer.target);
        match ev {
            IceEvent::RouteConfirmed(addr) => {
                if let Some(ufrag) = peer.ufrag() {
                    let ufrag = ufrag.to_owned();
                    self.outputs
                        .push_back(Output::Route(RouteChange::ConfirmAddr { addr, ufrag }));
                }
            }
            IceEvent::RouteExpired(addr) => self
                .outputs
                .push_back(Output::Route(RouteChange::ForgetAddr { addr, conn })),
            IceEvent::Switched { from, to } => {
                tracing::info!(room = %self.name, ?target, ?from, %to, "media path switched");
            }
            IceEvent::State(LinkState::Connecting) => {}
            IceEvent::State(LinkState::Connected) => self.refresh_state(owner),
            IceEvent::State(LinkState::Disconnected) => {
                tracing::info!(room = %self.name, ?target, "connection silent: asking for an ICE restart");
                self.refresh_state(owner);
                // Asked, not imposed: a client that cannot restart (libnice answers a
                // restart offer with its old credentials and checks nothing) would lose
                // a connection that may only be quiet.
                self.send(Recipients::One(owner), ServerMessage::IceRestart { target });
            }
            IceEvent::State(LinkState::Lost) => {
                // A connection that never came up is lost `lost_after` its creation: the
                // participant's media never came up either, unless another link did.
                let never_up = self
                    .participants
                    .get(owner)
                    .is_some_and(|p| p.state == ParticipantState::Connecting);
                let reason = if never_up {
                    LeaveReason::MediaTimeout
                } else {
                    LeaveReason::ConnectionLost
                };
                self.doomed.push((owner, reason));
            }
            IceEvent::Unreachable { after } => {
                tracing::info!(room = %self.name, ?target, "media connection did not come up");
                self.send(
                    Recipients::One(owner),
                    ServerMessage::MediaUnreachable {
                        target,
                        after_ms: after.as_millis() as u64,
                        hint: UNREACHABLE_HINT.to_owned(),
                    },
                );
            }
        }
    }

    /// Participants whose media setup deadline passed: those still `connecting` (no
    /// connection ever up) are removed with `media_timeout`.
    pub(super) fn reap_media_timeouts(&mut self, now: Instant) {
        while let Some(key) = self.setup.pop_due(now) {
            let Some(p) = self.participants.get(key) else {
                continue;
            };
            if p.state == ParticipantState::Connecting {
                tracing::info!(room = %self.name, participant = %p.id, "media did not come up: removed");
                self.doomed.push((key, LeaveReason::MediaTimeout));
            }
        }
    }

    pub(super) fn refresh_state(&mut self, key: ParticipantKey) {
        let Some(p) = self.participants.get(key) else {
            return;
        };
        let links = [p.publisher, p.subscriber]
            .into_iter()
            .flatten()
            .filter_map(|c| self.conns.get(c))
            .map(|peer| peer.ice().state());
        let from_links = state_from_links(links);
        if from_links.is_some() {
            // Up once: liveness (`connection_lost`) looks after it from now on, across
            // ICE restarts and silences.
            self.setup.cancel(key);
        }
        // On hold it stays `on_hold` whatever its links do (liveness still applies).
        // Off hold before any link came up: back to `connecting`.
        let off_hold =
            (p.state == ParticipantState::OnHold).then_some(ParticipantState::Connecting);
        let Some(state) = self.held_state(key).or(from_links).or(off_hold) else {
            return;
        };
        self.set_participant_state(key, state);
    }
}
