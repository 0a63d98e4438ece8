//! Phones and bots over plain RTP in the room: admitted through the control API with
//! one microphone track, heard through the mixer (their endpoint hands over 48 kHz
//! samples), and sent their mix-minus-self ([`super::RoomCore::tick_mixer`]). They
//! have no media connection: their socket and codec live in their endpoint's task.
//!
//! One whose call is not answered yet (a SIP gateway's early media: ringback, an
//! announcement) enters `early_media`: the room hears it, it is sent nothing (nobody
//! took the call at its end, and the room's talk is not for a line nobody answered),
//! until the control API answers it (`connected`, and its mix starts).

use std::time::Instant;

use chorus_core::{Codec, ParticipantId, TrackId};
use chorus_mixer::SourceKind;
use chorus_plainrtp::InboundFrame;
use chorus_protocol::signal::ServerMessage;
use chorus_protocol::webhook::WebhookEvent;
use chorus_protocol::{Grants, ParticipantInfo, ParticipantState, TrackSource};
use chorus_room_api::{JoinError, JoinRequest, RoomError};
use rand::Rng;

use super::RoomCore;
use crate::io::{ParticipantKey, Recipients, RtpAdmitted, RtpJoin};
use crate::tracks::UpstreamBinding;

/// The client id of a plain-RTP participant's one track.
const RTP_TRACK_CID: &str = "rtp-audio";

impl RoomCore {
    pub(super) fn add_rtp_participant(
        &mut self,
        join: RtpJoin,
        now: Instant,
    ) -> Result<RtpAdmitted, RoomError> {
        if self.closed {
            return Err(RoomError::RoomClosed);
        }
        if self.participants.find(&join.identity).is_some() {
            return Err(RoomError::IdentityInUse(join.identity));
        }
        if self.participants.plain_count() as u32 >= join.max_in_room {
            return Err(RoomError::TooManyRtpParticipants(join.max_in_room));
        }
        let grants = Grants {
            can_publish: true,
            can_publish_sources: vec![TrackSource::Microphone],
            can_subscribe: true,
            can_publish_data: false,
            can_admit: false,
        };
        let id = ParticipantId::from_random(self.rng.random());
        let req = JoinRequest {
            identity: join.identity,
            name: join.name,
            grants: grants.clone(),
            // No token: the control API that adds it is the authority.
            issued_at: self.unix_ms(now) / 1000,
        };
        let key = self
            .participants
            .admit(
                req,
                id.clone(),
                self.unix_ms(now),
                if join.early_media {
                    ParticipantState::EarlyMedia
                } else {
                    ParticipantState::Connecting
                },
            )
            .map_err(|e| match e {
                JoinError::RoomFull(n) => RoomError::RoomFull(n),
                _ => RoomError::RoomClosed,
            })?;
        if let Some(p) = self.participants.get_mut(key) {
            p.plain = Some(join.codec);
        }
        self.audio.set_plain(
            key,
            SourceKind {
                pcm_in: true,
                pcm_out: join.codec.wants_pcm(),
            },
        );
        let track = TrackId::from_random(self.rng.random());
        self.tracks
            .publish(
                key,
                &id,
                &grants,
                RTP_TRACK_CID.into(),
                TrackSource::Microphone,
                false,
                track.clone(),
            )
            .expect("a new participant may publish its microphone");
        if let Some(t) = self.tracks.get_mut(&track) {
            // Bound at once: it is a source of the mix from now on (never relayed).
            t.upstream = Some(UpstreamBinding {
                media_ssrc: None,
                audio_level_ext: None,
                codec: Codec::Opus,
                simulcast: None,
                svc: None,
            });
        }
        self.last_n.joined(key);
        self.last_n_due = true;
        let info = self.participant_info(key).expect("just admitted");
        self.event(WebhookEvent::ParticipantJoined {
            room: self.name.clone(),
            participant: info.clone(),
        });
        self.send(
            Recipients::AllExcept(key),
            ServerMessage::ParticipantJoined {
                participant: info.clone(),
            },
        );
        self.update_audio(now);
        tracing::info!(room = %self.name, participant = %id, codec = join.codec.as_str(), "plain-RTP participant joined");
        Ok(RtpAdmitted {
            participant: key,
            info,
            ssrc: self.rng.random(),
            initial_timestamp: self.rng.random(),
        })
    }

    /// 20 ms of a plain-RTP participant's voice. The first makes a `connecting` one
    /// `connected`; one in early media stays there (only the answer moves it), one on
    /// hold stays on hold (the mixer does not hear it).
    pub(super) fn rtp_frame(&mut self, key: ParticipantKey, frame: InboundFrame, now: Instant) {
        let Some(p) = self.participants.get(key).filter(|p| p.plain.is_some()) else {
            return;
        };
        if p.state == ParticipantState::Connecting {
            self.set_participant_state(key, ParticipantState::Connected);
        }
        self.audio.hear_pcm(key, frame.seq, &frame.pcm, now);
    }

    /// The control API answers a phone in early media: `connected` (announced with
    /// the previous state), and from the next mix frame on it hears the room.
    pub(super) fn answer_rtp(
        &mut self,
        identity: &str,
        now: Instant,
    ) -> Result<ParticipantInfo, RoomError> {
        let key = self
            .participants
            .find(identity)
            .filter(|k| self.is_plain(*k))
            .ok_or_else(|| RoomError::ParticipantNotFound(identity.to_owned()))?;
        let state = self.participants.get(key).map(|p| p.state);
        if state != Some(ParticipantState::EarlyMedia) {
            return Err(RoomError::AlreadyAnswered(identity.to_owned()));
        }
        self.set_participant_state(key, ParticipantState::Connected);
        // A listener from now on: its mix-minus-self starts.
        self.update_audio(now);
        tracing::info!(room = %self.name, participant = %identity, "plain-RTP participant answered");
        self.participant_info(key).ok_or(RoomError::RoomClosed)
    }

    /// A phone in early media is not held: SIP holds an answered call, and coming off
    /// hold would make it `connecting` as if it had been answered.
    pub(super) fn may_hold(&self, key: ParticipantKey, held: bool) -> Result<(), RoomError> {
        match self.participants.get(key) {
            Some(p) if held && p.state == ParticipantState::EarlyMedia => {
                Err(RoomError::NotAnswered(p.identity.clone()))
            }
            _ => Ok(()),
        }
    }

    /// Whether `key` is a plain-RTP participant (no media connections).
    pub(super) fn is_plain(&self, key: ParticipantKey) -> bool {
        self.participants
            .get(key)
            .is_some_and(|p| p.plain.is_some())
    }
}
