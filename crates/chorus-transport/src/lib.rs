//! The WebRTC transport of Chorus: one UDP port for every participant.
//!
//! Media I/O threads (one per core by default) each own a socket bound with
//! `SO_REUSEPORT` to the same address. A STUN binding request is routed by the
//! server-side ICE ufrag its USERNAME names, from any address; everything else by its
//! remote address. Datagrams go to the inbox of the room that owns the connection,
//! which authenticates binding requests and confirms the addresses they came from
//! ([`IceLite`]): media then goes to the path the client nominated last.
//! The connections ([`ServerConnection`]) are sans-I/O objects that their owner drives
//! with time passed in; [`PeerFactory`] holds what they are all made with.

mod counters;
mod demux;
pub mod dtls_srtp;
mod egress;
pub mod ice;
mod ingress;
mod peer;
mod receive;
pub mod rtcp;
mod socket;
pub mod stun;
pub mod webrtc;

/// The buffer type of the send and receive paths, for callers without their own `bytes`.
pub use bytes::BytesMut;
/// The profile shared with clients: what the simulation's and the tests' `rtc` clients
/// are made with.
pub use chorus_rtc_profile::{
    AUDIO_LEVEL_URI, AV1_PT, OPUS_PT, VP8_PT, VP9_PT, av1_codec, host_candidate, opus_codec,
    sending_track, sending_track_with_codec, vp8_codec, vp9_codec, with_rtcp_to_application,
};
pub use counters::{MediaCounters, SendReport};
pub use demux::{Datagram, Delivery, Demux, Route, is_control};
pub use dtls_srtp::protect::{MAX_RTP_OVERHEAD, ProtectError, SrtpSender};
pub use ice::{IceCredentials, IceEvent, IceLite, LinkState, LivenessConfig, StunCheck};
pub use ingress::{IngressError, IngressKey, is_rtcp};
pub use peer::{PeerError, PeerFactory};
pub use socket::{Egress, MediaPlane, MediaPlaneConfig, MediaPlaneError};
pub use webrtc::{Accept, ConnectionError, ConnectionEvent, ServerConnection};
