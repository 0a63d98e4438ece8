//! The sans-I/O media core: plain data and decisions, no sockets, no tasks, no clock.
//! Every function that needs time takes it as an argument, so the same code runs
//! under a real clock in the server and a simulated one in tests.

pub mod bwe;
pub mod codec;
pub mod dependency_descriptor;
pub mod forward;
pub mod gaps;
pub mod ids;
pub mod keyframe;
pub mod layers;
pub mod loss;
pub mod rate;
pub mod repair;
pub mod reports;
pub mod resend_budget;
pub mod seq;
pub mod svc;
pub mod targets;
pub mod video;
pub mod vp8;
pub mod vp9;

pub use bwe::{BandwidthEstimator, Bitrate, BweConfig, PacketResult, TransportSeq};
pub use codec::Codec;
pub use dependency_descriptor::{
    DdError, DdFrame, DependencyDescriptorReader, Dti, TemplateStructure,
};
pub use forward::{Forwarder, Translation};
pub use ids::{ConnId, ParticipantId, TrackId};
pub use keyframe::KeyframeThrottle;
pub use layers::{LayerAction, LayerDecision, LayerDrop, LayerForwarder, LayerPacket};
pub use loss::{LossConfig, LossDetector};
pub use rate::TokenBucket;
pub use repair::{NackMap, PacketHistory, Repair, Sent};
pub use reports::{ReceiverStats, ReportBlock, SenderInfo, SenderStats};
pub use resend_budget::ResendBudget;
pub use seq::{ExtSeq, ExtTimestamp, PictureIdUnwrapper, SeqUnwrapper, TimestampUnwrapper};
pub use svc::{SvcForwarder, SvcLayers, SvcPacket};
pub use targets::{Layer, LayerTargets, SpatialLayer, Targeted, TemporalLayer};
pub use video::{PlainPacket, VideoForwarder};
pub use vp8::{PictureId, Vp8Descriptor, Vp8Rewrite};
pub use vp9::{Vp9Descriptor, Vp9Layers, Vp9Structure};
