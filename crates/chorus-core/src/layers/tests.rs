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

#[test]
fn within_one_layer() {
    let cases: &[(&str, &[Step])] = &[
        (
            "starts at a keyframe",
            &[
                At(0, pkt(0, 10, 0), D(LayerDrop::AwaitingKeyframe)),
                At(1, pkt(1, 500, 0), D(LayerDrop::NotCurrentLayer)),
                At(2, key(pkt(0, 11, FRAME)), F(11, 3000)),
                At(3, pkt(0, 12, FRAME), F(12, 3000)),
                At(4, pkt(0, 10, 0), D(LayerDrop::BeforeSwitch)),
            ],
        ),
        (
            "sequence wraps at 65535",
            &[
                At(0, key(pkt(0, 65_534, 0)), F(65_534, 0)),
                At(1, pkt(0, 65_535, 0), F(65_535, 0)),
                At(2, pkt(0, 65_536, FRAME), F(0, 3000)),
                At(3, pkt(0, 65_537, FRAME), F(1, 3000)),
            ],
        ),
        (
            "reordering, loss and duplicates pass through as they are",
            &[
                At(0, key(pkt(0, 10, 0)), F(10, 0)),
                At(1, pkt(0, 11, 0), F(11, 0)),
                At(2, pkt(0, 13, FRAME), F(13, 3000)),
                At(3, pkt(0, 12, 0), F(12, 0)),
                At(4, pkt(0, 13, FRAME), F(13, 3000)),
                At(5, pkt(0, 16, 2 * FRAME), F(16, 6000)),
            ],
        ),
    ];
    for (what, steps) in cases {
        Sub::new(layer(0, 2)).run(what, steps);
    }
}

#[test]
fn switches_wait_for_the_keyframe_then_continue() {
    // Layer 1's timestamps with an unrelated offset: the wall clock places its keyframe.
    const FAR: u64 = 5_000_000;
    let cases: &[(&str, Layer, &[Step])] = &[
        (
            "up, layers sharing the clock: the timestamp mapping stays",
            layer(0, 2),
            &[
                At(0, key(pkt(0, 100, 90_000)), F(100, 90_000)),
                At(33, pkt(0, 101, 93_000), F(101, 93_000)),
                Target(Some(layer(1, 2))),
                At(40, pkt(1, 7000, 93_000), D(LayerDrop::AwaitingKeyframe)),
                At(66, pkt(0, 102, 96_000), F(102, 96_000)),
                At(99, key(pkt(1, 7001, 99_000)), F(103, 99_000)),
                At(100, pkt(0, 103, 99_000), D(LayerDrop::NotCurrentLayer)),
                At(132, pkt(1, 7003, 102_000), F(105, 102_000)),
                At(133, pkt(1, 7002, 99_000), F(104, 99_000)),
                At(134, pkt(1, 7000, 93_000), D(LayerDrop::BeforeSwitch)),
            ],
        ),
        (
            "up, unrelated clocks: the gap is the wall-clock time",
            layer(0, 2),
            &[
                At(0, key(pkt(0, 100, 90_000)), F(100, 90_000)),
                Target(Some(layer(1, 2))),
                At(33, pkt(0, 101, 93_000), F(101, 93_000)),
                At(66, key(pkt(1, 7001, FAR)), F(102, 93_000 + 2970)),
                At(99, pkt(1, 7002, FAR + FRAME), F(103, 93_000 + 2970 + 3000)),
            ],
        ),
        (
            "down",
            layer(2, 2),
            &[
                At(0, key(pkt(2, 40, 90_000)), F(40, 90_000)),
                Target(Some(layer(0, 2))),
                At(10, pkt(0, 900, 90_000), D(LayerDrop::AwaitingKeyframe)),
                At(11, pkt(1, 300, 90_000), D(LayerDrop::NotCurrentLayer)),
                At(33, pkt(2, 41, 93_000), F(41, 93_000)),
                At(66, key(pkt(0, 901, 96_000)), F(42, 96_000)),
                At(67, pkt(2, 42, 96_000), D(LayerDrop::NotCurrentLayer)),
                At(68, pkt(0, 902, 96_000), F(43, 96_000)),
            ],
        ),
        (
            "a keyframe of a layer that is not the target changes nothing",
            layer(0, 2),
            &[
                At(0, key(pkt(0, 100, 0)), F(100, 0)),
                At(1, key(pkt(2, 5, 0)), D(LayerDrop::NotCurrentLayer)),
                At(2, pkt(0, 101, 0), F(101, 0)),
            ],
        ),
        (
            "pause, then resume at a keyframe",
            layer(0, 2),
            &[
                At(0, key(pkt(0, 100, 90_000)), F(100, 90_000)),
                At(33, pkt(0, 101, 93_000), F(101, 93_000)),
                Target(None),
                At(66, pkt(0, 102, 96_000), D(LayerDrop::Paused)),
                At(67, key(pkt(0, 103, 96_000)), D(LayerDrop::Paused)),
                Target(Some(layer(0, 2))),
                At(1000, pkt(0, 130, 180_000), D(LayerDrop::AwaitingKeyframe)),
                // One second after the last packet sent, one second of timestamps later.
                At(1033, key(pkt(0, 131, 183_000)), F(102, 183_000)),
                At(1034, pkt(0, 132, 183_000), F(103, 183_000)),
            ],
        ),
    ];
    for (what, start, steps) in cases {
        Sub::new(*start).run(what, steps);
    }
}

