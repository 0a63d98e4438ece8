//! The simulated network: addresses, and seeded loss per client and direction.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

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
