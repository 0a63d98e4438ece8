//! Reading a burst in one system call: `recvmmsg` takes the datagrams waiting on a
//! socket (up to [`BATCH`]), each with its kernel receive time ([`super::arrival`]), and
//! hands them out one at a time. A client that fell behind catches up with one call per
//! socket instead of one per datagram.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, RawFd};

use tokio::io::Interest;
use tokio::net::UdpSocket;

use super::arrival::{Datagram, stamp_of};
use super::drops::{SocketDrops, drops_of};

/// Datagrams taken per system call at most.
pub(crate) const BATCH: usize = 16;
/// Largest datagram read whole; a longer one is cut to it (as `recv_from` would).
const SLOT: usize = 2048;

/// Room for an `SCM_TIMESTAMPNS` and an `SO_RXQ_OVFL` control message, aligned for
/// `cmsghdr`.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct ControlBuffer([u8; 64]);

/// The buffers of one connection's `recvmmsg` and the burst it read.
pub(crate) struct RecvBatch {
    slots: Box<[[u8; SLOT]; BATCH]>,
    names: Box<[libc::sockaddr_storage; BATCH]>,
    controls: Box<[ControlBuffer; BATCH]>,
    iovecs: Box<[libc::iovec; BATCH]>,
    headers: Box<[libc::mmsghdr; BATCH]>,
    /// The burst read last, by slot; `None` for a datagram from no address.
    burst: [Option<Datagram>; BATCH],
    /// Datagrams in the burst, and the next to hand out.
    filled: usize,
    next: usize,
    /// What the kernel dropped on the sockets read, as their datagrams told.
    drops: SocketDrops,
}

// SAFETY: the raw pointers in `iovecs` and `headers` are rebuilt before every call and
// point only into this struct's own buffers; nothing else reads them.
unsafe impl Send for RecvBatch {}

impl Default for RecvBatch {
    fn default() -> Self {
        // SAFETY: all-zero is a valid value of these plain C structs.
        unsafe {
            Self {
                slots: Box::new([[0; SLOT]; BATCH]),
                names: Box::new(std::mem::zeroed()),
                controls: Box::new([ControlBuffer([0; 64]); BATCH]),
                iovecs: Box::new(std::mem::zeroed()),
                headers: Box::new(std::mem::zeroed()),
                burst: [None; BATCH],
                filled: 0,
                next: 0,
                drops: SocketDrops::default(),
            }
        }
    }
}

impl RecvBatch {
    /// Datagrams of the last burst not handed out yet.
    pub(crate) fn pending(&self) -> bool {
        self.next < self.filled
    }

    /// Reads the datagrams waiting on `socket`, without waiting: `WouldBlock` when none
    /// is (and tokio's readiness is cleared, as `try_recv_from` does). Only once the
    /// last burst was handed out: what it held is dropped.
    pub(crate) fn try_fill(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        socket.try_io(Interest::READABLE, || self.fill(socket.as_raw_fd()))
    }

    pub(crate) fn drops(&self) -> &SocketDrops {
        &self.drops
    }

    /// The next datagram of the burst and its bytes.
    pub(crate) fn next_datagram(&mut self) -> Option<(Datagram, &[u8])> {
        while self.next < self.filled {
            let slot = self.next;
            self.next += 1;
            if let Some(datagram) = self.burst[slot] {
                return Some((datagram, &self.slots[slot][..datagram.len]));
            }
        }
        None
    }

    fn fill(&mut self, fd: RawFd) -> io::Result<usize> {
        (self.filled, self.next) = (0, 0);
        for i in 0..BATCH {
            self.iovecs[i] = libc::iovec {
                iov_base: self.slots[i].as_mut_ptr().cast(),
                iov_len: SLOT,
            };
            let h = &mut self.headers[i].msg_hdr;
            h.msg_name = (&mut self.names[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &mut self.iovecs[i];
            h.msg_iovlen = 1;
            h.msg_control = self.controls[i].0.as_mut_ptr().cast();
            h.msg_controllen = size_of::<ControlBuffer>() as _;
            h.msg_flags = 0;
            self.headers[i].msg_len = 0;
        }
        // SAFETY: every header points at buffers owned by `self` that outlive the call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        for i in 0..n {
            let header = &self.headers[i].msg_hdr;
            // SAFETY: `header` is what recvmmsg filled in; its control buffer is alive.
            if let Some(count) = unsafe { drops_of(header) } {
                self.drops.note(fd, count);
            }
            // SAFETY: the kernel wrote an address of `msg_namelen` bytes into the
            // zero-initialised storage.
            let from =
                unsafe { socket2::SockAddr::new(self.names[i], header.msg_namelen) }.as_socket();
            self.burst[i] = from.map(|from| Datagram {
                len: (self.headers[i].msg_len as usize).min(SLOT),
                from,
                // SAFETY: `header` is what recvmmsg filled in; its control buffer is
                // alive in `self`.
                stamp: unsafe { stamp_of(header) },
            });
        }
        self.filled = n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_is_read_in_one_call_in_order() {
        let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        super::super::arrival::enable_stamps(&receiver).unwrap();
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = receiver.local_addr().unwrap();
        let count = BATCH + 3;
        for i in 0..count {
            sender.send_to(&[i as u8; 3], to).unwrap();
        }
        receiver.readable().await.unwrap();
        let mut batch = RecvBatch::default();
        let mut got = Vec::new();
        // The first call takes a whole batch; what is left comes with the next.
        for expected in [BATCH, 3] {
            assert_eq!(batch.try_fill(&receiver).unwrap(), expected);
            while let Some((datagram, bytes)) = batch.next_datagram() {
                assert_eq!(datagram.from, sender.local_addr().unwrap());
                assert!(datagram.stamp.is_some());
                got.push(bytes.to_vec());
            }
            assert!(!batch.pending());
        }
        let sent: Vec<Vec<u8>> = (0..count).map(|i| vec![i as u8; 3]).collect();
        assert_eq!(got, sent);
        assert!(matches!(
            batch.try_fill(&receiver),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock
        ));
    }
}
