//! Chorus's own RTCP reading and writing (RFC 3550 §6, RFC 4585, RFC 5104, RFC 5506).
//!
//! Sans-I/O and by hand: plain (already decrypted) compound packets in, [`Feedback`]
//! values out; values in, bytes appended to a `Vec<u8>` out, so a caller builds a
//! compound by calling several writers on one buffer.
//!
//! Reading walks the compound by each packet's length field and decodes what Chorus
//! uses. A packet it does not know (APP, XR, other feedback formats) or that is
//! malformed is counted in [`Parsed`] and skipped, and the packets around it are still
//! read. Only a compound whose very first header cannot be framed is an error
//! ([`RtcpError`]). Nothing here panics on any input: every read is bounds-checked.

use chorus_core::reports::ReportBlock;
use std::sync::atomic::{AtomicU64, Ordering};

const VERSION: u8 = 2;
const HEADER_LEN: usize = 4;

const PT_SR: u8 = 200;
const PT_RR: u8 = 201;
const PT_SDES: u8 = 202;
const PT_BYE: u8 = 203;
/// Transport-layer feedback (RFC 4585 §6.2).
const PT_RTPFB: u8 = 205;
/// Payload-specific feedback (RFC 4585 §6.3).
const PT_PSFB: u8 = 206;

const FMT_NACK: u8 = 1;
const FMT_TWCC: u8 = 15;
const FMT_PLI: u8 = 1;
const FMT_FIR: u8 = 4;
/// Application-layer feedback; REMB is the one Chorus reads.
const FMT_AFB: u8 = 15;
const REMB_ID: &[u8; 4] = b"REMB";

const SDES_CNAME: u8 = 1;
/// The report count is 5 bits: more blocks go in further RR packets.
const MAX_BLOCKS: usize = 31;
/// The cumulative loss is a signed 24-bit field.
const MAX_CUMULATIVE_LOST: u32 = 0x7f_ffff;
const BLOCK_LEN: usize = 24;

/// What one RTCP packet of a compound tells Chorus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feedback {
    /// RFC 4585 PLI (PT 206 FMT 1).
    Pli {
        sender_ssrc: u32,
        media_ssrc: u32,
    },
    /// RFC 5104 FIR (PT 206 FMT 4): one per FCI entry, whose SSRC is the media's.
    Fir {
        sender_ssrc: u32,
        media_ssrc: u32,
        seq: u8,
    },
    /// RFC 4585 generic NACK (PT 205 FMT 1): every lost sequence number of all its
    /// PID+BLP pairs, in order.
    Nack {
        sender_ssrc: u32,
        media_ssrc: u32,
        lost: Vec<u16>,
    },
    /// SR sender info (PT 200); its report blocks come as separate `Report` values.
    SenderReport {
        ssrc: u32,
        ntp: u64,
        rtp_timestamp: u32,
        packets: u32,
        octets: u32,
    },
    /// One report block of an SR or RR (PT 201), by the reporter.
    Report {
        reporter: u32,
        block: ReportBlockIn,
    },
    /// REMB (PT 206 FMT 15 "REMB"), saturated at `u64::MAX`.
    Remb {
        bitrate_bps: u64,
        ssrcs: Vec<u32>,
    },
    /// Transport-wide CC feedback (PT 205 FMT 15): every number it reports, in order,
    /// with its arrival time on the reporter's clock (see [`twcc::read_feedback`]).
    TransportCc {
        sender_ssrc: u32,
        media_ssrc: u32,
        packets: Vec<chorus_core::bwe::PacketResult>,
    },
    Bye {
        ssrcs: Vec<u32>,
    },
}

/// A received report block (RFC 3550 §6.4.1), about the stream `ssrc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlockIn {
    pub ssrc: u32,
    pub fraction_lost: u8,
    /// Signed: duplicates can make it negative.
    pub cumulative_lost: i32,
    pub highest_seq: u32,
    pub jitter: u32,
    pub last_sr: u32,
    pub delay_since_last_sr: u32,
}

/// A report block to send, with the SSRC of the stream it is about (which
/// [`ReportBlock`] does not carry: the statistics do not know their stream's SSRC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceReport {
    pub ssrc: u32,
    pub block: ReportBlock,
}

/// How the packets of a compound were taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Decoded (SDES is checked for framing only: Chorus needs none of its items).
    pub read: u32,
    /// Well framed, of a type or format Chorus does not read (APP, XR, …).
    pub unknown: u32,
    /// Too short for its type, bad padding, or an unframeable tail (counted once).
    pub malformed: u32,
}

