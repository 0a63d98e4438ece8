//! Transport-wide congestion control feedback toward a publisher
//! (draft-holmer-rmcat-transport-wide-cc-extensions-01), sans I/O.
//!
//! The publisher numbers every RTP packet it sends with one 16-bit transport-wide
//! sequence number (the header extension [`EXTENSION_URI`]); [`TwccRecorder`] notes
//! when each arrived and, every [`FEEDBACK_INTERVAL`] or sooner after [`BURST`]
//! packets, writes transport feedback (RTCP PT 205 FMT 15) saying which numbers
//! arrived and when, so the browser's send-side bandwidth estimate can run.
//!
//! Sequence numbers are unwrapped to 64 bits. Each feedback reports every number from
//! the one after the last reported up to the highest received, the missing ones as
//! not received. A number that arrives after it was reported is dropped; one that
//! arrives late but before its report fills its slot. Feedback is split into several
//! packets when it would exceed [`MAX_PACKET_LEN`] bytes or 65535 statuses, and when a
//! receive delta does not fit in 16 bits (the next packet gets a new reference time).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{FMT_TWCC, PT_RTPFB, VERSION};

/// The RTP header extension carrying the transport-wide sequence number.
pub const EXTENSION_URI: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
/// Feedback is due this long after the first packet it reports arrived.
pub const FEEDBACK_INTERVAL: Duration = Duration::from_millis(50);
/// This many unreported packets make feedback due at once.
pub const BURST: usize = 100;
/// No feedback packet is longer (padding included).
pub const MAX_PACKET_LEN: usize = 1200;

/// Receive deltas count 250 µs ticks.
const TICK_US: u128 = 250;
/// The reference time counts 64 ms: 256 ticks.
const REF_TICKS: u64 = 256;
const REF_MASK: u64 = 0xff_ffff;
/// Header, both SSRCs, base sequence, status count, reference time, feedback count.
const FIXED_LEN: usize = 20;
const MAX_RUN: usize = 0x1fff;
const MAX_STATUS: u64 = u16::MAX as u64;
/// Unwrapped numbers start here, so a packet older than the first one still fits.
const UNWRAP_BASE: u64 = 1 << 32;
const ONE_BIT_SYMBOLS: usize = 14;
const TWO_BIT_SYMBOLS: usize = 7;

