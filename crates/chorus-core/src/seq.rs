//! 64-bit extended RTP sequence numbers and timestamps. Wrap-around is handled
//! once, where packets arrive; everything after works on monotonic values.

/// Extended (never wrapping) RTP sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExtSeq(pub u64);

impl ExtSeq {
    /// The 16 bits that go on the wire.
    pub fn wire(self) -> u16 {
        self.0 as u16
    }
}

/// Extended (never wrapping) RTP timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExtTimestamp(pub u64);

impl ExtTimestamp {
    pub fn wire(self) -> u32 {
        self.0 as u32
    }
}

/// Extends 16-bit sequence numbers, accepting reordering within half the space.
#[derive(Debug, Default, Clone)]
pub struct SeqUnwrapper {
    highest: Option<u64>,
}

impl SeqUnwrapper {
    pub fn unwrap(&mut self, wire: u16) -> ExtSeq {
        ExtSeq(unwrap_with(&mut self.highest, wire as u64, 16))
    }
}

/// Extends 32-bit RTP timestamps, accepting reordering within half the space.
#[derive(Debug, Default, Clone)]
pub struct TimestampUnwrapper {
    highest: Option<u64>,
}

impl TimestampUnwrapper {
    pub fn unwrap(&mut self, wire: u32) -> ExtTimestamp {
        ExtTimestamp(unwrap_with(&mut self.highest, wire as u64, 32))
    }
}

/// Extends VP8 picture ids (7 or 15 bits, per packet), accepting reordering within
/// half the space. A packet of the other width is placed nearest to the highest.
#[derive(Debug, Default, Clone)]
pub struct PictureIdUnwrapper {
    highest: Option<u64>,
}

impl PictureIdUnwrapper {
    pub fn unwrap(&mut self, id: crate::vp8::PictureId) -> u64 {
        let bits = if id.long { 15 } else { 7 };
        unwrap_with(&mut self.highest, id.value as u64, bits)
    }
}

/// The extended value closest to `highest` whose low `bits` equal `wire`.
fn unwrap_with(highest: &mut Option<u64>, wire: u64, bits: u32) -> u64 {
    let span = 1u64 << bits;
    let Some(prev) = *highest else {
        // Start one cycle up so that early reordered packets stay positive.
        let v = span + wire;
        *highest = Some(v);
        return v;
    };
    let base = prev & !(span - 1);
    // The first value starts one cycle up, so `base >= span` holds while the width stays
    // the same; a VP8 picture id that turns from 7 to 15 bits can find `base` at 0 (the
    // fuzzer did): no cycle below it then.
    let v = [base.checked_sub(span), Some(base), base.checked_add(span)]
        .into_iter()
        .flatten()
        .map(|c| c + wire)
        .min_by_key(|v| v.abs_diff(prev))
        .unwrap_or(base + wire);
    if v > prev {
        *highest = Some(v);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_table() {
        // (input sequence, expected extended values relative to the first)
        let cases: &[(&[u16], &[i64])] = &[
            (&[1, 2, 3], &[0, 1, 2]),
            (&[65534, 65535, 0, 1], &[0, 1, 2, 3]),
            (&[10, 8, 11], &[0, -2, 1]),        // reordering
            (&[65535, 1, 0, 2], &[0, 2, 1, 3]), // reordering across the wrap
            (&[0, 65535], &[0, -1]),            // late packet before the first
            (&[100, 30000, 100], &[0, 29900, 0]),
            (&[100, 40000], &[0, -25636]), // more than half the space back
        ];
        for (input, expected) in cases {
            let mut u = SeqUnwrapper::default();
            let first = u.unwrap(input[0]).0 as i64;
            let got: Vec<i64> = std::iter::once(0)
                .chain(input[1..].iter().map(|s| u.unwrap(*s).0 as i64 - first))
                .collect();
            assert_eq!(&got, expected, "input {input:?}");
        }
    }

    /// Found by the `rtp` fuzz target: a 7-bit picture id, then a 15-bit one, underflowed
    /// (a panic in debug builds; a publisher chooses the width of every packet).
    #[test]
    fn a_long_picture_id_after_a_short_first_one_does_not_underflow() {
        use crate::vp8::PictureId;
        let mut u = PictureIdUnwrapper::default();
        let first = u.unwrap(PictureId {
            value: 5,
            long: false,
        });
        let long = u.unwrap(PictureId {
            value: 0x7000,
            long: true,
        });
        assert_eq!(first, 128 + 5);
        assert_eq!(long, 0x7000, "the nearest value with those low 15 bits");
    }

    #[test]
    fn picture_ids_wrap_at_their_width() {
        use crate::vp8::PictureId;
        // (width, input ids, extended values relative to the first)
        let cases: &[(bool, &[u16], &[i64])] = &[
            (false, &[126, 127, 0, 1], &[0, 1, 2, 3]),
            (false, &[127, 1, 0], &[0, 2, 1]),
            (true, &[32_766, 32_767, 0, 1], &[0, 1, 2, 3]),
            (true, &[0, 32_767], &[0, -1]),
        ];
        for (long, input, expected) in cases {
            let mut u = PictureIdUnwrapper::default();
            let ids = input.iter().map(|&value| PictureId { value, long: *long });
            let got: Vec<u64> = ids.map(|id| u.unwrap(id)).collect();
            let rel: Vec<i64> = got.iter().map(|v| *v as i64 - got[0] as i64).collect();
            assert_eq!(&rel, expected, "input {input:?}");
        }
    }

    #[test]
    fn timestamps_wrap() {
        let mut u = TimestampUnwrapper::default();
        let a = u.unwrap(u32::MAX - 959);
        let b = u.unwrap(0);
        let c = u.unwrap(960);
        assert_eq!(b.0 - a.0, 960);
        assert_eq!(c.0 - b.0, 960);
        assert_eq!(c.wire(), 960);
    }
}
