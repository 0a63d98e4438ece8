//! Synthetic H.264 RTP payloads (RFC 6184, packetization-mode 1), shaped like a
//! baseline-profile encoder's: a keyframe is a STAP-A with SPS and PPS followed by an IDR
//! slice fragmented in FU-A packets; a delta frame is one non-IDR slice, sent as a single
//! NAL unit packet when it fits and in FU-A packets otherwise.
//!
//! The SPS and PPS are real (they parse, and the SPS gives the frame size); the slices
//! start with a plausible slice header and are filler after it.

use bytes::{BufMut, Bytes, BytesMut};

use crate::latency::STAMP_LEN;

/// NAL unit types (RFC 6184 §5.2, H.264 Table 7-1) this generator writes.
pub const NAL_SLICE: u8 = 1;
pub const NAL_IDR: u8 = 5;
pub const NAL_SPS: u8 = 7;
pub const NAL_PPS: u8 = 8;
pub const NAL_STAP_A: u8 = 24;
pub const NAL_FU_A: u8 = 28;
/// nal_ref_idc of reference pictures and parameter sets.
const NRI_HIGH: u8 = 0x60;
/// Smallest useful RTP payload: an FU-A header and room for a stamp after it.
pub const MIN_PACKET: usize = 2 + STAMP_LEN + 1;
/// Baseline, constraint sets 0–2, level 3.1: what `profile-level-id=42e01f` announces.
const PROFILE_IDC: u8 = 66;
const CONSTRAINTS: u8 = 0xe0;
const LEVEL_IDC: u8 = 31;

/// One synthetic H.264 access unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct H264Frame {
    pub keyframe: bool,
    pub width: u16,
    pub height: u16,
}

/// The RTP payloads of one access unit: about `bytes` of coded slice data, no payload
/// above `max_packet` bytes. `stamp` is written over the last bytes of every packet that
/// carries slice filler (not the STAP-A, whose NAL units are all parameter sets).
pub fn h264_frame_payloads(
    frame: &H264Frame,
    bytes: usize,
    max_packet: usize,
    stamp: Option<&[u8; STAMP_LEN]>,
) -> Vec<Bytes> {
    let max_packet = max_packet.max(MIN_PACKET);
    let mut payloads = Vec::new();
    let slice_type = if frame.keyframe {
        let sps = sps(frame.width, frame.height);
        let pps = pps();
        let mut stap = BytesMut::with_capacity(1 + 4 + sps.len() + pps.len());
        stap.put_u8(NRI_HIGH | NAL_STAP_A);
        for nal in [&sps, &pps] {
            stap.put_u16(nal.len() as u16);
            stap.put_slice(nal);
        }
        payloads.push(stap.freeze());
        NAL_IDR
    } else {
        NAL_SLICE
    };
    let nal_header = NRI_HIGH | slice_type;
    // slice_header(): first_mb_in_slice 0, slice_type I (7) or P (5), pps 0, frame_num.
    let header: &[u8] = if frame.keyframe {
        &[0x88, 0x84, 0x00]
    } else {
        &[0x9a, 0x02, 0x00]
    };
    let body_len = bytes.max(header.len() + STAMP_LEN);
    let body = |chunk: std::ops::Range<usize>, out: &mut BytesMut| {
        for at in chunk {
            out.put_u8(header.get(at).copied().unwrap_or(0x55));
        }
    };
    if body_len < max_packet {
        let mut single = BytesMut::with_capacity(1 + body_len);
        single.put_u8(nal_header);
        body(0..body_len, &mut single);
        put_stamp(&mut single, stamp, 1 + header.len());
        payloads.push(single.freeze());
        return payloads;
    }
    // FU-A: the NAL header byte is not sent; its F/NRI go in the indicator, its type in
    // the FU header. Fragments are of equal size, as an encoder's packetizer makes them.
    let room = max_packet - 2;
    let count = body_len.div_ceil(room);
    let chunk = body_len.div_ceil(count);
    for i in 0..count {
        let range = i * chunk..((i + 1) * chunk).min(body_len);
        let mut fu = BytesMut::with_capacity(2 + range.len());
        fu.put_u8((nal_header & 0xe0) | NAL_FU_A);
        let start = if i == 0 { 0x80 } else { 0 };
        let end = if i + 1 == count { 0x40 } else { 0 };
        fu.put_u8(start | end | slice_type);
        let keep = if i == 0 { 2 + header.len() } else { 2 };
        body(range, &mut fu);
        put_stamp(&mut fu, stamp, keep);
        payloads.push(fu.freeze());
    }
    payloads
}

