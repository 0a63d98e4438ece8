//! One mixed talker and everything it owns: its jitter queue, its Opus decoder (with
//! packet-loss concealment), the samples decoded but not mixed yet, this tick's 20 ms
//! contribution, and the encoder and payload of its mix-minus-self. The mixer creates
//! a talker when the speaker detector selects a source and drops it when deselected.

use opus::{Channels, Decoder, Encoder};

use super::codec::{FRAME_SAMPLES, MAX_OPUS_PACKET, MAX_PACKET_SAMPLES, SAMPLE_RATE, new_encoder};
use super::config::{MixerConfig, MixerStats};
use crate::SourceId;
use crate::jitter::{JitterQueue, Playout};

/// A mixed talker: its decoder, queue and the encoder of its mix-minus-self.
pub(super) struct Talker {
    pub(super) id: SourceId,
    pub(super) decoder: Decoder,
    pub(super) encoder: Encoder,
    pub(super) queue: JitterQueue,
    /// Decoded samples not mixed yet (a packet may carry more than 20 ms).
    carry: Vec<i16>,
    /// This tick's contribution, valid when `contributes`.
    pub(super) pcm: Vec<i16>,
    pub(super) contributes: bool,
    /// Whether a packet was decoded since joining: concealment needs a past.
    decoded_any: bool,
    /// Consecutive concealed frames.
    concealed: usize,
    /// This tick's encoded mix-minus-self; empty if encoding failed.
    pub(super) payload: Vec<u8>,
}

impl Talker {
    pub(super) fn new(id: SourceId, config: &MixerConfig) -> Result<Self, opus::Error> {
        Ok(Self {
            id,
            decoder: Decoder::new(SAMPLE_RATE, Channels::Mono)?,
            encoder: new_encoder(config.bitrate_bps)?,
            queue: JitterQueue::new(config.jitter_frames),
            carry: Vec::with_capacity(MAX_PACKET_SAMPLES + FRAME_SAMPLES),
            pcm: vec![0; FRAME_SAMPLES],
            contributes: false,
            decoded_any: false,
            concealed: 0,
            payload: Vec::with_capacity(MAX_OPUS_PACKET),
        })
    }

    /// Fills `pcm` with this tick's 20 ms: decoded, concealed, or nothing (silent).
    pub(super) fn produce(
        &mut self,
        scratch: &mut [i16],
        max_concealed: usize,
        stats: &mut MixerStats,
    ) {
        let drained = self.queue.drained;
        // Bounded: every turn consumes a queued packet or a sequence number, or
        // conceals (which fills `carry`), or stops.
        while self.carry.len() < FRAME_SAMPLES {
            match self.queue.pop() {
                Playout::Packet(packet) => match self.decoder.decode(&packet, scratch, false) {
                    Ok(n) => {
                        self.carry
                            .extend_from_slice(&scratch[..n.min(scratch.len())]);
                        self.decoded_any = true;
                        self.concealed = 0;
                    }
                    Err(_) => {
                        stats.decode_errors += 1;
                        self.conceal(scratch, max_concealed, stats);
                    }
                },
                Playout::Missing => {
                    self.conceal(scratch, max_concealed, stats);
                }
                Playout::Empty => {
                    if !self.conceal(scratch, max_concealed, stats) {
                        break;
                    }
                }
            }
        }
        stats.jitter_dropped += self.queue.drained - drained;
        self.contributes = self.carry.len() >= FRAME_SAMPLES;
        if self.contributes {
            self.pcm.copy_from_slice(&self.carry[..FRAME_SAMPLES]);
            self.carry.drain(..FRAME_SAMPLES);
        } else {
            self.carry.clear();
        }
    }

    /// Appends one concealed frame; false when concealment is not possible or used up.
    fn conceal(
        &mut self,
        scratch: &mut [i16],
        max_concealed: usize,
        stats: &mut MixerStats,
    ) -> bool {
        if !self.decoded_any || self.concealed >= max_concealed {
            return false;
        }
        match self
            .decoder
            .decode(&[], &mut scratch[..FRAME_SAMPLES], false)
        {
            Ok(n) => {
                self.carry
                    .extend_from_slice(&scratch[..n.min(FRAME_SAMPLES)]);
                self.concealed += 1;
                stats.concealed_frames += 1;
                n > 0
            }
            Err(_) => {
                stats.decode_errors += 1;
                false
            }
        }
    }
}

impl std::fmt::Debug for Talker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Talker")
            .field("id", &self.id)
            .field("queued", &self.queue.len())
            .field("concealed", &self.concealed)
            .finish_non_exhaustive()
    }
}
