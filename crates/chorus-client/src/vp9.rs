//! Synthetic VP9 RTP payloads (RFC 9628 §4.2) in non-flexible mode, as libwebrtc writes
//! them for `scalabilityMode: 'L3T3_KEY'`: per packet the I/P/L/B/E/Z bits, a 15-bit
//! picture id, TID/U/SID/D and TL0PICIDX, and in the first packet of a keyframe the
//! scalability structure (SS: each spatial layer's size and the group of pictures);
//! and what a receiver reads back from them ([`Vp9Reception`]), with
//! `chorus_core::vp9`'s parser, the one the server forwards by.
//!
//! No VP9 bitstream follows the descriptor: filler, and the send-time stamp
//! ([`crate::latency`]), since nothing on the way decodes it.

use bytes::{BufMut, Bytes, BytesMut};
use chorus_core::vp9::{Vp9Descriptor, Vp9Structure};

use crate::latency::{STAMP_LEN, fill_stamped};

/// Bits of the descriptor's first byte (F, flexible mode, stays clear).
const I: u8 = 0x80;
const P: u8 = 0x40;
const L: u8 = 0x20;
const B: u8 = 0x08;
const E: u8 = 0x04;
const V: u8 = 0x02;
const Z: u8 = 0x01;
/// First byte, 15-bit picture id, layer indices, TL0PICIDX: every packet's descriptor.
const DESCRIPTOR_LEN: usize = 5;

/// One picture of the SS's group: its temporal layer, whether a receiver may start that
/// layer there (U), and how many pictures back its one reference is (P_DIFF).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupPicture {
    pub tid: u8,
    pub switching_up: bool,
    pub ref_diff: u8,
}

/// The scalability structure a keyframe carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vp9Scalability {
    /// Width and height of each spatial layer, lowest first (1 to 8 layers).
    pub sizes: Vec<(u16, u16)>,
    /// The temporal pattern, one entry per picture, repeating from the keyframe on.
    pub group: Vec<GroupPicture>,
}

impl Vp9Scalability {
    /// Three temporal layers in the order 0-2-1-2 (libwebrtc's `kTemporalStructureMode3`):
    /// TL0 refers to the TL0 four pictures back, TL1 to the TL0 two back, each TL2 to the
    /// picture just before; every picture above TL0 is a switching up point.
    pub const T3: [GroupPicture; 4] = [
        GroupPicture {
            tid: 0,
            switching_up: false,
            ref_diff: 4,
        },
        GroupPicture {
            tid: 2,
            switching_up: true,
            ref_diff: 1,
        },
        GroupPicture {
            tid: 1,
            switching_up: true,
            ref_diff: 2,
        },
        GroupPicture {
            tid: 2,
            switching_up: true,
            ref_diff: 1,
        },
    ];

    /// One spatial and one temporal layer (L1T1): each picture refers to the one before.
    pub fn single(size: (u16, u16)) -> Self {
        Self {
            sizes: vec![size],
            group: vec![GroupPicture {
                tid: 0,
                switching_up: false,
                ref_diff: 1,
            }],
        }
    }

    /// Bytes [`Vp9Scalability::write`] writes: N_S|Y|G, the sizes, N_G and its entries.
    pub(crate) fn len(&self) -> usize {
        1 + 4 * self.sizes.len() + 1 + 2 * self.group.len()
    }

    fn write(&self, out: &mut BytesMut) {
        let n_s = self.sizes.len().clamp(1, 8) as u8 - 1;
        // Y (sizes follow) and G (the group follows).
        out.put_u8(n_s << 5 | 0x10 | 0x08);
        for &(w, h) in self.sizes.iter().take(8) {
            out.put_u16(w);
            out.put_u16(h);
        }
        out.put_u8(self.group.len() as u8);
        for g in &self.group {
            // TID|U|R|-|-: one reference (R = 1), its P_DIFF in the next byte.
            out.put_u8(g.tid << 5 | u8::from(g.switching_up) << 4 | 1 << 2);
            out.put_u8(g.ref_diff);
        }
    }
}

