//! The VP9 payload descriptor (RFC 9628 §4.2): which picture, spatial layer (SID) and
//! temporal layer (TID) a packet belongs to, where its layer frame begins and ends, and
//! on keyframes the scalability structure (SS) with the size of each spatial layer.
//! Read only: Chorus forwards VP9 with its numbering as the publisher wrote it.
//!
//! ```text
//!  I|P|L|F|B|E|V|Z     I: picture id, P: inter-picture predicted, L: layer indices,
//!                      F: flexible mode, B/E: begins/ends a layer frame, V: SS follows,
//!                      Z: not a reference for upper spatial layers
//!  M| PICTURE ID       (if I) M: the picture id is 15 bits, one more byte follows
//!  TID|U| SID |D       (if L) U: switching up point, D: inter-layer dependency
//!  TL0PICIDX           (if L and not F)
//!  P_DIFF|N            (if P and F) up to 3, N: another follows
//!  SS                  (if V) N_S|Y|G|-|-|-, [WIDTH HEIGHT]×(N_S+1) if Y,
//!                      N_G and its N_G picture group entries if G
//! ```

use crate::vp8::PictureId;

/// Spatial layers an SS can describe (N_S is 3 bits).
pub const MAX_SPATIAL_LAYERS: usize = 8;

/// The layer indices (present with the L bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp9Layers {
    /// TID, 0..=7.
    pub tid: u8,
    /// U: a temporal switching up point (a subscriber may start this TID here).
    pub switching_up: bool,
    /// SID, 0..=7.
    pub sid: u8,
    /// D: this layer frame depends on the lower spatial layer of the same picture.
    pub inter_layer: bool,
}

/// The scalability structure (present with the V bit, on keyframes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp9Structure {
    /// N_S + 1.
    pub spatial_layers: u8,
    /// Width and height of each spatial layer, lowest first (with the Y bit).
    pub resolutions: Option<[(u16, u16); MAX_SPATIAL_LAYERS]>,
}

impl Vp9Structure {
    /// Width and height of spatial layer `sid`, if the structure gave them.
    pub fn resolution(&self, sid: u8) -> Option<(u16, u16)> {
        let r = self.resolutions?;
        (sid < self.spatial_layers).then(|| r[usize::from(sid)])
    }
}

/// The fields of one packet's VP9 payload descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp9Descriptor {
    pub picture_id: Option<PictureId>,
    /// P: predicted from an earlier picture (clear on keyframes).
    pub inter_picture: bool,
    /// F: flexible mode (references listed as P_DIFF rather than by TL0PICIDX).
    pub flexible: bool,
    /// B: the first packet of a layer frame.
    pub begins_frame: bool,
    /// E: the last packet of a layer frame.
    pub ends_frame: bool,
    /// Z: no upper spatial layer of this picture depends on this layer frame.
    pub not_upper_reference: bool,
    pub layers: Option<Vp9Layers>,
    pub tl0_pic_idx: Option<u8>,
    pub structure: Option<Vp9Structure>,
    /// Length of the descriptor in bytes; the VP9 frame data follows.
    pub len: usize,
}

impl Vp9Descriptor {
    /// The descriptor at the start of `payload`; `None` if it is truncated.
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let mut r = Reader {
            data: payload,
            at: 0,
        };
        let first = r.byte()?;
        let bit = |n: u8| first & (0x80 >> n) != 0;
        let (i, p, l, f, b, e, v, z) = (
            bit(0),
            bit(1),
            bit(2),
            bit(3),
            bit(4),
            bit(5),
            bit(6),
            bit(7),
        );
        let picture_id = if i {
            let b0 = r.byte()?;
            Some(if b0 & 0x80 != 0 {
                let b1 = r.byte()?;
                PictureId {
                    value: u16::from_be_bytes([b0 & 0x7F, b1]),
                    long: true,
                }
            } else {
                PictureId {
                    value: u16::from(b0),
                    long: false,
                }
            })
        } else {
            None
        };
        let mut layers = None;
        let mut tl0_pic_idx = None;
        if l {
            let b = r.byte()?;
            layers = Some(Vp9Layers {
                tid: b >> 5,
                switching_up: b & 0x10 != 0,
                sid: (b >> 1) & 0x07,
                inter_layer: b & 0x01 != 0,
            });
            if !f {
                tl0_pic_idx = Some(r.byte()?);
            }
        }
        if p && f {
            // Up to three reference differences, each with N: another follows.
            for _ in 0..3 {
                if r.byte()? & 0x01 == 0 {
                    break;
                }
            }
        }
        let structure = if v { Some(r.structure()?) } else { None };
        Some(Self {
            picture_id,
            inter_picture: p,
            flexible: f,
            begins_frame: b,
            ends_frame: e,
            not_upper_reference: z,
            layers,
            tl0_pic_idx,
            structure,
            len: r.at,
        })
    }

    /// SID, 0 when the stream does not say (one spatial layer).
    pub fn sid(&self) -> u8 {
        self.layers.map_or(0, |l| l.sid)
    }

    /// TID, 0 when the stream does not say (one temporal layer).
    pub fn tid(&self) -> u8 {
        self.layers.map_or(0, |l| l.tid)
    }

    /// The first packet of a picture: the beginning of its base spatial layer's frame.
    pub fn starts_picture(&self) -> bool {
        self.begins_frame && self.sid() == 0
    }

    /// The first packet of a keyframe: a picture starting without inter-picture
    /// prediction, whose upper layers (if any) depend only on the lower ones.
    pub fn starts_keyframe(&self) -> bool {
        self.starts_picture() && !self.inter_picture
    }
}

/// Reads bytes in order; every read is checked against the end.
struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.data.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes([self.byte()?, self.byte()?]))
    }

    fn structure(&mut self) -> Option<Vp9Structure> {
        let head = self.byte()?;
        let spatial_layers = (head >> 5) + 1;
        let (y, g) = (head & 0x10 != 0, head & 0x08 != 0);
        let resolutions = if y {
            let mut r = [(0, 0); MAX_SPATIAL_LAYERS];
            for slot in r.iter_mut().take(usize::from(spatial_layers)) {
                *slot = (self.u16()?, self.u16()?);
            }
            Some(r)
        } else {
            None
        };
        if g {
            for _ in 0..self.byte()? {
                let entry = self.byte()?;
                // R (2 bits): reference differences that follow, one byte each.
                for _ in 0..(entry >> 2) & 0x03 {
                    self.byte()?;
                }
            }
        }
        Some(Vp9Structure {
            spatial_layers,
            resolutions,
        })
    }
}

/// Whether a VP9 RTP payload starts a keyframe ([`Vp9Descriptor::starts_keyframe`]).
/// Malformed input is "no".
pub fn vp9_is_keyframe(payload: &[u8]) -> bool {
    Vp9Descriptor::parse(payload).is_some_and(|d| d.starts_keyframe())
}

#[cfg(test)]
mod tests;