/// What the server's connections read of inbound RTCP, all of them together: packets
/// (compounds taken apart) read, and skipped by reason. For operators (`GET /v1/media`).
#[derive(Debug, Default)]
pub struct RtcpTotals {
    read: AtomicU64,
    unknown_type: AtomicU64,
    malformed: AtomicU64,
}

impl RtcpTotals {
    /// Counts one compound: what [`parse_compound`] made of it (`Err`: nothing framed).
    pub fn count(&self, parsed: &Result<Parsed, RtcpError>) {
        let add = |c: &AtomicU64, n: u32| {
            if n > 0 {
                c.fetch_add(u64::from(n), Ordering::Relaxed);
            }
        };
        match parsed {
            Ok(p) => {
                add(&self.read, p.read);
                add(&self.unknown_type, p.unknown);
                add(&self.malformed, p.malformed);
            }
            Err(_) => add(&self.malformed, 1),
        }
    }

    pub fn read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    /// Every reason a packet is skipped, with its count (zeros included).
    pub fn skipped(&self) -> [(&'static str, u64); 2] {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        [
            ("unknown_type", get(&self.unknown_type)),
            ("malformed", get(&self.malformed)),
        ]
    }
}

impl Parsed {
    pub fn skipped(&self) -> u32 {
        self.unknown + self.malformed
    }
}

/// Why nothing of a compound could be read: its first packet cannot be framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    #[error("empty RTCP datagram")]
    Empty,
    #[error("{0} bytes are shorter than an RTCP header")]
    ShortHeader(usize),
    #[error("RTCP version {0}, expected 2")]
    Version(u8),
    #[error("RTCP length field says {claimed} bytes, only {available} present")]
    Truncated { claimed: usize, available: usize },
}

/// One packet of a compound, framed: its header fields and body (padding removed).
struct Framed<'a> {
    count: u8,
    pt: u8,
    padding: bool,
    body: &'a [u8],
    /// Header and body and padding: where the next packet starts.
    size: usize,
}

fn frame(data: &[u8]) -> Result<Framed<'_>, RtcpError> {
    let [b0, pt, l0, l1, ..] = *data else {
        return Err(if data.is_empty() {
            RtcpError::Empty
        } else {
            RtcpError::ShortHeader(data.len())
        });
    };
    if b0 >> 6 != VERSION {
        return Err(RtcpError::Version(b0 >> 6));
    }
    let size = (usize::from(u16::from_be_bytes([l0, l1])) + 1) * 4;
    if size > data.len() {
        return Err(RtcpError::Truncated {
            claimed: size,
            available: data.len(),
        });
    }
    Ok(Framed {
        count: b0 & 0x1f,
        pt,
        padding: b0 & 0x20 != 0,
        body: &data[HEADER_LEN..size],
        size,
    })
}

/// Reads the compound `data`, appending what it says to `out` in packet order.
///
/// `Err` only when the first packet cannot be framed; a later packet that cannot be
/// framed ends the walk and is counted as malformed, what came before is kept.
pub fn parse_compound(data: &[u8], out: &mut Vec<Feedback>) -> Result<Parsed, RtcpError> {
    let mut parsed = Parsed::default();
    let mut rest = frame(data)?;
    let mut offset = 0;
    loop {
        match decode(&rest, out) {
            Ok(true) => parsed.read += 1,
            Ok(false) => parsed.unknown += 1,
            Err(Malformed) => parsed.malformed += 1,
        }
        offset += rest.size;
        if offset == data.len() {
            return Ok(parsed);
        }
        match frame(&data[offset..]) {
            Ok(next) => rest = next,
            Err(_) => {
                parsed.malformed += 1;
                return Ok(parsed);
            }
        }
    }
}

/// A packet too short for its type, or with an impossible padding count.
struct Malformed;

