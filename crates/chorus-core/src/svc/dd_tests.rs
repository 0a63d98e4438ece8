//! The SVC forwarder fed from AV1 dependency descriptors: the L3T3 structure of
//! `dependency_descriptor/tests.rs` (twelve templates from id 62: per spatial layer a
//! keyframe template, then T0, T1, T2), one packet per layer frame.

use super::*;
use crate::dependency_descriptor::DependencyDescriptorReader;
use crate::dependency_descriptor::tests::{bits, l3t3_keyframe};

/// The template id of layer frame (sid, tid), a keyframe's or not.
fn template(sid: u8, tid: u8, keyframe: bool) -> u8 {
    let index = 4 * sid + if keyframe { 0 } else { 1 + tid };
    (index + 62) % 64
}

/// A reader that read the L3T3 keyframe's first packet.
fn reader() -> DependencyDescriptorReader {
    let mut r = DependencyDescriptorReader::default();
    r.read(&l3t3_keyframe()).unwrap();
    r
}

#[test]
fn layers_come_from_the_template_and_switch_points_from_the_dtis() {
    // (descriptor, sid, tid, switching up, begins, ends)
    let cases = [
        // S1T1: D for its own decode target, R for S2T1: not a switch point.
        ("0 1 000100 0000000000000001", 1, 1, false, false, true),
        ("1 1 000001 0000000000000001", 0, 2, false, true, true),
        // S0T1 with its own DTIs: S for every T1 decode target (S0T1, S1T1, S2T1).
        (
            "1 1 000000 0000000000000010 0 0 1 0 0 10 10 10 10 10 10 10 10 10",
            0,
            1,
            true,
            true,
            true,
        ),
        // The same, but D for S2T1.
        (
            "1 1 000000 0000000000000010 0 0 1 0 0 10 10 10 10 10 10 10 01 10",
            0,
            1,
            false,
            true,
            true,
        ),
    ];
    for (dd, sid, tid, up, begins, ends) in cases {
        let mut r = reader();
        let frame = r.read(&bits(dd)).unwrap();
        let got = SvcLayers::of_dd(&frame, r.structure().unwrap());
        let want = SvcLayers {
            sid,
            tid,
            switching_up: up,
            begins_frame: begins,
            ends_frame: ends,
        };
        assert_eq!(got, want, "{dd}");
    }
    // The keyframe's first packet: a switch for every decode target.
    let mut r = DependencyDescriptorReader::default();
    let key = r.read(&l3t3_keyframe()).unwrap();
    assert!(key.starts_keyframe());
    assert!(SvcLayers::of_dd(&key, r.structure().unwrap()).switching_up);
}

#[test]
fn a_subscriber_gets_the_layers_up_to_its_target_from_descriptors() {
    let mut r = DependencyDescriptorReader::default();
    let mut f = SvcForwarder::new(Layer::new(
        SpatialLayer::MID,
        TemporalLayer::new(1).unwrap(),
    ));
    let t0 = Instant::now();
    // Pictures: a keyframe (its first packet with the structure, and E), then TIDs 2, 1.
    let mut descriptors = Vec::new();
    let mut key = l3t3_keyframe();
    key[0] |= 0x40;
    descriptors.push((0, key));
    let mut number = 0u16;
    for (picture, (tid, keyframe)) in [(0, true), (2, false), (1, false)].into_iter().enumerate() {
        for sid in 0..3 {
            if keyframe && sid == 0 {
                continue;
            }
            number += 1;
            let mut dd = vec![0xc0 | template(sid, tid, keyframe)];
            dd.extend(number.to_be_bytes());
            descriptors.push((picture as u64, dd));
        }
    }
    let mut got = Vec::new();
    for (i, (picture, dd)) in descriptors.iter().enumerate() {
        let frame = r.read(dd).unwrap();
        let layers = SvcLayers::of_dd(&frame, r.structure().unwrap());
        let p = SvcPacket {
            seq: ExtSeq(500 + i as u64),
            timestamp: ExtTimestamp(picture * 3000),
            marker: layers.sid == 2,
            keyframe: frame.starts_keyframe(),
            layers: Some(layers),
        };
        got.push(match f.forward(&p, t0).action {
            LayerAction::Forward { seq, marker, .. } => Ok((seq, marker)),
            LayerAction::Drop(d) => Err(d),
        });
    }
    use LayerDrop::{SpatialLayerAbove as S, TemporalLayerAbove as T};
    let want = [
        // The keyframe: S0, S1 (marked: the last forwarded of the picture), not S2.
        Ok((500, false)),
        Ok((501, true)),
        Err(S),
        // TID 2: above the target (S2 above it first).
        Err(T),
        Err(T),
        Err(S),
        // TID 1: S0 and S1 numbered on without a hole.
        Ok((502, false)),
        Ok((503, true)),
        Err(S),
    ];
    assert_eq!(got, want);
}
