//! The room audio applied: the feed changes [`crate::mixing::RoomAudio`] decides become
//! room-audio tracks added, removed or switched on listeners' subscriber connections;
//! the mixer's frames go out on its 20 ms ticks; speaker changes go to everyone.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use chorus_core::Codec;
use chorus_core::{ConnId, ExtSeq, ExtTimestamp};
use chorus_protocol::signal::{ActiveSpeaker, ServerMessage};

use super::RoomCore;
use crate::audio::{AudioFeed, FeedChange};
use crate::forward::{MixPayload, Outgoing, Payload};
use crate::io::{Output, ParticipantKey, Recipients};
use crate::mixing::source;
use chorus_plainrtp::driver::{MixData, MixFrame};

impl RoomCore {
    /// Re-decides who hears what after talkers or listeners changed.
    pub(super) fn update_audio(&mut self, now: Instant) {
        let sources = self.tracks.audio_sources();
        let listeners = self.participants.listeners();
        let tracks = &self.tracks;
        let muted = |id: &_| tracks.get(id).is_some_and(|t| t.muted);
        let changes = self.audio.update(listeners, &sources, muted, now);
        for change in changes {
            self.apply_feed_change(change, now);
        }
    }

    fn apply_feed_change(&mut self, change: FeedChange, now: Instant) {
        let FeedChange { listener, from, to } = change;
        if self.is_plain(listener) {
            return; // its endpoint takes mix frames (`tick_mixer`), not a down track
        }
        let subscriber = self.participants.get(listener).and_then(|p| p.subscriber);
        if let (AudioFeed::Relay(id), Some(conn)) = (&from, subscriber) {
            self.tracks.remove_subscriber(id, conn);
        }
        let room_audio = self.room_audio.clone();
        let conn = match (from, &to) {
            (_, AudioFeed::Silent) => {
                if let Some(conn) = subscriber {
                    self.remove_downtrack(conn, &room_audio);
                }
                return;
            }
            (AudioFeed::Silent, _) => self.add_downtrack(listener, &room_audio, Codec::Opus, now),
            // Same track, another source: the listener's numbering continues.
            _ => {
                let peer = subscriber.and_then(|c| self.conns.get_mut(c));
                if let Some(dt) = peer.and_then(|p| p.downtracks.get_mut(&room_audio)) {
                    dt.forwarder.switch_source(false);
                }
                subscriber
            }
        };
        if let (AudioFeed::Relay(id), Some(conn)) = (&to, conn) {
            self.tracks.add_subscriber(id, conn);
        }
    }

    /// Produces the mix frames due by `now` and sends each mix listener its own.
    pub(super) fn tick_mixer(&mut self, now: Instant) {
        let participants = &self.participants;
        while let Some((frame, listeners)) = self.audio.next_frame(now) {
            let common_payload = frame.common();
            if common_payload.is_empty() {
                continue; // the encoder failed; counted by the mixer
            }
            self.mix_frames += 1;
            let common = Bytes::copy_from_slice(common_payload);
            // At most K listeners (the mixed talkers) get a payload of their own.
            let mut own: Vec<(ParticipantKey, Bytes)> = Vec::new();
            let mut conns: Vec<ConnId> = Vec::with_capacity(listeners.len());
            for l in listeners {
                if let Some(codec) = participants.get(*l).and_then(|p| p.plain) {
                    // A phone: its own frame, to its endpoint (one copy of 960
                    // samples, or of the Opus packet WebRTC listeners get).
                    let audio = if codec.wants_pcm() {
                        MixData::Pcm(Arc::from(frame.pcm_for(source(*l))))
                    } else {
                        MixData::Opus(Arc::from(frame.payload_for(source(*l))))
                    };
                    self.outputs.push_back(Output::RtpMix {
                        participant: *l,
                        frame: MixFrame {
                            seq: frame.seq,
                            audio,
                        },
                    });
                    continue;
                }
                let payload = frame.payload_for(source(*l));
                if !std::ptr::eq(payload, common_payload) {
                    own.push((*l, Bytes::copy_from_slice(payload)));
                }
                if let Some(conn) = participants.get(*l).and_then(|p| p.subscriber) {
                    conns.push(conn);
                }
            }
            let out = Outgoing {
                header: rtc::rtp::header::Header {
                    version: 2,
                    ..Default::default()
                },
                seq: ExtSeq(frame.seq),
                ts: ExtTimestamp(frame.timestamp),
                keyframe: false,
                down: self.room_audio.clone(),
                keyframes_of: None,
                source: 0,
                layered: None,
                payload: Payload::Mix(Arc::new(MixPayload { common, own })),
            };
            self.queue.push(out, &conns);
        }
    }

    /// Tells everyone when who is speaking changed.
    pub(super) fn poll_speakers(&mut self, now: Instant) {
        let Some(change) = self.audio.poll_speakers(now) else {
            return;
        };
        let keys: Vec<ParticipantKey> = change.iter().map(|s| ParticipantKey(s.id.0)).collect();
        if self.last_n.spoke(&keys) {
            self.last_n_due = true;
        }
        let speakers = change
            .iter()
            .filter_map(|s| {
                let p = self.participants.get(ParticipantKey(s.id.0))?;
                Some(ActiveSpeaker {
                    participant_id: p.id.to_string(),
                    level: s.loudness,
                })
            })
            .collect();
        self.send(Recipients::All, ServerMessage::ActiveSpeakers { speakers });
    }
}
