//! The simulated network: addresses, seeded loss per client and direction, and a
//! client's downlink as a bottleneck (a capacity, a queue, a delay).

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::BytesMut;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The server's media port, as announced in its candidate.
pub const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 7882);

/// Which way a datagram goes, seen from a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Client to server.
    Up,
    /// Server to client.
    Down,
}

/// The address of client `index`'s publisher (`pc` 0) or subscriber (`pc` 1) connection.
pub(super) fn client_addr(index: usize, pc: u16) -> SocketAddr {
    let [hi, lo] = (index as u16 + 1).to_be_bytes();
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, hi, lo)), 5000 + pc)
}

/// Drops datagrams at a rate, deterministically: its own generator, seeded from the
/// simulation's seed, the client and the direction (adding a client changes no one
/// else's losses).
pub(super) struct Loss {
    rate: f64,
    rng: StdRng,
    pub dropped: u64,
}

impl Loss {
    pub fn new(seed: u64, index: usize, dir: Dir) -> Self {
        let stream = (index as u64) << 1 | u64::from(dir == Dir::Down);
        Self {
            rate: 0.0,
            rng: StdRng::seed_from_u64(seed ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            dropped: 0,
        }
    }

    pub fn set_rate(&mut self, rate: f64) {
        self.rate = rate.clamp(0.0, 1.0);
    }

    /// Whether the next datagram is lost.
    pub fn drops(&mut self) -> bool {
        if self.rate <= 0.0 {
            return false;
        }
        let lost = self.rng.random_bool(self.rate);
        self.dropped += u64::from(lost);
        lost
    }
}

/// The most a capped link queues, in time at its capacity (then it drops the newest).
pub const LINK_QUEUE: Duration = Duration::from_millis(300);

/// A client's downlink as a bottleneck: a drop-tail queue drained at a capacity, then
/// a delay; what it carries arrives in order, each datagram at its own instant (the
/// client is told that instant, so its transport feedback sees the queue). Without a
/// cap or a delay it is not in the way: datagrams arrive at once, as before.
#[derive(Default)]
pub(super) struct Link {
    capacity_bps: Option<u64>,
    delay: Duration,
    /// When the queue is empty again.
    busy_until: Option<Instant>,
    /// On their way: (arrives at, to, datagram), in order.
    in_flight: VecDeque<(Instant, SocketAddr, BytesMut)>,
    /// Dropped because the queue was full.
    pub overflowed: u64,
}

impl Link {
    pub fn set_capacity(&mut self, bps: Option<u64>) {
        self.capacity_bps = bps.filter(|&b| b > 0);
    }

    pub fn set_delay(&mut self, delay: Duration) {
        self.delay = delay;
    }

    /// Whether datagrams go straight through.
    pub fn direct(&self) -> bool {
        self.capacity_bps.is_none() && self.delay.is_zero() && self.in_flight.is_empty()
    }

    /// A datagram enters at `now` (its size on the wire: UDP and IPv4 headers added).
    pub fn send(&mut self, now: Instant, to: SocketAddr, data: BytesMut) {
        let mut at = now;
        if let Some(bps) = self.capacity_bps {
            let busy = self.busy_until.unwrap_or(now).max(now);
            if busy - now > LINK_QUEUE {
                self.overflowed += 1;
                return;
            }
            let bits = (data.len() as u64 + 28) * 8;
            at = busy + Duration::from_nanos(bits * 1_000_000_000 / bps);
            self.busy_until = Some(at);
        }
        at += self.delay;
        // In order: a shorter delay now does not overtake what is on its way.
        if let Some(&(last, _, _)) = self.in_flight.back() {
            at = at.max(last);
        }
        self.in_flight.push_back((at, to, data));
    }

    /// The next datagram arrived by `now`.
    pub fn arrived(&mut self, now: Instant) -> Option<(Instant, SocketAddr, BytesMut)> {
        if self.in_flight.front()?.0 > now {
            return None;
        }
        self.in_flight.pop_front()
    }
}

impl super::Sim {
    /// Caps the client's downlink at `bps` (`None`: no cap) with a drop-tail queue of
    /// [`LINK_QUEUE`] in front.
    pub fn cap_downlink(&mut self, c: super::ClientId, bps: Option<u64>) {
        self.clients[c.0].downlink.set_capacity(bps);
    }

    /// Delays what reaches the client by `delay` from now on (after the cap's queue).
    pub fn delay_downlink(&mut self, c: super::ClientId, delay: Duration) {
        self.clients[c.0].downlink.set_delay(delay);
    }

    /// Datagrams to the client dropped because its downlink's queue was full.
    pub fn overflowed(&self, c: super::ClientId) -> u64 {
        self.clients[c.0].downlink.overflowed
    }
}
