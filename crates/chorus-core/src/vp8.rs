//! The VP8 payload descriptor (RFC 7741 §4.2): read its fields, and rewrite the
//! numbering fields in place so that a subscriber sees one continuous stream
//! across simulcast layer switches and dropped temporal layers.
//!
//! ```text
//!  X|R|N|S|R| PID      X: extension present, S: start of a partition
//!  I|L|T|K| RSV        (if X) I: picture id, L: TL0PICIDX, T: TID, K: KEYIDX
//!  M| PictureID        (if I) M: the picture id is 15 bits, one more byte follows
//!  TL0PICIDX           (if L)
//!  TID|Y| KEYIDX       (if T or K)
//! ```

/// A VP8 picture id as it was on the wire: 7 bits, or 15 when the M bit is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PictureId {
    pub value: u16,
    /// 15 bits (M bit set) rather than 7.
    pub long: bool,
}

impl PictureId {
    /// The number of values of this width (128 or 32768).
    pub fn modulus(self) -> u32 {
        if self.long { 1 << 15 } else { 1 << 7 }
    }
}

/// The temporal layer fields (present with the T bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp8Temporal {
    /// TID: the temporal layer of this frame, 0..=3.
    pub tid: u8,
    /// Y: the frame depends only on the last TL0 frame, so a subscriber may start
    /// receiving this temporal layer here.
    pub layer_sync: bool,
}

/// The fields of one packet's VP8 payload descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp8Descriptor {
    /// S bit: the packet starts a VP8 partition.
    pub start_of_partition: bool,
    /// PID: which partition.
    pub partition_id: u8,
    pub picture_id: Option<PictureId>,
    pub tl0_pic_idx: Option<u8>,
    pub temporal: Option<Vp8Temporal>,
    /// KEYIDX (5 bits).
    pub key_idx: Option<u8>,
    /// Length of the descriptor in bytes; the VP8 payload header follows.
    pub len: usize,
}

impl Vp8Descriptor {
    /// The descriptor at the start of `payload`; `None` if it is truncated.
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let at = Layout::of(payload)?;
        let first = payload[0];
        let tk = at.tid_keyidx.map(|i| payload[i]);
        Some(Self {
            start_of_partition: first & 0x10 != 0,
            partition_id: first & 0x07,
            picture_id: at.picture_id.map(|(i, long)| PictureId {
                value: if long {
                    u16::from_be_bytes([payload[i], payload[i + 1]]) & 0x7FFF
                } else {
                    u16::from(payload[i] & 0x7F)
                },
                long,
            }),
            tl0_pic_idx: at.tl0_pic_idx.map(|i| payload[i]),
            temporal: tk.filter(|_| at.has_tid).map(|b| Vp8Temporal {
                tid: b >> 6,
                layer_sync: b & 0x20 != 0,
            }),
            key_idx: tk.filter(|_| at.has_keyidx).map(|b| b & 0x1F),
            len: at.len,
        })
    }

    /// The first packet of a frame: start of partition 0.
    pub fn starts_frame(&self) -> bool {
        self.start_of_partition && self.partition_id == 0
    }

    /// The temporal layer, 0 when the stream does not say (no temporal layers).
    pub fn tid(&self) -> u8 {
        self.temporal.map_or(0, |t| t.tid)
    }
}

/// The descriptor was cut short: the packet is not what its header claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TruncatedDescriptor;

/// New values for the numbering fields of one packet's descriptor. A field is
/// written only if the packet carries it; the width of the picture id stays as
/// received (the value is wrapped into it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Vp8Rewrite {
    pub picture_id: Option<u16>,
    pub tl0_pic_idx: Option<u8>,
    pub key_idx: Option<u8>,
}

impl Vp8Rewrite {
    /// Writes the fields into `payload` in place; its length does not change.
    pub fn apply(&self, payload: &mut [u8]) -> Result<(), TruncatedDescriptor> {
        let at = Layout::of(payload).ok_or(TruncatedDescriptor)?;
        if let (Some(v), Some((i, long))) = (self.picture_id, at.picture_id) {
            if long {
                let [hi, lo] = (v & 0x7FFF).to_be_bytes();
                payload[i] = 0x80 | hi;
                payload[i + 1] = lo;
            } else {
                payload[i] = (v & 0x7F) as u8;
            }
        }
        if let (Some(v), Some(i)) = (self.tl0_pic_idx, at.tl0_pic_idx) {
            payload[i] = v;
        }
        if let (Some(v), Some(i), true) = (self.key_idx, at.tid_keyidx, at.has_keyidx) {
            payload[i] = (payload[i] & 0xE0) | (v & 0x1F);
        }
        Ok(())
    }
}

/// Where each field sits; every index is checked to be inside the payload.
struct Layout {
    picture_id: Option<(usize, bool)>,
    tl0_pic_idx: Option<usize>,
    tid_keyidx: Option<usize>,
    has_tid: bool,
    has_keyidx: bool,
    len: usize,
}

