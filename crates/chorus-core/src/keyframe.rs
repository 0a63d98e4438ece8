//! Keyframe requests from many subscribers collapse into few requests to the publisher.

use std::time::{Duration, Instant};

/// Lets one keyframe request through per interval; the rest are absorbed.
#[derive(Debug, Clone)]
pub struct KeyframeThrottle {
    interval: Duration,
    last_sent: Option<Instant>,
}

impl KeyframeThrottle {
    pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(500);

    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last_sent: None,
        }
    }

    /// Whether a request arriving at `now` should go to the publisher.
    pub fn should_send(&mut self, now: Instant) -> bool {
        match self.last_sent {
            Some(last) if now.saturating_duration_since(last) < self.interval => false,
            _ => {
                self.last_sent = Some(now);
                true
            }
        }
    }
}

impl Default for KeyframeThrottle {
    fn default() -> Self {
        Self::new(Self::DEFAULT_INTERVAL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_request_per_interval() {
        let t0 = Instant::now();
        let mut t = KeyframeThrottle::new(Duration::from_millis(500));
        // (offset ms, expected)
        let cases = [
            (0, true),
            (1, false),
            (499, false),
            (500, true),
            (600, false),
            (1001, true),
        ];
        for (ms, want) in cases {
            assert_eq!(
                t.should_send(t0 + Duration::from_millis(ms)),
                want,
                "at {ms} ms"
            );
        }
    }
}
