//! A simulated camera sending AV1 as one stream without layers, as Chromium sends
//! `L1T1`: frames of [`KEYFRAME_PACKETS`] or [`DELTA_PACKETS`] packets, each payload an
//! AV1 aggregation header (the AV1 RTP spec §4.4) and filler OBU bytes; N on the first
//! packet of a keyframe (a new coded video sequence), Z and Y where an OBU goes on
//! across packets. Where the answer took it, each packet carries a dependency descriptor
//! (the spec's appendix A): the keyframe's first with the template structure of L1T3 (20
//! bytes: a two-byte header extension), the others 3 bytes naming the T0 delta template.
//! The room forwards AV1 as it comes, finds keyframes by the N bit, and strips the
//! descriptor as every extension.

use bytes::Bytes;
use rtc::rtp;

use super::media::{DELTA_PACKETS, KEYFRAME_PACKETS, VIDEO_PACKET_SIZE};
use super::{ClientId, Sim};

/// OBU headers (type << 3, has_size_field): a sequence header first on keyframes, else a
/// frame.
const OBU_SEQUENCE_HEADER: u8 = 1 << 3 | 0x02;
const OBU_FRAME: u8 = 6 << 3 | 0x02;

/// The payloads of one AV1 frame.
pub(super) fn av1_frame(keyframe: bool) -> Vec<Bytes> {
    let count = if keyframe {
        KEYFRAME_PACKETS
    } else {
        DELTA_PACKETS
    };
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
