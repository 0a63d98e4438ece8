//! Table-driven tests of the layer forwarder on a simulated clock: the helpers here,
//! the layer switching in `switching.rs`, VP8 numbering and temporal layers in `vp8.rs`.

mod switching;
mod vp8;

use super::*;
use crate::vp8::{PictureId, Vp8Temporal};

/// Every layer sends its frames 33 ms apart, 3000 ticks apart.
const FRAME: u64 = 3000;

fn layer(spatial: u8, temporal: u8) -> Layer {
    Layer::new(
        SpatialLayer::new(spatial).unwrap(),
        TemporalLayer::new(temporal).unwrap(),
    )
}

/// A packet of spatial layer `l`, without VP8 descriptor (e.g. H.264).
fn pkt(l: u8, seq: u64, ts: u64) -> LayerPacket {
    LayerPacket {
        layer: SpatialLayer::new(l).unwrap(),
        seq: ExtSeq(seq),
        timestamp: ExtTimestamp(ts),
        marker: false,
        keyframe: false,
        vp8: None,
    }
}

fn key(mut p: LayerPacket) -> LayerPacket {
    p.keyframe = true;
    p
}

/// The same packet with a VP8 descriptor: 15-bit picture id, TL0PICIDX, TID/Y, KEYIDX.
/// `start`: first packet of its frame.
fn vp8(mut p: LayerPacket, pid: u16, tl0: u8, tid: u8, sync: bool, start: bool) -> LayerPacket {
    p.vp8 = Some(Vp8Descriptor {
        start_of_partition: start,
        partition_id: 0,
        picture_id: Some(PictureId {
            value: pid,
            long: true,
        }),
        tl0_pic_idx: Some(tl0),
        temporal: Some(Vp8Temporal {
            tid,
            layer_sync: sync,
        }),
        key_idx: Some(tl0 & 0x1F),
        len: 6,
    });
    p
}

/// The same packet with only a picture id, of either width.
fn with_pid(mut p: LayerPacket, value: u16, long: bool) -> LayerPacket {
    p.vp8 = Some(Vp8Descriptor {
        start_of_partition: true,
        partition_id: 0,
        picture_id: Some(PictureId { value, long }),
        tl0_pic_idx: None,
        temporal: None,
        key_idx: None,
        len: if long { 4 } else { 3 },
    });
    p
}

/// The part of a decision a table checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    /// Forwarded with (seq, timestamp).
    F(u16, u32),
    D(LayerDrop),
}
use Out::*;

fn out(d: LayerDecision) -> Out {
    match d.action {
        LayerAction::Forward { seq, timestamp, .. } => F(seq, timestamp),
        LayerAction::Drop(r) => D(r),
    }
}

fn vp8_out(d: LayerDecision) -> Option<Vp8Rewrite> {
    match d.action {
        LayerAction::Forward { vp8, .. } => vp8,
        LayerAction::Drop(_) => None,
    }
}

/// A subscriber's forwarder on a simulated clock.
struct Sub {
    f: LayerForwarder,
    t0: Instant,
}

/// A step of a table: change the target, or a packet at a time (ms) with the
/// expected decision.
enum Step {
    Target(Option<Layer>),
    At(u64, LayerPacket, Out),
}
use Step::*;

impl Sub {
    fn new(target: Layer) -> Self {
        let mut f = LayerForwarder::new(Layer::BEST);
        f.set_target(Some(target));
        Self {
            f,
            t0: Instant::now(),
        }
    }

    fn at(&mut self, ms: u64, p: LayerPacket) -> LayerDecision {
        self.f.forward(&p, self.t0 + Duration::from_millis(ms))
    }

    fn run(&mut self, what: &str, steps: &[Step]) {
        for (i, step) in steps.iter().enumerate() {
            match step {
                Target(t) => self.f.set_target(*t),
                At(ms, p, want) => {
                    let got = out(self.at(*ms, *p));
                    assert_eq!(got, *want, "{what}: step {i} (seq {})", p.seq.0);
                }
            }
        }
    }
}
