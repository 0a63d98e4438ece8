//! The room audio as one part: who hears what ([`AudioRoutes`]), the mixer that makes
//! the mix for listeners of two or more talkers, and the speaker detector behind
//! `active_speakers`. It knows talkers and listeners by participant; the room applies
//! its decisions (feed changes, frames, speaker changes) to connections and clients.

use std::time::{Duration, Instant};

use chorus_core::{ExtSeq, TrackId};
use chorus_mixer::{
    ActiveSpeaker, MixedFrame, Mixer, MixerConfig, SourceId, SourceKind, SpeakerConfig,
    SpeakerDetector, audio_level,
};

use crate::audio::{AudioRoutes, FeedChange};
use crate::io::ParticipantKey;

/// How often the speaker detector is asked whether the active speakers changed.
pub const SPEAKER_POLL: Duration = Duration::from_millis(100);

pub fn source(key: ParticipantKey) -> SourceId {
    SourceId(key.0)
}

pub struct RoomAudio {
    routes: AudioRoutes,
    /// Talkers (published microphones) as the mixer and detector know them.
    talkers: Vec<ParticipantKey>,
    /// Created with the first microphone; `None` after `mixer_failed`.
    mixer: Option<Mixer>,
    mixer_failed: bool,
    /// Drives `active_speakers` in every room, mixed or not.
    speakers: SpeakerDetector,
    next_speaker_poll: Option<Instant>,
    /// Participants whose audio is not Opus both ways (phones over plain RTP): mixed
    /// only, never relayed.
    kinds: Vec<(ParticipantKey, SourceKind)>,
    mix_only: Vec<ParticipantKey>,
}

impl Default for RoomAudio {
    fn default() -> Self {
        Self {
            routes: AudioRoutes::default(),
            talkers: Vec::new(),
            mixer: None,
            mixer_failed: false,
            speakers: SpeakerDetector::new(SpeakerConfig::default()),
            next_speaker_poll: None,
            kinds: Vec::new(),
            mix_only: Vec::new(),
        }
    }
}

impl RoomAudio {
    /// A phone over plain RTP: its audio arrives as samples, and in G.711 (`pcm_out`) it
    /// takes its mix as samples. Set before its microphone is a source.
    pub fn set_plain(&mut self, key: ParticipantKey, kind: SourceKind) {
        self.kinds.retain(|(k, _)| *k != key);
        self.kinds.push((key, kind));
        self.mix_only = self.kinds.iter().map(|(k, _)| *k).collect();
    }

    /// The participant left (whatever it was).
    pub fn forget(&mut self, key: ParticipantKey) {
        self.kinds.retain(|(k, _)| *k != key);
        self.mix_only = self.kinds.iter().map(|(k, _)| *k).collect();
    }

    pub fn kind_of(&self, key: ParticipantKey) -> SourceKind {
        self.kinds
            .iter()
            .find(|(k, _)| *k == key)
            .map_or_else(SourceKind::default, |(_, kind)| *kind)
    }

    /// Re-decides who hears what after talkers or listeners changed, and keeps the
    /// mixer and the detector in step with the talkers. `muted` says whether a
    /// microphone track is muted.
    pub fn update(
        &mut self,
        listeners: Vec<ParticipantKey>,
        sources: &[(ParticipantKey, TrackId)],
        muted: impl Fn(&TrackId) -> bool,
        now: Instant,
    ) -> Vec<FeedChange> {
        let changes = self.routes.update(listeners, sources, &self.mix_only);
        if !sources.is_empty() && self.next_speaker_poll.is_none() {
            self.next_speaker_poll = Some(now + SPEAKER_POLL);
        }
        if self.mixer.is_none() && !sources.is_empty() && !self.mixer_failed {
            match Mixer::new(MixerConfig::default()) {
                Ok(m) => self.mixer = Some(m),
                Err(e) => {
                    // The room still relays 1:1 audio; only the mix is missing.
                    tracing::error!(error = %e, "cannot create the audio mixer");
                    self.mixer_failed = true;
                }
            }
        }
        let talkers: Vec<ParticipantKey> = sources.iter().map(|(k, _)| *k).collect();
        for gone in self.talkers.iter().filter(|k| !talkers.contains(k)) {
            self.speakers.remove(source(*gone));
            if let Some(m) = self.mixer.as_mut() {
                m.remove_source(source(*gone));
            }
        }
        for (key, track) in sources {
            if self.talkers.contains(key) {
                continue;
            }
            let (id, muted) = (source(*key), muted(track));
            self.speakers.add(id);
            self.speakers.set_muted(id, muted);
            let kind = self.kind_of(*key);
            if let Some(m) = self.mixer.as_mut() {
                m.add_source_as(id, kind);
                m.set_muted(id, muted);
            }
        }
        self.talkers = talkers;
        changes
    }

