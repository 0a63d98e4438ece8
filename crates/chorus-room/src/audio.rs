//! The room's audio: every listener hears ONE track, the room audio.
//!
//! With one other talker in the room the listener's track relays that talker's packets
//! (no decoding, no added delay); with two or more it carries the mix. Switching
//! between the two keeps the listener's sequence numbers and timestamps continuous
//! (the listener's forwarder is told that the source changed).

use std::collections::{HashMap, HashSet};

use chorus_core::TrackId;

use crate::io::ParticipantKey;

/// What one listener hears on its room-audio track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AudioFeed {
    /// Nobody else publishes audio: no room-audio track yet.
    Silent,
    /// Exactly one other talker: its packets, relayed.
    Relay(TrackId),
    /// Two or more other talkers: the server's mix.
    Mix,
}

/// The feed of `listener`, given every published microphone track and its owner.
/// `mix_only` participants (phones over plain RTP) neither relay nor are relayed: a
/// G.711 phone's packets mean nothing to a WebRTC listener, and a phone takes its audio
/// from the mixer in its own codec.
pub(crate) fn feed_for(
    listener: ParticipantKey,
    sources: &[(ParticipantKey, TrackId)],
    mix_only: &[ParticipantKey],
) -> AudioFeed {
    let mut others = sources.iter().filter(|(owner, _)| *owner != listener);
    match (others.next(), others.next()) {
        (None, _) => AudioFeed::Silent,
        (Some((owner, _)), None) if mix_only.contains(owner) || mix_only.contains(&listener) => {
            AudioFeed::Mix
        }
        (Some((_, id)), None) => AudioFeed::Relay(id.clone()),
        (Some(_), Some(_)) => AudioFeed::Mix,
    }
}

/// A change of one listener's feed, for the room to apply to its subscriber connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FeedChange {
    pub listener: ParticipantKey,
    pub from: AudioFeed,
    pub to: AudioFeed,
}

/// Who hears what. The room owns one; it holds no media state.
#[derive(Debug, Default)]
pub(crate) struct AudioRoutes {
    feeds: HashMap<ParticipantKey, AudioFeed>,
    /// Listeners whose feed is [`AudioFeed::Mix`], in no particular order.
    mix_listeners: Vec<ParticipantKey>,
}

impl AudioRoutes {
    /// Recomputes every listener's feed; returns what changed.
    pub fn update(
        &mut self,
        listeners: impl IntoIterator<Item = ParticipantKey>,
        sources: &[(ParticipantKey, TrackId)],
        mix_only: &[ParticipantKey],
    ) -> Vec<FeedChange> {
        let mut changes = Vec::new();
        let mut seen = HashSet::new();
        for listener in listeners {
            seen.insert(listener);
            let to = feed_for(listener, sources, mix_only);
            let from = self
                .feeds
                .get(&listener)
                .cloned()
                .unwrap_or(AudioFeed::Silent);
            if from != to {
                self.feeds.insert(listener, to.clone());
                changes.push(FeedChange { listener, from, to });
            }
        }
        // Listeners that left (or may no longer subscribe) fall silent.
        let gone: Vec<ParticipantKey> = self
            .feeds
            .keys()
            .filter(|k| !seen.contains(k))
            .copied()
            .collect();
        for listener in gone {
            let from = self.feeds.remove(&listener).expect("listed");
            if from != AudioFeed::Silent {
                changes.push(FeedChange {
                    listener,
                    from,
                    to: AudioFeed::Silent,
                });
            }
        }
        self.mix_listeners = self
            .feeds
            .iter()
            .filter(|(_, f)| **f == AudioFeed::Mix)
            .map(|(k, _)| *k)
            .collect();
        changes
    }

    pub fn mix_listeners(&self) -> &[ParticipantKey] {
        &self.mix_listeners
    }