/// Overwrites the last bytes with the stamp if they are filler (after `keep` bytes).
fn put_stamp(payload: &mut BytesMut, stamp: Option<&[u8; STAMP_LEN]>, keep: usize) {
    if let Some(stamp) = stamp {
        let len = payload.len();
        if len >= keep + STAMP_LEN {
            payload[len - STAMP_LEN..].copy_from_slice(stamp);
        }
    }
}

/// What an RTP payload says about the frame it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct H264Payload {
    /// Type of the (first) NAL unit carried, after unwrapping FU-A.
    pub nal_type: u8,
    /// The first packet of a NAL unit (single, STAP-A, or FU-A with S).
    pub start: bool,
    /// Carries an SPS or an IDR slice: a decoder can start here.
    pub keyframe: bool,
}

/// Parses a payload's NAL and FU headers; `None` for an empty payload, a forbidden bit, or
/// a truncated aggregation or fragmentation header.
pub fn parse_h264_payload(payload: &[u8]) -> Option<H264Payload> {
    let first = *payload.first()?;
    if first & 0x80 != 0 {
        return None;
    }
    match first & 0x1f {
        NAL_STAP_A => {
            let mut at = 1;
            let mut types = Vec::new();
            while at + 2 < payload.len() {
                let size = usize::from(u16::from_be_bytes([payload[at], payload[at + 1]]));
                let nal = payload.get(at + 2..at + 2 + size)?;
                types.push(*nal.first()? & 0x1f);
                at += 2 + size;
            }
            Some(H264Payload {
                nal_type: *types.first()?,
                start: true,
                keyframe: types.iter().any(|t| matches!(*t, NAL_SPS | NAL_IDR)),
            })
        }
        NAL_FU_A => {
            let fu = *payload.get(1)?;
            let nal_type = fu & 0x1f;
            Some(H264Payload {
                nal_type,
                start: fu & 0x80 != 0,
                keyframe: nal_type == NAL_IDR,
            })
        }
        nal_type => Some(H264Payload {
            nal_type,
            start: true,
            keyframe: matches!(nal_type, NAL_SPS | NAL_IDR),
        }),
    }
}

/// A baseline SPS (NAL header included) for a `width` × `height` picture, cropped from
/// whole macroblocks as the standard requires.
pub fn sps(width: u16, height: u16) -> Vec<u8> {
    let (width, height) = (u32::from(width.max(2)), u32::from(height.max(2)));
    let (mbs_w, mbs_h) = (width.div_ceil(16), height.div_ceil(16));
    // Crop units of 4:2:0 frame pictures are 2 luma samples both ways.
    let (crop_right, crop_bottom) = ((mbs_w * 16 - width) / 2, (mbs_h * 16 - height) / 2);
    let mut bits = BitWriter::default();
    bits.bits(u32::from(PROFILE_IDC), 8);
    bits.bits(u32::from(CONSTRAINTS), 8);
    bits.bits(u32::from(LEVEL_IDC), 8);
    bits.ue(0); // seq_parameter_set_id
    bits.ue(0); // log2_max_frame_num_minus4
    bits.ue(2); // pic_order_cnt_type: no B frames
    bits.ue(1); // max_num_ref_frames
    bits.bits(0, 1); // gaps_in_frame_num_value_allowed_flag
    bits.ue(mbs_w - 1);
    bits.ue(mbs_h - 1);
    bits.bits(1, 1); // frame_mbs_only_flag
    bits.bits(1, 1); // direct_8x8_inference_flag
    let crop = crop_right > 0 || crop_bottom > 0;
    bits.bits(u32::from(crop), 1);
    if crop {
        for offset in [0, crop_right, 0, crop_bottom] {
            bits.ue(offset);
        }
    }
    bits.bits(0, 1); // vui_parameters_present_flag
    bits.nal(NRI_HIGH | NAL_SPS)
}

/// A baseline PPS (NAL header included) referring to SPS 0.
pub fn pps() -> Vec<u8> {
    let mut bits = BitWriter::default();
    bits.ue(0); // pic_parameter_set_id
    bits.ue(0); // seq_parameter_set_id
    bits.bits(0, 1); // entropy_coding_mode_flag: CAVLC
    bits.bits(0, 1); // bottom_field_pic_order_in_frame_present_flag
    bits.ue(0); // num_slice_groups_minus1
    bits.ue(0); // num_ref_idx_l0_default_active_minus1
    bits.ue(0); // num_ref_idx_l1_default_active_minus1
    bits.bits(0, 1); // weighted_pred_flag
    bits.bits(0, 2); // weighted_bipred_idc
    bits.ue(0); // pic_init_qp_minus26 (se 0)
    bits.ue(0); // pic_init_qs_minus26 (se 0)
    bits.ue(0); // chroma_qp_index_offset (se 0)
    bits.bits(1, 1); // deblocking_filter_control_present_flag
    bits.bits(0, 1); // constrained_intra_pred_flag
    bits.bits(0, 1); // redundant_pic_cnt_present_flag
    bits.nal(NRI_HIGH | NAL_PPS)
}

