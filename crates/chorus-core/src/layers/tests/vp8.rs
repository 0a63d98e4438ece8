//! Temporal layer dropping and VP8 numbering continuity.

use super::*;

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
