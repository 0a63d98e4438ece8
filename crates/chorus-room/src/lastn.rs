//! Last-N: whose camera each subscriber receives. Per subscriber, the participants it
//! pins come first, then those who spoke last, up to its N (`set_last_n`, else the
//! room's default); every other camera is paused for it, not torn down. Screen shares
//! are not cameras: they are always received, outside N.
//!
//! The speaking order moves the active speakers to the front each time they change
//! and is left alone while nobody speaks, so who is shown does not churn in silence;
//! participants who never spoke follow in the order they joined. Sans-I/O: the room
//! feeds joins, leaves, speakers, settings and the cameras there are, and gets back
//! the pauses and resumes that changed.

use std::collections::{HashMap, HashSet};

use chorus_core::TrackId;

use crate::io::ParticipantKey;

/// The N a room gives subscribers that did not ask (as native clients do).
pub const DEFAULT_LAST_N: u32 = 6;

/// One subscriber's camera that starts or stops being sent to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PauseChange {
    pub viewer: ParticipantKey,
    pub track: TrackId,
    pub owner: ParticipantKey,
    pub paused: bool,
}

#[derive(Debug, Clone, Default)]
struct Viewer {
    /// `None`: the room's default.
    last_n: Option<u32>,
    pins: Vec<ParticipantKey>,
}

#[derive(Debug)]
pub struct LastN {
    default_n: u32,
    /// Everyone in the room, who spoke last first.
    order: Vec<ParticipantKey>,
    viewers: HashMap<ParticipantKey, Viewer>,
    /// (subscriber, camera) not sent now.
    paused: HashSet<(ParticipantKey, TrackId)>,
}

impl LastN {
    pub fn new(default_n: u32) -> Self {
        Self {
            default_n,
            order: Vec::new(),
            viewers: HashMap::new(),
            paused: HashSet::new(),
        }
    }

    /// `owner` matters more to `viewer` than the others: pinned by it, or who spoke last.
    pub fn featured(&self, viewer: ParticipantKey, owner: ParticipantKey) -> bool {
        self.order.first() == Some(&owner)
            || self
                .viewers
                .get(&viewer)
                .is_some_and(|v| v.pins.contains(&owner))
    }

    /// A participant joined: last in the speaking order until it speaks.
    pub fn joined(&mut self, key: ParticipantKey) {
        if !self.order.contains(&key) {
            self.order.push(key);
        }
    }

    /// A participant left: out of the order, of everyone's pins, and of the pauses.
    pub fn left(&mut self, key: ParticipantKey) {
        self.order.retain(|k| *k != key);
        self.viewers.remove(&key);
        for v in self.viewers.values_mut() {
            v.pins.retain(|k| *k != key);
        }
        self.paused.retain(|(v, _)| *v != key);
    }

    /// The active speakers now (longest active first): they move to the front, in that
    /// order. Nobody speaking changes nothing. Whether the order changed.
    pub fn spoke(&mut self, speakers: &[ParticipantKey]) -> bool {
        let known: Vec<ParticipantKey> = speakers
            .iter()
            .copied()
            .filter(|k| self.order.contains(k))
            .collect();
        if known.is_empty() || self.order.starts_with(&known) {
            return false;
        }
        self.order.retain(|k| !known.contains(k));
        self.order.splice(0..0, known);
        true
    }

    pub fn set_last_n(&mut self, viewer: ParticipantKey, n: u32) {
        self.viewers.entry(viewer).or_default().last_n = Some(n);
    }

    /// Replaces the viewer's pins (the caller bounds and checks them).
    pub fn set_pins(&mut self, viewer: ParticipantKey, pins: Vec<ParticipantKey>) {
        let mut unique = Vec::with_capacity(pins.len());
        for p in pins {
            if p != viewer && !unique.contains(&p) {
                unique.push(p);
            }
        }
        self.viewers.entry(viewer).or_default().pins = unique;
    }

    pub fn last_n_of(&self, viewer: ParticipantKey) -> u32 {
        self.viewers
            .get(&viewer)
            .and_then(|v| v.last_n)
            .unwrap_or(self.default_n)
    }

    /// The publishers among `owners` whose camera `viewer` receives: its pins, then the
    /// speaking order, at most its N.
    pub fn chosen(&self, viewer: ParticipantKey, owners: &[ParticipantKey]) -> Vec<ParticipantKey> {
        let n = self.last_n_of(viewer) as usize;
        let pins = self.viewers.get(&viewer).map_or(&[][..], |v| &v.pins[..]);
        let candidate = |k: &ParticipantKey| *k != viewer && owners.contains(k);
        let mut chosen: Vec<ParticipantKey> = pins.iter().copied().filter(candidate).collect();
        let rest = self.order.iter().copied().filter(|k| !pins.contains(k));
        // Owners the order does not know (not expected) come last, never lost.
        let unknown = owners.iter().copied().filter(|k| !self.order.contains(k));
        chosen.extend(rest.chain(unknown).filter(candidate));
        chosen.truncate(n);
        chosen
    }

