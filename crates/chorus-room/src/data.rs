//! Data messages between participants: the limits on what one participant sends
//! ([`DataLimits`]), each sender's rate ([`DataRate`], two token buckets, time passed
//! in), and how often a participant is told that something of its was refused
//! ([`ErrorThrottle`]). The routing itself is in `core/data.rs`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What one participant may send. Every refusal is counted and answered with an
/// `error` frame (docs/signaling.md, "Data messages").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataLimits {
    /// The largest message a client may send, in bytes: a text message's JSON, a
    /// binary message's length, header and payload.
    pub max_message_bytes: usize,
    /// Messages a participant may send a second, on average; a second's worth at once.
    pub messages_per_second: u32,
    /// Bytes a participant may send a second, on average; a second's worth at once.
    pub bytes_per_second: u32,
}

impl Default for DataLimits {
    fn default() -> Self {
        Self {
            max_message_bytes: 16 * 1024,
            messages_per_second: 50,
            bytes_per_second: 256 * 1024,
        }
    }
}

/// The most [`DataLimits::max_message_bytes`] may be: what the channels carry
/// (`a=max-message-size`, 64 KiB) less room for the envelope the server adds.
pub const MAX_MESSAGE_BYTES_CEILING: usize = 60 * 1024;

/// Bytes that may wait toward a receiver before its unreliable messages are dropped
/// (its reliable ones wait up to the transport's 1 MiB).
pub const LOSSY_BUFFERED: usize = 64 * 1024;

/// Least time between two `error` frames of one code to one participant: refusals
/// past the first in a second are counted, not told.
pub const ERROR_EVERY: Duration = Duration::from_secs(1);

/// Why a sender's message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateRefusal {
    TooLarge,
    Messages,
    Bytes,
}

/// One sender's allowance: messages and bytes, each a token bucket holding a second's
/// worth. A message goes through only if both have room, and then takes from both.
#[derive(Debug, Clone)]
pub struct DataRate {
    limits: DataLimits,
    messages: f64,
    bytes: f64,
    last: Option<Instant>,
}

impl DataRate {
    pub fn new(limits: DataLimits) -> Self {
        Self {
            limits,
            messages: f64::from(limits.messages_per_second),
            bytes: f64::from(limits.bytes_per_second),
            last: None,
        }
    }

    /// Whether a message of `size` bytes arriving at `now` may go through.
    pub fn allow(&mut self, size: usize, now: Instant) -> Result<(), RateRefusal> {
        if size > self.limits.max_message_bytes {
            return Err(RateRefusal::TooLarge);
        }
        let (per_msg, per_byte) = (
            f64::from(self.limits.messages_per_second),
            f64::from(self.limits.bytes_per_second),
        );
        if let Some(last) = self.last {
            let secs = now.saturating_duration_since(last).as_secs_f64();
            self.messages = (self.messages + secs * per_msg).min(per_msg);
            self.bytes = (self.bytes + secs * per_byte).min(per_byte);
        }
        self.last = Some(now.max(self.last.unwrap_or(now)));
        if self.messages < 1.0 {
            return Err(RateRefusal::Messages);
        }
        if self.bytes < size as f64 {
            return Err(RateRefusal::Bytes);
        }
        self.messages -= 1.0;
        self.bytes -= size as f64;
        Ok(())
    }
}

/// When each code was last told to a participant: at most one `error` frame of a code
/// per [`ERROR_EVERY`].
#[derive(Debug, Default)]
pub struct ErrorThrottle {
    told: HashMap<&'static str, Instant>,
}

impl ErrorThrottle {
    /// Whether to send an `error` frame with `code` now.
    pub fn tell(&mut self, code: &'static str, now: Instant) -> bool {
        match self.told.get(code) {
            Some(at) if now.saturating_duration_since(*at) < ERROR_EVERY => false,
            _ => {
                self.told.insert(code, now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn messages_and_bytes_are_limited_each_with_a_seconds_burst() {
        let limits = DataLimits {
            max_message_bytes: 1000,
            messages_per_second: 3,
            bytes_per_second: 2000,
        };
        type Case = (u64, usize, Result<(), RateRefusal>);
        let cases: [(&str, &[Case]); 4] = [
            (
                "three messages at once, then one a third of a second",
                &[
                    (0, 10, Ok(())),
                    (0, 10, Ok(())),
                    (0, 10, Ok(())),
                    (0, 10, Err(RateRefusal::Messages)),
                    (200, 10, Err(RateRefusal::Messages)),
                    (334, 10, Ok(())),
                    (400, 10, Err(RateRefusal::Messages)),
                ],
            ),
            (
                "bytes run out before messages do",
                &[
                    (0, 1000, Ok(())),
                    (0, 1000, Ok(())),
                    (0, 1, Err(RateRefusal::Bytes)),
                    (250, 500, Ok(())),
                    (500, 600, Err(RateRefusal::Bytes)),
                    (500, 500, Ok(())),
                ],
            ),
            (
                "over the size limit, refused whatever the allowance",
                &[(0, 1001, Err(RateRefusal::TooLarge)), (0, 1000, Ok(()))],
            ),
            (
                "a refused message takes nothing; a long pause refills only a second's worth",
                &[
                    (0, 1000, Ok(())),
                    (0, 1000, Ok(())),
                    (0, 1000, Err(RateRefusal::Bytes)),
                    (10_000, 1000, Ok(())),
                    (10_000, 1000, Ok(())),
                    (10_000, 1000, Err(RateRefusal::Bytes)),
                ],
            ),
        ];
        for (name, steps) in cases {
            let t0 = Instant::now();
            let mut rate = DataRate::new(limits);
            for (i, (at, size, want)) in steps.iter().enumerate() {
                assert_eq!(rate.allow(*size, ms(t0, *at)), *want, "{name}: step {i}");
            }
        }
    }

    #[test]
    fn a_code_is_told_at_most_once_a_second() {
        let t0 = Instant::now();
        let mut throttle = ErrorThrottle::default();
        let cases = [
            (0, "data_rate_limited", true),
            (10, "data_rate_limited", false),
            (10, "data_too_large", true),
            (999, "data_rate_limited", false),
            (1000, "data_rate_limited", true),
        ];
        for (at, code, want) in cases {
            assert_eq!(throttle.tell(code, ms(t0, at)), want, "{code} at {at} ms");
        }
    }
}
