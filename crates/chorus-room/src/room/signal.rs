//! The client's signaling messages: [`Room::handle_signal`] dispatches each one, and
//! the offer/answer exchange lives here (the client offers on its publisher connection
//! and answers the server's offers on its subscriber connection), as do remote ICE
//! candidates and the client's requests to restart ICE. Errors go back to the client as
//! `error` frames; what a message asks for is done by the other parts of the room.

use std::time::Instant;

use chorus_protocol::LeaveReason;
use chorus_protocol::signal::{ClientMessage, PeerTarget, ServerMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::RTCIceCandidateInit;

use super::Room;
use crate::command::ParticipantKey;

impl Room {
    pub(super) fn handle_signal(&mut self, key: ParticipantKey, msg: ClientMessage, now: Instant) {
        if !self.participants.contains_key(&key) {
            return;
        }
        let result = match msg {
            ClientMessage::Join {} => Err(("already_joined", "this session already joined".into())),
            ClientMessage::Offer { target, sdp } => self.handle_offer(key, target, sdp, now),
            ClientMessage::Answer { target, sdp } => self.handle_answer(key, target, sdp, now),
            ClientMessage::Candidate { target, candidate } => {
                if let Some(c) = candidate {
                    let peer = self.peer_mut(key, target);
                    if let Some(peer) = peer {
                        // ICE-lite: the server never checks the client's candidates, so a bad
                        // one (mDNS, TCP) is harmless; keep them for rtc's bookkeeping.
                        let _ = peer.pc.add_remote_candidate(RTCIceCandidateInit {
                            candidate: c.candidate,
                            sdp_mid: c.sdp_mid,
                            sdp_mline_index: c.sdp_mline_index,
                            username_fragment: c.username_fragment,
                            url: None,
                        });
                    }
                }
                Ok(())
            }
            ClientMessage::Publish { cid, source, muted } => self.publish(key, cid, source, muted),
            ClientMessage::Unpublish { track_id } => match self.owned_track(key, &track_id) {
                Some(id) => {
                    self.unpublish(&id, now);
                    Ok(())
                }
                None => Err(("track_not_found", format!("you have no track '{track_id}'"))),
            },
            ClientMessage::Mute { track_id, muted } => match self.owned_track(key, &track_id) {
                Some(id) if !muted && self.tracks[&id].muted_by_server => Err((
                    "muted_by_server",
                    "the server muted this track; only the server can unmute it".into(),
                )),
                Some(id) => {
                    self.set_muted(&id, muted, false);
                    Ok(())
                }
                None => Err(("track_not_found", format!("you have no track '{track_id}'"))),
            },
            ClientMessage::Leave {} => {
                self.remove_participant(key, LeaveReason::ClientLeft, now);
                Ok(())
            }
            ClientMessage::IceRestart { target } => match target {
                PeerTarget::Subscriber if self.peer_mut(key, target).is_some() => {
                    self.restart_subscriber_ice(key, now);
                    Ok(())
                }
                PeerTarget::Subscriber => Err((
                    "no_connection",
                    "there is no subscriber connection to restart".into(),
                )),
                PeerTarget::Publisher => Err((
                    "bad_target",
                    "restart the publisher connection with a new offer (iceRestart)".into(),
                )),
            },
            ClientMessage::Ping { ts } => {
                self.send_to(key, ServerMessage::Pong { ts });
                Ok(())
            }
        };
        if let Err((code, message)) = result {
            self.send_to(
                key,
                ServerMessage::Error {
                    code: code.to_owned(),
                    message,
                    request_id: None,
                },
            );
        }
    }

    fn handle_offer(
        &mut self,
        key: ParticipantKey,
        target: PeerTarget,
        sdp: String,
        now: Instant,
    ) -> Result<(), (&'static str, String)> {
        if target != PeerTarget::Publisher {
            return Err((
                "bad_target",
                "the server offers on the subscriber connection; answer it".into(),
            ));
        }
        if !self.participants[&key].grants.can_publish {
            return Err((
                "permission_denied",
                "you may not publish in this room".into(),
            ));
        }
        if self.participants[&key].publisher.is_none() {
            let peer = self
                .new_peer(key, PeerTarget::Publisher, now)
                .map_err(|e| ("transport_error", e))?;
            self.participants.get_mut(&key).expect("checked").publisher = Some(peer);
        }
        let peer = self
            .participants
            .get_mut(&key)
            .expect("checked")
            .publisher
            .as_mut()
            .expect("set");
        tracing::trace!(%sdp, "publisher offer");
        let offer = RTCSessionDescription::offer(sdp).map_err(|e| ("bad_sdp", e.to_string()))?;
        peer.pc
            .set_remote_description(now, offer)
            .map_err(|e| ("bad_sdp", e.to_string()))?;
        let answer = peer
            .pc
            .create_answer(None)
            .map_err(|e| ("bad_sdp", e.to_string()))?;
        peer.pc
            .set_local_description(now, answer)
            .map_err(|e| ("bad_sdp", e.to_string()))?;
        let sdp = peer
            .pc
            .local_description()
            .map(|d| d.sdp)
            .unwrap_or_default();
        tracing::trace!(%sdp, "publisher answer");
        self.route_credentials(key, PeerTarget::Publisher, now);
        self.send_to(
            key,
            ServerMessage::Answer {
                target: PeerTarget::Publisher,
                sdp,
            },
        );
        self.drain_peer(key, PeerTarget::Publisher, now);
        Ok(())
    }

    fn handle_answer(
        &mut self,
        key: ParticipantKey,
        target: PeerTarget,
        sdp: String,
        now: Instant,
    ) -> Result<(), (&'static str, String)> {
        if target != PeerTarget::Subscriber {
            return Err((
                "bad_target",
                "answers go to the subscriber connection".into(),
            ));
        }
        let Some(peer) = self.peer_mut(key, PeerTarget::Subscriber) else {
            return Err(("no_offer", "no offer is waiting for an answer".into()));
        };
        if !peer.offer_in_flight {
            return Err(("no_offer", "no offer is waiting for an answer".into()));
        }
        tracing::trace!(%sdp, "subscriber answer");
        let answer = RTCSessionDescription::answer(sdp).map_err(|e| ("bad_sdp", e.to_string()))?;
        peer.pc
            .set_remote_description(now, answer)
            .map_err(|e| ("bad_sdp", e.to_string()))?;
        peer.answer_applied();
        if peer.needs_offer {
            self.negotiate(key, now);
        }
        self.drain_peer(key, PeerTarget::Subscriber, now);
        Ok(())
    }
}
