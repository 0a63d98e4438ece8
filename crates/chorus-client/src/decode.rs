//! Opus decoding of received audio, for tests that must hear what the server mixed.

use crate::stats::DecodedAudio;
use crate::talk::SAMPLE_RATE;

/// Longest Opus packet duration (120 ms) at 48 kHz.
const MAX_FRAME_SAMPLES: usize = 5760;

/// Why a decoder could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DecoderError {
    #[error("opus decoder: {0}")]
    Opus(#[from] opus::Error),
}

/// Decodes one inbound track to 48 kHz mono.
pub(crate) struct AudioDecoder {
    decoder: opus::Decoder,
    pcm: Box<[i16]>,
}

impl AudioDecoder {
    pub(crate) fn new() -> Result<Self, DecoderError> {
        Ok(Self {
            decoder: opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono)?,
            pcm: vec![0; MAX_FRAME_SAMPLES].into_boxed_slice(),
        })
    }

    /// Decodes a packet into `into`; a packet the decoder refuses is counted, not raised
    /// (it came from the network).
    pub(crate) fn decode(&mut self, payload: &[u8], into: &mut DecodedAudio) {
        // libopus takes an empty packet as "lost" and conceals it; RFC 7587 has no
        // empty Opus payload, so it is an error here.
        if payload.is_empty() {
            into.errors += 1;
            return;
        }
        match self.decoder.decode(payload, &mut self.pcm, false) {
            Ok(samples) => into.push(&self.pcm[..samples.min(self.pcm.len())]),
            Err(_) => into.errors += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::OPUS_SILENCE_FRAME;
    use crate::talk::{tone_energy, tone_loop};

    #[test]
    fn decodes_tones_silence_and_counts_garbage() {
        let mut decoder = AudioDecoder::new().unwrap();
        let mut decoded = DecodedAudio::default();
        for frame in tone_loop(750).unwrap().iter() {
            decoder.decode(&frame.payload, &mut decoded);
        }
        decoder.decode(&OPUS_SILENCE_FRAME, &mut decoded);
        // An empty payload is refused; so is a code-3 packet with no frame count.
        decoder.decode(&[], &mut decoded);
        decoder.decode(&[0xfb], &mut decoded);
        assert_eq!(decoded.frames, 51);
        assert_eq!(decoded.errors, 2);
        assert!(decoded.loud_frames >= 48, "{decoded:?}");
        let pcm = decoded.recent_pcm();
        assert!(tone_energy(&pcm, 750.0, SAMPLE_RATE) > 0.04);
    }
}
