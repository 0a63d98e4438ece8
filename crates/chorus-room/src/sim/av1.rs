//! A simulated camera sending AV1 as one stream without layers, as Chromium sends
//! `L1T1`: frames of [`KEYFRAME_PACKETS`] or [`DELTA_PACKETS`] packets, each payload an
//! AV1 aggregation header (the AV1 RTP spec §4.4) and filler OBU bytes; N on the first
//! packet of a keyframe (a new coded video sequence), Z and Y where an OBU goes on
//! across packets. No dependency descriptor: the room forwards AV1 as it comes, and
//! finds keyframes by the N bit.

use bytes::Bytes;

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
