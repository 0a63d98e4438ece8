//! Descriptors written bit by bit from the spec's syntax (appendix A), one field per
//! group of digits.

use super::*;

/// Bytes from a string of `0`/`1` (anything else is for reading), zero padded.
pub(crate) fn bits(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| matches!(b, b'0' | b'1')).collect();
    digits
        .chunks(8)
        .map(|c| {
            let byte = c.iter().fold(0u8, |acc, d| (acc << 1) | (d - b'0'));
            byte << (8 - c.len())
        })
        .collect()
}

/// L1T3: three decode targets (T0, T0+T1, all), one chain, five templates, 640x360.
fn l1t3_keyframe() -> Vec<u8> {
    bits(concat!(
        "1 1 000000 0000000000000001", // S E, template 0, frame 1
        "1 0 0 0 0",                   // structure present, nothing else
        "000000 00010",                // template id offset 0, 3 decode targets
        "00 01 01 00 11",              // layers: S0T0 S0T0 | S0T1 | S0T2 S0T2 | end
        "10 10 10  10 10 10  00 01 11  00 00 01  00 00 01", // DTIs: SSS SSS -DR --D --D
        "0  1 0011 0  1 0001 0  1 0000 0  1 0000 0", // fdiffs: -, 4, 2, 1, 1
        "01",                          // ns(4): one chain
        "",                            // ns(1) per target: no bits
        "0000 0100 0010 0001 0011",    // chain fdiffs 0 4 2 1 3
        "1 0000001001111111 0000000101100111", // 639+1 x 359+1
    ))
}

/// L3T3 (full SVC): nine decode targets (S×3 + T), three chains (one per spatial
/// layer), twelve templates with ids from 62 (wrapping), 320x180 to 1280x720; the
/// packet also says only S0 and S1 are active.
pub(crate) fn l3t3_keyframe() -> Vec<u8> {
    bits(concat!(
        "1 0 111110 1111111111111111",           // S, template 62, frame 65535
        "1 1 0 0 0",                             // structure, active decode targets
        "111110 01000",                          // offset 62, 9 decode targets
        "00 01 01 10  00 01 01 10  00 01 01 11", // S0T0 S0T0 S0T1 S0T2 | S1.. | S2..
        // DTIs per template, decode targets S0T0 S0T1 S0T2 S1T0 .. S2T2:
        "10 10 10 10 10 10 10 10 10", // S0T0 key: S everywhere
        "11 11 11 11 11 11 11 11 11", // S0T0: R
        "00 01 11 00 11 11 00 11 11", // S0T1
        "00 00 01 00 00 11 00 00 11", // S0T2
        "00 00 00 10 10 10 10 10 10", // S1T0 key
        "00 00 00 11 11 11 11 11 11", // S1T0
        "00 00 00 00 01 11 00 11 11", // S1T1
        "00 00 00 00 00 01 00 00 11", // S1T2
        "00 00 00 00 00 00 10 10 10", // S2T0 key
        "00 00 00 00 00 00 11 11 11", // S2T0
        "00 00 00 00 00 00 00 01 11", // S2T1
        "00 00 00 00 00 00 00 00 01", // S2T2
        // fdiffs: none; 12; 6; 3; 1; 12 1; 6 1; 3 1; 1; 12 1; 6 1; 3 1
        "0  1 1011 0  1 0101 0  1 0010 0",
        "1 0000 0  1 1011 1 0000 0  1 0101 1 0000 0  1 0010 1 0000 0",
        "1 0000 0  1 1011 1 0000 0  1 0101 1 0000 0  1 0010 1 0000 0",
        "011",                            // ns(10): three chains
        "0 0 0  10 10 10  11 11 11",      // ns(3): chain of each target
        "0000 0000 0000  1100 1011 1010", // chain fdiffs of the templates
        "0000 0000 0000  0000 0000 0000  0000 0000 0000  0000 0000 0000",
        "0000 0000 0000  0000 0000 0000  0000 0000 0000  0000 0000 0000",
        "0000 0000 0000  0000 0000 0000",
        "1 0000000100111111 0000000010110011", // 320x180
        "0000001001111111 0000000101100111",   // 640x360
        "0000010011111111 0000001011001111",   // 1280x720
        "000111111",                           // active: S0T0..S1T2
    ))
}

