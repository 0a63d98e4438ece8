//! The room's ringing invitations: who is invited, under which roster id, until when.
//! An invitation ends when its invitee joins (`accepted`), declines, is cancelled, or
//! its deadline passes on the room's clock (`no_answer`). Sans-I/O: the core asks and
//! announces.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chorus_core::ParticipantId;
use chorus_protocol::control::{
    CreateInvitationRequest, DEFAULT_INVITATION_TIMEOUT_SECS, InvitationInfo,
    MAX_INVITATION_TIMEOUT_SECS, MAX_INVITATIONS_PER_ROOM,
};
use chorus_protocol::{Grants, ParticipantInfo, ParticipantState};
use chorus_room_api::RoomError;

use crate::timers::Timers;

/// Longest identity or name an invitation takes, in characters (as a token's).
pub const MAX_INVITEE_CHARS: usize = 256;

#[derive(Debug, Clone)]
pub struct Invitation {
    pub info: InvitationInfo,
    pub participant_id: ParticipantId,
}

impl Invitation {
    /// Its roster entry: `ringing`, no tracks, since the invitation.
    pub fn roster_entry(&self) -> ParticipantInfo {
        ParticipantInfo {
            participant_id: self.info.participant_id.clone(),
            identity: self.info.identity.clone(),
            name: self.info.name.clone(),
            state: ParticipantState::Ringing,
            grants: Grants::default(),
            tracks: Vec::new(),
            joined_at_ms: self.info.created_at_ms,
        }
    }
}

#[derive(Debug, Default)]
pub struct Invitations {
    /// By a key in creation order (the roster lists them so).
    by_key: BTreeMap<u64, Invitation>,
    deadlines: Timers<u64>,
    next_key: u64,
}

/// What the room draws for a new invitation.
pub struct Drawn {
    pub invitation_id: String,
    pub participant_id: ParticipantId,
    pub now: Instant,
    pub now_ms: u64,
}

impl Invitations {
    /// Checks `req` and files it; `in_room` says whether its identity is already a
    /// participant.
    pub fn invite(
        &mut self,
        req: CreateInvitationRequest,
        in_room: bool,
        drawn: Drawn,
    ) -> Result<&Invitation, RoomError> {
        let identity = req.identity;
        let bad = |why: &str| Err(RoomError::InvalidInvitation(why.to_owned()));
        if identity.is_empty() || identity.chars().count() > MAX_INVITEE_CHARS {
            return bad("identity must be 1 to 256 characters");
        }
        if identity.chars().any(char::is_control) {
            return bad("identity must not contain control characters");
        }
        let name = req.name.unwrap_or_else(|| identity.clone());
        if name.chars().count() > MAX_INVITEE_CHARS || name.chars().any(char::is_control) {
            return bad("name must be at most 256 characters, without control characters");
        }
        let secs = req.timeout_secs.unwrap_or(DEFAULT_INVITATION_TIMEOUT_SECS);
        if !(1..=MAX_INVITATION_TIMEOUT_SECS).contains(&secs) {
            return Err(RoomError::InvalidInvitation(format!(
                "timeout_secs must be 1 to {MAX_INVITATION_TIMEOUT_SECS}"
            )));
        }
        if in_room {
            return Err(RoomError::AlreadyInRoom(identity));
        }
        if self.find_identity(&identity).is_some() {
            return Err(RoomError::AlreadyInvited(identity));
        }
        if self.by_key.len() >= MAX_INVITATIONS_PER_ROOM {
            return Err(RoomError::TooManyInvitations(MAX_INVITATIONS_PER_ROOM));
        }
        let key = self.next_key;
        self.next_key += 1;
        self.deadlines
            .schedule(key, Some(drawn.now + Duration::from_secs(secs)));
        let invitation = Invitation {
            info: InvitationInfo {
                invitation_id: drawn.invitation_id,
                identity,
                name,
                participant_id: drawn.participant_id.to_string(),
                created_at_ms: drawn.now_ms,
                expires_at_ms: drawn.now_ms + secs * 1000,
            },
            participant_id: drawn.participant_id,
        };
        Ok(self.by_key.entry(key).or_insert(invitation))
    }

