//! What the media plane counts: per datagram, for operators (`GET /v1/media`, the
//! shutdown log) and for the room turns that send (`SendReport`).

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of the I/O threads.
#[derive(Debug, Default)]
pub struct MediaCounters {
    pub received: AtomicU64,
    /// Receive system calls (`recvmmsg`): `received / receive_syscalls` is the batching.
    pub receive_syscalls: AtomicU64,
    /// Not a binding request, from an address no connection confirmed (noise, or a
    /// client whose path expired).
    pub unroutable_unknown_addr: AtomicU64,
    /// A binding request naming no connection's ufrag (stale credentials, a client of
    /// another server).
    pub unroutable_unknown_ufrag: AtomicU64,
    /// A binding request for a connection that failed its MESSAGE-INTEGRITY check
    /// (counted by the connection's owner).
    pub stun_bad_integrity: AtomicU64,
    pub inbox_full: AtomicU64,
    /// SRTP/SRTCP of a keyed connection that did not authenticate on the I/O thread.
    pub srtp_refused: AtomicU64,
    /// SRTP/SRTCP beyond a connection's packet rate (a flood), dropped undecrypted.
    pub rate_limited: AtomicU64,
    /// UDP payload bytes received.
    pub received_bytes: AtomicU64,
    /// Datagrams handed to the kernel.
    pub sent: AtomicU64,
    /// Their UDP payload bytes.
    pub sent_bytes: AtomicU64,
    /// Datagrams refused for good (unreachable, too large, …).
    pub send_errors: AtomicU64,
    /// Datagrams dropped because the socket buffer was full: sends never wait.
    pub send_dropped: AtomicU64,
    /// Send system calls (`sendto`, `sendmmsg`): `sent / send_syscalls` is the batching.
    pub send_syscalls: AtomicU64,
    /// Datagrams that left inside a UDP GSO message.
    pub gso_datagrams: AtomicU64,
}

impl MediaCounters {
    pub(crate) fn add_send_report(&self, r: &SendReport) {
        let add = |c: &AtomicU64, n: u64| {
            if n > 0 {
                c.fetch_add(n, Ordering::Relaxed);
            }
        };
        add(&self.sent, r.sent);
        add(&self.sent_bytes, r.sent_bytes);
        add(&self.send_errors, r.failed);
        add(&self.send_dropped, r.dropped);
        add(&self.send_syscalls, r.syscalls);
        add(&self.gso_datagrams, r.gso_datagrams);
    }
}

/// What a batch send did, per datagram.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendReport {
    pub sent: u64,
    /// The socket buffer was full (EAGAIN/ENOBUFS): dropped, as a congested link would.
    pub dropped: u64,
    /// Refused for another reason (unreachable, too large, …).
    pub failed: u64,
    /// `sendmmsg` calls made.
    pub syscalls: u64,
    /// Datagrams that left inside a GSO message.
    pub gso_datagrams: u64,
    /// UDP payload bytes of the datagrams sent.
    pub sent_bytes: u64,
}

impl SendReport {
    pub(crate) fn merge(&mut self, other: &SendReport) {
        self.sent += other.sent;
        self.sent_bytes += other.sent_bytes;
        self.dropped += other.dropped;
        self.failed += other.failed;
        self.syscalls += other.syscalls;
        self.gso_datagrams += other.gso_datagrams;
    }
}
