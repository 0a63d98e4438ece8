//! Datagrams the kernel dropped because a socket's receive buffer was full
//! (`SO_RXQ_OVFL`): loss the harness made itself, by not reading in time, told apart
//! from loss on the server's side.
//!
//! With the option on, every datagram read carries the socket's running count of such
//! drops; [`SocketDrops`] keeps the latest per socket.

use std::io;
use std::os::fd::RawFd;

use tokio::net::UdpSocket;

use super::cmsg::{control_message, enable_option};

/// A socket's receive buffer: room for about a second of a subscriber's video (a few
/// hundred datagrams) while its task waits for a core. The kernel caps it at
/// `net.core.rmem_max`.
pub(crate) const RECEIVE_BUFFER: usize = 1 << 20;

/// Asks the kernel to count, on every datagram read, the datagrams it dropped on the
/// socket so far, and sizes the socket's receive buffer.
pub(crate) fn enable(socket: &UdpSocket) -> io::Result<()> {
    socket2::SockRef::from(socket).set_recv_buffer_size(RECEIVE_BUFFER)?;
    enable_option(socket, libc::SO_RXQ_OVFL)
}

/// The socket's drop count among the control messages `header` carries.
///
/// # Safety
/// `header` was filled in by `recvmmsg`, and its control buffer is alive.
pub(crate) unsafe fn drops_of(header: &libc::msghdr) -> Option<u32> {
    // SAFETY: the caller's promise; this message carries a u32.
    unsafe { control_message(header, libc::SO_RXQ_OVFL) }
}

/// The latest drop count seen on each socket a connection read from.
#[derive(Debug, Default)]
pub(crate) struct SocketDrops {
    /// (socket, its count); a connection has at most three sockets.
    latest: Vec<(RawFd, u32)>,
}

impl SocketDrops {
    /// Notes `count` read on `fd`; the kernel's counter only grows.
    pub(crate) fn note(&mut self, fd: RawFd, count: u32) {
        match self.latest.iter_mut().find(|(f, _)| *f == fd) {
            Some((_, c)) => *c = (*c).max(count),
            None => self.latest.push((fd, count)),
        }
    }

    pub(crate) fn total(&self) -> u64 {
        self.latest.iter().map(|&(_, c)| u64::from(c)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::arrival::enable_stamps;
    use crate::peer::batch::RecvBatch;

    #[test]
    fn counts_per_socket_and_never_back() {
        let mut drops = SocketDrops::default();
        // (fd, count read, total after)
        let cases = [(3, 0, 0), (3, 5, 5), (4, 2, 7), (3, 4, 7), (4, 10, 15)];
        for (fd, count, total) in cases {
            drops.note(fd, count);
            assert_eq!(drops.total(), total, "after {count} on {fd}");
        }
    }

    /// A socket left unread until its buffer overflows: the datagrams read tell how
    /// many of those sent the kernel dropped.
    #[tokio::test]
    async fn a_full_socket_tells_what_it_dropped() {
        let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        enable(&receiver).unwrap();
        enable_stamps(&receiver).unwrap();
        // As small as the kernel allows, so that a few hundred datagrams overflow it.
        socket2::SockRef::from(&receiver)
            .set_recv_buffer_size(0)
            .unwrap();
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let sent = 500;
        for _ in 0..sent {
            sender
                .send_to(&[0; 1000], receiver.local_addr().unwrap())
                .unwrap();
        }
        receiver.readable().await.unwrap();
        let mut batch = RecvBatch::default();
        let mut read = 0;
        let mut drain = |batch: &mut RecvBatch| {
            while let Ok(n) = batch.try_fill(&receiver) {
                read += n;
                while batch.next_datagram().is_some() {}
            }
        };
        drain(&mut batch);
        // A datagram carries the count as of its own queueing: one more tells them all.
        sender
            .send_to(&[0; 1000], receiver.local_addr().unwrap())
            .unwrap();
        receiver.readable().await.unwrap();
        drain(&mut batch);
        let dropped = batch.drops().total();
        assert!(dropped > 0, "read {read} of {sent}");
        assert_eq!(read as u64 + dropped, sent + 1);
    }
}