/// MSB-first bit writer for RBSPs.
#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    used: u32,
}

impl BitWriter {
    fn bits(&mut self, value: u32, count: u32) {
        for i in (0..count).rev() {
            if self.used & 7 == 0 {
                self.bytes.push(0);
            }
            let bit = ((value >> i) & 1) as u8;
            if let Some(last) = self.bytes.last_mut() {
                *last |= bit << (7 - self.used % 8);
            }
            self.used += 1;
        }
    }

    /// Unsigned Exp-Golomb.
    fn ue(&mut self, value: u32) {
        let coded = value + 1;
        let len = u32::BITS - coded.leading_zeros();
        self.bits(0, len - 1);
        self.bits(coded, len);
    }

    /// The NAL unit: header, RBSP with its stop bit, emulation prevention applied.
    fn nal(mut self, header: u8) -> Vec<u8> {
        self.bits(1, 1);
        let mut out = vec![header];
        let mut zeros = 0;
        for byte in self.bytes {
            if zeros >= 2 && byte <= 3 {
                out.push(3);
                zeros = 0;
            }
            zeros = if byte == 0 { zeros + 1 } else { 0 };
            out.push(byte);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latency::{read_stamp, stamp};

    fn bit(rbsp: &[u8], at: &mut usize) -> Option<u32> {
        let b = (rbsp.get(*at / 8)? >> (7 - *at % 8)) & 1;
        *at += 1;
        Some(u32::from(b))
    }

    fn ue(rbsp: &[u8], at: &mut usize) -> Option<u32> {
        let mut zeros = 0;
        while bit(rbsp, at)? == 0 {
            zeros += 1;
        }
        let mut value = 1;
        for _ in 0..zeros {
            value = (value << 1) | bit(rbsp, at)?;
        }
        Some(value - 1)
    }

    /// Reads back what [`sps`] writes (baseline only): the picture size after cropping.
    fn sps_size(nal: &[u8]) -> Option<(u32, u32)> {
        assert_eq!(nal.first()? & 0x1f, NAL_SPS);
        let mut rbsp = Vec::new();
        let mut zeros = 0;
        for byte in &nal[1..] {
            if zeros >= 2 && *byte == 3 {
                zeros = 0;
                continue;
            }
            zeros = if *byte == 0 { zeros + 1 } else { 0 };
            rbsp.push(*byte);
        }
        assert_eq!(rbsp[..3], [PROFILE_IDC, CONSTRAINTS, LEVEL_IDC]);
        let at = &mut 24;
        let _sps_id = ue(&rbsp, at)?;
        let _log2_max_frame_num = ue(&rbsp, at)?;
        assert_eq!(ue(&rbsp, at)?, 2, "pic_order_cnt_type");
        let _refs = ue(&rbsp, at)?;
        let _gaps = bit(&rbsp, at)?;
        let mbs_w = ue(&rbsp, at)? + 1;
        let mbs_h = ue(&rbsp, at)? + 1;
        assert_eq!(bit(&rbsp, at)?, 1, "frame_mbs_only");
        let _direct_8x8 = bit(&rbsp, at)?;
        let (mut right, mut bottom) = (0, 0);
        if bit(&rbsp, at)? == 1 {
            let _left = ue(&rbsp, at)?;
            right = ue(&rbsp, at)?;
            let _top = ue(&rbsp, at)?;
            bottom = ue(&rbsp, at)?;
        }
        assert_eq!(bit(&rbsp, at)?, 0, "vui");
        assert_eq!(bit(&rbsp, at)?, 1, "rbsp_stop_one_bit");
        Some((mbs_w * 16 - 2 * right, mbs_h * 16 - 2 * bottom))
    }

    /// Undoes RFC 6184 packetization: the NAL units of an access unit, in order.
    fn depacketize(payloads: &[Bytes]) -> Vec<Vec<u8>> {
        let mut nals = Vec::new();
        let mut fragment: Option<Vec<u8>> = None;
        for payload in payloads {
            match payload[0] & 0x1f {
                NAL_STAP_A => {
                    let mut at = 1;
                    while at < payload.len() {
                        let size = usize::from(u16::from_be_bytes([payload[at], payload[at + 1]]));
                        nals.push(payload[at + 2..at + 2 + size].to_vec());
                        at += 2 + size;
                    }
                    assert_eq!(at, payload.len(), "STAP-A sizes add up");
                }
                NAL_FU_A => {
                    let (indicator, header) = (payload[0], payload[1]);
                    if header & 0x80 != 0 {
                        assert!(fragment.is_none(), "start inside a fragmented NAL");
                        fragment = Some(vec![(indicator & 0xe0) | (header & 0x1f)]);
                    }
                    let nal = fragment.as_mut().expect("FU-A continues a started NAL");
                    nal.extend_from_slice(&payload[2..]);
                    if header & 0x40 != 0 {
                        nals.extend(fragment.take());
                    }
                }
                _ => nals.push(payload.to_vec()),
            }
        }
        assert!(fragment.is_none(), "unfinished FU-A");
        nals
    }

    #[test]
    fn sps_round_trips_the_picture_size() {
        for (w, h) in [
            (640, 360),
            (1280, 720),
            (320, 180),
            (1920, 1080),
            (16, 16),
            (2, 2),
        ] {
            let nal = sps(w, h);
            assert_eq!(
                sps_size(&nal),
                Some((u32::from(w), u32::from(h))),
                "{w}x{h}"
            );
        }
        assert_eq!(pps()[0], NRI_HIGH | NAL_PPS);
    }

    #[test]
    fn emulation_prevention_breaks_start_codes() {
        let mut bits = BitWriter::default();
        bits.bits(0, 24);
        bits.bits(0x01, 8);
        assert_eq!(bits.nal(0x67), [0x67, 0, 0, 3, 0, 1, 0x80]);
    }

    #[test]
    fn frames_packetize_as_rfc_6184_describes() {
        let at = stamp(crate::latency::epoch());
        let cases = [
            // (keyframe, slice bytes, max packet, packets, NAL types)
            (true, 6000, 1200, 1 + 6, vec![NAL_SPS, NAL_PPS, NAL_IDR]),
            (true, 900, 1200, 1 + 1, vec![NAL_SPS, NAL_PPS, NAL_IDR]),
            (false, 900, 1200, 1, vec![NAL_SLICE]),
            (false, 1199, 1200, 1, vec![NAL_SLICE]),
            (false, 1200, 1200, 2, vec![NAL_SLICE]),
            (false, 2500, 1000, 3, vec![NAL_SLICE]),
            (false, 0, 1200, 1, vec![NAL_SLICE]),
        ];
        for (keyframe, bytes, max, count, types) in cases {
            let frame = H264Frame {
                keyframe,
                width: 640,
                height: 360,
            };
            let payloads = h264_frame_payloads(&frame, bytes, max, Some(&at));
            let label = format!("key={keyframe} bytes={bytes} max={max}");
            assert_eq!(payloads.len(), count, "{label}");
            assert!(payloads.iter().all(|p| p.len() <= max), "{label}");
            let nals = depacketize(&payloads);
            let nal_types: Vec<u8> = nals.iter().map(|n| n[0] & 0x1f).collect();
            assert_eq!(nal_types, types, "{label}");
            let slice = nals.last().unwrap();
            assert_eq!(slice.len(), 1 + bytes.max(3 + STAMP_LEN), "{label}");
            if keyframe {
                assert_eq!(sps_size(&nals[0]), Some((640, 360)));
                assert_eq!(&payloads[0][..], {
                    let (s, p) = (sps(640, 360), pps());
                    let mut stap = vec![NRI_HIGH | NAL_STAP_A];
                    for nal in [s, p] {
                        stap.extend((nal.len() as u16).to_be_bytes());
                        stap.extend(nal);
                    }
                    stap
                });
            }
            // Every slice-carrying packet has the stamp; parameter sets do not.
            for payload in &payloads {
                let parsed = parse_h264_payload(payload).expect("parses");
                assert_eq!(parsed.keyframe, keyframe, "{label}");
                let stamped = read_stamp(payload).is_some();
                assert_eq!(stamped, parsed.nal_type != NAL_SPS, "{label}");
            }
        }
    }

    #[test]
    fn parser_reads_headers_and_survives_garbage() {
        let cases: [(&[u8], Option<H264Payload>); 8] = [
            (&[], None),
            (&[0x80], None),
            (&[0x7c], None),
            (
                &[0x7c, 0x85],
                Some(H264Payload {
                    nal_type: NAL_IDR,
                    start: true,
                    keyframe: true,
                }),
            ),
            (
                &[0x7c, 0x41],
                Some(H264Payload {
                    nal_type: NAL_SLICE,
                    start: false,
                    keyframe: false,
                }),
            ),
            (&[0x78, 0x00, 0x05, 0x67], None),
            (
                &[0x78, 0x00, 0x01, 0x68],
                Some(H264Payload {
                    nal_type: NAL_PPS,
                    start: true,
                    keyframe: false,
                }),
            ),
            (
                &[0x41, 0x9a],
                Some(H264Payload {
                    nal_type: NAL_SLICE,
                    start: true,
                    keyframe: false,
                }),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_h264_payload(input), expected, "{input:02x?}");
        }
    }
}
