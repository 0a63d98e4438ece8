//! The WebRTC transport of Chorus: one UDP port for every participant.
//!
//! Media I/O threads (one per core by default) each own a socket bound with
//! `SO_REUSEPORT` to the same address. A datagram from an unknown address must be
//! a STUN binding request: its USERNAME names the server-side ICE ufrag, which
//! names a peer connection; from then on the remote address alone routes it.
//! Datagrams go to the inbox of the actor that owns the connection (a room).
//! The peer connections are webrtc-rs `rtc` sans-I/O objects that their owner
//! drives with time passed in; [`PeerFactory`] builds them as ICE-lite servers.

mod demux;
mod egress;
mod peer;
mod rtcp;
mod socket;
pub mod stun;

pub use demux::{Datagram, Demux, Route};
pub use egress::SendReport;
pub use peer::{
    AUDIO_LEVEL_URI, OPUS_PT, PeerError, PeerFactory, PeerRole, ServerPeer, VP8_PT, codecs,
    host_candidate, opus_codec, sending_track, sending_track_with_codec, vp8_codec,
};
pub use rtcp::with_rtcp_to_application;
pub use socket::{Egress, MediaCounters, MediaPlane, MediaPlaneConfig, MediaPlaneError};
