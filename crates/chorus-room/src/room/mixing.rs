//! The room audio as the room drives it. `AudioRoutes` (`crate::audio`) decides who
//! hears what; here the room applies those decisions to listeners' room-audio tracks,
//! feeds talkers' packets to the speaker detector and the mixer, keeps both in step with
//! the published microphones, sends the mixer's frames on its 20 ms ticks, and tells
//! everyone who the active speakers are.

use std::time::{Duration, Instant};

use bytes::Bytes;
use chorus_core::{ExtSeq, ExtTimestamp, TrackId};
use chorus_mixer::{Mixer, MixerConfig, SourceId};
use chorus_protocol::MediaKind;
use chorus_protocol::signal::{ActiveSpeaker, PeerTarget, ROOM_AUDIO_TRACK, ServerMessage};

use super::Room;
use super::media::fan_out;
use crate::audio::{AudioFeed, FeedChange};
use crate::command::ParticipantKey;

/// How often the speaker detector is asked whether the active speakers changed.
const SPEAKER_POLL: Duration = Duration::from_millis(100);

impl Room {
    /// Re-decides who hears what after talkers or listeners changed.
    pub(super) fn update_audio(&mut self, now: Instant) {
        let sources: Vec<(ParticipantKey, TrackId)> = self
            .tracks
            .values()
            .filter(|t| t.kind() == MediaKind::Audio && t.upstream.is_some())
            .map(|t| (t.owner, t.id.clone()))
            .collect();
        let listeners: Vec<ParticipantKey> = self
            .participants
            .iter()
            .filter(|(_, p)| p.grants.can_subscribe)
            .map(|(k, _)| *k)
            .collect();
        for change in self.audio.update(listeners, &sources) {
            self.apply_feed_change(change, now);
        }
        self.sync_mixer(&sources, now);
    }

    /// An audio packet from `talker`: for the speaker detector and, while anyone
    /// hears the mix, the mixer.
    pub(super) fn hear(
        &mut self,
        talker: ParticipantKey,
        seq: ExtSeq,
        level: Option<u8>,
        payload: &[u8],
        now: Instant,
    ) {
        let id = SourceId(talker.0);
        self.speakers.observe(id, level, now);
        if self.audio.mixing()
            && let Some(mixer) = self.mixer.as_mut()
        {
            mixer.push(id, seq.0, level, payload, now);
        }
    }

    /// Keeps the mixer's and the speaker detector's sources in step with the
    /// published microphones.
    fn sync_mixer(&mut self, sources: &[(ParticipantKey, TrackId)], now: Instant) {
        if !sources.is_empty() && self.next_speaker_poll.is_none() {
            self.next_speaker_poll = Some(now + SPEAKER_POLL);
        }
        if self.mixer.is_none() && !sources.is_empty() && !self.mixer_failed {
            match Mixer::new(MixerConfig::default()) {
                Ok(m) => self.mixer = Some(m),
                Err(e) => {
                    // The room still relays 1:1 audio; only the mix is missing.
                    tracing::error!(room = %self.name, error = %e, "cannot create the audio mixer");
                    self.mixer_failed = true;
                }
            }
        }
        let now_sources: Vec<ParticipantKey> = sources.iter().map(|(k, _)| *k).collect();
        for gone in self
            .audio_sources
            .iter()
            .filter(|k| !now_sources.contains(k))
        {
            let id = SourceId(gone.0);
            self.speakers.remove(id);
            if let Some(m) = self.mixer.as_mut() {
                m.remove_source(id);
            }
        }
        for (key, track) in sources {
            if self.audio_sources.contains(key) {
                continue;
            }
            let id = SourceId(key.0);
            let muted = self.tracks.get(track).is_some_and(|t| t.muted);
            self.speakers.add(id);
            self.speakers.set_muted(id, muted);
            if let Some(m) = self.mixer.as_mut() {
                m.add_source(id);
                m.set_muted(id, muted);
            }
        }
        self.audio_sources = now_sources;
    }

    /// Produces the mix frames due by `now` and sends each mix listener its own.
    pub(super) fn tick_mixer(&mut self, now: Instant) {
        if !self.audio.mixing() {
            return;
        }
        let Some(mixer) = self.mixer.as_mut() else {
            return;
        };
        let listeners = self.audio.mix_listeners();
        while mixer.poll_timeout().is_some_and(|t| t <= now) {
            let Some(frame) = mixer.tick(now) else {
                break;
            };
            let common_payload = frame.common();
            if common_payload.is_empty() {
                continue; // the encoder failed; counted by the mixer
            }
            let common = Bytes::copy_from_slice(common_payload);
            // At most K listeners (the mixed talkers) get a payload of their own.
            let mut own: Vec<(ParticipantKey, Bytes)> = Vec::new();
            for l in listeners {
                let payload = frame.payload_for(SourceId(l.0));
                if !std::ptr::eq(payload, common_payload) {
                    own.push((*l, Bytes::copy_from_slice(payload)));
                }
            }
            let (seq, ts) = (ExtSeq(frame.seq), ExtTimestamp(frame.timestamp));
            let header = rtc::rtp::header::Header {
                version: 2,
                ..Default::default()
            };
            fan_out(
                &mut self.participants,
                &mut self.dirty,
                listeners,
                &self.room_audio,
                &header,
                seq,
                ts,
                false,
                now,
                |l| {
                    own.iter()
                        .find(|(k, _)| *k == l)
                        .map_or_else(|| common.clone(), |(_, b)| b.clone())
                },
            );
        }
    }

    /// Tells everyone when who is speaking changed.
    pub(super) fn poll_speakers(&mut self, now: Instant) {
        if self.next_speaker_poll.is_none_or(|t| t > now) {
            return;
        }
        self.next_speaker_poll = (!self.audio_sources.is_empty()).then(|| now + SPEAKER_POLL);
        let Some(change) = self.speakers.poll_change(now) else {
            return;
        };
        let speakers = change
            .iter()
            .filter_map(|s| {
                let p = self.participants.get(&ParticipantKey(s.id.0))?;
                Some(ActiveSpeaker {
                    participant_id: p.id.to_string(),
                    level: s.loudness,
                })
            })
            .collect();
        self.broadcast(ServerMessage::ActiveSpeakers { speakers });
    }

    fn apply_feed_change(&mut self, change: FeedChange, now: Instant) {
        let FeedChange { listener, from, to } = change;
        if let AudioFeed::Relay(id) = &from
            && let Some(t) = self.tracks.get_mut(id)
        {
            t.subscribers.retain(|k| *k != listener);
        }
        if let AudioFeed::Relay(id) = &to
            && let Some(t) = self.tracks.get_mut(id)
        {
            t.subscribers.push(listener);
        }
        let room_audio = self.room_audio.clone();
        match (from, to) {
            (_, AudioFeed::Silent) => self.remove_downtrack(listener, &room_audio, now),
            (AudioFeed::Silent, _) => {
                let label = ROOM_AUDIO_TRACK.to_owned();
                self.add_downtrack(listener, &room_audio, MediaKind::Audio, label, now);
            }
            // Same track, another source: the listener's numbering continues.
            _ => {
                if let Some(dt) = self
                    .peer_mut(listener, PeerTarget::Subscriber)
                    .and_then(|peer| peer.downtracks.get_mut(&room_audio))
                {
                    dt.forwarder.switch_source(false);
                }
            }
        }
    }
}
