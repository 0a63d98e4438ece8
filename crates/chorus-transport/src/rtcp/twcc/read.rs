//! Reading transport-wide feedback (PT 205 FMT 15) from a subscriber: which of the
//! numbers the server sent arrived, and when on the subscriber's clock, for its
//! bandwidth estimator.

use std::time::Duration;

use chorus_core::bwe::{PacketResult, TransportSeq};

use super::{REF_TICKS, TICK_US};

/// The body after the common header: both SSRCs, base sequence, status count,
/// reference time and feedback count.
const FIXED: usize = 16;

/// Malformed feedback: too short for what its chunks announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncated;

/// The results of one feedback packet's `body` (after the 4-byte RTCP header, padding
/// removed), appended to `out` in sequence order. Arrival times are the reference time
/// plus the deltas, on the subscriber's clock from an arbitrary origin; one that would
/// fall before that origin (negative deltas at reference time 0) counts as zero.
pub fn read_feedback(body: &[u8], out: &mut Vec<PacketResult>) -> Result<(), Truncated> {
    let start = out.len();
    let read = read_into(body, out);
    if read.is_err() {
        // A truncated packet leaves nothing behind.
        out.truncate(start);
    }
    read
}

fn read_into(body: &[u8], out: &mut Vec<PacketResult>) -> Result<(), Truncated> {
    let fixed = body.get(..FIXED).ok_or(Truncated)?;
    let base = u16::from_be_bytes([fixed[8], fixed[9]]);
    let count = usize::from(u16::from_be_bytes([fixed[10], fixed[11]]));
    let reference = u32::from_be_bytes([0, fixed[12], fixed[13], fixed[14]]);
    // Symbols first: the deltas follow the last chunk.
    let mut symbols: Vec<u8> = Vec::with_capacity(count);
    let mut at = FIXED;
    while symbols.len() < count {
        let chunk = body.get(at..at + 2).ok_or(Truncated)?;
        let chunk = u16::from_be_bytes([chunk[0], chunk[1]]);
        at += 2;
        let left = count - symbols.len();
        if chunk & 0x8000 == 0 {
            let symbol = ((chunk >> 13) & 0x3) as u8;
            let run = usize::from(chunk & 0x1fff).min(left);
            symbols.extend(std::iter::repeat_n(symbol, run));
        } else if chunk & 0x4000 == 0 {
            let n = 14.min(left);
            symbols.extend((0..n).map(|k| ((chunk >> (13 - k)) & 0x1) as u8));
        } else {
            let n = 7.min(left);
            symbols.extend((0..n).map(|k| ((chunk >> (12 - 2 * k)) & 0x3) as u8));
        }
    }
    let mut ticks = i64::from(reference) * REF_TICKS as i64;
    for (i, symbol) in symbols.into_iter().enumerate() {
        let seq = TransportSeq(base.wrapping_add(i as u16));
        let delta = match symbol {
            0 => None,
            1 => {
                let d = *body.get(at).ok_or(Truncated)?;
                at += 1;
                Some(i64::from(d))
            }
            // 2: a signed 16-bit delta; 3 is reserved and read as one, as libwebrtc does.
            _ => {
                let d = body.get(at..at + 2).ok_or(Truncated)?;
                at += 2;
                Some(i64::from(i16::from_be_bytes([d[0], d[1]])))
            }
        };
        let arrival = delta.map(|d| {
            ticks += d;
            Duration::from_micros((ticks.max(0) as u64) * TICK_US as u64)
        });
        out.push(PacketResult { seq, arrival });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtcp::twcc::TwccRecorder;
    use std::time::Instant;

    /// What the recorder writes, the reader reads back: (sequence numbers received with
    /// their arrival offset in µs).
    #[test]
    fn reads_what_the_recorder_writes() {
        let cases: [(&str, &[(u16, u64)]); 5] = [
            ("in order", &[(10, 0), (11, 1_000), (12, 2_000)]),
            ("gaps are not received", &[(10, 0), (13, 500), (20, 750)]),
            ("a large delta", &[(1, 0), (2, 80_000), (3, 80_250)]),
            ("wrapping numbers", &[(65_534, 0), (65_535, 250), (1, 500)]),
            (
                "a long run",
                &[(0, 0), (100, 1_000), (101, 1_250), (102, 1_500)],
            ),
        ];
        for (name, arrivals) in cases {
            let t0 = Instant::now();
            let mut rec = TwccRecorder::new(1);
            for &(seq, us) in arrivals {
                rec.received(seq, 2, t0 + Duration::from_micros(us));
            }
            let mut bytes = Vec::new();
            assert!(rec.poll_feedback(t0 + Duration::from_secs(1), &mut bytes));
            let mut got = Vec::new();
            read_feedback(&bytes[4..], &mut got).unwrap_or_else(|_| panic!("{name}"));
            let first = arrivals[0].0;
            let last = arrivals[arrivals.len() - 1].0;
            assert_eq!(
                got.len(),
                usize::from(last.wrapping_sub(first)) + 1,
                "{name}"
            );
            let origin = got[0].arrival.expect("first arrived");
            for r in &got {
                let want = arrivals.iter().find(|(s, _)| *s == r.seq.0);
                let got_us = r.arrival.map(|a| (a - origin).as_micros() as u64);
                assert_eq!(got_us, want.map(|(_, us)| *us), "{name}: {:?}", r.seq);
            }
        }
    }

    #[test]
    fn truncated_feedback_is_refused_and_leaves_nothing() {
        let t0 = Instant::now();
        let mut rec = TwccRecorder::new(1);
        for seq in 0..20u16 {
            rec.received(seq, 2, t0 + Duration::from_millis(u64::from(seq)));
        }
        let mut bytes = Vec::new();
        rec.poll_feedback(t0 + Duration::from_secs(1), &mut bytes);
        let body = &bytes[4..];
        let mut out = Vec::new();
        for cut in 0..body.len() - 3 {
            // The last 3 bytes may be padding; any shorter cut loses deltas or chunks.
            assert_eq!(
                read_feedback(&body[..cut], &mut out),
                Err(Truncated),
                "{cut}"
            );
            assert!(out.is_empty(), "{cut}");
        }
    }
}
