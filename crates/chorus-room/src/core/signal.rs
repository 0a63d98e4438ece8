//! The client's signaling frames: each is dispatched here, and the offer/answer
//! exchange lives here (the client offers on its publisher connection and answers the
//! server's offers on its subscriber connection), as do remote ICE candidates and the
//! client's requests to restart ICE. A failure goes back as an `error` frame carrying
//! the frame's `request_id`.

use std::time::Instant;

use chorus_protocol::signal::{ClientFrame, ClientMessage, PeerTarget, ServerMessage};
use chorus_protocol::{LeaveReason, ParticipantState};

use super::{RoomCore, draw_credentials};
use crate::io::{ParticipantKey, Recipients};
use crate::selection::ViewSettings;
use crate::signal_error::SignalError;

impl RoomCore {
    pub(super) fn handle_signal(&mut self, key: ParticipantKey, frame: ClientFrame, now: Instant) {
        if !self.participants.contains(key) {
            return;
        }
        let ClientFrame { request_id, msg } = frame;
        let waiting = self
            .participants
            .get(key)
            .is_some_and(|p| p.state == ParticipantState::InLobby);
        let result = if waiting {
            self.dispatch_waiting(key, msg, now)
        } else {
            self.dispatch(key, msg, now)
        };
        if let Err(e) = result {
            self.send(
                Recipients::One(key),
                ServerMessage::Error {
                    code: e.code().to_owned(),
                    message: e.to_string(),
                    request_id,
                },
            );
        }
    }

    /// One waiting in the lobby may only leave or ping until it is admitted.
    fn dispatch_waiting(
        &mut self,
        key: ParticipantKey,
        msg: ClientMessage,
        now: Instant,
    ) -> Result<(), SignalError> {
        match msg {
            ClientMessage::Join {} => Err(SignalError::AlreadyJoined),
            ClientMessage::Leave {} | ClientMessage::Ping { .. } => self.dispatch(key, msg, now),
            _ => Err(SignalError::InLobby),
        }
    }

    fn dispatch(
        &mut self,
        key: ParticipantKey,
        msg: ClientMessage,
        now: Instant,
    ) -> Result<(), SignalError> {
        match msg {
            ClientMessage::Join {} => Err(SignalError::AlreadyJoined),
            ClientMessage::Offer { target, sdp } => self.handle_offer(key, target, sdp, now),
            ClientMessage::Answer { target, sdp } => self.handle_answer(key, target, sdp, now),
            // ICE-lite: the server never checks the client's candidates, so a bad one
            // (mDNS, TCP) is harmless.
            ClientMessage::Candidate { .. } => Ok(()),
            ClientMessage::Publish { cid, source, muted } => self.publish(key, cid, source, muted),
            ClientMessage::Unpublish { track_id } => {
                let id = self
                    .tracks
                    .owned(key, &track_id)
                    .ok_or(SignalError::TrackNotFound(track_id))?;
                self.unpublish(&id, now);
                Ok(())
            }
            ClientMessage::Mute { track_id, muted } => {
                let id = self
                    .tracks
                    .owned(key, &track_id)
                    .ok_or(SignalError::TrackNotFound(track_id))?;
                self.set_muted(&id, muted, false, now).map(|_| ())
            }
            ClientMessage::Leave {} => {
                self.remove_participant(key, LeaveReason::ClientLeft, now);
                Ok(())
            }
            ClientMessage::IceRestart { target } => match target {
                PeerTarget::Subscriber => {
                    let conn = self.participants.get(key).and_then(|p| p.subscriber);
                    let peer = conn.and_then(|c| self.conns.get_mut(c));
                    let peer = peer.ok_or(SignalError::NoConnection)?;
                    peer.negotiation.restart_ice();
                    self.offers_due.push(peer.conn);
                    Ok(())
                }
                PeerTarget::Publisher => Err(SignalError::BadTarget(
                    "restart the publisher connection with a new offer (iceRestart)",
                )),
            },
            ClientMessage::Ping { ts } => {
                self.send(Recipients::One(key), ServerMessage::Pong { ts });
                Ok(())
            }
            ClientMessage::TrackSettings {
                track_id,
                width,
                height,
                visible,
                max_quality,
            } => {
                let settings = ViewSettings {
                    width,
                    height,
                    visible,
                    max_quality,
                };
                self.track_settings(key, &track_id, settings)
            }
            ClientMessage::SetLastN { last_n } => self.set_last_n(key, last_n),
            ClientMessage::SetPins { participant_ids } => self.set_pins(key, &participant_ids),
            ClientMessage::Admit { participant_id } => {
                self.lobby_request(key, &participant_id, true, now)
            }
            ClientMessage::Reject { participant_id } => {
                self.lobby_request(key, &participant_id, false, now)
            }
            ClientMessage::Hold {} => {
                self.set_hold(key, true, now);
                Ok(())
            }
            ClientMessage::Unhold {} => {
                self.set_hold(key, false, now);
                Ok(())
            }
        }
    }