/// One layer frame: what every one of its packets' descriptors says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp9LayerFrame {
    /// 15 bits.
    pub picture_id: u16,
    pub tl0_pic_idx: u8,
    pub sid: u8,
    pub tid: u8,
    pub switching_up: bool,
    /// Of a keyframe: no inter-picture prediction (P clear); the layers above the base
    /// are predicted from the one below (D), which is why `_KEY` keys them together.
    pub keyframe: bool,
    /// The picture's highest spatial layer.
    pub top: bool,
}

impl Vp9LayerFrame {
    /// The descriptor of one of its packets: B on the first, E on the last, the SS (`ss`)
    /// on the first when given.
    fn descriptor(
        &self,
        begins: bool,
        ends: bool,
        ss: Option<&Vp9Scalability>,
        out: &mut BytesMut,
    ) {
        let mut first = I | L;
        if !self.keyframe {
            first |= P;
        }
        if begins {
            first |= B;
        }
        if ends {
            first |= E;
        }
        if ss.is_some() {
            first |= V;
        }
        // In L3T3_KEY only a keyframe's lower layers are references for the one above.
        if self.top || !self.keyframe {
            first |= Z;
        }
        out.put_u8(first);
        out.put_u16(0x8000 | (self.picture_id & 0x7fff));
        let d = self.keyframe && self.sid > 0;
        out.put_u8(
            (self.tid & 0x07) << 5
                | u8::from(self.switching_up) << 4
                | (self.sid & 0x07) << 1
                | u8::from(d),
        );
        out.put_u8(self.tl0_pic_idx);
        if let Some(ss) = ss {
            ss.write(out);
        }
    }
}

/// Smallest packet that carries the descriptor, the SS `ss` and a stamp.
pub(crate) fn vp9_min_packet(ss: &Vp9Scalability) -> usize {
    DESCRIPTOR_LEN + ss.len() + STAMP_LEN
}

/// The RTP payloads of one layer frame of about `bytes` payload bytes, in equal packets
/// of at most `max_packet` (and at least [`vp9_min_packet`]); the first carries `ss`
/// (give it for the base layer of a keyframe), and `stamp` ends every packet with room
/// for it after the descriptor.
pub fn vp9_layer_payloads(
    frame: &Vp9LayerFrame,
    ss: Option<&Vp9Scalability>,
    bytes: usize,
    max_packet: usize,
    stamp: Option<&[u8; STAMP_LEN]>,
) -> Vec<Bytes> {
    let min = ss.map_or(DESCRIPTOR_LEN + STAMP_LEN, vp9_min_packet);
    let max_packet = max_packet.max(min);
    let count = bytes.div_ceil(max_packet).max(1);
    let size = bytes.div_ceil(count).max(min);
    (0..count)
        .map(|i| {
            let mut payload = BytesMut::with_capacity(size);
            let ss = ss.filter(|_| i == 0);
            frame.descriptor(i == 0, i + 1 == count, ss, &mut payload);
            fill_stamped(&mut payload, size, stamp);
            payload.freeze()
        })
        .collect()
}

/// What a receiver learns of a VP9 stream from its descriptors: where keyframes start,
/// and the size of the highest spatial layer of each picture received, which tells the
/// spatial layers the server forwards (the SS it passes on lists all the publisher's).
#[derive(Debug, Clone, Default)]
pub(crate) struct Vp9Reception {
    structure: Option<Vp9Structure>,
    /// Highest SID seen of the picture being received.
    picture_top: Option<u8>,
}

impl Vp9Reception {
    /// Reads one packet's payload (`marker`: the RTP marker, the picture's last packet
    /// forwarded). Whether it starts a keyframe, and at a picture's end the size of its
    /// highest layer (`None` until an SS gave the sizes).
    pub(crate) fn on_payload(
        &mut self,
        payload: &[u8],
        marker: bool,
    ) -> (bool, Option<(u16, u16)>) {
        let Some(d) = Vp9Descriptor::parse(payload) else {
            return (false, None);
        };
        if d.structure.is_some() {
            self.structure = d.structure;
        }
        if d.starts_picture() {
            self.picture_top = None;
        }
        let top = self.picture_top.map_or(d.sid(), |t| t.max(d.sid()));
        self.picture_top = Some(top);
        let size = marker
            .then(|| self.structure.and_then(|s| s.resolution(top)))
            .flatten();
        (d.starts_keyframe(), size)
    }
}

#[cfg(test)]
mod tests;
