//! Table-driven tests of the SVC forwarder: a stream of pictures of three spatial
//! layers, two packets each, as Chromium sends L3T3_KEY, on a simulated clock.

use super::*;

/// Pictures 33 ms apart, 3000 ticks apart.
const FRAME: u64 = 3000;
const PER_LAYER: u64 = 2;
const SPATIAL: u8 = 3;

fn layer(spatial: u8, temporal: u8) -> Layer {
    Layer::new(
        SpatialLayer::new(spatial).unwrap(),
        TemporalLayer::new(temporal).unwrap(),
    )
}

/// Picture `index` starting at sequence number `seq`: TID `tid`, every layer frame
/// `PER_LAYER` packets, the publisher's marker on the very last.
fn picture(seq: u64, index: u64, tid: u8, keyframe: bool, switching_up: bool) -> Vec<SvcPacket> {
    let mut out = Vec::new();
    for sid in 0..SPATIAL {
        for k in 0..PER_LAYER {
            let last = sid == SPATIAL - 1 && k == PER_LAYER - 1;
            out.push(SvcPacket {
                seq: ExtSeq(seq + out.len() as u64),
                timestamp: ExtTimestamp(index * FRAME),
                marker: last,
                keyframe: keyframe && sid == 0 && k == 0,
                layers: Some(SvcLayers {
                    sid,
                    tid,
                    switching_up,
                    begins_frame: k == 0,
                    ends_frame: k == PER_LAYER - 1,
                }),
            });
        }
    }
    out
}

