//! One mixed talker and everything it owns: its jitter queue, its Opus decoder (with
//! packet-loss concealment), the samples decoded but not mixed yet, this tick's 20 ms
//! contribution, and the encoder and payload of its mix-minus-self. The mixer creates
//! a talker when the speaker detector selects a source and drops it when deselected.

use opus::{Channels, Decoder, Encoder};

use super::codec::{FRAME_SAMPLES, MAX_OPUS_PACKET, MAX_PACKET_SAMPLES, SAMPLE_RATE, new_encoder};
use super::config::{MixerConfig, MixerStats};
use crate::jitter::{JitterQueue, Playout};
use crate::{SourceId, SourceKind};

/// A mixed talker: its decoder, queue and the encoder of its mix-minus-self.
pub(super) struct Talker {
    pub(super) id: SourceId,
    /// `None` for a source that arrives as samples ([`SourceKind::pcm_in`]).
    pub(super) decoder: Option<Decoder>,
    /// Its mix-minus-self as samples instead of Opus ([`SourceKind::pcm_out`]).
    pub(super) pcm_out: bool,
    /// That mix-minus-self, when `pcm_out`.
    pub(super) minus: Vec<i16>,
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
    pub(super) fn new(
        id: SourceId,
        kind: SourceKind,
        config: &MixerConfig,
    ) -> Result<Self, opus::Error> {
        let decoder = if kind.pcm_in {
            None
        } else {
            Some(Decoder::new(SAMPLE_RATE, Channels::Mono)?)
        };
        Ok(Self {
            id,
            decoder,
            pcm_out: kind.pcm_out,
            minus: Vec::new(),
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
                Playout::Packet(packet) => match decode(self.decoder.as_mut(), &packet, scratch) {
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
        // Samples cannot be concealed: the source fills its own gaps.
        let Some(decoder) = self.decoder.as_mut() else {
            return false;
        };
        match decoder.decode(&[], &mut scratch[..FRAME_SAMPLES], false) {
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

/// A queued packet to samples: Opus through its decoder, or little-endian 16-bit
/// samples as they were pushed.
fn decode(
    decoder: Option<&mut Decoder>,
    packet: &[u8],
    scratch: &mut [i16],
) -> Result<usize, opus::Error> {
    match decoder {
        Some(d) => d.decode(packet, scratch, false),
        None => {
            let n = (packet.len() / 2).min(scratch.len());
            for (s, b) in scratch.iter_mut().zip(packet.chunks_exact(2)) {
                *s = i16::from_le_bytes([b[0], b[1]]);
            }
            Ok(n)
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
