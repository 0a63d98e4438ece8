//! The receiving side of a connection: waiting on its sockets, reading them a burst at
//! a time, and handing each datagram to the connection with its arrival time.

use std::io;
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use bytes::BytesMut;
use tokio::net::UdpSocket;
use tracing::debug;

use super::{Peer, arrival, drops};

/// How many datagrams got their kernel receive time as arrival time, and how many
/// fell back to the time they were read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ArrivalCounts {
    pub(crate) stamped: u64,
    pub(crate) unstamped: u64,
    /// Stamped, but dated later than the stamp: the connection had been given a later
    /// time already (its clock does not run backwards).
    pub(crate) clamped: u64,
    /// How much later than their stamps those were dated, in all.
    pub(crate) clamped_micros: u64,
    /// Datagrams the kernel dropped on the connection's sockets, their receive buffers
    /// full: the client had not read them in time.
    pub(crate) socket_drops: u64,
}

impl Peer {
    /// Waits until datagrams were read from any of the connection's sockets (or some
    /// of the last burst are still to be handed over); cancel-safe. Hand them to the
    /// connection with [`Peer::handle_next`].
    pub(crate) async fn recv(&mut self) -> io::Result<()> {
        async fn readable(socket: Option<&UdpSocket>) -> io::Result<&UdpSocket> {
            match socket {
                Some(s) => s.readable().await.map(|()| s),
                None => std::future::pending().await,
            }
        }
        while !self.batch.pending() {
            let socket = tokio::select! {
                s = readable(Some(&self.socket)) => s?,
                s = readable(self.previous.as_ref()) => s?,
                s = readable(self.spare.as_ref()) => s?,
            };
            match self.batch.try_fill(socket) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
                Ok(_) => {}
            }
        }
        Ok(())
    }

    pub(crate) fn arrivals(&self) -> ArrivalCounts {
        ArrivalCounts {
            socket_drops: self.batch.drops().total(),
            ..self.arrivals
        }
    }

    /// Hands the next datagram read, read at `read_at`, to the connection with its
    /// arrival time (the kernel's stamp, or `read_at` without one), which it returns;
    /// `None` when none is left. Poll the outputs after each.
    pub(crate) fn handle_next(&mut self, read_at: Instant) -> Option<Instant> {
        let (datagram, bytes) = self.batch.next_datagram()?;
        let now = match datagram.stamp {
            Some(stamp) => {
                self.arrivals.stamped += 1;
                let (at, later) =
                    arrival::arrival_instant(stamp, read_at, SystemTime::now(), self.clock);
                if !later.is_zero() {
                    self.arrivals.clamped += 1;
                    self.arrivals.clamped_micros += later.as_micros() as u64;
                }
                at
            }
            None => {
                self.arrivals.unstamped += 1;
                read_at
            }
        };
        if self.offline {
            return Some(now);
        }
        if let Some(shaper) = self.shaper.as_mut() {
            shaper.offer(now, datagram.from, bytes);
            return Some(now);
        }
        let bytes = BytesMut::from(bytes);
        self.read(now, datagram.from, bytes);
        Some(now)
    }
}

/// A socket whose datagrams carry the kernel's receive time and its count of drops,
/// with a receive buffer for a client that falls behind. Without stamps (the option
/// refused) every arrival falls back to the read time, which the counts show.
pub(super) async fn bind_stamped(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = UdpSocket::bind(addr).await?;
    if let Err(err) = arrival::enable_stamps(&socket) {
        debug!(%err, "no kernel receive times on the socket");
    }
    if let Err(err) = drops::enable(&socket) {
        debug!(%err, "no drop counts on the socket");
    }
    Ok(socket)
}
