//! Spatial layer switching, pause and resume, keyframe requests.

use super::*;

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
