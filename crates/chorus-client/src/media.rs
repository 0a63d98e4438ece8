//! Synthetic media: RTP packets that look like a real encoder's output to an SFU.
//!
//! Sans-I/O: a [`MediaSource`] is told the time and returns the packets of the frames
//! due by then.
//!
//! - Audio is real Opus (see [`crate::talk`]): talk spurts and silences or a tone,
//!   encoded once per process and replayed by every client from its own offset, each
//!   frame with the RFC 6464 level of its signal; or the 3-byte silence frame.
//! - Video is VP8 (full RFC 7741 payload descriptor: 15-bit PictureID, TL0PICIDX, TID) or
//!   H.264 (RFC 6184, see [`crate::h264`]), a keyframe first and after every
//!   [`MediaSource::request_keyframe`]. Every video packet ends with a send-time stamp
//!   ([`crate::latency`]) for the receiver's latency histogram.
//! - [`SimulcastSource`] sends three such video streams (rid q/h/f) at once.
//! - VP9 (RFC 9628, see [`crate::vp9`]) is one layer, or a camera's three spatial and
//!   three temporal layers in one stream ([`MediaSource::vp9_svc`], `L3T3_KEY`).
//!
//! This module only names the parts: the packetizer and clock (`source`), the
//! microphone (`audio`), the video encoder (`video`, VP9 pictures in `svc`) and the
//! simulcast camera (`simulcast`). The VP8 payload format (`vp8`) and the profile types (`profile`) are
//! the crate's, shared with the receiving side and the peer connections.

mod audio;
mod simulcast;
mod source;
mod svc;
mod video;

pub use crate::profile::{MediaProfile, StreamParams, VideoCodec};
pub use crate::vp8::{Vp8Frame, parse_vp8_frame_start, vp8_frame_payloads};
pub use crate::vp9::{GroupPicture, Vp9LayerFrame, Vp9Scalability, vp9_layer_payloads};
pub use audio::OPUS_SILENCE_FRAME;
pub use simulcast::{
    LayerFrame, Rid, SIMULCAST_LAYERS, SimulcastLayer, SimulcastParams, SimulcastSource,
};
pub use source::{Frame, MediaSource};
pub use svc::{SVC_LAYERS, SvcLayer};
pub use video::VideoShape;
