//! What one tick produces: the [`MixedFrame`], with its RTP sequence number,
//! timestamp and level, the speaker set when it changed, and the payload each listener
//! must receive (its mix-minus-self if it is a mixed talker, else the common mix). It
//! borrows the payloads from the mixer and its talkers; it owns nothing.

use super::talker::Talker;
use crate::SourceId;
use crate::speaker::ActiveSpeaker;

/// One 20 ms output frame: what each listener must receive at this tick.
#[derive(Debug)]
pub struct MixedFrame<'a> {
    /// Extended RTP sequence number of the mixed stream: +1 per frame, no gaps.
    pub seq: u64,
    /// Extended RTP timestamp (48 kHz): +960 per frame slot, more after a skip.
    pub timestamp: u64,
    /// RFC 6464 level of the common mix (-dBov, 127 = silence).
    pub level: u8,
    /// The active speaker set, in the detector's stable order (longest active first),
    /// when it changed at this tick.
    pub speakers: Option<&'a [ActiveSpeaker]>,
    pub(super) common: &'a [u8],
    pub(super) common_pcm: &'a [i16],
    pub(super) talkers: &'a [Talker],
}

impl MixedFrame<'_> {
    /// The Opus payload `listener` must hear: its mix-minus-self if it is one of the
    /// mixed talkers, else the common mix. Empty if encoding failed (send nothing).
    pub fn payload_for(&self, listener: SourceId) -> &[u8] {
        match self.talkers.iter().find(|t| t.id == listener) {
            Some(t) if !t.payload.is_empty() => &t.payload,
            _ => self.common,
        }
    }

    /// The common mix, for listeners that are not sources.
    /// The mix as 48 kHz samples for a listener that takes samples
    /// ([`crate::SourceKind::pcm_out`]): its own mix-minus-self while it is mixed, else
    /// the common mix (which then does not carry its voice).
    pub fn pcm_for(&self, listener: SourceId) -> &[i16] {
        match self.talkers.iter().find(|t| t.id == listener) {
            Some(t) if t.pcm_out && !t.minus.is_empty() => &t.minus,
            _ => self.common_pcm,
        }
    }

    pub fn common(&self) -> &[u8] {
        self.common
    }
}
