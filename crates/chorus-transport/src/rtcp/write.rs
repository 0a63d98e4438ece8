//! Writing: each function appends one packet (or a few) to `out`, so a caller builds a
//! compound by calling several on one buffer. RFC 3550 §6.1 wants a compound to start
//! with an SR or RR, except reduced-size RTCP (RFC 5506) of feedback alone.

use chorus_core::reports::SenderInfo;

use super::{
    BLOCK_LEN, FMT_FIR, FMT_NACK, FMT_PLI, MAX_BLOCKS, MAX_CUMULATIVE_LOST, PT_PSFB, PT_RR,
    PT_RTPFB, PT_SDES, PT_SR, SDES_CNAME, SourceReport, VERSION,
};

/// Starts a packet of `body_len` bytes after the header (a multiple of 4).
fn header(out: &mut Vec<u8>, count: u8, pt: u8, body_len: usize) {
    debug_assert!(body_len.is_multiple_of(4) && count <= 31);
    out.push(VERSION << 6 | count);
    out.push(pt);
    let words = u16::try_from(body_len / 4).unwrap_or(u16::MAX);
    out.extend_from_slice(&words.to_be_bytes());
}

fn put(out: &mut Vec<u8>, words: &[u32]) {
    for w in words {
        out.extend_from_slice(&w.to_be_bytes());
    }
}

/// Appends a PLI (RFC 4585 §6.3.1).
pub fn write_pli(out: &mut Vec<u8>, sender_ssrc: u32, media_ssrc: u32) {
    header(out, FMT_PLI, PT_PSFB, 8);
    put(out, &[sender_ssrc, media_ssrc]);
}

/// Appends a FIR (RFC 5104 §4.3.1) with one entry; `seq` must advance per new request.
pub fn write_fir(out: &mut Vec<u8>, sender_ssrc: u32, media_ssrc: u32, seq: u8) {
    header(out, FMT_FIR, PT_PSFB, 16);
    // The header's media SSRC is unused and SHALL be 0 (RFC 5104 §4.3.1.2).
    put(out, &[sender_ssrc, 0, media_ssrc, u32::from(seq) << 24]);
}

/// Appends a generic NACK (RFC 4585 §6.2.1) for the sequence numbers in `lost`, which
/// may be unordered and repeat: they are ordered around the 16-bit circle (starting
/// after its largest gap, so 65535 comes before 0) and packed into PID+BLP pairs.
/// Writes nothing for an empty list: a NACK needs at least one pair.
pub fn write_nack(out: &mut Vec<u8>, sender_ssrc: u32, media_ssrc: u32, lost: &[u16]) {
    let mut seqs = lost.to_vec();
    seqs.sort_unstable();
    seqs.dedup();
    let Some(&first) = seqs.first() else { return };
    // The largest gap, wrap included, is where the run of losses starts.
    let start = (1..seqs.len())
        .max_by_key(|&i| seqs[i] - seqs[i - 1])
        .filter(|&i| seqs[i] - seqs[i - 1] > first.wrapping_sub(seqs[seqs.len() - 1]))
        .unwrap_or(0);
    seqs.rotate_left(start);
    let mut pairs: Vec<(u16, u16)> = Vec::new();
    for seq in seqs {
        match pairs.last_mut() {
            Some((pid, blp)) if (1..=16).contains(&seq.wrapping_sub(*pid)) => {
                *blp |= 1 << (seq.wrapping_sub(*pid) - 1);
            }
            _ => pairs.push((seq, 0)),
        }
    }
    header(out, FMT_NACK, PT_RTPFB, 8 + 4 * pairs.len());
    put(out, &[sender_ssrc, media_ssrc]);
    for (pid, blp) in pairs {
        put(out, &[u32::from(pid) << 16 | u32::from(blp)]);
    }
}

/// Appends an RR (RFC 3550 §6.4.2); zero blocks make an empty RR, as a compound must
/// start with a report. Over 31 blocks continue in further RRs.
pub fn write_receiver_report(out: &mut Vec<u8>, ssrc: u32, blocks: &[SourceReport]) {
    let mut chunks = blocks.chunks(MAX_BLOCKS);
    report(out, PT_RR, ssrc, &[], chunks.next().unwrap_or_default());
    chunks.for_each(|more| report(out, PT_RR, ssrc, &[], more));
}

/// Appends an SR (RFC 3550 §6.4.1); over 31 blocks continue in further RRs.
pub fn write_sender_report(
    out: &mut Vec<u8>,
    ssrc: u32,
    info: &SenderInfo,
    blocks: &[SourceReport],
) {
    let (ntp_hi, ntp_lo) = ((info.ntp >> 32) as u32, info.ntp as u32);
    let sender_info = [
        ntp_hi,
        ntp_lo,
        info.rtp_timestamp,
        info.packets,
        info.octets,
    ];
    let mut chunks = blocks.chunks(MAX_BLOCKS);
    report(
        out,
        PT_SR,
        ssrc,
        &sender_info,
        chunks.next().unwrap_or_default(),
    );
    chunks.for_each(|more| report(out, PT_RR, ssrc, &[], more));
}

/// One SR or RR: `ssrc`, the sender info (an SR's), then at most 31 blocks.
fn report(out: &mut Vec<u8>, pt: u8, ssrc: u32, sender_info: &[u32], blocks: &[SourceReport]) {
    let body_len = 4 + 4 * sender_info.len() + BLOCK_LEN * blocks.len();
    header(out, blocks.len() as u8, pt, body_len);
    put(out, &[ssrc]);
    put(out, sender_info);
    for SourceReport { ssrc, block: b } in blocks {
        let lost = b.total_lost.min(MAX_CUMULATIVE_LOST);
        let loss = u32::from(b.fraction_lost) << 24 | lost;
        put(
            out,
            &[
                *ssrc,
                loss,
                b.highest_seq,
                b.jitter,
                b.last_sr,
                b.delay_since_last_sr,
            ],
        );
    }
}

/// Appends an SDES with one chunk holding the CNAME (RFC 3550 §6.5.1), cut to the 255
/// bytes an item can hold (at a character boundary).
pub fn write_sdes_cname(out: &mut Vec<u8>, ssrc: u32, cname: &str) {
    let mut len = cname.len().min(255);
    while !cname.is_char_boundary(len) {
        len -= 1;
    }
    // SSRC, type, length, text, then 1 to 4 null octets ending the item list and
    // padding the chunk to 32 bits.
    let nulls = 4 - (4 + 2 + len) % 4;
    let chunk_len = 4 + 2 + len + nulls;
    header(out, 1, PT_SDES, chunk_len);
    put(out, &[ssrc]);
    out.extend_from_slice(&[SDES_CNAME, len as u8]);
    out.extend_from_slice(&cname.as_bytes()[..len]);
    out.extend(std::iter::repeat_n(0, nulls));
}
