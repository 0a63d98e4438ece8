//! Who is in the room: each participant's identity, grants, state and the ids of its
//! two media connections. Admission (the limit, one session per identity) and the
//! participant's state as its connections' states make it are decided here.

use std::collections::HashMap;

use chorus_core::{ConnId, ParticipantId};
use chorus_protocol::{Grants, ParticipantInfo, ParticipantState, TrackInfo};
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

    /// Lets `req` in as `id` if there is room. A session of the same identity must have
    /// been removed first ([`Self::find`]).
    pub fn admit(
        &mut self,
        req: JoinRequest,
        id: ParticipantId,
        joined_at_ms: u64,
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
                state: ParticipantState::Connecting,
                joined_at_ms,
                publisher: None,
                subscriber: None,
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

    /// Everyone allowed to receive media, in join order.
    pub fn listeners(&self) -> Vec<ParticipantKey> {
        let mut keys: Vec<_> = self
            .by_key
            .iter()
            .filter(|(_, p)| p.grants.can_subscribe)
            .map(|(k, _)| *k)
            .collect();
        keys.sort();
        keys
    }

    /// Sets the state; the previous one if it changed.
    pub fn set_state(
        &mut self,
        key: ParticipantKey,
        state: ParticipantState,
    ) -> Option<ParticipantState> {
        let p = self.by_key.get_mut(&key)?;
        (p.state != state).then(|| std::mem::replace(&mut p.state, state))
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
        let a = ps.admit(req("a"), id(1), 0).unwrap();
        let b = ps.admit(req("b"), id(2), 0).unwrap();
        assert_ne!(a, b);
        assert_eq!(
            ps.admit(req("c"), id(3), 0).unwrap_err(),
            JoinError::RoomFull(2)
        );
        assert_eq!(ps.key_of("b"), Ok(b));
        ps.remove(b);
        assert_eq!(
            ps.key_of("b"),
            Err(RoomError::ParticipantNotFound("b".into()))
        );
        let c = ps.admit(req("c"), id(3), 0).unwrap();
        assert!(c > b, "keys are never reused");
        assert_eq!(
            ps.set_state(a, ParticipantState::Connected),
            Some(ParticipantState::Connecting)
        );
        assert_eq!(ps.set_state(a, ParticipantState::Connected), None);
    }
}
