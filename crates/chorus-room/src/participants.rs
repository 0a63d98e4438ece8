//! Who is in the room: each participant's identity, grants, state and the ids of its
//! two media connections. Admission (the limit, one session per identity), the
//! participant's state as its connections' states make it, and which state changes are
//! allowed ([`Participants::set_state`], the one place a state changes) are decided here.

use std::collections::HashMap;

use chorus_core::{ConnId, ParticipantId};
use chorus_plainrtp::PlainCodec;
use chorus_protocol::{Grants, LeaveReason, ParticipantInfo, ParticipantState, TrackInfo};
use chorus_transport::LinkState;

use crate::io::ParticipantKey;
use chorus_room_api::{JoinError, JoinRequest, RoomError};

#[derive(Debug)]
pub struct Participant {
    pub id: ParticipantId,
    pub identity: String,
    pub name: String,
    pub grants: Grants,
    pub state: ParticipantState,
    pub joined_at_ms: u64,
    pub publisher: Option<ConnId>,
    pub subscriber: Option<ConnId>,
    /// A phone or bot over plain RTP (no connections): its codec.
    pub plain: Option<PlainCodec>,
    /// On hold: no media to or from it.
    pub held: bool,
}

impl Participant {
    pub fn info(&self, tracks: Vec<TrackInfo>) -> ParticipantInfo {
        ParticipantInfo {
            participant_id: self.id.to_string(),
            identity: self.identity.clone(),
            name: self.name.clone(),
            state: self.state,
            grants: self.grants.clone(),
            tracks,
            joined_at_ms: self.joined_at_ms,
        }
    }
}

/// The participant's state from its connections' states: `disconnected` while any of
/// them is silent, `connected` once none is and at least one is up; `None` (no change)
/// while they are still coming up.
pub fn state_from_links(links: impl IntoIterator<Item = LinkState>) -> Option<ParticipantState> {
    let (mut connected, mut disconnected) = (false, false);
    for link in links {
        connected |= link == LinkState::Connected;
        disconnected |= link == LinkState::Disconnected;
    }
    if disconnected {
        Some(ParticipantState::Disconnected)
    } else if connected {
        Some(ParticipantState::Connected)
    } else {
        None
    }
}

/// One change of a participant's state, for the `participant_state` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateChange {
    pub previous: ParticipantState,
    pub state: ParticipantState,
    /// Set on the final change, when the participant leaves.
    pub reason: Option<LeaveReason>,
}

/// A state change [`Participants::set_state`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("no such participant")]
    NoParticipant,
    #[error("a participant does not go from {from:?} to {to:?}")]
    NotAllowed {
        from: ParticipantState,
        to: ParticipantState,
    },
}

/// Whether a live participant may go from `from` to `to` (leaving, to `disconnected`
/// with a reason, is allowed from everywhere). docs/signaling.md has the same table.
pub fn may_change(from: ParticipantState, to: ParticipantState) -> bool {
    use ParticipantState::*;
    match (from, to) {
        (Idle, Ringing | EarlyMedia | InLobby | Connecting) => true,
        (Ringing, InLobby | Connecting | Disconnected) => true,
        (EarlyMedia, Connecting | Connected | OnHold | Disconnected) => true,
        (InLobby, Connecting | Disconnected) => true,
        (Connecting, Connected | OnHold | Disconnected) => true,
        (Connected, OnHold | Disconnected) => true,
        (OnHold, Connecting | Connected | Disconnected) => true,
        // A silent connection that speaks again, or is held meanwhile.
        (Disconnected, Connecting | Connected | OnHold) => true,
        _ => false,
    }
}

#[derive(Debug)]
pub struct Participants {
    max: u32,
    by_key: HashMap<ParticipantKey, Participant>,
    by_identity: HashMap<String, ParticipantKey>,
    next_key: u64,
}

impl Participants {
    pub fn new(max: u32) -> Self {
        Self {
            max,
            by_key: HashMap::new(),
            by_identity: HashMap::new(),
            next_key: 1,
        }
    }

    pub fn max(&self) -> u32 {
        self.max
    }