impl Layout {
    fn of(p: &[u8]) -> Option<Self> {
        let mut at = Layout {
            picture_id: None,
            tl0_pic_idx: None,
            tid_keyidx: None,
            has_tid: false,
            has_keyidx: false,
            len: 1,
        };
        let first = *p.first()?;
        if first & 0x80 == 0 {
            return Some(at);
        }
        let x = *p.get(1)?;
        at.len = 2;
        if x & 0x80 != 0 {
            let long = *p.get(at.len)? & 0x80 != 0;
            let width = if long { 2 } else { 1 };
            p.get(at.len + width - 1)?;
            at.picture_id = Some((at.len, long));
            at.len += width;
        }
        if x & 0x40 != 0 {
            p.get(at.len)?;
            at.tl0_pic_idx = Some(at.len);
            at.len += 1;
        }
        at.has_tid = x & 0x20 != 0;
        at.has_keyidx = x & 0x10 != 0;
        if at.has_tid || at.has_keyidx {
            p.get(at.len)?;
            at.tid_keyidx = Some(at.len);
            at.len += 1;
        }
        Some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid(value: u16, long: bool) -> Option<PictureId> {
        Some(PictureId { value, long })
    }

    #[test]
    fn parse_table() {
        // (payload, picture id, tl0picidx, (tid, y), keyidx, len, what)
        type Case = (
            &'static [u8],
            Option<PictureId>,
            Option<u8>,
            Option<(u8, bool)>,
            Option<u8>,
            usize,
            &'static str,
        );
        let cases: &[Case] = &[
            (&[0x10, 0x00], None, None, None, None, 1, "no extension"),
            (
                &[0x90, 0x80, 0x05, 0x00],
                pid(5, false),
                None,
                None,
                None,
                3,
                "7-bit id",
            ),
            (
                &[0x90, 0x80, 0xFF, 0xFF, 0x00],
                pid(0x7FFF, true),
                None,
                None,
                None,
                4,
                "15-bit id",
            ),
            (
                &[0x90, 0xF0, 0x81, 0x02, 0x07, 0xB3, 0x00],
                pid(0x102, true),
                Some(7),
                Some((2, true)),
                Some(0x13),
                6,
                "all fields",
            ),
            (
                &[0x90, 0x20, 0x40],
                None,
                None,
                Some((1, false)),
                None,
                3,
                "tid only",
            ),
            (
                &[0x90, 0x10, 0xDF],
                None,
                None,
                None,
                Some(0x1F),
                3,
                "keyidx only",
            ),
        ];
        for &(payload, picture_id, tl0, tid, keyidx, len, what) in cases {
            let d = Vp8Descriptor::parse(payload).expect(what);
            assert_eq!(d.picture_id, picture_id, "{what}");
            assert_eq!(d.tl0_pic_idx, tl0, "{what}");
            assert_eq!(d.temporal.map(|t| (t.tid, t.layer_sync)), tid, "{what}");
            assert_eq!(d.key_idx, keyidx, "{what}");
            assert_eq!(d.len, len, "{what}");
        }
    }

    #[test]
    fn truncated_descriptors_are_none() {
        let cases: &[&[u8]] = &[
            &[],
            &[0x90],
            &[0x90, 0x80],
            &[0x90, 0x80, 0x80],
            &[0x90, 0x40],
            &[0x90, 0x20],
            &[0x90, 0xE0, 0x01, 0x02],
        ];
        for payload in cases {
            assert_eq!(Vp8Descriptor::parse(payload), None, "{payload:?}");
            let mut copy = payload.to_vec();
            let all = Vp8Rewrite {
                picture_id: Some(1),
                tl0_pic_idx: Some(1),
                key_idx: Some(1),
            };
            assert_eq!(all.apply(&mut copy), Err(TruncatedDescriptor));
        }
    }

    #[test]
    fn rewrite_in_place_keeps_width() {
        // (payload, rewrite, expected payload)
        let cases: &[(&[u8], Vp8Rewrite, &[u8])] = &[
            (
                &[0x90, 0x80, 0x05, 0xAA],
                Vp8Rewrite {
                    picture_id: Some(0x1234),
                    ..Default::default()
                },
                // 7-bit field: 0x1234 wraps to 0x34
                &[0x90, 0x80, 0x34, 0xAA],
            ),
            (
                &[0x90, 0x80, 0x80, 0x05, 0xAA],
                Vp8Rewrite {
                    picture_id: Some(0x8001),
                    ..Default::default()
                },
                // 15-bit field: 0x8001 wraps to 1, M bit kept
                &[0x90, 0x80, 0x80, 0x01, 0xAA],
            ),
            (
                &[0x90, 0xF0, 0x81, 0x02, 0x07, 0xB3, 0xAA],
                Vp8Rewrite {
                    picture_id: Some(0x7FFF),
                    tl0_pic_idx: Some(0xFF),
                    key_idx: Some(0x21),
                },
                // TID and Y bits untouched, KEYIDX wrapped to 5 bits
                &[0x90, 0xF0, 0xFF, 0xFF, 0xFF, 0xA1, 0xAA],
            ),
            (
                &[0x10, 0xAA],
                Vp8Rewrite {
                    picture_id: Some(3),
                    tl0_pic_idx: Some(4),
                    key_idx: Some(5),
                },
                // fields the packet lacks are not written
                &[0x10, 0xAA],
            ),
        ];
        for (payload, rewrite, want) in cases {
            let mut buf = payload.to_vec();
            rewrite.apply(&mut buf).unwrap();
            assert_eq!(&buf, want, "{payload:02x?}");
        }
    }

    /// Random bytes never panic, and whatever parses can be rewritten and re-read.
    #[test]
    fn random_bytes_never_panic() {
        // xorshift: deterministic, no dependency.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 8) as usize;
            let mut buf: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let parsed = Vp8Descriptor::parse(&buf);
            let rewrite = Vp8Rewrite {
                picture_id: Some(next() as u16),
                tl0_pic_idx: Some(next() as u8),
                key_idx: Some(next() as u8),
            };
            let applied = rewrite.apply(&mut buf);
            assert_eq!(parsed.is_some(), applied.is_ok(), "{buf:02x?}");
            if let Some(before) = parsed {
                let after = Vp8Descriptor::parse(&buf).expect("same layout");
                assert_eq!(after.len, before.len);
                assert_eq!(after.temporal, before.temporal);
                assert_eq!(
                    after.picture_id.map(|p| p.long),
                    before.picture_id.map(|p| p.long)
                );
            }
        }
    }
}