/// The sequence number in the extension's payload (two bytes, big-endian).
pub fn read_extension(payload: &[u8]) -> Option<u16> {
    match *payload {
        [hi, lo] => Some(u16::from_be_bytes([hi, lo])),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Symbol {
    NotReceived = 0,
    Small = 1,
    Large = 2,
}

impl Symbol {
    fn delta_len(self) -> usize {
        self as usize
    }
}

/// Arrivals of one publisher connection and the feedback owed for them.
#[derive(Debug, Clone)]
pub struct TwccRecorder {
    sender_ssrc: u32,
    media_ssrc: u32,
    /// Arrival times are ticks since this: the first packet's arrival.
    origin: Option<Instant>,
    /// The highest unwrapped sequence number seen.
    highest: Option<u64>,
    /// The first unwrapped sequence number not yet reported.
    next: u64,
    /// Whether any feedback was written (before it, an older packet moves `next` back).
    reported: bool,
    /// Received, not yet reported: unwrapped sequence number to ticks since `origin`.
    pending: BTreeMap<u64, u64>,
    /// When the oldest pending packet arrived.
    first_pending: Option<Instant>,
    fb_count: u8,
}

impl TwccRecorder {
    /// `sender_ssrc` is Chorus's own SSRC on this connection, the feedback's sender.
    pub fn new(sender_ssrc: u32) -> Self {
        Self {
            sender_ssrc,
            media_ssrc: 0,
            origin: None,
            highest: None,
            next: 0,
            reported: false,
            pending: BTreeMap::new(),
            first_pending: None,
            fb_count: 0,
        }
    }

    /// A packet with transport-wide sequence number `seq` (from the extension) and
    /// media SSRC `media_ssrc` arrived at `at`.
    pub fn received(&mut self, seq: u16, media_ssrc: u32, at: Instant) {
        let origin = *self.origin.get_or_insert(at);
        let ext = match self.highest {
            None => {
                let ext = UNWRAP_BASE + u64::from(seq);
                self.next = ext;
                ext
            }
            Some(highest) => {
                let step = i64::from(seq.wrapping_sub(highest as u16) as i16);
                highest.saturating_add_signed(step)
            }
        };
        if ext < self.next {
            if self.reported || self.next - ext > MAX_STATUS / 2 {
                return; // already reported as not received (or absurdly old)
            }
            self.next = ext;
        }
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        self.media_ssrc = media_ssrc;
        let ticks = at.saturating_duration_since(origin).as_micros() / TICK_US;
        // A duplicate keeps its first arrival.
        self.pending
            .entry(ext)
            .or_insert(u64::try_from(ticks).unwrap_or(u64::MAX));
        self.first_pending.get_or_insert(at);
    }

    /// When feedback is next due: `None` while nothing awaits reporting.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let first = self.first_pending?;
        Some(if self.pending.len() >= BURST {
            first
        } else {
            first + FEEDBACK_INTERVAL
        })
    }

    /// Appends the feedback due at `now` (one or more PT 205 FMT 15 packets covering
    /// everything received since the last, gaps reported as not received) to `out`;
    /// false if none is due.
    pub fn poll_feedback(&mut self, now: Instant, out: &mut Vec<u8>) -> bool {
        match self.poll_timeout() {
            Some(due) if due <= now => {}
            _ => return false,
        }
        while let Some((&first, _)) = self.pending.first_key_value() {
            // A gap too long for one packet's status count is not reported.
            if first - self.next > MAX_STATUS / 2 {
                self.next = first;
            }
            let covered = self.write_packet(out);
            self.next += covered;
            self.pending = self.pending.split_off(&self.next);
        }
        self.first_pending = None;
        self.reported = true;
        true
    }

    /// Writes one packet starting at `next`, returning how many numbers it covers.
    fn write_packet(&mut self, out: &mut Vec<u8>) -> u64 {
        let base = self.next;
        let mut symbols = Vec::new();
        let mut deltas = Vec::new();
        let mut reference = None;
        let mut prev = 0;
        for (&seq, &t) in self.pending.range(base..) {
            if reference.is_none() {
                reference = Some(t / REF_TICKS);
                prev = t - t % REF_TICKS;
            }
            if seq - base >= MAX_STATUS && !deltas.is_empty() {
                break;
            }
            let Ok(delta) = i16::try_from(t as i128 - prev as i128) else {
                break; // the next packet starts with a new reference time
            };
            let missing = (seq - base) as usize - symbols.len();
            symbols.extend(std::iter::repeat_n(Symbol::NotReceived, missing));
            symbols.push(if (0..=255).contains(&delta) {
                Symbol::Small
            } else {
                Symbol::Large
            });
            deltas.push(delta);
            prev = t;
        }
        let reference = reference.unwrap_or(0);
        let (chunks, count) = encode(&symbols);
        let deltas_len: usize = symbols[..count].iter().map(|s| s.delta_len()).sum();
        let len = FIXED_LEN + 2 * chunks.len() + deltas_len;
        let padded = len.next_multiple_of(4);
        let pad = padded - len;

        out.push(VERSION << 6 | u8::from(pad > 0) << 5 | FMT_TWCC);
        out.push(PT_RTPFB);
        out.extend_from_slice(&((padded / 4 - 1) as u16).to_be_bytes());
        out.extend_from_slice(&self.sender_ssrc.to_be_bytes());
        out.extend_from_slice(&self.media_ssrc.to_be_bytes());
        out.extend_from_slice(&(base as u16).to_be_bytes());
        out.extend_from_slice(&(count as u16).to_be_bytes());
        let word = ((reference & REF_MASK) as u32) << 8 | u32::from(self.fb_count);
        out.extend_from_slice(&word.to_be_bytes());
        for chunk in &chunks {
            out.extend_from_slice(&chunk.to_be_bytes());
        }
        let received = symbols[..count]
            .iter()
            .filter(|s| **s != Symbol::NotReceived);
        for (symbol, delta) in received.zip(&deltas) {
            match symbol {
                Symbol::Small => out.push(*delta as u8),
                _ => out.extend_from_slice(&delta.to_be_bytes()),
            }
        }
        if pad > 0 {
            out.extend(std::iter::repeat_n(0, pad - 1));
            out.push(pad as u8);
        }
        self.fb_count = self.fb_count.wrapping_add(1);
        count as u64
    }
}

/// Packet status chunks for a prefix of `symbols` that fits in [`MAX_PACKET_LEN`]
/// (at least one chunk), and how many symbols they cover.
///
/// Greedy: a run of 14 or more (or the rest) is run-length coded; otherwise a 1-bit
/// vector of 14 if none of them needs a large delta; otherwise a run of 7 or more is
/// run-length coded, else a 2-bit vector of 7. Every vector chunk but the last holds a
/// received packet.
fn encode(symbols: &[Symbol]) -> (Vec<u16>, usize) {
    let mut chunks = Vec::new();
    let mut i = 0;
    let mut len = FIXED_LEN;
    while i < symbols.len() {
        let rest = &symbols[i..];
        let run = rest.iter().take_while(|s| **s == rest[0]).count();
        let one_bit = &rest[..rest.len().min(ONE_BIT_SYMBOLS)];
        let (chunk, n) = if run >= ONE_BIT_SYMBOLS || run == rest.len() {
            run_length(rest[0], run.min(MAX_RUN))
        } else if !one_bit.contains(&Symbol::Large) {
            vector(one_bit, 1)
        } else if run >= TWO_BIT_SYMBOLS {
            run_length(rest[0], run)
        } else {
            vector(&rest[..rest.len().min(TWO_BIT_SYMBOLS)], 2)
        };
        let added = 2 + rest[..n].iter().map(|s| s.delta_len()).sum::<usize>();
        if (len + added).next_multiple_of(4) > MAX_PACKET_LEN && !chunks.is_empty() {
            break;
        }
        len += added;
        chunks.push(chunk);
        i += n;
    }
    (chunks, i)
}

fn run_length(symbol: Symbol, run: usize) -> (u16, usize) {
    ((symbol as u16) << 13 | run as u16, run)
}

/// A status-vector chunk of `bits`-bit symbols; short ones are padded with "not
/// received".
fn vector(symbols: &[Symbol], bits: u16) -> (u16, usize) {
    let mut chunk = 1 << 15 | (bits - 1) << 14;
    for (k, s) in symbols.iter().enumerate() {
        chunk |= (*s as u16) << (14 - bits * (k as u16 + 1));
    }
    (chunk, symbols.len())
}

mod read;
#[cfg(test)]
mod tests;

pub use read::{Truncated, read_feedback};
