//! Send timestamps inside synthetic video payloads, and a histogram of what they say.
//!
//! The SFU never touches payloads, and the publishers and subscribers of a load test
//! run in one process, so a stamp of the sending time (µs since a process-wide epoch)
//! read back at the receiver gives the delay the server added (the receive time is the
//! kernel's, so the receiving task's scheduling is not in it; the sender's is). The stamp sits in the last [`STAMP_LEN`] bytes of a packet, over the
//! payload's filler, so codec headers stay where parsers look for them. It contains no
//! zero byte, so an H.264 slice carrying it needs no emulation prevention.

use std::fmt;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};

/// Bytes a stamp occupies at the end of a payload.
pub const STAMP_LEN: usize = 12;
const MAGIC: [u8; 4] = *b"CHts";
/// Bits of the timestamp: 7 per byte over 8 bytes, ~2000 years of µs.
const STAMP_BITS: u32 = 56;

/// The process-wide zero of stamps, fixed on first use.
pub fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// The stamp of a packet sent at `at`.
pub fn stamp(at: Instant) -> [u8; STAMP_LEN] {
    let micros = at.saturating_duration_since(epoch()).as_micros() as u64;
    let mut out = [0u8; STAMP_LEN];
    out[..4].copy_from_slice(&MAGIC);
    for (i, byte) in out[4..].iter_mut().enumerate() {
        // High bit set in every byte: never 0x00, never an H.264 start code.
        *byte = 0x80 | ((micros >> (7 * (7 - i))) & 0x7f) as u8;
    }
    out
}

/// Fills `payload` up to `size` bytes, the last [`STAMP_LEN`] of them `stamp` when
/// there is one and room for it.
pub fn fill_stamped(payload: &mut BytesMut, size: usize, stamp: Option<&[u8; STAMP_LEN]>) {
    let filler = size.saturating_sub(payload.len());
    match stamp {
        Some(stamp) if filler >= STAMP_LEN => {
            payload.put_bytes(0x55, filler - STAMP_LEN);
            payload.put_slice(stamp);
        }
        _ => payload.put_bytes(0x55, filler),
    }
}

/// The sending time stamped at the end of `payload`, if it carries a stamp.
pub fn read_stamp(payload: &[u8]) -> Option<Instant> {
    let tail = payload.get(payload.len().checked_sub(STAMP_LEN)?..)?;
    if tail[..4] != MAGIC || tail[4..].iter().any(|b| b & 0x80 == 0) {
        return None;
    }
    let micros = tail[4..]
        .iter()
        .fold(0u64, |acc, b| (acc << 7) | u64::from(b & 0x7f));
    debug_assert!(micros < 1 << STAMP_BITS);
    epoch().checked_add(Duration::from_micros(micros))
}

/// Sub-buckets per power of two: about 3 % resolution.
const SUB: usize = 32;
const SUB_BITS: u32 = SUB.trailing_zeros();
/// Powers of two above the linear range; values beyond (~70 minutes) land in the last bucket.
const SHIFTS: usize = 27;
const BUCKETS: usize = SUB + SHIFTS * SUB;

/// Delays in log-linear buckets of µs (about 3 % wide), mergeable and subtractable, so a
/// harness can combine clients and take the difference of two snapshots. Buckets exist
/// only up to the largest value seen (~400 for 100 ms), so a snapshot copies little.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    counts: Vec<u64>,
    total: u64,
    max_micros: u64,
}

fn bucket_of(micros: u64) -> usize {
    if micros < SUB as u64 {
        return micros as usize;
    }
    let bits = u64::BITS - micros.leading_zeros();
    let shift = (bits - SUB_BITS - 1) as usize;
    let index = SUB + shift * SUB + ((micros >> shift) as usize - SUB);
    index.min(BUCKETS - 1)
}

/// `[low, high)` in µs of a bucket.
fn bucket_range(index: usize) -> (u64, u64) {
    if index < SUB {
        return (index as u64, index as u64 + 1);
    }
    let shift = (index - SUB) / SUB;
    let low = ((SUB + (index - SUB) % SUB) as u64) << shift;
    (low, low + (1 << shift))
}