    /// Decides every subscriber's pauses over the cameras there are now, `(owner,
    /// track)`; what changed. A camera or subscriber that is gone leaves without a
    /// change (there is nobody to tell, or nothing to resume).
    pub fn update(
        &mut self,
        viewers: &[ParticipantKey],
        cameras: &[(ParticipantKey, TrackId)],
    ) -> Vec<PauseChange> {
        let owners: Vec<ParticipantKey> = cameras.iter().map(|(k, _)| *k).collect();
        let mut paused = HashSet::new();
        let mut changes = Vec::new();
        for &viewer in viewers {
            let chosen = self.chosen(viewer, &owners);
            for (owner, track) in cameras {
                if *owner == viewer {
                    continue;
                }
                let pause = !chosen.contains(owner);
                let key = (viewer, track.clone());
                if pause != self.paused.contains(&key) {
                    changes.push(PauseChange {
                        viewer,
                        track: track.clone(),
                        owner: *owner,
                        paused: pause,
                    });
                }
                if pause {
                    paused.insert(key);
                }
            }
        }
        self.paused = paused;
        changes
    }

    #[cfg(test)]
    pub fn is_paused(&self, viewer: ParticipantKey, track: &TrackId) -> bool {
        self.paused.contains(&(viewer, track.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(n: u64) -> ParticipantKey {
        ParticipantKey(n)
    }

    fn keys(v: &[u64]) -> Vec<ParticipantKey> {
        v.iter().map(|&n| k(n)).collect()
    }

    fn room(n: u64, default_n: u32) -> LastN {
        let mut l = LastN::new(default_n);
        for i in 1..=n {
            l.joined(k(i));
        }
        l
    }

    #[test]
    fn pins_first_then_who_spoke_last_up_to_n() {
        // (speakers heard in turn, viewer's pins, viewer's N) → chosen, for viewer 1 in
        // a room of 1..=8 with every other participant publishing a camera.
        type Row = (
            &'static [&'static [u64]],
            &'static [u64],
            Option<u32>,
            &'static [u64],
        );
        let table: &[Row] = &[
            // Nobody spoke: join order, without the viewer.
            (&[], &[], None, &[2, 3, 4]),
            (&[&[7]], &[], None, &[7, 2, 3]),
            // The latest speakers first, the earlier ones after.
            (&[&[7], &[5, 6]], &[], None, &[5, 6, 7]),
            // Nobody speaking keeps the order.
            (&[&[7], &[]], &[], None, &[7, 2, 3]),
            // The viewer speaking takes no slot.
            (&[&[1, 8]], &[], None, &[8, 2, 3]),
            // Pins first, in their order, then speakers.
            (&[&[7]], &[4, 3], None, &[4, 3, 7]),
            (&[&[4]], &[4], None, &[4, 2, 3]),
            // Own N; 0 receives no camera; pins beyond N are cut.
            (&[&[7]], &[], Some(1), &[7]),
            (&[&[7]], &[], Some(0), &[]),
            (&[], &[5, 6], Some(1), &[5]),
            (&[], &[], Some(20), &[2, 3, 4, 5, 6, 7, 8]),
        ];
        for (i, (heard, pins, n, want)) in table.iter().enumerate() {
            let mut l = room(8, 3);
            for s in *heard {
                l.spoke(&keys(s));
            }
            l.set_pins(k(1), keys(pins));
            if let Some(n) = n {
                l.set_last_n(k(1), *n);
            }
            let owners = keys(&[1, 2, 3, 4, 5, 6, 7, 8]);
            assert_eq!(l.chosen(k(1), &owners), keys(want), "row {i}");
        }
    }

    #[test]
    fn only_camera_owners_take_slots() {
        let mut l = room(5, 2);
        l.spoke(&keys(&[5]));
        l.set_pins(k(1), keys(&[3]));
        // 3 (pinned) and 5 (speaking) have no camera.
        assert_eq!(l.chosen(k(1), &keys(&[2, 4])), keys(&[2, 4]));
    }

    fn flat(changes: &[PauseChange]) -> Vec<(u64, String, bool)> {
        changes
            .iter()
            .map(|c| (c.viewer.0, c.track.to_string(), c.paused))
            .collect()
    }

    fn rows(v: &[(u64, &str, bool)]) -> Vec<(u64, String, bool)> {
        v.iter().map(|(a, b, c)| (*a, b.to_string(), *c)).collect()
    }

    #[test]
    fn pauses_and_resumes_are_reported_once_each() {
        let mut l = room(4, 2);
        let cams: Vec<(ParticipantKey, TrackId)> = (1..=4)
            .map(|i| (k(i), TrackId::named(&format!("c{i}"))))
            .collect();
        let viewers = keys(&[1, 2, 3, 4]);
        let changes = l.update(&viewers, &cams);
        // Each sees two of the three others: one camera paused each.
        let paused: Vec<(u64, &str)> = changes
            .iter()
            .map(|c| {
                assert!(c.paused);
                (c.viewer.0, c.track.as_str())
            })
            .collect();
        assert_eq!(paused, [(1, "c4"), (2, "c4"), (3, "c4"), (4, "c3")]);
        assert!(l.is_paused(k(1), &TrackId::named("c4")));
        assert_eq!(l.update(&viewers, &cams), [], "nothing changed");

        // 4 speaks: it moves ahead of everyone, and each viewer's second camera changes.
        l.spoke(&keys(&[4]));
        let got = flat(&l.update(&viewers, &cams));
        assert_eq!(
            got,
            rows(&[
                (1, "c3", true),
                (1, "c4", false),
                (2, "c3", true),
                (2, "c4", false),
                (3, "c2", true),
                (3, "c4", false),
            ])
        );

        // 4 leaves: no resume of its camera is reported, and nobody is told about it.
        l.left(k(4));
        let cams = &cams[..3];
        let got = flat(&l.update(&keys(&[1, 2, 3]), cams));
        assert_eq!(
            got,
            rows(&[(1, "c3", false), (2, "c3", false), (3, "c2", false)])
        );
    }
}