#[test]
fn keyframe_requests_are_throttled_per_layer() {
    let mut s = Sub::new(layer(0, 2));
    // (ms, packet, expected request)
    let low = Some(SpatialLayer::LOW);
    let mid = Some(SpatialLayer::MID);
    let cases = [
        (0, pkt(0, 10, 0), low),
        (100, pkt(0, 11, 0), None),
        (499, pkt(1, 11, 0), None),
        (500, pkt(0, 12, 0), low),
        (600, key(pkt(0, 13, 0)), None), // switched: nothing to ask
        (700, pkt(0, 14, 0), None),
    ];
    for (ms, p, want) in cases {
        assert_eq!(s.at(ms, p).keyframe_request, want, "at {ms} ms");
    }
    // Switching up asks for the new layer at once: its throttle is its own.
    s.f.set_target(Some(layer(1, 2)));
    let cases = [
        (701, pkt(0, 15, 0), mid),
        (1000, pkt(0, 16, 0), None),
        (1201, pkt(0, 17, 0), mid),
    ];
    for (ms, p, want) in cases {
        assert_eq!(s.at(ms, p).keyframe_request, want, "at {ms} ms");
    }
}

/// The L1T3 pattern (TID 0, 2, 1, 2, …), two packets per frame; frame n has picture id
/// 50 + n. Capped at TL0, the output has no hole in sequence numbers nor picture ids.
#[test]
fn temporal_layers_above_the_cap_leave_no_hole() {
    const TIDS: [u8; 8] = [0, 2, 1, 2, 0, 2, 1, 2];
    let frame = |n: u64, second: bool, sync: bool| {
        let p = pkt(0, 10 + 2 * n + second as u64, n * FRAME);
        let p = if n == 0 && !second { key(p) } else { p };
        vp8(
            p,
            50 + n as u16,
            7 + (n / 4) as u8,
            TIDS[n as usize],
            sync,
            !second,
        )
    };
    let mut s = Sub::new(layer(0, 0));
    // (frame, second packet?, layer sync?, expected (seq, picture id) or drop)
    let above = Err(LayerDrop::TemporalLayerAbove);
    type Want = Result<(u16, u16), LayerDrop>;
    let cases: &[(u64, bool, bool, Want)] = &[
        (0, false, false, Ok((10, 50))),
        (0, true, false, Ok((11, 50))),
        (1, false, false, above),
        (1, true, false, above),
        (2, false, false, above),
        (3, false, false, above),
        (3, true, false, above),
        (2, true, false, above), // late, dropped too; its slot was closed in order
        (4, false, false, Ok((12, 51))),
        (4, true, false, Ok((13, 51))),
        // Raising the cap takes effect only at a layer-sync frame.
        (5, false, false, above),
        (5, true, false, above),
        (6, false, true, Ok((14, 52))),
        (6, true, true, Ok((15, 52))),
        (7, false, true, Ok((16, 53))),
    ];
    for (i, &(n, second, sync, want)) in cases.iter().enumerate() {
        if n == 5 && !second {
            s.f.set_target(Some(layer(0, 2)));
        }
        let d = s.at(n * 33, frame(n, second, sync));
        let got = match (out(d), vp8_out(d)) {
            (F(seq, _), Some(v)) => Ok((seq, v.picture_id.unwrap())),
            (D(r), _) => Err(r),
            (F(..), None) => panic!("no VP8 rewrite"),
        };
        assert_eq!(got, want, "step {i}: frame {n}");
    }
    // Lowering the cap takes effect at the next frame start.
    s.f.set_target(Some(layer(0, 1)));
    let p = vp8(pkt(0, 25, 9 * FRAME), 59, 9, 2, false, true);
    assert_eq!(out(s.at(300, p)), D(LayerDrop::TemporalLayerAbove));
    let p = vp8(pkt(0, 26, 10 * FRAME), 60, 9, 1, false, true);
    assert_eq!(out(s.at(333, p)), F(17, 30_000));
}

