//! Which spatial and temporal layers of a VP9 SVC stream one subscriber receives; of
//! an AV1 one too, its packets placed by their dependency descriptors
//! ([`SvcLayers::of_dd`]) rather than by VP9 payload descriptors.
//!
//! A publisher sending VP9 with `scalabilityMode: 'L3T3_KEY'` sends one stream (one
//! SSRC, one sequence): each picture is a superframe of up to three layer frames, one
//! per spatial layer (SID), lowest first, all of one temporal layer (TID). Upper
//! spatial layers depend on lower ones only at keyframes; lower layers never on upper.
//! So for each subscriber the [`SvcForwarder`] keeps:
//!
//! - spatial layers up to its current one, switching up only at a keyframe (the upper
//!   layer cannot be decoded before it) and down at the start of any picture;
//! - temporal layers up to its current cap, switching up at a keyframe or a switching
//!   up point (U bit), down at the start of any picture;
//! - sequence numbers closed over what it drops (the subscriber sees no loss there),
//!   RTP timestamps as they are (one picture, one timestamp, whatever it drops);
//! - the RTP marker on the last packet of the highest spatial layer it forwards of
//!   each picture (its E bit), so the decoder sees each superframe complete.
//!
//! The picture id is not rewritten: every picture of the stream is numbered by the
//! publisher, and a decoder reads a missing picture id of a temporal layer above what
//! it receives as a frame nothing it decodes refers to (the non-flexible mode's group
//! of pictures says so). After a pause the stream resumes at a keyframe, which needs
//! nothing before it.
//!
//! Limit: a picture that lacks the highest layer forwarded (an encoder dropping that
//! layer frame alone) but has one above it goes out without a marker (the packet that
//! would have carried it is gone by the time the gap shows); the decoder then completes
//! it at the next picture.

#[cfg(test)]
mod dd_tests;
#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

use crate::dependency_descriptor::{DdFrame, Dti, TemplateStructure};
use crate::forward::{DropReason, Forwarder, Translation};
use crate::gaps::{GapCloser, Unmapped};
use crate::keyframe::KeyframeThrottle;
use crate::layers::{LayerAction, LayerDecision, LayerDrop};
use crate::seq::{ExtSeq, ExtTimestamp};
use crate::targets::{Layer, SpatialLayer, TemporalLayer};
use crate::targets::{LayerTargets, Targeted};
use crate::video::VideoForwarder;
use crate::vp9::Vp9Descriptor;

/// Where one packet sits in the layers (from its VP9 payload descriptor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SvcLayers {
    pub sid: u8,
    pub tid: u8,
    /// U: a temporal switching up point.
    pub switching_up: bool,
    /// B: the first packet of its layer frame.
    pub begins_frame: bool,
    /// E: the last packet of its layer frame.
    pub ends_frame: bool,
}

impl SvcLayers {
    pub fn of(d: &Vp9Descriptor) -> Self {
        Self {
            sid: d.sid(),
            tid: d.tid(),
            switching_up: d.layers.is_some_and(|l| l.switching_up),
            begins_frame: d.begins_frame,
            ends_frame: d.ends_frame,
        }
    }

    /// Where an AV1 packet sits, from its dependency descriptor and the structure its
    /// template is in (the last keyframe's): the SID and TID of its template; begins
    /// and ends of its frame; a switching up point where the frame is a switch (`S`)
    /// for every decode target of its temporal layer that it is part of, so that a
    /// subscriber starting that layer there lacks no frame it refers to.
    pub fn of_dd(frame: &DdFrame, structure: &TemplateStructure) -> Self {
        let targets = structure.decode_target_layers.iter().enumerate();
        let mut of_its_layer = targets
            .filter(|(_, (_, tid))| *tid == frame.temporal_id)
            .map(|(dt, _)| frame.dtis.get(dt))
            .filter(|&dti| dti != Dti::NotPresent)
            .peekable();
        let switching_up = of_its_layer.peek().is_some() && of_its_layer.all(|d| d == Dti::Switch);
        Self {
            sid: frame.spatial_id,
            tid: frame.temporal_id,
            switching_up,
            begins_frame: frame.start_of_frame,
            ends_frame: frame.end_of_frame,
        }
    }

    /// The first packet of a picture (of its base layer frame).
    pub fn starts_picture(&self) -> bool {
        self.begins_frame && self.sid == 0
    }
}

/// What the SVC forwarder needs of one incoming packet.
#[derive(Debug, Clone, Copy)]
pub struct SvcPacket {
    pub seq: ExtSeq,
    pub timestamp: ExtTimestamp,
    pub marker: bool,
    /// The first packet of a keyframe (see [`Vp9Descriptor::starts_keyframe`]).
    pub keyframe: bool,
    /// `None`: no readable descriptor (e.g. a padding packet).
    pub layers: Option<SvcLayers>,
}

/// RTP clock rate of VP9: ticks per second.
const VIDEO_CLOCK: u64 = 90_000;

/// One subscriber's view of one VP9 SVC track. Sans-I/O: time is an argument.
#[derive(Debug, Clone)]
pub struct SvcForwarder {
    /// Max, target and current: the layers forwarded now change at the start of a
    /// picture only.
    targets: LayerTargets,
    /// Sequence and timestamp offsets across pauses.
    forwarder: Forwarder,
    /// Closes the sequence numbers of the layers dropped.
    seqs: GapCloser,
    keyframe_requests: KeyframeThrottle,
    last_sent_at: Option<Instant>,
}