/// Decodes one packet into `out`: `Ok(false)` if Chorus does not read its kind.
/// Nothing is pushed for a malformed packet, so a partial decode never leaks out.
fn decode(p: &Framed<'_>, out: &mut Vec<Feedback>) -> Result<bool, Malformed> {
    let body = if p.padding {
        // RFC 3550 §6.4.1: the last octet counts the padding octets, itself included.
        let pad = usize::from(*p.body.last().ok_or(Malformed)?);
        if pad == 0 || pad > p.body.len() {
            return Err(Malformed);
        }
        &p.body[..p.body.len() - pad]
    } else {
        p.body
    };
    let r = Reader(body);
    let count = usize::from(p.count);
    match (p.pt, p.count) {
        (PT_SR, _) => {
            let ssrc = r.u32(0)?;
            let blocks = blocks(&r, 24, count, ssrc)?;
            out.push(Feedback::SenderReport {
                ssrc,
                ntp: u64::from(r.u32(4)?) << 32 | u64::from(r.u32(8)?),
                rtp_timestamp: r.u32(12)?,
                packets: r.u32(16)?,
                octets: r.u32(20)?,
            });
            out.extend(blocks);
        }
        (PT_RR, _) => {
            let ssrc = r.u32(0)?;
            out.extend(blocks(&r, 4, count, ssrc)?);
        }
        (PT_SDES, _) => {}
        (PT_BYE, _) => {
            let ssrcs = (0..count).map(|i| r.u32(4 * i)).collect::<Result<_, _>>()?;
            out.push(Feedback::Bye { ssrcs });
        }
        (PT_RTPFB, FMT_NACK) => {
            let (sender_ssrc, media_ssrc) = (r.u32(0)?, r.u32(4)?);
            let fci = body.get(8..).ok_or(Malformed)?.chunks_exact(4);
            if fci.len() == 0 {
                return Err(Malformed); // RFC 4585 §6.2.1: at least one PID+BLP pair
            }
            let mut lost = Vec::new();
            for pair in fci {
                let pid = u16::from_be_bytes([pair[0], pair[1]]);
                let blp = u16::from_be_bytes([pair[2], pair[3]]);
                lost.push(pid);
                let more = (0..16).filter(|bit| blp & (1 << bit) != 0);
                lost.extend(more.map(|bit| pid.wrapping_add(bit + 1)));
            }
            out.push(Feedback::Nack {
                sender_ssrc,
                media_ssrc,
                lost,
            });
        }
        (PT_RTPFB, FMT_TWCC) => {
            let mut packets = Vec::new();
            twcc::read_feedback(body, &mut packets).map_err(|_| Malformed)?;
            out.push(Feedback::TransportCc {
                sender_ssrc: r.u32(0)?,
                media_ssrc: r.u32(4)?,
                packets,
            });
        }
        (PT_PSFB, FMT_PLI) => out.push(Feedback::Pli {
            sender_ssrc: r.u32(0)?,
            media_ssrc: r.u32(4)?,
        }),
        (PT_PSFB, FMT_FIR) => {
            let sender_ssrc = r.u32(0)?;
            let entries = body.get(8..).ok_or(Malformed)?.chunks_exact(8);
            if entries.len() == 0 {
                return Err(Malformed);
            }
            out.extend(entries.map(|e| Feedback::Fir {
                sender_ssrc,
                media_ssrc: u32::from_be_bytes([e[0], e[1], e[2], e[3]]),
                seq: e[4],
            }));
        }
        (PT_PSFB, FMT_AFB) if body.get(8..12) == Some(REMB_ID) => {
            let [n, b0, b1, b2] = r.u32(12)?.to_be_bytes();
            let ssrcs = (0..usize::from(n))
                .map(|i| r.u32(16 + 4 * i))
                .collect::<Result<_, _>>()?;
            let exp = u32::from(b0 >> 2);
            let mantissa = u64::from(u32::from_be_bytes([0, b0 & 3, b1, b2]));
            // An 18-bit mantissa shifted by up to 63 overflows u64: saturate.
            let bitrate_bps = if mantissa.leading_zeros() < exp {
                u64::MAX
            } else {
                mantissa << exp
            };
            out.push(Feedback::Remb { bitrate_bps, ssrcs });
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// The `count` report blocks of `reporter` starting at `at`, all or none.
fn blocks(
    r: &Reader<'_>,
    at: usize,
    count: usize,
    reporter: u32,
) -> Result<Vec<Feedback>, Malformed> {
    (0..count)
        .map(|i| {
            let at = at + i * BLOCK_LEN;
            let [fraction_lost, l0, l1, l2] = r.u32(at + 4)?.to_be_bytes();
            let block = ReportBlockIn {
                ssrc: r.u32(at)?,
                fraction_lost,
                // Sign-extend the 24-bit field.
                cumulative_lost: i32::from_be_bytes([l0, l1, l2, 0]) >> 8,
                highest_seq: r.u32(at + 8)?,
                jitter: r.u32(at + 12)?,
                last_sr: r.u32(at + 16)?,
                delay_since_last_sr: r.u32(at + 20)?,
            };
            Ok(Feedback::Report { reporter, block })
        })
        .collect()
}

/// Bounds-checked big-endian reads of a packet body.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u32(&self, at: usize) -> Result<u32, Malformed> {
        let bytes = self
            .0
            .get(at..at.checked_add(4).ok_or(Malformed)?)
            .ok_or(Malformed)?;
        Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }
}

pub mod twcc;
mod write;

pub use write::{
    write_fir, write_nack, write_pli, write_receiver_report, write_sdes_cname, write_sender_report,
};

#[cfg(test)]
mod tests;
