//! The codecs a plain-RTP participant may use, and what each means on the wire.

use crate::g711::Law;

/// What a plain-RTP participant sends and receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlainCodec {
    /// Opus at 48 kHz, mono or stereo, on a dynamic payload type.
    Opus,
    /// G.711 µ-law at 8 kHz (payload type 0).
    Pcmu,
    /// G.711 A-law at 8 kHz (payload type 8).
    Pcma,
}

impl PlainCodec {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "opus" => Some(Self::Opus),
            "pcmu" => Some(Self::Pcmu),
            "pcma" => Some(Self::Pcma),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opus => "opus",
            Self::Pcmu => "pcmu",
            Self::Pcma => "pcma",
        }
    }

    /// The static payload type of G.711; `None` for Opus, whose type is negotiated.
    pub fn static_payload_type(self) -> Option<u8> {
        match self {
            Self::Opus => None,
            Self::Pcmu => Some(0),
            Self::Pcma => Some(8),
        }
    }

    /// The RTP clock rate.
    pub fn clock_rate(self) -> u32 {
        match self {
            Self::Opus => 48_000,
            Self::Pcmu | Self::Pcma => 8_000,
        }
    }

    /// RTP timestamp units in one 20 ms frame.
    pub fn frame_ticks(self) -> u32 {
        self.clock_rate() / 50
    }

    pub(crate) fn law(self) -> Option<Law> {
        match self {
            Self::Opus => None,
            Self::Pcmu => Some(Law::Ulaw),
            Self::Pcma => Some(Law::Alaw),
        }
    }

    /// Whether the room hands it decoded 48 kHz samples of the mix (G.711), rather
    /// than the mixer's Opus packets (Opus, as WebRTC listeners get them).
    pub fn wants_pcm(self) -> bool {
        self.law().is_some()
    }
}
