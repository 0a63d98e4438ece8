//! The codecs Chorus forwards, and reading just enough of their payloads to make
//! forwarding decisions.

/// A codec Chorus takes from publishers and sends to subscribers as it came: Opus for
/// audio; VP8, VP9 (profile 0, with or without spatial and temporal layers), H.264
/// (packetization mode 1, constrained baseline) or AV1 (main profile) for video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    Opus,
    Vp8,
    H264,
    Vp9,
    Av1,
}

impl Codec {
    /// Its encoding name in `a=rtpmap`.
    pub fn sdp_name(self) -> &'static str {
        match self {
            Codec::Opus => "opus",
            Codec::Vp8 => "VP8",
            Codec::H264 => "H264",
            Codec::Vp9 => "VP9",
            Codec::Av1 => "AV1",
        }
    }

    pub fn clock_rate(self) -> u32 {
        match self {
            Codec::Opus => 48_000,
            Codec::Vp8 | Codec::H264 | Codec::Vp9 | Codec::Av1 => 90_000,
        }
    }

    /// The `a=rtpmap` channel count (0: none written).
    pub fn channels(self) -> u16 {
        match self {
            Codec::Opus => 2,
            Codec::Vp8 | Codec::H264 | Codec::Vp9 | Codec::Av1 => 0,
        }
    }

    pub fn is_video(self) -> bool {
        self != Codec::Opus
    }

    /// Whether an RTP payload of this codec starts a keyframe (one a decoder can start
    /// from). Malformed input is "no".
    pub fn is_keyframe(self, payload: &[u8]) -> bool {
        match self {
            Codec::Opus => false,
            Codec::Vp8 => vp8_is_keyframe(payload),
            Codec::H264 => h264_is_keyframe(payload),
            Codec::Vp9 => crate::vp9::vp9_is_keyframe(payload),
            Codec::Av1 => av1_is_keyframe(payload),
        }
    }
}

/// H.264 NAL unit types (RFC 6184 §5.4; ITU-T H.264 table 7-1) that matter here.
mod nal {
    pub const IDR: u8 = 5;
    pub const SPS: u8 = 7;
    pub const STAP_A: u8 = 24;
    pub const FU_A: u8 = 28;
}

/// Whether an H.264 RTP payload (RFC 6184, packetization mode 1) starts a keyframe: it
/// carries a sequence parameter set (encoders send SPS and PPS right before each IDR
/// picture, and a decoder can start only with them), or it starts an IDR picture (for
/// encoders that send the parameter sets once). STAP-A aggregates are searched; an FU-A
/// counts at its start fragment only. Malformed input is "no".
pub fn h264_is_keyframe(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else {
        return false;
    };
    let starts = |nal_type: u8| nal_type == nal::SPS || nal_type == nal::IDR;
    match first & 0x1F {
        nal::STAP_A => {
            // [2-byte size][NAL unit]…
            let mut rest = &payload[1..];
            while let [hi, lo, tail @ ..] = rest {
                let size = usize::from(u16::from_be_bytes([*hi, *lo]));
                let Some((unit, next)) =
                    (size > 0 && size <= tail.len()).then(|| tail.split_at(size))
                else {
                    return false;
                };
                if starts(unit[0] & 0x1F) {
                    return true;
                }
                rest = next;
            }
            false
        }
        nal::FU_A => payload
            .get(1)
            .is_some_and(|&fu| fu & 0x80 != 0 && fu & 0x1F == nal::IDR),
        t => starts(t),
    }
}

/// Whether an AV1 RTP payload starts a keyframe: the N bit of its aggregation header
/// (`Z|Y|W W|N|-|-|-`, the AV1 RTP spec §4.4), which the sender sets on the first packet
/// of a coded video sequence, that is of a keyframe with its sequence header; and Z
/// clear, the packet starting with an OBU of its own. (A keyframe's dependency
/// descriptor carries the template structure too, but payloads are all every track
/// has: the descriptor is an extension that may not be negotiated.) Malformed input is "no".
pub fn av1_is_keyframe(payload: &[u8]) -> bool {
    payload
        .first()
        .is_some_and(|&h| h & 0x08 != 0 && h & 0x80 == 0)
}

