use chorus_core::PictureId;
use chorus_core::vp9::{Vp9Descriptor, Vp9Layers};

use super::*;

fn l3t3() -> Vp9Scalability {
    Vp9Scalability {
        sizes: vec![(320, 180), (640, 360), (1280, 720)],
        group: Vp9Scalability::T3.to_vec(),
    }
}

fn frame(sid: u8, tid: u8, keyframe: bool, top: bool) -> Vp9LayerFrame {
    Vp9LayerFrame {
        picture_id: 0x7ffe,
        tl0_pic_idx: 200,
        sid,
        tid,
        switching_up: tid > 0,
        keyframe,
        top,
    }
}

/// What `chorus_core::vp9` (the server's parser) reads from each packet written.
#[test]
fn layer_frames_read_back_as_written() {
    struct Row {
        what: &'static str,
        frame: Vp9LayerFrame,
        ss: Option<Vp9Scalability>,
        bytes: usize,
        packets: usize,
        /// D on every packet; Z on every packet.
        inter_layer: bool,
        not_upper_reference: bool,
    }
    let rows = [
        Row {
            what: "keyframe base layer with the L3T3 SS",
            frame: frame(0, 0, true, false),
            ss: Some(l3t3()),
            bytes: 2500,
            packets: 3,
            inter_layer: false,
            not_upper_reference: false,
        },
        Row {
            what: "keyframe middle layer: from the base (D), a reference for the top",
            frame: frame(1, 0, true, false),
            ss: None,
            bytes: 1200,
            packets: 1,
            inter_layer: true,
            not_upper_reference: false,
        },
        Row {
            what: "keyframe top layer",
            frame: frame(2, 0, true, true),
            ss: None,
            bytes: 10_000,
            packets: 9,
            inter_layer: true,
            not_upper_reference: true,
        },
        Row {
            what: "delta TL2 base layer: no layer above refers to it",
            frame: frame(0, 2, false, false),
            ss: None,
            bytes: 100,
            packets: 1,
            inter_layer: false,
            not_upper_reference: true,
        },
        Row {
            what: "delta TL1 top layer",
            frame: frame(2, 1, false, true),
            ss: None,
            bytes: 6000,
            packets: 5,
            inter_layer: false,
            not_upper_reference: true,
        },
        Row {
            what: "L1T1 keyframe, its SS alone",
            frame: frame(0, 0, true, true),
            ss: Some(Vp9Scalability::single((640, 360))),
            bytes: 3000,
            packets: 3,
            inter_layer: false,
            not_upper_reference: true,
        },
    ];
    for row in rows {
        let stamp = [7u8; STAMP_LEN];
        let payloads =
            vp9_layer_payloads(&row.frame, row.ss.as_ref(), row.bytes, 1200, Some(&stamp));
        assert_eq!(payloads.len(), row.packets, "{}", row.what);
        let last = payloads.len() - 1;
        for (i, payload) in payloads.iter().enumerate() {
            assert!(payload.len() <= 1200, "{}", row.what);
            assert!(payload.ends_with(&stamp), "{}", row.what);
            let d = Vp9Descriptor::parse(payload).expect(row.what);
            let f = &row.frame;
            assert_eq!(
                d.picture_id,
                Some(PictureId {
                    value: 0x7ffe,
                    long: true
                }),
                "{}",
                row.what
            );
            assert_eq!(
                d.layers,
                Some(Vp9Layers {
                    tid: f.tid,
                    switching_up: f.switching_up,
                    sid: f.sid,
                    inter_layer: row.inter_layer,
                }),
                "{}",
                row.what
            );
            assert_eq!(d.tl0_pic_idx, Some(200), "{}", row.what);
            assert!(!d.flexible, "{}", row.what);
            assert_eq!(d.inter_picture, !f.keyframe, "{}", row.what);
            assert_eq!(
                (d.begins_frame, d.ends_frame),
                (i == 0, i == last),
                "{}",
                row.what
            );
            assert_eq!(
                d.not_upper_reference, row.not_upper_reference,
                "{}",
                row.what
            );
            assert_eq!(
                d.starts_keyframe(),
                i == 0 && f.keyframe && f.sid == 0,
                "{}",
                row.what
            );
            let ss = row.ss.as_ref().filter(|_| i == 0);
            // The whole SS was consumed (the group too), so the descriptor ends here.
            assert_eq!(
                d.len,
                DESCRIPTOR_LEN + ss.map_or(0, |s| s.len()),
                "{}",
                row.what
            );
            let structure = d.structure.map(|s| {
                let sizes: Vec<_> = (0..s.spatial_layers)
                    .filter_map(|l| s.resolution(l))
                    .collect();
                sizes
            });
            assert_eq!(structure, ss.map(|s| s.sizes.clone()), "{}", row.what);
        }
    }
}

/// A receiver's frame size is the highest spatial layer of each picture it gets: what a
/// tile view (the base layer only) and a speaker view (all three) see of one stream.
#[test]
fn a_receiver_sizes_pictures_by_the_layers_it_gets() {
    let ss = l3t3();
    let picture = |keyframe: bool, tid: u8| -> Vec<Vec<Bytes>> {
        (0..3u8)
            .map(|sid| {
                let f = frame(sid, tid, keyframe, sid == 2);
                let ss = (keyframe && sid == 0).then_some(&ss);
                vp9_layer_payloads(&f, ss, 1500, 1200, None)
            })
            .collect()
    };
    /// What, pictures as (keyframe, tid), spatial layers forwarded, expected size, keyframes.
    type Row<'a> = (&'a str, &'a [(bool, u8)], usize, Option<(u16, u16)>, usize);
    let rows: [Row; 4] = [
        (
            "speaker view",
            &[(true, 0), (false, 2), (false, 1)],
            3,
            Some((1280, 720)),
            1,
        ),
        (
            "tile view",
            &[(true, 0), (false, 2)],
            1,
            Some((320, 180)),
            1,
        ),
        (
            "middle",
            &[(true, 0), (false, 2), (true, 0)],
            2,
            Some((640, 360)),
            2,
        ),
        ("no SS yet", &[(false, 0), (false, 2)], 3, None, 0),
    ];
    for (what, pictures, forwarded, expected, keyframes) in rows {
        let mut reception = Vp9Reception::default();
        let (mut size, mut keys) = (None, 0);
        for &(keyframe, tid) in pictures {
            let packets: Vec<Bytes> = picture(keyframe, tid)
                .into_iter()
                .take(forwarded)
                .flatten()
                .collect();
            let last = packets.len() - 1;
            for (i, p) in packets.iter().enumerate() {
                let (key, s) = reception.on_payload(p, i == last);
                keys += usize::from(key);
                size = s.or(size);
                if i != last {
                    assert_eq!(s, None, "{what}: sized before the picture ended");
                }
            }
        }
        assert_eq!(size, expected, "{what}");
        assert_eq!(keys, keyframes, "{what}");
    }
    assert_eq!(
        Vp9Reception::default().on_payload(&[0x80], true),
        (false, None)
    );
}
