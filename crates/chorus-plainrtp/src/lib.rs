//! Phone and bot participants over plain RTP (no ICE, no DTLS): a PSTN gateway or a
//! bot sends its voice to a UDP port of Chorus, in G.711 (PCMU/PCMA at 8 kHz) or Opus,
//! and gets the room's mix without its own voice back in the same codec.
//!
//! - [`g711`], [`resample`], [`rtp`]: the codec, the 8 ↔ 48 kHz resampler, the framing;
//! - [`Endpoint`]: one participant, sans-I/O (datagrams and the mix in with the time,
//!   20 ms frames for the mixer and RTP packets out, named drops counted);
//! - [`driver::run`]: its tokio task with its own socket, adding its drops to its
//!   room's [`DropCounts`].

pub mod codec;
pub mod counts;
pub mod driver;
pub mod endpoint;
pub mod g711;
pub mod resample;
pub mod rtp;
pub mod sdes;

pub use codec::PlainCodec;
pub use counts::DropCounts;
pub use endpoint::{
    DropReason, Endpoint, EndpointConfig, EndpointError, EndpointStats, FRAME_SAMPLES, Gone,
    InboundFrame, MixAudio,
};
pub use sdes::{SdesKey, Srtp};