/// Pictures `0..tids.len()` from sequence number `seq`, TIDs as given (a keyframe
/// where `keys` says, U set on every picture above TID 0).
fn stream(seq: u64, tids: &[u8], keys: &[u64]) -> Vec<SvcPacket> {
    let per = PER_LAYER * u64::from(SPATIAL);
    (0..tids.len() as u64)
        .flat_map(|i| {
            let tid = tids[i as usize];
            picture(seq + i * per, i, tid, keys.contains(&i), tid > 0)
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    /// Forwarded as (seq, marker).
    F(u16, bool),
    D(LayerDrop),
}
use Out::*;

fn run(f: &mut SvcForwarder, packets: &[SvcPacket], t0: Instant) -> Vec<Out> {
    packets
        .iter()
        .map(|p| {
            let now = t0 + Duration::from_millis(p.timestamp.0 / 90);
            match f.forward(p, now).action {
                LayerAction::Forward { seq, marker, .. } => F(seq, marker),
                LayerAction::Drop(d) => D(d),
            }
        })
        .collect()
}

const S: Out = D(LayerDrop::SpatialLayerAbove);
const T: Out = D(LayerDrop::TemporalLayerAbove);

#[test]
fn layers_up_to_the_target_go_out_numbered_without_holes_and_marked_at_their_end() {
    // Pictures of TID 0, 2, 1, 2, 0 from seq 100; the first a keyframe.
    let packets = stream(100, &[0, 2, 1, 2, 0], &[0]);
    // (target, what each packet becomes)
    type Row = (Layer, Vec<Out>);
    let table: Vec<Row> = vec![
        (
            layer(1, 0),
            [
                vec![
                    F(100, false),
                    F(101, false),
                    F(102, false),
                    F(103, true),
                    S,
                    S,
                ],
                vec![T, T, T, T, S, S],
                vec![T, T, T, T, S, S],
                vec![T, T, T, T, S, S],
                vec![
                    F(104, false),
                    F(105, false),
                    F(106, false),
                    F(107, true),
                    S,
                    S,
                ],
            ]
            .concat(),
        ),
        (
            layer(0, 1),
            [
                vec![F(100, false), F(101, true), S, S, S, S],
                vec![T, T, S, S, S, S],
                vec![F(102, false), F(103, true), S, S, S, S],
                vec![T, T, S, S, S, S],
                vec![F(104, false), F(105, true), S, S, S, S],
            ]
            .concat(),
        ),
        (
            layer(2, 2),
            (100..130u16).map(|s| F(s, (s - 100) % 6 == 5)).collect(),
        ),
    ];
    let t0 = Instant::now();
    for (target, want) in table {
        let mut f = SvcForwarder::new(target);
        assert_eq!(run(&mut f, &packets, t0), want, "{target:?}");
    }
}

#[test]
fn nothing_goes_out_before_a_keyframe_which_is_asked_for_throttled() {
    let t0 = Instant::now();
    let mut f = SvcForwarder::with_keyframe_interval(layer(2, 2), Duration::from_secs(1));
    let packets = stream(0, &[0, 0, 0], &[2]);
    let mut asked = 0;
    for (i, p) in packets.iter().enumerate() {
        let d = f.forward(p, t0 + Duration::from_millis(i as u64));
        let want_forward = i >= 12;
        assert_eq!(
            matches!(d.action, LayerAction::Forward { .. }),
            want_forward,
            "{i}: {d:?}"
        );
        if !want_forward {
            assert_eq!(d.action, LayerAction::Drop(LayerDrop::AwaitingKeyframe));
        }
        asked += usize::from(d.keyframe_request.is_some());
    }
    assert_eq!(asked, 1, "once per interval, and none once forwarding");
}

#[test]
fn a_switch_up_waits_for_a_keyframe_and_a_switch_down_for_the_next_picture() {
    let t0 = Instant::now();
    let mut f = SvcForwarder::new(Layer::BEST);
    f.set_target(Some(layer(0, 2)));
    let packets = stream(0, &[0, 0, 0, 0, 0], &[0, 3]);
    let per = 6;
    let mut out = run(&mut f, &packets[..per], t0);
    f.set_target(Some(layer(2, 2)));
    // Picture 1 and 2: still the base layer only (no keyframe); picture 3 is one.
    let d = f.forward(&packets[per], t0);
    assert_eq!(d.keyframe_request, Some(SpatialLayer::LOW), "asks at once");
    out.push(match d.action {
        LayerAction::Forward { seq, marker, .. } => F(seq, marker),
        LayerAction::Drop(d) => D(d),
    });
    out.extend(run(&mut f, &packets[per + 1..4 * per + 2], t0));
    // Down in the middle of picture 4: the rest of it as it started.
    f.set_target(Some(layer(0, 2)));
    out.extend(run(&mut f, &packets[4 * per + 2..], t0));
    let base = |s: u16| vec![F(s, false), F(s + 1, true), S, S, S, S];
    let want = [
        base(0),
        base(2),
        base(4),
        (6..12).map(|s| F(s, s == 11)).collect(),
        (12..18).map(|s| F(s, s == 17)).collect(),
    ]
    .concat();
    assert_eq!(out, want);
    // Picture 5: the base layer alone, marked at its end.
    let next = picture(30, 5, 0, false, false);
    assert_eq!(run(&mut f, &next, t0), base(18));
}

#[test]
fn temporal_layers_go_up_at_a_switching_up_point_and_down_at_a_picture() {
    let t0 = Instant::now();
    let mut f = SvcForwarder::new(Layer::BEST);
    let mut seq = 0;
    let mut next = |index: u64, tid: u8, key: bool, up: bool| {
        let p = picture(seq, index, tid, key, up);
        seq += 6;
        p
    };
    // (target temporal before the picture, picture TID, U bit, forwarded)
    let table = [
        (0, 0, false, true),
        (2, 2, false, false), // no switching up point yet
        (2, 1, true, true),   // up to TID 1 here
        (2, 2, false, false), // TID 2 not reached: no U
        (2, 2, true, true),   // up to 2
        (2, 1, false, true),
        (1, 2, true, false), // down at once
        (1, 1, false, true),
    ];
    let mut keyframe = true;
    for (i, &(target, tid, up, forwarded)) in table.iter().enumerate() {
        f.set_target(Some(layer(0, target)));
        let p = next(i as u64, tid, keyframe, up);
        keyframe = false;
        let got = run(&mut f, &p[..1], t0)[0];
        assert_eq!(matches!(got, F(..)), forwarded, "picture {i}: {got:?}");
    }
}

#[test]
fn wrap_around_reordering_loss_and_duplicates() {
    let t0 = Instant::now();
    // (what, packets by index into a two-picture stream from seq 65530, want)
    let two = stream(65530, &[0, 0], &[0]);
    type Row = (&'static str, Vec<usize>, Vec<Out>);
    let table: Vec<Row> = vec![
        (
            "wraps with the input",
            (0..12).collect(),
            vec![
                F(65530, false),
                F(65531, false),
                F(65532, false),
                F(65533, true),
                S,
                S,
                F(65534, false),
                F(65535, false),
                F(0, false),
                F(1, true),
                S,
                S,
            ],
        ),
        (
            "reordered within the forwarded layers: each its own number",
            vec![0, 2, 1, 3, 4, 5, 6, 7, 8, 9],
            vec![
                F(65530, false),
                F(65532, false),
                F(65531, false),
                F(65533, true),
                S,
                S,
                F(65534, false),
                F(65535, false),
                F(0, false),
                F(1, true),
            ],
        ),
        (
            "a lost packet leaves its hole",
            vec![0, 1, 3, 4, 5, 6],
            vec![
                F(65530, false),
                F(65531, false),
                F(65533, true),
                S,
                S,
                F(65534, false),
            ],
        ),
        (
            "duplicates: a forwarded one again, a dropped one again",
            vec![0, 0, 1, 2, 3, 4, 4, 5, 6],
            vec![
                F(65530, false),
                F(65530, false),
                F(65531, false),
                F(65532, false),
                F(65533, true),
                S,
                S,
                S,
                F(65534, false),
            ],
        ),
    ];
    for (what, order, want) in table {
        let mut f = SvcForwarder::new(layer(1, 2));
        let packets: Vec<SvcPacket> = order.iter().map(|&i| two[i]).collect();
        assert_eq!(run(&mut f, &packets, t0), want, "{what}");
    }
}

#[test]
fn a_pause_resumes_at_a_keyframe_right_after_the_last_number_sent() {
    let t0 = Instant::now();
    let mut f = SvcForwarder::new(layer(0, 2));
    let packets = stream(1000, &[0, 0, 0, 0], &[0, 3]);
    let first = run(&mut f, &packets[..6], t0);
    assert_eq!(first[..2], [F(1000, false), F(1001, true)]);
    f.set_target(None);
    assert_eq!(
        run(&mut f, &packets[6..12], t0),
        vec![D(LayerDrop::Paused); 6]
    );
    f.set_target(Some(layer(0, 2)));
    let waiting = run(&mut f, &packets[12..18], t0);
    assert_eq!(waiting[0], D(LayerDrop::AwaitingKeyframe));
    let resumed = run(&mut f, &packets[18..], t0);
    assert_eq!(resumed, vec![F(1002, false), F(1003, true), S, S, S, S]);
}

#[test]
fn a_packet_without_a_descriptor_is_dropped_and_leaves_no_hole() {
    let t0 = Instant::now();
    let mut f = SvcForwarder::new(layer(0, 2));
    let mut packets = stream(0, &[0, 0], &[0]);
    packets[6].layers = None; // padding before picture 1
    packets[6].keyframe = false;
    // Picture 1 from the packet after the padding.
    let after = picture(7, 1, 0, false, false);
    let out = run(&mut f, &packets[..7], t0);
    assert_eq!(out[6], D(LayerDrop::Unreadable));
    assert_eq!(run(&mut f, &after[..2], t0), [F(2, false), F(3, true)]);
}