/// Whether a VP8 RTP payload (RFC 7741) starts a keyframe. Malformed input is "no".
pub fn vp8_is_keyframe(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else {
        return false;
    };
    let extended = first & 0x80 != 0;
    let start_of_partition = first & 0x10 != 0;
    let partition_id = first & 0x07;
    if !start_of_partition || partition_id != 0 {
        return false;
    }
    let mut at = 1;
    if extended {
        let Some(&x) = payload.get(at) else {
            return false;
        };
        at += 1;
        if x & 0x80 != 0 {
            // PictureID: one byte, or two when its M bit is set.
            let Some(&pid) = payload.get(at) else {
                return false;
            };
            at += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            at += 1; // TL0PICIDX
        }
        if x & 0x30 != 0 {
            at += 1; // TID/Y/KEYIDX
        }
    }
    // VP8 payload header: the P bit is 0 on keyframes.
    payload.get(at).is_some_and(|b| b & 0x01 == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_keyframe_table() {
        let cases: &[(&[u8], bool, &str)] = &[
            (&[0x10, 0x00], true, "minimal descriptor, keyframe"),
            (&[0x10, 0x01], false, "minimal descriptor, interframe"),
            (&[0x00, 0x00], false, "not the start of a partition"),
            (&[0x11, 0x00], false, "partition 1"),
            (&[0x90, 0x80, 0x05, 0x00], true, "short picture id"),
            (&[0x90, 0x80, 0x85, 0x01, 0x00], true, "long picture id"),
            (
                &[0x90, 0x80, 0x85, 0x01, 0x01],
                false,
                "long picture id, interframe",
            ),
            (
                &[0x90, 0xE0, 0x85, 0x01, 0x07, 0x20, 0x00],
                true,
                "pid, tl0, tid",
            ),
            (&[0x90, 0x80, 0x85], false, "truncated picture id"),
            (&[0x90], false, "truncated extension"),
            (&[], false, "empty"),
        ];
        for (payload, want, what) in cases {
            assert_eq!(vp8_is_keyframe(payload), *want, "{what}");
        }
    }

    #[test]
    fn av1_keyframe_table() {
        let cases: &[(&[u8], bool, &str)] = &[
            (
                &[0x18, 0x0a, 0x0b],
                true,
                "W=1, N: a new coded video sequence",
            ),
            (&[0x08, 0x0a], true, "W=0 (length fields), N"),
            (&[0x10, 0x32], false, "W=1, no N: a delta frame"),
            (&[0x98, 0x32], false, "Z: continues an OBU, whatever N says"),
            (
                &[0x50, 0x32],
                false,
                "Y: the last OBU goes on in the next packet",
            ),
            (&[], false, "empty"),
        ];
        for (payload, want, what) in cases {
            assert_eq!(av1_is_keyframe(payload), *want, "{what}");
            assert_eq!(Codec::Av1.is_keyframe(payload), *want, "{what}");
        }
        assert_eq!(Codec::Av1.sdp_name(), "AV1");
        assert_eq!(
            (Codec::Av1.clock_rate(), Codec::Av1.channels()),
            (90_000, 0)
        );
    }

    #[test]
    fn h264_keyframe_table() {
        // NAL header bytes: F=0, NRI=3 (0x60) | type.
        let cases: &[(&[u8], bool, &str)] = &[
            (&[0x67, 0x42, 0xE0, 0x1F], true, "single SPS"),
            (&[0x65, 0x88, 0x84], true, "single IDR slice"),
            (&[0x68, 0xCE], false, "single PPS"),
            (&[0x41, 0x9A], false, "single non-IDR slice"),
            (&[0x06, 0x05], false, "SEI"),
            (
                &[0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xCE],
                true,
                "STAP-A with SPS and PPS",
            ),
            (
                &[0x78, 0x00, 0x02, 0x68, 0xCE, 0x00, 0x02, 0x65, 0x88],
                true,
                "STAP-A with PPS, then IDR",
            ),
            (
                &[0x78, 0x00, 0x02, 0x06, 0x05, 0x00, 0x02, 0x41, 0x9A],
                false,
                "STAP-A with SEI and a non-IDR slice",
            ),
            (
                &[0x78, 0x00, 0x09, 0x67, 0x42],
                false,
                "STAP-A, size past the end",
            ),
            (&[0x78, 0x00, 0x00, 0x67], false, "STAP-A, empty unit"),
            (&[0x78, 0x00], false, "STAP-A, truncated size"),
            (&[0x7C, 0x85, 0x88], true, "FU-A start of an IDR"),
            (&[0x7C, 0x05, 0x88], false, "FU-A middle of an IDR"),
            (&[0x7C, 0x45, 0x88], false, "FU-A end of an IDR"),
            (&[0x7C, 0x81, 0x9A], false, "FU-A start of a non-IDR slice"),
            (&[0x7C], false, "FU-A without its header"),
            (&[], false, "empty"),
        ];
        for (payload, want, what) in cases {
            assert_eq!(h264_is_keyframe(payload), *want, "{what}");
            assert_eq!(Codec::H264.is_keyframe(payload), *want, "{what}");
        }
        assert!(!Codec::Opus.is_keyframe(&[0x10, 0x00]), "audio has none");
        assert!(Codec::Vp8.is_keyframe(&[0x10, 0x00]));
    }
}