    pub fn set_muted(&mut self, talker: ParticipantKey, muted: bool) {
        self.speakers.set_muted(source(talker), muted);
        if let Some(m) = self.mixer.as_mut() {
            m.set_muted(source(talker), muted);
        }
    }

    /// An audio packet from `talker`: for the detector and, while anyone hears the
    /// mix, the mixer.
    pub fn hear(
        &mut self,
        talker: ParticipantKey,
        seq: ExtSeq,
        level: Option<u8>,
        payload: &[u8],
        now: Instant,
    ) {
        self.speakers.observe(source(talker), level, now);
        if self.routes.mixing()
            && let Some(mixer) = self.mixer.as_mut()
        {
            mixer.push(source(talker), seq.0, level, payload, now);
        }
    }

    /// 20 ms of a phone's voice as 48 kHz samples (its endpoint decoded and
    /// resampled it); its level is measured here, as no RFC 6464 extension comes.
    pub fn hear_pcm(&mut self, talker: ParticipantKey, seq: u64, pcm: &[i16], now: Instant) {
        self.speakers
            .observe(source(talker), Some(audio_level(pcm)), now);
        if self.routes.mixing()
            && let Some(mixer) = self.mixer.as_mut()
        {
            mixer.push_pcm(source(talker), seq, pcm, now);
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let mix = self
            .mixer
            .as_ref()
            .filter(|_| self.routes.mixing())
            .and_then(Mixer::poll_timeout);
        [mix, self.next_speaker_poll].into_iter().flatten().min()
    }

    /// The next mix frame due by `now`, with who hears it.
    pub fn next_frame(&mut self, now: Instant) -> Option<(MixedFrame<'_>, &[ParticipantKey])> {
        if !self.routes.mixing() {
            return None;
        }
        let mixer = self.mixer.as_mut()?;
        if mixer.poll_timeout().is_none_or(|t| t > now) {
            return None;
        }
        let frame = mixer.tick(now)?;
        Some((frame, self.routes.mix_listeners()))
    }

    /// The active speakers, when they changed since the last report (polled every
    /// [`SPEAKER_POLL`]).
    pub fn poll_speakers(&mut self, now: Instant) -> Option<Vec<ActiveSpeaker>> {
        if self.next_speaker_poll.is_none_or(|t| t > now) {
            return None;
        }
        self.next_speaker_poll = (!self.talkers.is_empty()).then(|| now + SPEAKER_POLL);
        self.speakers.poll_change(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::AudioFeed;

    fn k(n: u64) -> ParticipantKey {
        ParticipantKey(n)
    }

    #[test]
    fn talkers_make_the_mix_and_the_speaker_poll() {
        let t0 = Instant::now();
        let mut audio = RoomAudio::default();
        let (a, b, c) = (
            TrackId::named("a"),
            TrackId::named("b"),
            TrackId::named("c"),
        );
        let listeners = vec![k(1), k(2), k(3)];
        // (sources, listener 3's feed after, a mix frame due after 1 s?)
        let cases = [
            (vec![], None, false),
            (
                vec![(k(1), a.clone())],
                Some(AudioFeed::Relay(a.clone())),
                false,
            ),
            (
                vec![(k(1), a.clone()), (k(2), b.clone()), (k(3), c.clone())],
                Some(AudioFeed::Mix),
                true,
            ),
            (
                vec![(k(1), a.clone())],
                Some(AudioFeed::Relay(a.clone())),
                false,
            ),
        ];
        for (i, (sources, want, mixing)) in cases.into_iter().enumerate() {
            let changes = audio.update(listeners.clone(), &sources, |_| false, t0);
            let got = changes
                .iter()
                .find(|ch| ch.listener == k(3))
                .map(|ch| ch.to.clone());
            assert_eq!(got, want, "case {i}");
            // The speaker detector is polled once anyone talks.
            assert_eq!(audio.poll_timeout().is_some(), i > 0, "case {i}");
            // A packet starts the mixer's clock (an Opus frame of silence).
            audio.hear(k(1), ExtSeq(i as u64), Some(30), &[0xf8, 0xff, 0xfe], t0);
            let later = t0 + Duration::from_secs(1);
            let frame = audio.next_frame(later).is_some();
            assert_eq!(
                frame, mixing,
                "case {i}: mix frames only while someone hears the mix"
            );
        }
    }
}
