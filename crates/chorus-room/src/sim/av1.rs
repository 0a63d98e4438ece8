//! A simulated camera sending AV1 as one stream without layers, as Chromium sends
//! `L1T1`: frames of [`KEYFRAME_PACKETS`] or [`DELTA_PACKETS`] packets, each payload an
//! AV1 aggregation header (the AV1 RTP spec §4.4) and filler OBU bytes; N on the first
//! packet of a keyframe (a new coded video sequence), Z and Y where an OBU goes on
//! across packets. Where the answer took it, each packet carries a dependency descriptor
//! (the spec's appendix A): the keyframe's first with the template structure of L1T3 (20
//! bytes: a two-byte header extension), the others 3 bytes naming the T0 delta template.
//! The room reads the descriptors (one spatial layer: every subscriber gets it all),
//! finds keyframes by the N bit, and strips the descriptor as every extension. With
//! [`Sim::publish_svc`] the camera sends L3T3 instead (`svc_picture`): three spatial
//! layers of one packet each, the structure of `dependency_descriptor/tests.rs`.

use bytes::Bytes;
use rtc::rtp;

use super::stream::{VIDEO_PACKET_SIZE, frame_packets};
use super::svc::SVC_LAYER_SIZES;
use super::{ClientId, Sim};

/// OBU headers (type << 3, has_size_field): a sequence header first on keyframes, else a
/// frame.
const OBU_SEQUENCE_HEADER: u8 = 1 << 3 | 0x02;
const OBU_FRAME: u8 = 6 << 3 | 0x02;

/// The payloads of one AV1 frame.
pub(super) fn av1_frame(keyframe: bool) -> Vec<Bytes> {
    let count = frame_packets(keyframe);
    (0..count)
        .map(|i| {
            let z = u8::from(i > 0) << 7; // continues the previous packet's OBU
            let y = u8::from(i + 1 < count) << 6; // its last OBU goes on in the next
            let w = 1 << 4; // one OBU element, without a length field
            let n = u8::from(keyframe && i == 0) << 3;
            let obu = if keyframe {
                OBU_SEQUENCE_HEADER
            } else {
                OBU_FRAME
            };
            let mut p = vec![z | y | w | n, obu];
            p.resize(VIDEO_PACKET_SIZE, 0xa1);
            Bytes::from(p)
        })
        .collect()
}

/// The L1T3 structure of `dependency_descriptor/tests.rs` (and the fuzz seed) after
/// the mandatory fields: three decode targets, five templates, one chain, 640x360.
const L1T3_STRUCTURE: [u8; 17] = [
    0x80, 0x02, 0x14, 0xea, 0xa8, 0x70, 0x41, 0x4d, 0x14, 0x10, 0x20, 0x84, 0x27, 0x02, 0x7f, 0x01,
    0x67,
];

/// The descriptor of packet `index` (of `last + 1`) of frame `frame`: template 0 (the
/// keyframe's) or 1 (a T0 delta); the structure on a keyframe's first packet.
pub(super) fn dependency_descriptor(
    keyframe: bool,
    frame: usize,
    index: usize,
    last: usize,
) -> Bytes {
    let start = u8::from(index == 0) << 7;
    let end = u8::from(index == last) << 6;
    let template = u8::from(!keyframe);
    let [hi, lo] = (frame as u16).to_be_bytes();
    let mut dd = vec![start | end | template, hi, lo];
    if keyframe && index == 0 {
        dd.extend(L1T3_STRUCTURE);
    }
    Bytes::from(dd)
}

/// Adds a header extension, in two-byte headers when it is longer than one-byte headers
/// hold (16 bytes; RFC 8285).
pub(super) fn add_extension(packet: &mut rtp::Packet, id: u8, data: Bytes) {
    let h = &mut packet.header;
    h.extension = true;
    if data.len() > 16 {
        h.extension_profile = rtp::header::EXTENSION_PROFILE_TWO_BYTE;
    } else if h.extension_profile == 0 {
        h.extension_profile = rtp::header::EXTENSION_PROFILE_ONE_BYTE;
    }
    h.extensions
        .push(rtp::header::Extension { id, payload: data });
}

/// AV1 in L3T3 (three spatial, three temporal layers in one stream): the structure of
/// `dependency_descriptor/tests.rs` after the mandatory fields (flags: the structure
/// alone): nine decode targets, three chains, twelve templates from id 62 (per spatial
/// layer a keyframe template, then T0, T1, T2), 320x180 to 1280x720.
const L3T3_STRUCTURE: [u8; 77] = [
    0x87, 0xc8, 0x16, 0x16, 0x17, 0xaa, 0xaa, 0xbf, 0xff, 0xf1, 0xcf, 0x3c, 0x10, 0xc3, 0x02, 0xaa,
    0x80, 0xff, 0xf0, 0x07, 0x3c, 0x00, 0x43, 0x00, 0x0a, 0x80, 0x03, 0xf0, 0x00, 0x1c, 0x00, 0x01,
    0x6d, 0x54, 0x90, 0x6e, 0x0a, 0xc1, 0x28, 0x20, 0xdc, 0x15, 0x82, 0x50, 0x31, 0x57, 0xe0, 0x01,
    0x97, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x10, 0x13, 0xf0, 0x0b, 0x30, 0x27, 0xf0, 0x16, 0x70, 0x4f, 0xf0, 0x2c, 0xf0,
];

