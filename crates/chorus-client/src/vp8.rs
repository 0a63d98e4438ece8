//! Synthetic VP8 RTP payloads (RFC 7741): the full payload descriptor (15-bit PictureID,
//! TL0PICIDX, TID) and, in the first packet of a frame, the VP8 frame tag (with the
//! start code and size of a keyframe); and the parser that reads them back.
//!
//! Shared by the sender ([`crate::media`]) and the receiver's counters ([`crate::stats`]).

use bytes::{BufMut, Bytes, BytesMut};

use crate::latency::{STAMP_LEN, fill_stamped};

/// Size of the payload descriptor written by [`vp8_descriptor`].
const VP8_DESCRIPTOR_LEN: usize = 6;
/// Frame tag and keyframe start code + size, in the first packet of a VP8 frame.
const VP8_FRAME_HEADER_LEN: usize = 10;
/// Smallest VP8 packet: descriptor, frame header, and the stamp after them.
pub(crate) const VP8_MIN_PACKET: usize = VP8_DESCRIPTOR_LEN + VP8_FRAME_HEADER_LEN + STAMP_LEN;

/// What a VP8 frame's headers say about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp8Frame {
    pub picture_id: u16,
    pub tl0_pic_idx: u8,
    pub keyframe: bool,
    pub width: u16,
    pub height: u16,
}

/// RFC 7741 payload descriptor: X, I (15-bit PictureID), L (TL0PICIDX), T (TID 0, Y).
fn vp8_descriptor(frame: &Vp8Frame, start: bool) -> [u8; VP8_DESCRIPTOR_LEN] {
    let pid = frame.picture_id & 0x7fff;
    [
        0x80 | if start { 0x10 } else { 0 },
        0x80 | 0x40 | 0x20,
        0x80 | (pid >> 8) as u8,
        pid as u8,
        frame.tl0_pic_idx,
        0x20,
    ]
}

/// The RTP payloads of one VP8 frame split into `count` packets of `packet_size` bytes.
/// The first carries the VP8 frame tag (and for a keyframe the start code and size).
pub fn vp8_frame_payloads(frame: &Vp8Frame, count: usize, packet_size: usize) -> Vec<Bytes> {
    vp8_payloads(frame, count, packet_size, None)
}

/// [`vp8_frame_payloads`] with `stamp` over the last bytes of every packet that has
/// room for it after the headers.
pub(crate) fn vp8_payloads(
    frame: &Vp8Frame,
    count: usize,
    packet_size: usize,
    stamp: Option<&[u8; STAMP_LEN]>,
) -> Vec<Bytes> {
    (0..count.max(1))
        .map(|i| {
            let mut payload = BytesMut::with_capacity(packet_size);
            payload.put_slice(&vp8_descriptor(frame, i == 0));
            if i == 0 {
                // RFC 6386 §9.1 frame tag: P (0 = key), version 0, show_frame, first_part_size.
                let first_part_size: u32 = 16;
                let tag = u32::from(!frame.keyframe) | (1 << 4) | (first_part_size << 5);
                payload.put_slice(&tag.to_le_bytes()[..3]);
                if frame.keyframe {
                    payload.put_slice(&[0x9d, 0x01, 0x2a]);
                    payload.put_u16_le(frame.width & 0x3fff);
                    payload.put_u16_le(frame.height & 0x3fff);
                }
            }
            fill_stamped(&mut payload, packet_size, stamp);
            payload.freeze()
        })
        .collect()
}

/// Parses an RTP payload's VP8 descriptor. `Some(frame)` for the first packet of a frame
/// (S=1, PID=0) with the picture id and whether it starts a keyframe; `None` otherwise
/// or when the payload is malformed.
pub fn parse_vp8_frame_start(payload: &[u8]) -> Option<Vp8Frame> {
    let first = *payload.first()?;
    let mut at = 1;
    let (mut picture_id, mut tl0_pic_idx) = (0, 0);
    if first & 0x80 != 0 {
        let ext = *payload.get(at)?;
        at += 1;
        if ext & 0x80 != 0 {
            let hi = *payload.get(at)?;
            if hi & 0x80 != 0 {
                picture_id = (u16::from(hi & 0x7f) << 8) | u16::from(*payload.get(at + 1)?);
                at += 2;
            } else {
                picture_id = u16::from(hi);
                at += 1;
            }
        }
        if ext & 0x40 != 0 {
            tl0_pic_idx = *payload.get(at)?;
            at += 1;
        }
        if ext & 0x30 != 0 {
            at += 1;
        }
    }
    let start = first & 0x10 != 0 && first & 0x07 == 0;
    if !start {
        return None;
    }
    let tag = payload.get(at..at + 3)?;
    let keyframe = tag[0] & 0x01 == 0;
    let (width, height) = match (keyframe, payload.get(at + 3..at + 10)) {
        (true, Some([0x9d, 0x01, 0x2a, w0, w1, h0, h1])) => (
            u16::from_le_bytes([*w0, *w1]) & 0x3fff,
            u16::from_le_bytes([*h0, *h1]) & 0x3fff,
        ),
        _ => (0, 0),
    };
    Some(Vp8Frame {
        picture_id,
        tl0_pic_idx,
        keyframe,
        width,
        height,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_payloads_round_trip_through_the_parser() {
        let cases = [
            // (picture_id, keyframe, packets)
            (0u16, true, 6usize),
            (0x7fff, false, 2),
            (127, false, 1),
            (128, true, 3),
        ];
        for (picture_id, keyframe, count) in cases {
            let frame = Vp8Frame {
                picture_id,
                tl0_pic_idx: 9,
                keyframe,
                width: 640,
                height: 360,
            };
            let payloads = vp8_frame_payloads(&frame, count, 500);
            assert_eq!(payloads.len(), count);
            assert!(payloads.iter().all(|p| p.len() == 500));
            let parsed = parse_vp8_frame_start(&payloads[0]).expect("first packet starts a frame");
            let expected_size = if keyframe { (640, 360) } else { (0, 0) };
            assert_eq!(
                parsed,
                Vp8Frame {
                    width: expected_size.0,
                    height: expected_size.1,
                    ..frame
                },
                "case {picture_id} {keyframe}"
            );
            for later in &payloads[1..] {
                assert_eq!(parse_vp8_frame_start(later), None);
            }
        }
    }

    #[test]
    fn vp8_parser_survives_garbage() {
        let inputs: [&[u8]; 6] = [
            &[],
            &[0x80],
            &[0x90, 0x80],
            &[0x90, 0x80, 0x81],
            &[0x10],
            &[0x10, 0x00, 0x00],
        ];
        for input in inputs {
            // Truncated descriptors are rejected; a bare S bit with a tag is a frame start.
            let _ = parse_vp8_frame_start(input);
        }
        assert_eq!(parse_vp8_frame_start(&[0x90, 0x80]), None);
        assert!(parse_vp8_frame_start(&[0x10, 0x00, 0x00, 0x00]).is_some_and(|f| f.keyframe));
    }
}
