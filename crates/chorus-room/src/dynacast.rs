//! Dynacast: which simulcast layers of each published track anyone needs, told to the
//! publisher (`publisher_layers`) so that its encoder stops the others; of a VP9 SVC
//! track its spatial layers, a hint the client may apply to its `scalabilityMode`. A
//! subscriber needs the layers up to the most it may be sent (its max from
//! `track_settings`), none while it has the track invisible or paused by last-N: the
//! layers below the max stay needed, since the subscriber falls back to them when the
//! one above stops.
//!
//! A layer nobody needs is turned off only after [`OFF_AFTER`] (a tile shrinking for a
//! moment, a speaker flickering in and out of last-N, must not restart an encoder); a
//! layer someone needs is turned on at once. The lowest layer is never turned off: a
//! camera paused for everyone can be resumed for anyone at any moment (the next
//! speaker), and then its video must be a keyframe request away, not a signaling round
//! trip plus an encoder restart; the lowest layer costs about a tenth of the three.
//!
//! Sans-I/O: the room sets each track's need and polls the changes with the time.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chorus_core::{SpatialLayer, TrackId};

/// How long a layer nobody needs keeps being sent before the publisher is told to stop.
pub const OFF_AFTER: Duration = Duration::from_secs(3);

#[derive(Debug, Clone)]
struct TrackLayers {
    /// The highest layer anyone needs; `None`: nobody needs any (the lowest stays on).
    top: Option<SpatialLayer>,
    /// What the publisher was told, per layer (all on until told otherwise: a publisher
    /// starts with every encoding active).
    told: Vec<bool>,
    /// Since when each layer has been needed by nobody.
    unneeded_since: Vec<Option<Instant>>,
}

/// A track whose layers the publisher is to turn on or off: `active` per layer, lowest
/// first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerChange {
    pub track: TrackId,
    pub active: Vec<bool>,
}

#[derive(Debug, Default)]
pub struct Dynacast {
    tracks: HashMap<TrackId, TrackLayers>,
}

impl Dynacast {
    /// The highest layer anyone needs of `track` (of `layers`) from `now` on.
    pub fn set_needed(
        &mut self,
        track: &TrackId,
        layers: usize,
        top: Option<SpatialLayer>,
        now: Instant,
    ) {
        let layers = layers.clamp(1, SpatialLayer::COUNT);
        let t = self
            .tracks
            .entry(track.clone())
            .or_insert_with(|| TrackLayers {
                top,
                told: vec![true; layers],
                unneeded_since: vec![None; layers],
            });
        // A VP9 SVC stream may announce more layers than it did (they are on: it
        // sends them).
        t.told.resize(layers, true);
        t.unneeded_since.resize(layers, None);
        t.top = top;
        for (i, since) in t.unneeded_since.iter_mut().enumerate() {
            if needed(i, top) {
                *since = None;
            } else {
                since.get_or_insert(now);
            }
        }
    }

    /// The track is gone.
    pub fn remove(&mut self, track: &TrackId) {
        self.tracks.remove(track);
    }

    /// The tracks whose layers change at `now`, by track id.
    pub fn poll(&mut self, now: Instant) -> Vec<LayerChange> {
        let mut changes = Vec::new();
        for (id, t) in &mut self.tracks {
            let active: Vec<bool> = (0..t.told.len())
                .map(|i| {
                    let off_due = t.unneeded_since[i].is_some_and(|s| now >= s + OFF_AFTER);
                    needed(i, t.top) || (t.told[i] && !off_due)
                })
                .collect();
            if active != t.told {
                t.told.clone_from(&active);
                changes.push(LayerChange {
                    track: id.clone(),
                    active,
                });
            }
        }
        changes.sort_by(|a, b| a.track.cmp(&b.track));
        changes
    }

    /// When a layer still on is next due to turn off.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.tracks
            .values()
            .flat_map(|t| {
                t.unneeded_since
                    .iter()
                    .zip(&t.told)
                    .filter(|(_, on)| **on)
                    .filter_map(|(since, _)| since.map(|s| s + OFF_AFTER))
            })
            .min()
    }
}

/// Layer `i` is needed under `top`; the lowest always is.
fn needed(i: usize, top: Option<SpatialLayer>) -> bool {
    i == 0 || top.is_some_and(|t| i <= t.index())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(i: u8) -> Option<SpatialLayer> {
        SpatialLayer::new(i)
    }

    #[test]
    fn a_layer_goes_off_after_a_while_unneeded_and_on_at_once() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let id = TrackId::named("cam");
        let mut d = Dynacast::default();
        let poll = |d: &mut Dynacast, ms| -> Vec<Vec<bool>> {
            d.poll(at(ms)).into_iter().map(|c| c.active).collect()
        };

        // Everyone wants the top: nothing to say.
        d.set_needed(&id, 3, layer(2), at(0));
        assert_eq!(poll(&mut d, 0), Vec::<Vec<bool>>::new());
        assert_eq!(d.next_timeout(), None);

        // Only small tiles: f off after OFF_AFTER, not before.
        d.set_needed(&id, 3, layer(0), at(1000));
        assert_eq!(d.next_timeout(), Some(at(1000) + OFF_AFTER));
        assert_eq!(poll(&mut d, 3999), Vec::<Vec<bool>>::new());
        assert_eq!(poll(&mut d, 4000), [[true, false, false]]);
        assert_eq!(poll(&mut d, 9000), Vec::<Vec<bool>>::new(), "told once");
        assert_eq!(d.next_timeout(), None);

        // A large tile: on at once, up to what it needs.
        d.set_needed(&id, 3, layer(1), at(9000));
        assert_eq!(poll(&mut d, 9000), [[true, true, false]]);

        // Needed again before the delay ran out: it never went off.
        d.set_needed(&id, 3, layer(0), at(10_000));
        d.set_needed(&id, 3, layer(1), at(12_000));
        assert_eq!(poll(&mut d, 14_000), Vec::<Vec<bool>>::new());

        // Nobody needs anything (all paused): the lowest layer stays on.
        d.set_needed(&id, 3, None, at(20_000));
        assert_eq!(poll(&mut d, 23_000), [[true, false, false]]);

        d.remove(&id);
        assert_eq!(poll(&mut d, 30_000), Vec::<Vec<bool>>::new());
    }

    #[test]
    fn layers_announced_later_are_on_until_unneeded() {
        // A VP9 SVC stream of two spatial layers, then three.
        let t0 = Instant::now();
        let id = TrackId::named("svc");
        let mut d = Dynacast::default();
        d.set_needed(&id, 2, layer(1), t0);
        assert!(d.poll(t0).is_empty());
        d.set_needed(&id, 3, layer(2), t0);
        assert!(d.poll(t0).is_empty(), "the third is on: it is sent");
        d.set_needed(&id, 3, layer(0), t0);
        let off: Vec<_> = d
            .poll(t0 + OFF_AFTER)
            .into_iter()
            .map(|c| c.active)
            .collect();
        assert_eq!(off, [[true, false, false]]);
    }
}
