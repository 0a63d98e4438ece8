//! Reading just enough of codec payloads to make forwarding decisions.

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
}
