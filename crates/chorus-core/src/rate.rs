//! Token bucket: how many requests a client may make, as a decision per request.

use std::time::Instant;

#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl TokenBucket {
    /// Allows bursts of `capacity` and `per_second` on average.
    pub fn new(capacity: u32, per_second: u32) -> Self {
        Self {
            capacity: capacity as f64,
            per_second: per_second as f64,
            tokens: capacity as f64,
            last: None,
        }
    }

    /// Whether one request arriving at `now` may go through.
    pub fn allow(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let refill = now.saturating_duration_since(last).as_secs_f64() * self.per_second;
            self.tokens = (self.tokens + refill).min(self.capacity);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bursts_then_average_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(3, 10);
        // (offset ms, expected): 3 at once, then one per 100 ms.
        let cases = [
            (0, true),
            (0, true),
            (0, true),
            (0, false),
            (50, false),
            (100, true),
            (150, false),
            (1000, true),
            (1000, true),
            (1000, true),
            (1000, false), // refill is capped at the burst size
        ];
        for (i, (ms, want)) in cases.into_iter().enumerate() {
            assert_eq!(
                b.allow(t0 + Duration::from_millis(ms)),
                want,
                "request {i} at {ms} ms"
            );
        }
    }
}