    /// Whether anyone hears the mix: only then is it worth producing.
    pub fn mixing(&self) -> bool {
        !self.mix_listeners.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(n: u64) -> ParticipantKey {
        ParticipantKey(n)
    }

    fn t(s: &str) -> TrackId {
        TrackId::named(s)
    }

    #[test]
    fn feed_depends_on_how_many_others_talk() {
        let one = [(k(1), t("a"))];
        let two = [(k(1), t("a")), (k(2), t("b"))];
        let three = [(k(1), t("a")), (k(2), t("b")), (k(3), t("c"))];
        type Sources<'a> = &'a [(ParticipantKey, TrackId)];
        let cases: [(Sources, u64, AudioFeed); 8] = [
            (&[], 1, AudioFeed::Silent),
            (&one, 1, AudioFeed::Silent),
            (&one, 2, AudioFeed::Relay(t("a"))),
            (&two, 1, AudioFeed::Relay(t("b"))),
            (&two, 2, AudioFeed::Relay(t("a"))),
            // A listener who does not talk hears two talkers: that needs the mix.
            (&two, 9, AudioFeed::Mix),
            (&three, 1, AudioFeed::Mix),
            (&three, 9, AudioFeed::Mix),
        ];
        for (sources, listener, want) in cases {
            assert_eq!(
                feed_for(k(listener), sources, &[]),
                want,
                "listener {listener}"
            );
        }
    }

    #[test]
    fn third_talker_switches_a_call_to_the_mix_and_back() {
        let mut routes = AudioRoutes::default();
        let two = [(k(1), t("a")), (k(2), t("b"))];
        let changes = routes.update([k(1), k(2)], &two, &[]);
        assert_eq!(changes.len(), 2);
        assert!(!routes.mixing());

        let three = [(k(1), t("a")), (k(2), t("b")), (k(3), t("c"))];
        let mut changes = routes.update([k(1), k(2), k(3)], &three, &[]);
        changes.sort_by_key(|c| c.listener);
        assert_eq!(
            changes,
            vec![
                FeedChange {
                    listener: k(1),
                    from: AudioFeed::Relay(t("b")),
                    to: AudioFeed::Mix
                },
                FeedChange {
                    listener: k(2),
                    from: AudioFeed::Relay(t("a")),
                    to: AudioFeed::Mix
                },
                FeedChange {
                    listener: k(3),
                    from: AudioFeed::Silent,
                    to: AudioFeed::Mix
                },
            ]
        );
        let mut mixed = routes.mix_listeners().to_vec();
        mixed.sort();
        assert_eq!(mixed, vec![k(1), k(2), k(3)]);

        // The third leaves: back to relaying, and the leaver falls silent.
        let mut changes = routes.update([k(1), k(2)], &two, &[]);
        changes.sort_by_key(|c| c.listener);
        assert_eq!(changes[0].to, AudioFeed::Relay(t("b")));
        assert_eq!(changes[1].to, AudioFeed::Relay(t("a")));
        assert_eq!(
            changes[2],
            FeedChange {
                listener: k(3),
                from: AudioFeed::Mix,
                to: AudioFeed::Silent
            }
        );
        assert!(!routes.mixing());
    }

    #[test]
    fn a_phone_is_never_relayed_and_never_relays() {
        // 7 is a phone over plain RTP.
        let phone_and_one = [(k(1), t("a")), (k(7), t("p"))];
        let cases: [(u64, AudioFeed); 3] = [
            // The WebRTC listener's only other talker is the phone: the mix.
            (1, AudioFeed::Mix),
            // The phone's only other talker is WebRTC: the mix too (in its codec).
            (7, AudioFeed::Mix),
            // Someone with both others talking: the mix, as always.
            (9, AudioFeed::Mix),
        ];
        for (listener, want) in cases {
            assert_eq!(
                feed_for(k(listener), &phone_and_one, &[k(7)]),
                want,
                "listener {listener}"
            );
        }
        // Alone with its own voice: nothing to hear.
        assert_eq!(
            feed_for(k(7), &[(k(7), t("p"))], &[k(7)]),
            AudioFeed::Silent
        );
    }

    #[test]
    fn unchanged_feeds_are_not_reported() {
        let mut routes = AudioRoutes::default();
        let two = [(k(1), t("a")), (k(2), t("b"))];
        routes.update([k(1), k(2)], &two, &[]);
        assert!(routes.update([k(1), k(2)], &two, &[]).is_empty());
    }
}