    /// The invitation ringing for `identity`.
    pub fn find_identity(&self, identity: &str) -> Option<&Invitation> {
        self.by_key.values().find(|i| i.info.identity == identity)
    }

    /// Ends the invitation for `identity` (it joined).
    pub fn take_identity(&mut self, identity: &str) -> Option<Invitation> {
        let key = *self
            .by_key
            .iter()
            .find(|(_, i)| i.info.identity == identity)?
            .0;
        self.take(key)
    }

    /// Ends the invitation `invitation_id`.
    pub fn take_id(&mut self, invitation_id: &str) -> Result<Invitation, RoomError> {
        let key = self
            .by_key
            .iter()
            .find(|(_, i)| i.info.invitation_id == invitation_id)
            .map(|(k, _)| *k)
            .ok_or_else(|| RoomError::InvitationNotFound(invitation_id.to_owned()))?;
        Ok(self.take(key).expect("found"))
    }

    /// An invitation whose deadline passed by `now`, ended.
    pub fn pop_expired(&mut self, now: Instant) -> Option<Invitation> {
        let key = self.deadlines.pop_due(now)?;
        self.by_key.remove(&key)
    }

    pub fn next_deadline(&mut self) -> Option<Instant> {
        self.deadlines.next()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Invitation> {
        self.by_key.values()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    fn take(&mut self, key: u64) -> Option<Invitation> {
        self.deadlines.cancel(key);
        self.by_key.remove(&key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(identity: &str, timeout_secs: Option<u64>) -> CreateInvitationRequest {
        CreateInvitationRequest {
            identity: identity.into(),
            name: None,
            timeout_secs,
        }
    }

    fn drawn(n: u64, now: Instant) -> Drawn {
        Drawn {
            invitation_id: format!("IN_{n}"),
            participant_id: ParticipantId::from_random(n),
            now,
            now_ms: 1_000,
        }
    }

    #[test]
    fn invitations_are_checked_bounded_and_expire() {
        let t0 = Instant::now();
        let mut inv = Invitations::default();
        let cases: [(CreateInvitationRequest, bool, &str); 5] = [
            (req("", None), false, "invalid_invitation"),
            (req("bob", Some(0)), false, "invalid_invitation"),
            (req("bob", Some(301)), false, "invalid_invitation"),
            (req("bob", None), true, "already_in_room"),
            (req("a\u{7}b", None), false, "invalid_invitation"),
        ];
        for (r, in_room, code) in cases {
            let got = inv.invite(r.clone(), in_room, drawn(0, t0));
            assert_eq!(got.err().map(|e| e.code()), Some(code), "{r:?}");
        }
        let bob = inv
            .invite(req("bob", Some(10)), false, drawn(1, t0))
            .unwrap();
        assert_eq!(bob.info.expires_at_ms, 11_000);
        assert_eq!(bob.info.name, "bob");
        let again = inv.invite(req("bob", None), false, drawn(2, t0));
        assert_eq!(again.err().map(|e| e.code()), Some("already_invited"));
        for n in 1..MAX_INVITATIONS_PER_ROOM {
            inv.invite(
                req(&format!("u{n}"), Some(60)),
                false,
                drawn(10 + n as u64, t0),
            )
            .unwrap();
        }
        let full = inv.invite(req("one-more", None), false, drawn(99, t0));
        assert_eq!(full.err().map(|e| e.code()), Some("too_many_invitations"));
        // Bob's rings 10 s; the others 60 s.
        assert!(inv.pop_expired(t0 + Duration::from_secs(9)).is_none());
        let gone = inv.pop_expired(t0 + Duration::from_secs(10)).unwrap();
        assert_eq!(gone.info.identity, "bob");
        assert!(inv.pop_expired(t0 + Duration::from_secs(10)).is_none());
        // Taken (joined) before its deadline: it never expires.
        assert!(inv.take_identity("u1").is_some());
        assert!(inv.take_id("IN_nope").is_err());
        let mut expired = 0;
        while inv.pop_expired(t0 + Duration::from_secs(60)).is_some() {
            expired += 1;
        }
        assert_eq!(expired, MAX_INVITATIONS_PER_ROOM - 2);
        assert!(inv.is_empty());
    }
}