    fn handle_offer(
        &mut self,
        key: ParticipantKey,
        target: PeerTarget,
        sdp: String,
        now: Instant,
    ) -> Result<(), SignalError> {
        if target != PeerTarget::Publisher {
            return Err(SignalError::BadTarget(
                "the server offers on the subscriber connection; answer it",
            ));
        }
        let p = self.participants.get(key).expect("caller checked");
        // Without the publish grant, an offer may carry the data channels alone: what a
        // participant needs to receive data messages (docs/signaling.md).
        let media = sdp
            .lines()
            .any(|l| l.starts_with("m=audio") || l.starts_with("m=video"));
        if !p.grants.can_publish && media {
            return Err(SignalError::PermissionDenied("publish in this room".into()));
        }
        let conn = match p.publisher {
            Some(conn) => conn,
            None => self
                .new_peer(key, PeerTarget::Publisher, now)
                .map_err(SignalError::Transport)?,
        };
        let peer = self
            .conns
            .get_mut(conn)
            .expect("connection of a participant");
        tracing::trace!(%sdp, "publisher offer");
        let rng = &mut self.rng;
        let sdp = peer
            .answer(&sdp, || draw_credentials(rng), now)
            .map_err(SignalError::bad_sdp)?;
        tracing::trace!(%sdp, "publisher answer");
        self.route_credentials(conn);
        self.send(
            Recipients::One(key),
            ServerMessage::Answer {
                target: PeerTarget::Publisher,
                sdp,
            },
        );
        self.drain_peer(conn, now);
        Ok(())
    }

    fn handle_answer(
        &mut self,
        key: ParticipantKey,
        target: PeerTarget,
        sdp: String,
        now: Instant,
    ) -> Result<(), SignalError> {
        if target != PeerTarget::Subscriber {
            return Err(SignalError::BadTarget(
                "answers go to the subscriber connection",
            ));
        }
        let conn = self.participants.get(key).and_then(|p| p.subscriber);
        let peer = conn
            .and_then(|c| self.conns.get_mut(c))
            .ok_or(SignalError::NoOffer)?;
        if !peer.negotiation.in_flight() {
            return Err(SignalError::NoOffer);
        }
        tracing::trace!(%sdp, "subscriber answer");
        peer.apply_answer(&sdp, now).map_err(SignalError::bad_sdp)?;
        let refused = peer.refused_tracks();
        for (id, dt) in peer.downtracks.iter_mut() {
            dt.codec_refused = refused.contains(id);
        }
        if !refused.is_empty() {
            tracing::info!(tracks = ?refused, "the subscriber's answer took tracks without their codec");
        }
        let phases = peer.downtracks.values_mut().map(|dt| &mut dt.phase);
        peer.negotiation
            .answered(phases)
            .map_err(|_| SignalError::NoOffer)?;
        let conn = peer.conn;
        // Changes made while the offer was out go in the next one.
        self.offers_due.push(conn);
        self.drain_peer(conn, now);
        Ok(())
    }
}