    /// Lets `req` in as `id` if there is room (those waiting in the lobby count), in
    /// `state` (`connecting`, or `in_lobby`). A session of the same identity must have
    /// been removed first ([`Self::find`]).
    pub fn admit(
        &mut self,
        req: JoinRequest,
        id: ParticipantId,
        joined_at_ms: u64,
        state: ParticipantState,
    ) -> Result<ParticipantKey, JoinError> {
        debug_assert!(!self.by_identity.contains_key(&req.identity));
        if self.by_key.len() as u32 >= self.max {
            return Err(JoinError::RoomFull(self.max));
        }
        let key = ParticipantKey(self.next_key);
        self.next_key += 1;
        self.by_identity.insert(req.identity.clone(), key);
        self.by_key.insert(
            key,
            Participant {
                id,
                identity: req.identity,
                name: req.name,
                grants: req.grants,
                state,
                joined_at_ms,
                publisher: None,
                subscriber: None,
                plain: None,
                held: false,
            },
        );
        Ok(key)
    }

    pub fn remove(&mut self, key: ParticipantKey) -> Option<Participant> {
        let p = self.by_key.remove(&key)?;
        self.by_identity.remove(&p.identity);
        Some(p)
    }

    pub fn find(&self, identity: &str) -> Option<ParticipantKey> {
        self.by_identity.get(identity).copied()
    }

    /// The participant with `identity`, as the control API names it.
    pub fn key_of(&self, identity: &str) -> Result<ParticipantKey, RoomError> {
        self.find(identity)
            .ok_or_else(|| RoomError::ParticipantNotFound(identity.to_owned()))
    }

    pub fn get(&self, key: ParticipantKey) -> Option<&Participant> {
        self.by_key.get(&key)
    }

    pub fn get_mut(&mut self, key: ParticipantKey) -> Option<&mut Participant> {
        self.by_key.get_mut(&key)
    }

