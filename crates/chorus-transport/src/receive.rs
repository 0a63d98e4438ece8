//! Receiving in bursts: one `recvmmsg` takes every datagram already waiting on a socket
//! (up to [`RECEIVE_BATCH`]), so an I/O thread that fell behind catches up with one
//! system call instead of one per datagram. It blocks only for the first
//! (`MSG_WAITFORONE`); an idle socket costs nothing more than a blocking `recv`.

use std::net::SocketAddr;
use std::os::fd::RawFd;

use bytes::BytesMut;

/// Datagrams taken per system call at most.
pub(crate) const RECEIVE_BATCH: usize = 32;
/// The largest datagram kept whole: a path MTU of 1500 bytes. A larger one arrives
/// truncated (`MSG_TRUNC`) and is dropped.
const SLOT: usize = 1500;
/// Arena blocks: each holds several bursts, so a steady stream allocates once in a while.
const ARENA_BLOCK: usize = 4 * RECEIVE_BATCH * SLOT;

/// The buffers of one I/O thread's `recvmmsg`.
pub(crate) struct ReceiveBatch {
    /// Datagrams are received into its front and split off it: each is its own
    /// `BytesMut` that the room can keep or drop, with no copy.
    arena: BytesMut,
    names: Box<[libc::sockaddr_storage; RECEIVE_BATCH]>,
    iovecs: Box<[libc::iovec; RECEIVE_BATCH]>,
    headers: Box<[libc::mmsghdr; RECEIVE_BATCH]>,
}

// SAFETY: the raw pointers in `iovecs` and `headers` are rebuilt before every call and
// point only into this struct's own buffers; nothing else reads them.
unsafe impl Send for ReceiveBatch {}

impl Default for ReceiveBatch {
    fn default() -> Self {
        // SAFETY: all-zero is a valid value of these plain C structs.
        unsafe {
            Self {
                arena: fresh_arena(),
                names: Box::new(std::mem::zeroed()),
                iovecs: Box::new(std::mem::zeroed()),
                headers: Box::new(std::mem::zeroed()),
            }
        }
    }
}

impl ReceiveBatch {
    /// Waits for at least one datagram on `fd` (or its receive timeout), then takes every
    /// one waiting, up to [`RECEIVE_BATCH`], and gives each to `each` with its source.
    /// Returns how many were received.
    pub(crate) fn receive(
        &mut self,
        fd: RawFd,
        mut each: impl FnMut(SocketAddr, BytesMut),
    ) -> std::io::Result<usize> {
        if self.arena.capacity() < RECEIVE_BATCH * SLOT {
            self.arena = fresh_arena();
        }
        let base = self.arena.spare_capacity_mut().as_mut_ptr();
        for i in 0..RECEIVE_BATCH {
            self.iovecs[i] = libc::iovec {
                // SAFETY: slot `i` lies inside the spare capacity checked above.
                iov_base: unsafe { base.add(i * SLOT) }.cast(),
                iov_len: SLOT,
            };
            let h = &mut self.headers[i].msg_hdr;
            h.msg_name = (&mut self.names[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &mut self.iovecs[i];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
            self.headers[i].msg_len = 0;
        }
        // SAFETY: every header points at buffers owned by `self` that outlive the call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.headers.as_mut_ptr(),
                RECEIVE_BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let n = n as usize;
        for i in 0..n {
            let len = self.headers[i].msg_len as usize;
            // SAFETY: the block was zeroed when made, so the whole slot is initialised
            // (its first `len` bytes by the kernel). It is split off whole: the next
            // datagram's slot starts at the front.
            unsafe { self.arena.set_len(SLOT) };
            let mut datagram = self.arena.split_to(SLOT);
            let truncated = self.headers[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            let from = source(&self.names[i], self.headers[i].msg_hdr.msg_namelen);
            let (Some(from), false) = (from, truncated) else {
                continue;
            };
            datagram.truncate(len);
            each(from, datagram);
        }
        Ok(n)
    }
}

/// An empty arena over a zeroed block: a slot split off whole past its datagram's end
/// is initialised memory.
fn fresh_arena() -> BytesMut {
    let mut arena = BytesMut::zeroed(ARENA_BLOCK);
    arena.clear();
    arena
}

fn source(name: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    // SAFETY: the kernel wrote a socket address of `len` bytes into `name`.
    let addr = unsafe { socket2::SockAddr::new(*name, len) };
    addr.as_socket()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    fn pair() -> (UdpSocket, UdpSocket) {
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        rx.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        (rx, tx)
    }

    fn receive_all(
        batch: &mut ReceiveBatch,
        rx: &UdpSocket,
    ) -> (usize, Vec<(SocketAddr, Vec<u8>)>) {
        let mut got = Vec::new();
        let n = batch
            .receive(rx.as_raw_fd(), |from, d| got.push((from, d.to_vec())))
            .expect("receive");
        (n, got)
    }

    /// Everything waiting comes in one call, in order, each datagram whole and with its
    /// source; more than a batch takes a second call; a datagram larger than a slot is
    /// dropped, not delivered cut.
    #[test]
    fn takes_a_burst_in_one_call() {
        let (rx, tx) = pair();
        let to = rx.local_addr().expect("addr");
        let sizes: Vec<usize> = (0..RECEIVE_BATCH + 3).map(|i| 1 + i * 37 % SLOT).collect();
        for (i, &size) in sizes.iter().enumerate() {
            tx.send_to(&vec![i as u8; size], to).expect("send");
        }
        let mut batch = ReceiveBatch::default();
        let (n, first) = receive_all(&mut batch, &rx);
        assert_eq!(n, RECEIVE_BATCH);
        let (n, rest) = receive_all(&mut batch, &rx);
        assert_eq!(n, 3);
        let all: Vec<_> = first.into_iter().chain(rest).collect();
        assert_eq!(all.len(), sizes.len());
        for (i, (from, data)) in all.iter().enumerate() {
            assert_eq!(*from, tx.local_addr().expect("addr"));
            assert_eq!(data, &vec![i as u8; sizes[i]], "datagram {i}");
        }

        tx.send_to(&[7; SLOT + 1], to).expect("send");
        tx.send_to(&[8; 10], to).expect("send");
        let (n, got) = receive_all(&mut batch, &rx);
        assert_eq!(n, 2, "both received");
        assert_eq!(got, vec![(tx.local_addr().expect("addr"), vec![8; 10])]);
    }

    /// The datagrams handed out stay intact while later bursts reuse and replace the
    /// arena.
    #[test]
    fn delivered_datagrams_outlive_later_bursts() {
        let (rx, tx) = pair();
        let to = rx.local_addr().expect("addr");
        let mut batch = ReceiveBatch::default();
        let mut kept = Vec::new();
        for round in 0..20u8 {
            for i in 0..RECEIVE_BATCH as u8 {
                tx.send_to(&[round, i, 0xAB], to).expect("send");
            }
            batch
                .receive(rx.as_raw_fd(), |_, d| kept.push(d))
                .expect("receive");
        }
        assert_eq!(kept.len(), 20 * RECEIVE_BATCH);
        for (k, d) in kept.iter().enumerate() {
            let (round, i) = (k / RECEIVE_BATCH, k % RECEIVE_BATCH);
            assert_eq!(&d[..], &[round as u8, i as u8, 0xAB]);
        }
    }

    #[test]
    fn an_idle_socket_times_out() {
        let (rx, _tx) = pair();
        let mut batch = ReceiveBatch::default();
        let err = batch
            .receive(rx.as_raw_fd(), |_, _| panic!("nothing was sent"))
            .expect_err("times out");
        assert!(matches!(
            err.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ));
    }
}