/// Documented limit: a dropped packet that arrives after a later one was sent leaves
/// its hole (the later packet already went out with the slot counted).
#[test]
fn a_late_dropped_packet_leaves_its_hole() {
    let mut s = Sub::new(layer(0, 0));
    let steps = [
        (vp8(key(pkt(0, 10, 0)), 1, 0, 0, false, true), F(10, 0)),
        (vp8(pkt(0, 12, FRAME), 3, 1, 0, false, true), F(12, 3000)),
        (
            vp8(pkt(0, 11, FRAME), 2, 0, 2, false, true),
            D(LayerDrop::TemporalLayerAbove),
        ),
        (vp8(pkt(0, 13, FRAME), 3, 1, 0, false, false), F(13, 3000)),
    ];
    for (i, (p, want)) in steps.into_iter().enumerate() {
        assert_eq!(out(s.at(i as u64, p)), want, "step {i}");
    }
}

/// Picture ids wrap at their width, and continue +1 per frame across a switch, written
/// in the width the new layer's packets carry.
#[test]
fn picture_ids_continue_across_wraps_and_switches() {
    // (spatial layer, keyframe, picture id, 15-bit?, expected output id)
    type Case = (u8, bool, u16, bool, u16);
    let cases: &[(&str, &[Case])] = &[
        (
            "7-bit wrap",
            &[
                (0, true, 126, false, 126),
                (0, false, 127, false, 127),
                (0, false, 0, false, 0),
                (0, false, 1, false, 1),
            ],
        ),
        (
            "15-bit wrap",
            &[
                (0, true, 32_766, true, 32_766),
                (0, false, 32_767, true, 32_767),
                (0, false, 0, true, 0),
            ],
        ),
        (
            "switch continues +1, 7-bit across its wrap",
            &[
                (0, true, 127, false, 127),
                (1, true, 40, false, 0),
                (1, false, 41, false, 1),
            ],
        ),
        (
            "switch from 15-bit to 7-bit: the value wraps into 7 bits",
            &[
                (0, true, 300, true, 300),
                (1, true, 5, false, 301 % 128),
                (1, false, 6, false, 302 % 128),
            ],
        ),
    ];
    for (what, frames) in cases {
        let mut s = Sub::new(layer(0, 2));
        for (i, &(l, is_key, pid, long, want)) in frames.iter().enumerate() {
            if l == 1 && is_key {
                s.f.set_target(Some(layer(1, 2)));
            }
            let seq = 1000 * u64::from(l) + i as u64;
            let mut p = with_pid(pkt(l, seq, i as u64 * FRAME), pid, long);
            p.keyframe = is_key;
            let d = s.at(i as u64 * 33, p);
            let v = vp8_out(d).unwrap_or_else(|| panic!("{what}: step {i} dropped: {d:?}"));
            assert_eq!(v.picture_id, Some(want), "{what}: step {i}");
        }
    }
}