impl LatencyHistogram {
    pub fn record(&mut self, delay: Duration) {
        let micros = delay.as_micros().min(u128::from(u64::MAX)) as u64;
        let index = bucket_of(micros);
        if index >= self.counts.len() {
            self.counts.resize(index + 1, 0);
        }
        self.counts[index] += 1;
        self.total += 1;
        self.max_micros = self.max_micros.max(micros);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest value recorded (for a difference: the top of its highest bucket).
    pub fn max(&self) -> Duration {
        Duration::from_micros(self.max_micros)
    }

    /// The value below which a share `q` (0..=1) of the values lie, as the top of its
    /// bucket (never above the maximum): a slight overestimate, never an underestimate.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let (_, high) = bucket_range(index);
                return Duration::from_micros((high - 1).min(self.max_micros));
            }
        }
        self.max()
    }

    pub fn merge(&mut self, other: &LatencyHistogram) {
        if other.total == 0 {
            return;
        }
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.max_micros = self.max_micros.max(other.max_micros);
    }

    /// What was recorded after `earlier`, a previous snapshot of the same histogram.
    pub fn since(&self, earlier: &LatencyHistogram) -> LatencyHistogram {
        if earlier.total == 0 {
            return self.clone();
        }
        let counts: Vec<u64> = self
            .counts
            .iter()
            .zip(earlier.counts.iter().chain(std::iter::repeat(&0)))
            .map(|(now, then)| now.saturating_sub(*then))
            .collect();
        let top = counts.iter().rposition(|c| *c > 0);
        LatencyHistogram {
            total: counts.iter().sum(),
            max_micros: top.map_or(0, |i| (bucket_range(i).1 - 1).min(self.max_micros)),
            counts,
        }
    }

    /// Non-empty buckets: (low, high, count), low to high.
    pub fn buckets(&self) -> impl Iterator<Item = (Duration, Duration, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, count)| **count > 0)
            .map(|(index, count)| {
                let (low, high) = bucket_range(index);
                (
                    Duration::from_micros(low),
                    Duration::from_micros(high),
                    *count,
                )
            })
    }
}

/// Summary only: the buckets would drown a client's stats dump.
impl fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LatencyHistogram")
            .field("count", &self.total)
            .field("p50", &self.quantile(0.5))
            .field("max", &self.max())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_at_the_end_of_a_payload() {
        let t0 = epoch();
        let cases = [
            Duration::ZERO,
            Duration::from_micros(1),
            Duration::from_millis(1234),
            Duration::from_secs(86_400 * 365),
        ];
        for offset in cases {
            let mut payload = vec![0x55u8; 40];
            payload[40 - STAMP_LEN..].copy_from_slice(&stamp(t0 + offset));
            assert_eq!(read_stamp(&payload), Some(t0 + offset), "{offset:?}");
            assert!(!payload[40 - STAMP_LEN..].contains(&0));
        }
        // Before the epoch saturates to it.
        if let Some(before) = t0.checked_sub(Duration::from_secs(1)) {
            assert_eq!(read_stamp(&stamp(before)), Some(t0));
        }
    }

    #[test]
    fn payloads_without_a_stamp_are_not_misread() {
        let mut broken = stamp(epoch());
        broken[7] &= 0x7f;
        let inputs: [&[u8]; 4] = [&[], &[0x55; 11], &[0x55; 64], &broken];
        for input in inputs {
            assert_eq!(read_stamp(input), None);
        }
    }

    #[test]
    fn buckets_cover_values_with_small_error() {
        for micros in [
            0u64,
            1,
            31,
            32,
            33,
            63,
            64,
            100,
            1_000,
            12_345,
            999_999,
            1 << 40,
        ] {
            let (low, high) = bucket_range(bucket_of(micros));
            if micros < 1 << 32 {
                assert!(low <= micros && micros < high, "{micros}: [{low}, {high})");
                assert!((high - low) as f64 <= (micros as f64 / 31.0).max(1.0));
            } else {
                assert_eq!(bucket_of(micros), BUCKETS - 1);
            }
        }
        // Consecutive buckets tile the line.
        for index in 1..BUCKETS {
            assert_eq!(bucket_range(index - 1).1, bucket_range(index).0, "{index}");
        }
    }

    #[test]
    fn quantiles_merge_and_difference() {
        let mut a = LatencyHistogram::default();
        for ms in 1..=100 {
            a.record(Duration::from_millis(ms));
        }
        assert_eq!(a.count(), 100);
        let close = |d: Duration, ms: f64| (d.as_secs_f64() * 1e3 - ms).abs() <= ms * 0.04;
        assert!(close(a.quantile(0.5), 50.0), "{:?}", a.quantile(0.5));
        assert!(close(a.quantile(0.99), 99.0), "{:?}", a.quantile(0.99));
        assert_eq!(a.quantile(1.0), Duration::from_millis(100));
        assert_eq!(a.max(), Duration::from_millis(100));

        let snapshot = a.clone();
        for _ in 0..10 {
            a.record(Duration::from_millis(500));
        }
        let window = a.since(&snapshot);
        assert_eq!(window.count(), 10);
        assert!(close(window.quantile(0.5), 500.0));
        assert!(close(window.max(), 500.0));
        assert_eq!(a.since(&LatencyHistogram::default()), a);

        let mut merged = LatencyHistogram::default();
        merged.merge(&snapshot);
        merged.merge(&window);
        assert_eq!(merged.count(), 110);
        assert_eq!(
            merged.buckets().map(|(_, _, c)| c).sum::<u64>(),
            merged.count()
        );
        assert_eq!(LatencyHistogram::default().quantile(0.5), Duration::ZERO);
    }
}
