//! What configures and reports on the mixer, as plain data: [`MixerConfig`], the
//! errors of [`super::Mixer::new`], the outcome of a push ([`Pushed`], [`DropReason`])
//! and the [`MixerStats`] counters. A leaf: it owns no state and depends only on the
//! speaker configuration.

use crate::speaker::SpeakerConfig;

/// How the mixer works.
#[derive(Debug, Clone, PartialEq)]
pub struct MixerConfig {
    /// How many talkers are mixed at most (K); overrides `speaker.max_active`.
    pub max_mixed: usize,
    /// Bitrate of every encoded stream.
    pub bitrate_bps: i32,
    /// Packets queued at most per mixed talker (a bound on added latency).
    pub jitter_frames: usize,
    /// Frames concealed with Opus packet-loss concealment before a talker whose
    /// packets stopped counts as silent.
    pub max_concealed: usize,
    /// Speaker selection.
    pub speaker: SpeakerConfig,
}

impl Default for MixerConfig {
    fn default() -> Self {
        Self {
            max_mixed: 3,
            bitrate_bps: 32_000,
            jitter_frames: 4,
            max_concealed: 3,
            speaker: SpeakerConfig::default(),
        }
    }
}

/// Why [`Mixer::new`] failed.
#[derive(Debug, thiserror::Error)]
pub enum MixerError {
    #[error("invalid mixer config: {0}")]
    InvalidConfig(&'static str),
    #[error("creating the Opus encoder failed")]
    Encoder(#[source] opus::Error),
}

/// Why a pushed packet was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The source was never added (or was removed).
    UnknownSource,
    Duplicate,
    /// Its frame was already played or concealed.
    TooOld,
    EmptyPayload,
}

/// What [`Mixer::push`] did with a packet: a value for the caller to count or ignore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// The source is mixed: the packet waits for its tick.
    Queued,
    /// The source is not mixed: only its level was noted.
    LevelOnly,
    Dropped(DropReason),
}

/// Counters of what went wrong or was dropped, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MixerStats {
    pub unknown_source: u64,
    pub duplicates: u64,
    pub too_old: u64,
    /// Packets dropped to bound a talker's queueing delay.
    pub jitter_dropped: u64,
    /// Payloads libopus refused (treated as lost).
    pub decode_errors: u64,
    pub concealed_frames: u64,
    pub encode_errors: u64,
    /// Decoders or encoders that could not be created for a new talker.
    pub codec_create_errors: u64,
    /// Frame slots skipped because `tick` came late.
    pub skipped_frames: u64,
}