#[test]
fn tl0picidx_and_keyidx_continue_across_a_switch() {
    let mut s = Sub::new(layer(0, 2));
    let send = |s: &mut Sub, ms: u64, p: LayerPacket| {
        let v = vp8_out(s.at(ms, p)).expect("forwarded");
        (v.tl0_pic_idx.unwrap(), v.key_idx.unwrap())
    };
    assert_eq!(
        send(&mut s, 0, vp8(key(pkt(0, 10, 0)), 1, 255, 0, false, true)),
        (255, 31)
    );
    s.f.set_target(Some(layer(1, 2)));
    // Layer 1's keyframe: TL0PICIDX 3 becomes 0 (255 + 1), KEYIDX 3 becomes 0 (31 + 1).
    assert_eq!(
        send(
            &mut s,
            33,
            vp8(key(pkt(1, 500, FRAME)), 9, 3, 0, false, true)
        ),
        (0, 0)
    );
    assert_eq!(
        send(
            &mut s,
            66,
            vp8(pkt(1, 501, 2 * FRAME), 10, 4, 0, false, true)
        ),
        (1, 1)
    );
}

#[test]
fn paused_forwarder_asks_nothing() {
    let mut s = Sub::new(layer(0, 2));
    s.f.set_target(None);
    let d = s.at(0, key(pkt(0, 1, 0)));
    assert_eq!(d.action, LayerAction::Drop(LayerDrop::Paused));
    assert_eq!(d.keyframe_request, None);
    assert_eq!(s.f.target(), None);
    assert_eq!(s.f.current(), None);
}

#[test]
fn target_is_capped_by_max() {
    let mut s = Sub::new(layer(2, 2));
    s.f.set_max(layer(1, 1));
    assert_eq!(s.f.target(), Some(layer(1, 1)));
    assert_eq!(
        out(s.at(0, key(pkt(2, 1, 0)))),
        D(LayerDrop::NotCurrentLayer)
    );
    assert_eq!(out(s.at(1, key(pkt(1, 1, 0)))), F(1, 0));
    assert_eq!(s.f.current(), Some(layer(1, 1)));
}

/// Random traffic on three layers with reordering, duplicates, random targets and
/// temporal caps: never a panic, and never one output sequence number (or picture
/// id) for two different input packets (or frames).
#[test]
fn random_traffic_never_reuses_an_output_number() {
    use std::collections::HashMap;
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let mut s = Sub::new(layer(0, 2));
    let mut seqs = [1000u64, 5000, 9000];
    let mut seq_out: HashMap<u16, (u8, u64)> = HashMap::new();
    let mut pid_out: HashMap<u16, (u8, u64)> = HashMap::new();
    for i in 0..20_000u64 {
        if next(500) == 0 {
            let t = (next(4) < 3).then(|| layer(next(3) as u8, next(3) as u8));
            s.f.set_target(t);
        }
        let l = next(3) as u8;
        seqs[l as usize] += 1;
        // Mostly in order; sometimes a few back (reordering or a duplicate).
        let seq = seqs[l as usize] - if next(8) == 0 { next(4) } else { 0 };
        let frame = seq / 3; // three packets a frame
        let tid = [0, 2, 1, 2][(frame % 4) as usize];
        let mut p = vp8(
            pkt(l, seq, frame * FRAME),
            (frame % 32_768) as u16,
            (frame / 4) as u8,
            tid,
            next(2) == 0,
            seq.is_multiple_of(3),
        );
        p.keyframe = seq.is_multiple_of(3) && tid == 0 && next(10) == 0;
        let d = s.at(i, p);
        if let LayerAction::Forward { seq: o, vp8, .. } = d.action {
            let prev = seq_out.insert(o, (l, seq));
            assert!(
                prev.is_none_or(|p| p == (l, seq)),
                "seq {o}: {prev:?} and {:?}",
                (l, seq)
            );
            let pid = vp8.and_then(|v| v.picture_id).unwrap();
            let prev = pid_out.insert(pid, (l, frame));
            assert!(
                prev.is_none_or(|p| p == (l, frame)),
                "pid {pid}: {prev:?} and {:?}",
                (l, frame)
            );
        }
    }
    assert!(seq_out.len() > 1000, "only {} forwarded", seq_out.len());
}