#[test]
fn an_l1t3_structure_is_read_whole() {
    let mut reader = DependencyDescriptorReader::default();
    let frame = reader.read(&l1t3_keyframe()).unwrap();
    assert_eq!(
        frame,
        DdFrame {
            start_of_frame: true,
            end_of_frame: true,
            template_id: 0,
            frame_number: 1,
            spatial_id: 0,
            temporal_id: 0,
            dtis: frame.dtis,
            new_structure: true,
            active_decode_targets: Some(0b111),
        }
    );
    assert_eq!([0, 1, 2].map(|dt| frame.dtis.get(dt)), [Dti::Switch; 3]);
    assert_eq!(
        [3, 31, 32, 99].map(|dt| frame.dtis.get(dt)),
        [Dti::NotPresent; 4]
    );
    let s = reader.structure().unwrap();
    assert_eq!(
        (s.template_id_offset, s.decode_targets, s.chains),
        (0, 3, 1)
    );
    let layers: Vec<_> = s
        .templates
        .iter()
        .map(|t| (t.spatial_id, t.temporal_id))
        .collect();
    assert_eq!(layers, [(0, 0), (0, 0), (0, 1), (0, 2), (0, 2)]);
    let t2 = &s.templates[2];
    assert_eq!(
        [0, 1, 2].map(|dt| t2.dtis.get(dt)),
        [Dti::NotPresent, Dti::Discardable, Dti::Required]
    );
    let fdiffs: Vec<_> = s.templates.iter().map(|t| t.fdiffs.clone()).collect();
    assert_eq!(fdiffs, [vec![], vec![4], vec![2], vec![1], vec![1]]);
    let chains: Vec<_> = s.templates.iter().map(|t| t.chain_fdiffs[0]).collect();
    assert_eq!(chains, [0, 4, 2, 1, 3]);
    assert_eq!(s.protected_by, [0, 0, 0]);
    assert_eq!(s.decode_target_layers, [(0, 0), (0, 1), (0, 2)]);
    assert_eq!(s.resolutions, Some(vec![(640, 360)]));
    assert_eq!((s.spatial_layers(), s.temporal_layers()), (1, 3));
}

#[test]
fn an_l3t3_structure_is_read_whole() {
    let mut reader = DependencyDescriptorReader::default();
    let frame = reader.read(&l3t3_keyframe()).unwrap();
    assert!(frame.start_of_frame && !frame.end_of_frame && frame.new_structure);
    assert_eq!((frame.template_id, frame.frame_number), (62, 65535));
    assert_eq!((frame.spatial_id, frame.temporal_id), (0, 0));
    assert_eq!(frame.active_decode_targets, Some(0b000_111_111));
    let s = reader.structure().unwrap();
    assert_eq!(
        (s.template_id_offset, s.decode_targets, s.chains),
        (62, 9, 3)
    );
    assert_eq!(s.templates.len(), 12);
    assert_eq!((s.spatial_layers(), s.temporal_layers()), (3, 3));
    let layers: Vec<_> = (0..9).map(|dt| (dt / 3, dt % 3)).collect();
    assert_eq!(s.decode_target_layers, layers);
    assert_eq!(s.protected_by, [0, 0, 0, 1, 1, 1, 2, 2, 2]);
    assert_eq!(s.templates[5].fdiffs, [12, 1]);
    assert_eq!(s.templates[1].chain_fdiffs, [12, 11, 10]);
    assert_eq!(s.templates[11].dtis.get(8), Dti::Discardable);
    assert_eq!(s.templates[11].dtis.get(7), Dti::NotPresent);
    assert_eq!(
        s.resolutions,
        Some(vec![(320, 180), (640, 360), (1280, 720)])
    );
}

/// A keyframe's descriptor, written by one of the functions above.
type Keyframe = fn() -> Vec<u8>;

#[test]
fn later_packets_take_their_layers_from_the_remembered_structure() {
    // (keyframe read first, descriptor, start, end, frame number, spatial, temporal)
    let cases: [(Keyframe, &str, bool, bool, u16, u8, u8); 6] = [
        (
            l1t3_keyframe,
            "0 0 000011 0000000000000101",
            false,
            false,
            5,
            0,
            2,
        ),
        (
            l1t3_keyframe,
            "1 0 000010 0000000000000011",
            true,
            false,
            3,
            0,
            1,
        ),
        (
            l1t3_keyframe,
            "1 1 000001 1111111111111111",
            true,
            true,
            65535,
            0,
            0,
        ),
        // Ids wrap: 62 + 6 is 4 (S1T1), 62 + 11 is 9 (S2T2), 63 is the second.
        (
            l3t3_keyframe,
            "0 1 000100 0000000000000001",
            false,
            true,
            1,
            1,
            1,
        ),
        (
            l3t3_keyframe,
            "1 1 001001 0000000000000010",
            true,
            true,
            2,
            2,
            2,
        ),
        (
            l3t3_keyframe,
            "1 1 111111 0000000000000011",
            true,
            true,
            3,
            0,
            0,
        ),
    ];
    for (keyframe, packet, start, end, number, sid, tid) in cases {
        let mut reader = DependencyDescriptorReader::default();
        reader.read(&keyframe()).unwrap();
        let f = reader.read(&bits(packet)).unwrap();
        let got = (f.start_of_frame, f.end_of_frame, f.frame_number);
        assert_eq!(got, (start, end, number), "{packet}");
        assert_eq!((f.spatial_id, f.temporal_id), (sid, tid), "{packet}");
        assert!(
            !f.new_structure && f.active_decode_targets.is_none(),
            "{packet}"
        );
    }
}