impl SvcForwarder {
    /// Aims at `max`; nothing goes out until the first keyframe.
    pub fn new(max: Layer) -> Self {
        Self::with_keyframe_interval(max, KeyframeThrottle::DEFAULT_INTERVAL)
    }

    /// As [`SvcForwarder::new`], with at most one keyframe request per `interval`.
    pub fn with_keyframe_interval(max: Layer, interval: Duration) -> Self {
        Self {
            targets: LayerTargets::new(max),
            forwarder: Forwarder::video(),
            seqs: GapCloser::default(),
            keyframe_requests: KeyframeThrottle::new(interval),
            last_sent_at: None,
        }
    }

    fn decide(&mut self, p: &SvcPacket, now: Instant) -> LayerAction {
        let Some(target) = self.target() else {
            return LayerAction::Drop(LayerDrop::Paused);
        };
        let Some(l) = p.layers else {
            self.close(p.seq);
            return LayerAction::Drop(LayerDrop::Unreadable);
        };
        if l.starts_picture() {
            self.next_picture(target, &l, p.keyframe, now);
        }
        let Some(current) = self.current() else {
            return LayerAction::Drop(LayerDrop::AwaitingKeyframe);
        };
        if usize::from(l.sid) > current.spatial.index() {
            self.close(p.seq);
            return LayerAction::Drop(LayerDrop::SpatialLayerAbove);
        }
        if l.tid > current.temporal.tid() {
            self.close(p.seq);
            return LayerAction::Drop(LayerDrop::TemporalLayerAbove);
        }
        // The publisher's marker ends the superframe; ours ends what this subscriber
        // gets of it.
        let last_forwarded = l.ends_frame && usize::from(l.sid) == current.spatial.index();
        self.rewrite(p, p.marker || last_forwarded, now)
    }

    /// At the start of a picture: the layers forwarded from it on.
    fn next_picture(&mut self, target: Layer, l: &SvcLayers, keyframe: bool, now: Instant) {
        let Some(current) = self.current() else {
            if keyframe {
                self.start(target, now);
            }
            return;
        };
        let spatial = if target.spatial < current.spatial || keyframe {
            target.spatial
        } else {
            current.spatial
        };
        let mut temporal = current.temporal;
        if target.temporal < temporal || keyframe {
            temporal = target.temporal;
        } else if l.switching_up && l.tid > temporal.tid() && l.tid <= target.temporal.tid() {
            temporal = TemporalLayer::new(l.tid).unwrap_or(temporal);
        }
        self.targets.set_current(Layer::new(spatial, temporal));
    }

    /// Starts (or resumes after a pause) at the keyframe that is the next packet.
    fn start(&mut self, target: Layer, now: Instant) {
        let elapsed = self
            .last_sent_at
            .map_or(0, |t| ticks(now.saturating_duration_since(t)));
        self.forwarder.switch_layer(elapsed);
        self.seqs.reset();
        self.targets.set_current(target);
    }

    /// A packet dropped on purpose: its number leaves no hole (see gaps.rs).
    fn close(&mut self, seq: ExtSeq) {
        if self.current().is_some() {
            self.seqs.drop(seq.0);
        }
    }

    fn rewrite(&mut self, p: &SvcPacket, marker: bool, now: Instant) -> LayerAction {
        let seq = match self.seqs.keep(p.seq.0) {
            Ok(s) => ExtSeq(s),
            Err(Unmapped::Dropped) => return LayerAction::Drop(LayerDrop::DroppedBefore),
            Err(Unmapped::TooOld) => return LayerAction::Drop(LayerDrop::TooOld),
        };
        match self
            .forwarder
            .translate(seq, p.timestamp, marker, p.keyframe)
        {
            Translation::Forward {
                seq,
                timestamp,
                marker,
            } => {
                self.last_sent_at = Some(now);
                LayerAction::Forward {
                    seq,
                    timestamp,
                    marker,
                    vp8: None,
                }
            }
            Translation::Drop(DropReason::BeforeSwitch) => {
                LayerAction::Drop(LayerDrop::BeforeSwitch)
            }
            Translation::Drop(DropReason::AwaitingKeyframe) => {
                LayerAction::Drop(LayerDrop::AwaitingKeyframe)
            }
        }
    }

    /// A keyframe while paused-for-one or below the spatial target (all layers of a
    /// stream start at its keyframes, so the request is for the stream's).
    fn keyframe_request(&mut self, now: Instant) -> Option<SpatialLayer> {
        let target = self.target()?;
        if self.current().is_some_and(|c| c.spatial >= target.spatial) {
            return None;
        }
        self.keyframe_requests
            .should_send(now)
            .then_some(SpatialLayer::LOW)
    }
}

impl Targeted for SvcForwarder {
    fn targets(&self) -> &LayerTargets {
        &self.targets
    }

    fn targets_mut(&mut self) -> &mut LayerTargets {
        &mut self.targets
    }
}

impl VideoForwarder for SvcForwarder {
    type Packet = SvcPacket;

    fn forward(&mut self, packet: &SvcPacket, now: Instant) -> LayerDecision {
        let action = self.decide(packet, now);
        LayerDecision {
            action,
            keyframe_request: self.keyframe_request(now),
        }
    }

    fn insert(&mut self, count: u16) -> Option<(u16, u32)> {
        self.current()?;
        self.forwarder.insert(count)
    }
}

fn ticks(d: Duration) -> u64 {
    (d.as_micros() * u128::from(VIDEO_CLOCK) / 1_000_000) as u64
}