    pub fn contains(&self, key: ParticipantKey) -> bool {
        self.by_key.contains_key(&key)
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    pub fn keys(&self) -> Vec<ParticipantKey> {
        let mut keys: Vec<_> = self.by_key.keys().copied().collect();
        keys.sort();
        keys
    }

    /// Everyone in the room (not waiting in its lobby), in join order.
    pub fn admitted(&self) -> Vec<ParticipantKey> {
        let mut keys: Vec<_> = self
            .by_key
            .iter()
            .filter(|(_, p)| p.state != ParticipantState::InLobby)
            .map(|(k, _)| *k)
            .collect();
        keys.sort();
        keys
    }

    /// Those waiting in the lobby, in join order.
    pub fn waiting(&self) -> Vec<ParticipantKey> {
        let mut keys: Vec<_> = self
            .by_key
            .iter()
            .filter(|(_, p)| p.state == ParticipantState::InLobby)
            .map(|(k, _)| *k)
            .collect();
        keys.sort();
        keys
    }

    /// Those in the room who may admit from the lobby.
    pub fn admitters(&self) -> Vec<ParticipantKey> {
        let mut keys: Vec<_> = self
            .by_key
            .iter()
            .filter(|(_, p)| p.grants.can_admit && p.state != ParticipantState::InLobby)
            .map(|(k, _)| *k)
            .collect();
        keys.sort();
        keys
    }

    /// The participant with this `participant_id`, or else this identity.
    pub fn named(&self, who: &str) -> Option<ParticipantKey> {
        self.by_key
            .iter()
            .find(|(_, p)| p.id.as_str() == who)
            .map(|(k, _)| *k)
            .or_else(|| self.find(who))
    }

    /// Everyone allowed to receive media, in join order (not those in the lobby, nor
    /// a phone in early media: nobody answered at its end yet).
    pub fn listeners(&self) -> Vec<ParticipantKey> {
        let mut keys: Vec<_> = self
            .by_key
            .iter()
            .filter(|(_, p)| {
                p.grants.can_subscribe
                    && !matches!(
                        p.state,
                        ParticipantState::InLobby | ParticipantState::EarlyMedia
                    )
            })
            .map(|(k, _)| *k)
            .collect();
        keys.sort();
        keys
    }

    /// The plain-RTP participants.
    pub fn plain_count(&self) -> usize {
        self.by_key.values().filter(|p| p.plain.is_some()).count()
    }

    /// Changes the participant's state: the change to announce, `None` if it was in
    /// that state already. With a `reason` it is leaving: the change to `disconnected`
    /// is its last, always announced, from whatever state it was in.
    pub fn set_state(
        &mut self,
        key: ParticipantKey,
        state: ParticipantState,
        reason: Option<LeaveReason>,
    ) -> Result<Option<StateChange>, StateError> {
        let p = self.by_key.get_mut(&key).ok_or(StateError::NoParticipant)?;
        let previous = p.state;
        let leaving = reason.is_some() && state == ParticipantState::Disconnected;
        if !leaving {
            if previous == state {
                return Ok(None);
            }
            if reason.is_some() || !may_change(previous, state) {
                return Err(StateError::NotAllowed {
                    from: previous,
                    to: state,
                });
            }
        }
        p.state = state;
        Ok(Some(StateChange {
            previous,
            state,
            reason,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LinkState::*;

    fn req(identity: &str) -> JoinRequest {
        JoinRequest {
            identity: identity.into(),
            name: identity.into(),
            grants: Grants::default(),
            issued_at: 0,
        }
    }

    #[test]
    fn participant_state_follows_its_links() {
        let cases: [(&[LinkState], Option<ParticipantState>); 7] = [
            (&[], None),
            (&[Connecting], None),
            (&[Connected], Some(ParticipantState::Connected)),
            (&[Connected, Connecting], Some(ParticipantState::Connected)),
            (
                &[Connected, Disconnected],
                Some(ParticipantState::Disconnected),
            ),
            (&[Disconnected], Some(ParticipantState::Disconnected)),
            (&[Lost, Connecting], None),
        ];
        for (links, want) in cases {
            assert_eq!(state_from_links(links.iter().copied()), want, "{links:?}");
        }
    }

    #[test]
    fn admission_counts_and_names() {
        let mut ps = Participants::new(2);
        let id = |n| ParticipantId::from_random(n);
        let connecting = ParticipantState::Connecting;
        let a = ps.admit(req("a"), id(1), 0, connecting).unwrap();
        let b = ps.admit(req("b"), id(2), 0, connecting).unwrap();
        assert_ne!(a, b);
        assert_eq!(
            ps.admit(req("c"), id(3), 0, connecting).unwrap_err(),
            JoinError::RoomFull(2)
        );
        assert_eq!(ps.key_of("b"), Ok(b));
        ps.remove(b);
        assert_eq!(
            ps.key_of("b"),
            Err(RoomError::ParticipantNotFound("b".into()))
        );
        let c = ps.admit(req("c"), id(3), 0, connecting).unwrap();
        assert!(c > b, "keys are never reused");
        assert_eq!(
            ps.set_state(a, ParticipantState::Connected, None),
            Ok(Some(StateChange {
                previous: connecting,
                state: ParticipantState::Connected,
                reason: None
            }))
        );
        assert_eq!(ps.set_state(a, ParticipantState::Connected, None), Ok(None));
    }

    /// Every pair of states: which changes a live participant may make. Leaving (to
    /// `disconnected` with a reason) is allowed from every state, and always announced.
    #[test]
    fn the_state_setter_follows_the_table() {
        use ParticipantState::*;
        let allowed: &[(ParticipantState, &[ParticipantState])] = &[
            (Idle, &[Ringing, EarlyMedia, InLobby, Connecting]),
            (Ringing, &[InLobby, Connecting, Disconnected]),
            (EarlyMedia, &[Connecting, Connected, OnHold, Disconnected]),
            (InLobby, &[Connecting, Disconnected]),
            (Connecting, &[Connected, OnHold, Disconnected]),
            (Connected, &[OnHold, Disconnected]),
            (OnHold, &[Connecting, Connected, Disconnected]),
            (Disconnected, &[Connecting, Connected, OnHold]),
        ];
        assert_eq!(allowed.len(), ParticipantState::ALL.len());
        for &(from, tos) in allowed {
            for to in ParticipantState::ALL {
                let mut ps = Participants::new(1);
                let key = ps
                    .admit(req("a"), ParticipantId::from_random(1), 0, from)
                    .unwrap();
                let got = ps.set_state(key, to, None);
                let want = if from == to {
                    Ok(None)
                } else if tos.contains(&to) {
                    Ok(Some(StateChange {
                        previous: from,
                        state: to,
                        reason: None,
                    }))
                } else {
                    Err(StateError::NotAllowed { from, to })
                };
                assert_eq!(got, want, "{from:?} -> {to:?}");
                let after = ps.get(key).unwrap().state;
                assert_eq!(
                    after,
                    if got.is_ok() { to } else { from },
                    "{from:?} -> {to:?}"
                );
                // Leaving, whatever the state.
                let reason = Some(LeaveReason::ClientLeft);
                assert_eq!(
                    ps.set_state(key, Disconnected, reason),
                    Ok(Some(StateChange {
                        previous: after,
                        state: Disconnected,
                        reason
                    })),
                    "leaving from {after:?}"
                );
                // A reason goes with `disconnected` only.
                assert!(ps.set_state(key, Connected, reason).is_err());
            }
        }
        let mut ps = Participants::new(1);
        assert_eq!(
            ps.set_state(ParticipantKey(9), Connected, None),
            Err(StateError::NoParticipant)
        );
    }
}