#[test]
fn custom_fields_are_read_past() {
    let packet = bits(concat!(
        "1 1 000010 0000000000000111", // template 2 (S0T1), frame 7
        "0 1 1 1 1",                   // active targets, custom DTIs, fdiffs, chains
        "011",                         // active: T0 and T0+T1
        "11 11 11",                    // DTIs: R R R
        "01 0011  10 00000101  00",    // fdiffs 4 (4 bits), 6 (8 bits), end
        "00000101",                    // the one chain's fdiff
    ));
    let mut reader = DependencyDescriptorReader::default();
    reader.read(&l1t3_keyframe()).unwrap();
    let f = reader.read(&packet).unwrap();
    assert_eq!((f.spatial_id, f.temporal_id, f.frame_number), (0, 1, 7));
    assert_eq!([0, 1, 2].map(|dt| f.dtis.get(dt)), [Dti::Required; 3]);
    assert_eq!(f.active_decode_targets, Some(0b011));
    // The last byte holds field bits: without it the chain is cut.
    let cut = reader.read(&packet[..packet.len() - 1]);
    assert_eq!(cut, Err(DdError::Truncated));
}

#[test]
fn unreadable_descriptors_are_errors() {
    let l1t3 = l1t3_keyframe as Keyframe;
    let none = Vec::new as Keyframe;
    // (read first, descriptor, error)
    let cases = [
        (none, "", DdError::Truncated),
        (none, "1 1 000000 00000000", DdError::Truncated),
        (none, "1 1 000000 0000000000000001", DdError::NoStructure),
        (
            none,
            "1 1 000000 0000000000000001 0 0 1 0 0 10 10 10",
            DdError::NoStructure,
        ),
        (
            l1t3,
            "1 1 000101 0000000000000001",
            DdError::UnknownTemplate(5),
        ),
        (
            l1t3,
            "1 1 111111 0000000000000001",
            DdError::UnknownTemplate(63),
        ),
        (
            l1t3,
            "1 1 000010 0000000000000001 0 0 1 0 0 10",
            DdError::Truncated,
        ),
        (
            none,
            "1 1 000000 0000000000000001 1 0 0 0 0 000000 00000",
            DdError::Truncated,
        ),
    ];
    for (first, packet, want) in cases {
        let mut reader = DependencyDescriptorReader::default();
        if !first().is_empty() {
            reader.read(&first()).unwrap();
        }
        assert_eq!(reader.read(&bits(packet)), Err(want), "{packet:?}");
    }
}

#[test]
fn more_templates_than_ids_are_refused() {
    let mut packet = String::from("1 1 000000 0000000000000001 1 0 0 0 0 000000 00000");
    packet.push_str(&"00".repeat(64)); // 65 templates of the same layer, and more
    let mut reader = DependencyDescriptorReader::default();
    let got = reader.read(&bits(&packet));
    assert_eq!(got, Err(DdError::TooManyTemplates));
}

#[test]
fn a_cut_structure_leaves_the_remembered_one() {
    let mut reader = DependencyDescriptorReader::default();
    reader.read(&l1t3_keyframe()).unwrap();
    let l3t3 = l3t3_keyframe();
    // Any cut past the mandatory part lands in a field.
    for len in 4..l3t3.len() {
        assert_eq!(reader.read(&l3t3[..len]), Err(DdError::Truncated), "{len}");
        assert_eq!(reader.structure().unwrap().decode_targets, 3, "{len}");
    }
    reader.read(&l3t3).unwrap();
    assert_eq!(reader.structure().unwrap().decode_targets, 9);
}

#[test]
fn no_input_panics() {
    // Arbitrary bytes (a fixed linear congruential sequence) against each state.
    let mut x: u32 = 0x2545_f491;
    let mut next = move || {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (x >> 24) as u8
    };
    for state in [None, Some(l1t3_keyframe()), Some(l3t3_keyframe())] {
        let mut reader = DependencyDescriptorReader::default();
        if let Some(k) = state {
            reader.read(&k).unwrap();
        }
        for _ in 0..20_000 {
            let len = usize::from(next() % 48);
            let data: Vec<u8> = (0..len).map(|_| next()).collect();
            let _ = reader.read(&data);
        }
    }
}
