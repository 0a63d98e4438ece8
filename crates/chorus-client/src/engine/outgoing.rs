//! What one publication sends: a single stream, or a camera's three simulcast layers
//! (each on its own SSRC), behind one interface for the engine's send loop and RTCP.

use std::time::Instant;

use crate::media::{Frame, LayerFrame, MediaSource, Rid, SimulcastSource};
use crate::talk::AudioContent;

pub(super) enum Outgoing {
    Single(MediaSource),
    Simulcast(SimulcastSource),
}

impl Outgoing {
    pub fn poll_timeout(&self) -> Instant {
        match self {
            Self::Single(media) => media.poll_timeout(),
            Self::Simulcast(layers) => layers.poll_timeout(),
        }
    }

    /// The next due frame, with its layer's rid when simulcast.
    pub fn poll_frame(&mut self, now: Instant) -> Option<(Option<Rid>, Frame)> {
        match self {
            Self::Single(media) => media.poll_frame(now).map(|frame| (None, frame)),
            Self::Simulcast(layers) => layers
                .poll_frame(now)
                .map(|LayerFrame { rid, frame }| (Some(rid), frame)),
        }
    }

    pub fn skip_until(&mut self, now: Instant) {
        match self {
            Self::Single(media) => media.skip_until(now),
            Self::Simulcast(layers) => layers.skip_until(now),
        }
    }

    /// Every layer's next frame is a keyframe (unmute).
    pub fn request_keyframe(&mut self) {
        match self {
            Self::Single(media) => media.request_keyframe(),
            Self::Simulcast(layers) => {
                for rid in [Rid::Q, Rid::H, Rid::F] {
                    layers.request_keyframe(rid);
                }
            }
        }
    }

    /// A PLI or FIR for `ssrc`: only that layer of a simulcast camera keys, as a
    /// browser's encoder for that rid would.
    pub fn request_keyframe_for(&mut self, ssrc: u32) {
        match self {
            Self::Single(media) => media.request_keyframe(),
            Self::Simulcast(layers) => {
                if let Some(rid) = layers.layer_of(ssrc) {
                    layers.request_keyframe(rid);
                }
            }
        }
    }

    /// Applies `publisher_layers`: each named layer of a simulcast camera started or
    /// stopped; a VP9 SVC camera sends the spatial layers up to the highest active one
    /// (`s0`, `s1`, …), as the demo page does with `scalabilityMode`.
    pub fn set_layers(&mut self, layers: &[(String, bool)]) {
        match self {
            Self::Simulcast(source) => {
                for (rid, on) in layers {
                    source.set_active(rid, *on);
                }
            }
            Self::Single(media) => {
                let spatial = layers
                    .iter()
                    .filter(|(name, on)| *on && name.starts_with('s'))
                    .filter_map(|(name, _)| name[1..].parse::<usize>().ok())
                    .max();
                if let Some(top) = spatial {
                    media.send_spatial_layers(top + 1);
                }
            }
        }
    }

    pub fn set_audio(&mut self, content: AudioContent) {
        if let Self::Single(media) = self {
            media.set_audio(content);
        }
    }
}
