//! The Opus frame format and the encode helpers: sample rate, frame and packet sizes,
//! creating an encoder, encoding one frame (failures counted, never fatal) and
//! clamping a summed sample back to 16 bits. Shared by the talkers and the mixer;
//! it owns no state of its own.

use opus::{Application, Bitrate, Channels, Encoder};

use super::config::MixerStats;

/// Sample rate of everything the mixer decodes and encodes.
pub const SAMPLE_RATE: u32 = 48_000;
/// Samples in one 20 ms mono frame, and the RTP timestamp step between frames.
pub const FRAME_SAMPLES: usize = 960;
/// Longest frame an Opus packet may carry (120 ms).
pub(super) const MAX_PACKET_SAMPLES: usize = 5760;
/// Largest Opus packet for one frame (RFC 6716 §3.2.1).
pub(super) const MAX_OPUS_PACKET: usize = 1275;

pub(super) fn new_encoder(bitrate_bps: i32) -> Result<Encoder, opus::Error> {
    let mut encoder = Encoder::new(SAMPLE_RATE, Channels::Mono, Application::Voip)?;
    encoder.set_bitrate(Bitrate::Bits(bitrate_bps))?;
    Ok(encoder)
}

/// Encodes `pcm` into `out` (cleared on failure, so callers fall back or send nothing).
pub(super) fn encode(
    encoder: &mut Encoder,
    pcm: &[i16],
    out: &mut Vec<u8>,
    stats: &mut MixerStats,
) {
    out.resize(MAX_OPUS_PACKET, 0);
    match encoder.encode(pcm, out) {
        Ok(n) => out.truncate(n),
        Err(_) => {
            stats.encode_errors += 1;
            out.clear();
        }
    }
}

pub(super) fn clamp_i16(v: i32) -> i16 {
    v.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}
