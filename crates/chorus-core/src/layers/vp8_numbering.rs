//! VP8 numbering continuity for one subscriber: picture id, TL0PICIDX and KEYIDX go
//! on from the last values sent when the source layer changes, and dropped frames
//! leave no hole in the picture ids.

use crate::gaps::{GapCloser, Unmapped};
use crate::seq::PictureIdUnwrapper;
use crate::vp8::{Vp8Descriptor, Vp8Rewrite};

#[derive(Debug, Clone)]
pub(super) struct Vp8Numbering {
    picture_ids: PictureIds,
    tl0_pic_idx: Wrapping,
    key_idx: Wrapping,
}

impl Vp8Numbering {
    pub fn new() -> Self {
        Self {
            picture_ids: PictureIds::default(),
            tl0_pic_idx: Wrapping::new(0xFF),
            key_idx: Wrapping::new(0x1F),
        }
    }

    /// The next packet forwarded comes from another layer (a keyframe): continue after
    /// the last values sent.
    pub fn switch(&mut self) {
        self.picture_ids.resync = true;
        self.tl0_pic_idx.resync = true;
        self.key_idx.resync = true;
    }

    /// The values to write into a forwarded packet.
    pub fn forward(&mut self, d: &Vp8Descriptor) -> Result<Vp8Rewrite, Unmapped> {
        // The picture id first: it may refuse the packet, and then nothing else moves.
        let picture_id = d.picture_id.map(|p| self.picture_ids.map(p)).transpose()?;
        Ok(Vp8Rewrite {
            picture_id,
            tl0_pic_idx: d.tl0_pic_idx.map(|v| self.tl0_pic_idx.map(v)),
            key_idx: d.key_idx.map(|v| self.key_idx.map(v)),
        })
    }

    /// A packet of the current layer is dropped on purpose: its frame's picture id
    /// must not leave a hole. TL0PICIDX needs nothing (TL0 is never dropped), nor
    /// KEYIDX (it counts keyframes, which are TL0).
    pub fn drop(&mut self, d: &Vp8Descriptor) {
        if let Some(p) = d.picture_id {
            self.picture_ids.drop(p);
        }
    }
}

#[derive(Debug, Clone, Default)]
struct PictureIds {
    /// Extends the current layer's ids.
    unwrap: PictureIdUnwrapper,
    /// Closes the holes of dropped frames.
    gaps: GapCloser,
    /// Added to a closed, extended id to give the output id.
    offset: u64,
    resync: bool,
    /// Highest output id sent (extended).
    last_out: Option<u64>,
}

impl PictureIds {
    /// The output id, wrapped to the width the packet carries.
    fn map(&mut self, id: crate::vp8::PictureId) -> Result<u16, Unmapped> {
        if self.resync {
            self.unwrap = PictureIdUnwrapper::default();
            self.gaps.reset();
        }
        let closed = self.gaps.keep(self.unwrap.unwrap(id))?;
        if std::mem::take(&mut self.resync) || self.last_out.is_none() {
            // One frame after the last sent; the first ever keeps the publisher's id.
            self.offset = self
                .last_out
                .map_or(0, |last| (last + 1).wrapping_sub(closed));
        }
        let out = closed.wrapping_add(self.offset);
        self.last_out = Some(self.last_out.map_or(out, |l| l.max(out)));
        Ok((out % u64::from(id.modulus())) as u16)
    }

    fn drop(&mut self, id: crate::vp8::PictureId) {
        if !self.resync {
            let n = self.unwrap.unwrap(id);
            self.gaps.drop(n);
        }
    }
}

/// A small wrapping counter (TL0PICIDX: 8 bits, KEYIDX: 5 bits) that continues
/// from the last value sent when the source changes.
#[derive(Debug, Clone)]
struct Wrapping {
    mask: u8,
    offset: u8,
    resync: bool,
    last_out: Option<u8>,
}

impl Wrapping {
    fn new(mask: u8) -> Self {
        Self {
            mask,
            offset: 0,
            resync: true,
            last_out: None,
        }
    }

    fn map(&mut self, v: u8) -> u8 {
        if std::mem::take(&mut self.resync) {
            // The switch lands on a keyframe: a new TL0 frame and a new key index.
            self.offset = self
                .last_out
                .map_or(0, |last| last.wrapping_add(1).wrapping_sub(v));
        }
        let out = v.wrapping_add(self.offset) & self.mask;
        // Remember the newest value (ahead by less than half the space), not a late one.
        let newer = self.last_out.is_none_or(|last| {
            let ahead = out.wrapping_sub(last) & self.mask;
            ahead != 0 && ahead <= self.mask / 2
        });
        if newer {
            self.last_out = Some(out);
        }
        out
    }
}
