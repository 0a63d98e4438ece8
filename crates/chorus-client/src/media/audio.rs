//! The synthetic microphone: what it replays (a shared loop of real Opus talk or a tone,
//! or the silence frame with a fixed RFC 6464 level) and the Opus frame timing.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tracing::warn;

use crate::talk::{self, AudioContent, OpusFrame, SILENT_DBOV};

/// One 20 ms CELT-only fullband Opus frame that decodes to silence (TOC 0xF8).
pub const OPUS_SILENCE_FRAME: [u8; 3] = [0xF8, 0xFF, 0xFE];

pub(super) const OPUS_FRAME: Duration = Duration::from_millis(20);
pub(super) const OPUS_SAMPLES_PER_FRAME: u32 = 960;

/// What the microphone replays.
#[derive(Debug)]
pub(super) enum AudioSource {
    /// A shared encoded loop and the next frame of it this client sends.
    Clip {
        frames: Arc<[OpusFrame]>,
        next: usize,
    },
    /// The silence frame with this level.
    Fixed { level_dbov: u8 },
}

impl AudioSource {
    pub(super) fn new(content: AudioContent) -> Self {
        let clip = match content {
            AudioContent::Talk(pattern) => talk::talk_loop(pattern),
            AudioContent::Tone { hz } => talk::tone_loop(hz),
            AudioContent::Silence => {
                return AudioSource::Fixed {
                    level_dbov: SILENT_DBOV,
                };
            }
            AudioContent::Labelled(level) => {
                return AudioSource::Fixed {
                    level_dbov: level.min(SILENT_DBOV),
                };
            }
        };
        match clip {
            // Each client starts somewhere else in the loop, so talkers do not align.
            Ok(frames) if !frames.is_empty() => AudioSource::Clip {
                next: rand::random_range(0..frames.len()),
                frames,
            },
            Ok(_) => AudioSource::Fixed {
                level_dbov: SILENT_DBOV,
            },
            Err(err) => {
                warn!(%err, "cannot encode synthetic audio; sending silence");
                AudioSource::Fixed {
                    level_dbov: SILENT_DBOV,
                }
            }
        }
    }

    /// Payload, level and V bit of the next frame.
    pub(super) fn next_frame(&mut self) -> (Bytes, u8, bool) {
        match self {
            AudioSource::Clip { frames, next } => {
                let frame = &frames[*next % frames.len()];
                *next = (*next + 1) % frames.len();
                (frame.payload.clone(), frame.level_dbov, frame.voice)
            }
            AudioSource::Fixed { level_dbov } => (
                Bytes::from_static(&OPUS_SILENCE_FRAME),
                *level_dbov,
                *level_dbov < SILENT_DBOV,
            ),
        }
    }
}