/// The TID of picture `index` (a keyframe's is 0).
fn svc_tid(keyframe: bool, index: usize) -> u8 {
    if keyframe { 0 } else { [0, 2, 1, 2][index % 4] }
}

/// The payloads of picture `index` of an AV1 L3T3 camera: one packet per spatial
/// layer, lowest first, of [`SVC_LAYER_SIZES`] bytes (so a receiver tells them apart),
/// N on the keyframe's first.
pub(super) fn svc_picture(keyframe: bool) -> Vec<Bytes> {
    SVC_LAYER_SIZES
        .iter()
        .enumerate()
        .map(|(sid, &size)| {
            let n = u8::from(keyframe && sid == 0) << 3;
            let mut p = vec![0x10 | n, OBU_FRAME];
            p.resize(size, 0xa1);
            Bytes::from(p)
        })
        .collect()
}

/// The dependency descriptor of spatial layer `sid` of picture `index` (one packet, so
/// start and end of its frame): the template of its layer (a keyframe's, or of its
/// TID), frame numbers counting layer frames; the structure on the keyframe's first.
pub(super) fn svc_descriptor(keyframe: bool, index: usize, sid: usize) -> Bytes {
    let tid = svc_tid(keyframe, index);
    let template = 4 * sid as u8 + if keyframe { 0 } else { 1 + tid };
    let id = (template + 62) % 64;
    let number = (index * 3 + sid) as u16;
    let mut dd = vec![0xc0 | id];
    dd.extend(number.to_be_bytes());
    if keyframe && sid == 0 {
        dd.extend(L3T3_STRUCTURE);
    }
    Bytes::from(dd)
}

impl Sim {
    /// Joins with every grant, its publisher connection offering AV1 only: its cameras
    /// ([`Sim::publish_video`]) send AV1.
    pub fn join_av1(&mut self, identity: &str) -> ClientId {
        let id = self.join(identity);
        let now = self.now;
        self.clients[id.0].enable_av1(now);
        id
    }
}

#[cfg(test)]
mod tests {
    use chorus_core::Codec;

    #[test]
    fn svc_descriptors_read_back_as_written() {
        let mut reader = chorus_core::DependencyDescriptorReader::default();
        // (keyframe, picture, sid, tid)
        let cases = [
            (true, 0, 0, 0),
            (true, 0, 2, 0),
            (false, 1, 1, 2),
            (false, 2, 2, 1),
        ];
        for (keyframe, index, sid, tid) in cases {
            let dd = super::svc_descriptor(keyframe, index, sid);
            let f = reader.read(&dd).unwrap();
            assert_eq!(
                (f.spatial_id, f.temporal_id),
                (sid as u8, tid),
                "{index} {sid}"
            );
            assert_eq!(f.starts_keyframe(), keyframe && sid == 0);
        }
        let s = reader.structure().unwrap();
        assert_eq!(s.resolutions.as_ref().unwrap()[2], (1280, 720));
        let key = super::svc_picture(true);
        assert_eq!(
            key.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [200, 400, 800]
        );
        assert!(
            chorus_core::Codec::Av1.is_keyframe(&key[0])
                && !chorus_core::Codec::Av1.is_keyframe(&key[1])
        );
    }

    #[test]
    fn descriptors_read_back_as_written() {
        let mut reader = chorus_core::DependencyDescriptorReader::default();
        let key = reader
            .read(&super::dependency_descriptor(true, 7, 0, 3))
            .unwrap();
        assert!(key.new_structure && key.start_of_frame && !key.end_of_frame);
        assert_eq!(key.frame_number, 7);
        let delta = reader
            .read(&super::dependency_descriptor(false, 8, 1, 1))
            .unwrap();
        assert!(!delta.start_of_frame && delta.end_of_frame && !delta.new_structure);
        assert_eq!((delta.spatial_id, delta.temporal_id), (0, 0));
    }

    #[test]
    fn only_a_keyframe_s_first_packet_says_so() {
        let key = super::av1_frame(true);
        let keyframes: Vec<bool> = key.iter().map(|p| Codec::Av1.is_keyframe(p)).collect();
        assert_eq!(keyframes, [true, false, false, false]);
        assert_eq!(
            key.iter().map(|p| p[0]).collect::<Vec<_>>(),
            [0x58, 0xd0, 0xd0, 0x90]
        );
        let delta = super::av1_frame(false);
        assert!(delta.iter().all(|p| !Codec::Av1.is_keyframe(p)));
    }
}
