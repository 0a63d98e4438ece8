//! The echo test room's delay line: a participant's own microphone packets, held
//! [`ECHO_DELAY`] and then sent back to it on its room-audio track (whose forwarder
//! gives them that track's SSRC, sequence numbers and timestamps). Time is handed in.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chorus_core::{ExtSeq, ExtTimestamp};
use rtc::rtp::header::Header;

use crate::io::ParticipantKey;

/// How late a participant hears itself in the echo room: long enough to tell one's
/// voice from its echo, short enough to test a microphone quickly.
pub const ECHO_DELAY: Duration = Duration::from_secs(1);

/// Packets the line holds at most: ten times a second of 20 ms Opus frames. A
/// publisher sending faster loses its oldest packets (`echo_overflow`).
pub const ECHO_CAPACITY: usize = 500;

/// One packet on its way back, in its source's (unwrapped) numbering.
#[derive(Debug, Clone)]
pub struct Echoed {
    /// Whose microphone, and so who hears it.
    pub owner: ParticipantKey,
    pub header: Header,
    pub seq: ExtSeq,
    pub ts: ExtTimestamp,
    pub payload: Bytes,
}

#[derive(Debug, Default)]
pub struct EchoLine {
    queue: VecDeque<(Instant, Echoed)>,
}

impl EchoLine {
    /// Holds `packet`, heard at `now`; false if the oldest had to go to make room.
    pub fn push(&mut self, packet: Echoed, now: Instant) -> bool {
        let fits = self.queue.len() < ECHO_CAPACITY;
        if !fits {
            self.queue.pop_front();
        }
        self.queue.push_back((now + ECHO_DELAY, packet));
        fits
    }

    /// The next packet due by `now`, oldest first.
    pub fn pop_due(&mut self, now: Instant) -> Option<Echoed> {
        if self.queue.front().is_some_and(|(due, _)| *due <= now) {
            return self.queue.pop_front().map(|(_, p)| p);
        }
        None
    }

    pub fn next_due(&self) -> Option<Instant> {
        self.queue.front().map(|(due, _)| *due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(seq: u64) -> Echoed {
        Echoed {
            owner: ParticipantKey(1),
            header: Header::default(),
            seq: ExtSeq(seq),
            ts: ExtTimestamp(seq * 960),
            payload: Bytes::from_static(b"opus"),
        }
    }

    #[test]
    fn packets_come_back_a_delay_later_in_order() {
        let t0 = Instant::now();
        let mut line = EchoLine::default();
        for i in 0..3 {
            assert!(line.push(packet(i), t0 + Duration::from_millis(20 * i)));
        }
        assert_eq!(line.next_due(), Some(t0 + ECHO_DELAY));
        assert!(
            line.pop_due(t0 + ECHO_DELAY - Duration::from_millis(1))
                .is_none()
        );
        let at = t0 + ECHO_DELAY + Duration::from_millis(25);
        let got: Vec<u64> = std::iter::from_fn(|| line.pop_due(at))
            .map(|p| p.seq.0)
            .collect();
        assert_eq!(got, [0, 1]);
        assert_eq!(
            line.next_due(),
            Some(t0 + ECHO_DELAY + Duration::from_millis(40))
        );
    }

    #[test]
    fn a_full_line_drops_its_oldest() {
        let t0 = Instant::now();
        let mut line = EchoLine::default();
        for i in 0..ECHO_CAPACITY as u64 {
            assert!(line.push(packet(i), t0));
        }
        assert!(!line.push(packet(9999), t0));
        assert_eq!(line.pop_due(t0 + ECHO_DELAY).map(|p| p.seq.0), Some(1));
    }
}
