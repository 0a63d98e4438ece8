use super::*;

fn layers(tid: u8, switching_up: bool, sid: u8, inter_layer: bool) -> Option<Vp9Layers> {
    Some(Vp9Layers {
        tid,
        switching_up,
        sid,
        inter_layer,
    })
}

fn long(value: u16) -> Option<PictureId> {
    Some(PictureId { value, long: true })
}

#[test]
fn descriptors_as_chromium_sends_them() {
    // (what, bytes, picture id, layers, TL0PICIDX, B, E, P, descriptor length)
    type Row = (
        &'static str,
        &'static [u8],
        Option<PictureId>,
        Option<Vp9Layers>,
        Option<u8>,
        bool,
        bool,
        bool,
        usize,
    );
    let table: &[Row] = &[
        (
            "I only, 7-bit id",
            &[0x80, 0x05, 0xAA],
            Some(PictureId {
                value: 5,
                long: false,
            }),
            None,
            None,
            false,
            false,
            false,
            2,
        ),
        (
            "I L B E, 15-bit id, TID 2 U SID 1 D, TL0PICIDX 9",
            // I|P|L|F|B|E|V|Z = 1 1 1 0 1 1 0 0
            &[0xEC, 0x81, 0x02, 0b0101_0011, 9, 0xFF],
            long(0x102),
            layers(2, true, 1, true),
            Some(9),
            true,
            true,
            true,
            5,
        ),
        (
            "flexible with three P_DIFFs (N set on the first two), no TL0PICIDX",
            // I P L F B = 1 1 1 1 1
            &[0xF8, 0x80, 0x01, 0b0010_0100, 0x03, 0x05, 0x04, 0xEE],
            long(1),
            layers(1, false, 2, false),
            None,
            true,
            false,
            true,
            7,
        ),
        (
            "nothing but the first byte: E alone",
            &[0x04],
            None,
            None,
            None,
            false,
            true,
            false,
            1,
        ),
    ];
    for &(what, bytes, pid, l, tl0, b, e, p, len) in table {
        let d = Vp9Descriptor::parse(bytes).unwrap_or_else(|| panic!("{what}: parses"));
        assert_eq!(d.picture_id, pid, "{what}");
        assert_eq!(d.layers, l, "{what}");
        assert_eq!(d.tl0_pic_idx, tl0, "{what}");
        assert_eq!(
            (d.begins_frame, d.ends_frame, d.inter_picture),
            (b, e, p),
            "{what}"
        );
        assert_eq!(d.len, len, "{what}");
        assert_eq!(d.structure, None, "{what}");
    }
}

/// A keyframe's first packet as Chromium sends L3T3_KEY: I L B V, 15-bit picture id,
/// TID 0 SID 0, TL0PICIDX, then SS with three resolutions and a group of pictures.
fn keyframe_with_structure() -> Vec<u8> {
    let mut v = vec![0xAA, 0x80, 0x07, 0x00, 0x11];
    // N_S = 2, Y, G
    v.push((2 << 5) | 0x10 | 0x08);
    for (w, h) in [(320u16, 180u16), (640, 360), (1280, 720)] {
        v.extend(w.to_be_bytes());
        v.extend(h.to_be_bytes());
    }
    // N_G = 2: TID 0 with R = 1 (one P_DIFF), TID 1 U with R = 2.
    v.extend([2, 0b0000_0100, 1, 0b0011_1000, 1, 2]);
    v.extend([0x42; 4]); // frame data
    v
}

#[test]
fn a_keyframe_carries_the_sizes_of_its_spatial_layers() {
    let bytes = keyframe_with_structure();
    let d = Vp9Descriptor::parse(&bytes).unwrap();
    assert!(d.starts_keyframe());
    assert_eq!(
        d.len,
        bytes.len() - 4,
        "the SS and its picture group are skipped"
    );
    let ss = d.structure.unwrap();
    assert_eq!(ss.spatial_layers, 3);
    assert_eq!(ss.resolution(0), Some((320, 180)));
    assert_eq!(ss.resolution(2), Some((1280, 720)));
    assert_eq!(ss.resolution(3), None, "only three layers");
    // SS without Y: the layer count alone.
    let d = Vp9Descriptor::parse(&[0x0A, 0b0100_0000]).unwrap();
    let ss = d.structure.unwrap();
    assert_eq!((ss.spatial_layers, ss.resolution(0)), (3, None));
}

#[test]
fn keyframes_start_where_the_base_layer_begins_without_prediction() {
    // (what, first byte, layer byte, keyframe)
    let table: &[(&str, u8, u8, bool)] = &[
        ("B, P clear, SID 0", 0x28, 0x00, true),
        ("P set", 0x68, 0x00, false),
        ("not the beginning of the frame", 0x20, 0x00, false),
        (
            "SID 1 of a keyframe (depends on SID 0)",
            0x28,
            0b0000_0011,
            false,
        ),
    ];
    for &(what, first, layer, want) in table {
        let bytes = [first, layer, 0x00, 0xFF];
        assert_eq!(vp9_is_keyframe(&bytes), want, "{what}");
    }
    // No layer indices: one spatial layer, so SID 0.
    assert!(vp9_is_keyframe(&[0x08, 0xFF]));
}

#[test]
fn every_truncation_is_refused_not_a_panic() {
    let full = keyframe_with_structure();
    let whole = Vp9Descriptor::parse(&full).unwrap().len;
    for cut in 0..whole {
        assert_eq!(Vp9Descriptor::parse(&full[..cut]), None, "cut at {cut}");
        assert!(!vp9_is_keyframe(&full[..cut]));
    }
    // Flexible P_DIFFs that run out.
    assert_eq!(Vp9Descriptor::parse(&[0x50, 0x01]), None);
    // Every two-byte input parses or is refused without panicking.
    for a in 0..=255u8 {
        for b in 0..=255u8 {
            let _ = Vp9Descriptor::parse(&[a, b]);
        }
    }
}
