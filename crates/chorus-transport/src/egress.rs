//! Batched egress: the datagrams a room turn produces are gathered in one arena and
//! leave in as few system calls as possible. Runs of equal-size datagrams to one
//! destination become one UDP GSO datagram (`UDP_SEGMENT`), and every run of a batch
//! goes through `sendmmsg`. The kernel's per-datagram work, not the syscall entry,
//! dominates a UDP send (docs/BENCHMARKS.md, "Floor"), so GSO is where the gain is.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::counters::{MediaCounters, SendReport};

/// What one GSO datagram may carry. The kernel refuses more than `UDP_MAX_SEGMENTS`
/// segments (64 before Linux 6.9) and more than an IP datagram's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GsoLimits {
    pub max_segments: usize,
    pub max_bytes: usize,
}

impl GsoLimits {
    /// Safe on every kernel with GSO: 64 segments, 63 KiB (below 64 KiB minus the
    /// IPv6 and UDP headers).
    pub const KERNEL: GsoLimits = GsoLimits {
        max_segments: 64,
        max_bytes: 63 * 1024,
    };
}

/// Consecutive datagrams `first..first + count` of a batch, to one destination, sent as one
/// message: with `count > 1` the kernel cuts it into `segment`-byte datagrams (the last
/// may be shorter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Run {
    pub first: usize,
    pub count: usize,
    pub segment: usize,
}

impl Run {
    pub(crate) fn is_gso(&self) -> bool {
        self.count > 1
    }
}

/// Groups datagrams, in their order, into runs (appended to `out`; indices start at
/// `base`). Without `gso` every datagram is its own run. Order is kept even where
/// reordering would give longer runs: a subscriber's streams are interleaved in it.
pub(crate) fn plan_runs<K: PartialEq>(
    datagrams: impl IntoIterator<Item = (K, usize)>,
    gso: Option<GsoLimits>,
    base: usize,
    out: &mut Vec<Run>,
) {
    // The open run, its destination, its bytes, and whether a shorter datagram closed it.
    let mut open: Option<(Run, K, usize, bool)> = None;
    for (i, (to, len)) in datagrams.into_iter().enumerate() {
        let index = base + i;
        if let (Some(limits), Some((run, dest, bytes, closed))) = (gso, open.as_mut()) {
            let fits = *dest == to
                && !*closed
                && run.segment > 0
                && len > 0
                && len <= run.segment
                && run.count < limits.max_segments
                && *bytes + len <= limits.max_bytes;
            if fits {
                run.count += 1;
                *bytes += len;
                *closed = len < run.segment;
                continue;
            }
        }
        if let Some((run, ..)) = open.take() {
            out.push(run);
        }
        let run = Run {
            first: index,
            count: 1,
            segment: len,
        };
        open = Some((run, to, len, false));
    }
    if let Some((run, ..)) = open {
        out.push(run);
    }
}

/// One queued datagram: where it goes and where its bytes are in the arena.
#[derive(Debug, Clone, Copy)]
struct Queued {
    to: SocketAddr,
    start: usize,
    len: usize,
}

/// The reusable arena of one batch: payload bytes back to back, their destinations, and
/// the plan. Keeps its capacity between turns, so steady state allocates nothing.
#[derive(Debug, Default)]
pub(crate) struct EgressBatch {
    bytes: Vec<u8>,
    queued: Vec<Queued>,
    runs: Vec<Run>,
}

/// Bytes queued before a batch is sent even though the turn has not ended: bounds the
/// arena when one turn forwards a burst to hundreds of subscribers.
pub(crate) const MAX_QUEUED_BYTES: usize = 1 << 20;
/// Largest UDP payload over IPv4; larger datagrams cannot be sent at all.
const MAX_DATAGRAM: usize = 65_507;
/// Messages per `sendmmsg` call. The arrays live on the stack of the sending thread.
const MSGS_PER_CALL: usize = 64;

impl EgressBatch {
    pub fn len(&self) -> usize {
        self.queued.len()
    }

    pub fn queued_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// Copies a datagram into the arena. Returns false for a datagram no UDP socket could
    /// send (larger than 65 507 bytes), which is not queued.
    pub fn push(&mut self, to: SocketAddr, datagram: &[u8]) -> bool {
        if datagram.len() > MAX_DATAGRAM {
            return false;
        }
        self.queued.push(Queued {
            to,
            start: self.bytes.len(),
            len: datagram.len(),
        });
        self.bytes.extend_from_slice(datagram);
        true
    }

    pub fn clear(&mut self) {
        self.bytes.clear();
        self.queued.clear();
        self.runs.clear();
    }

    /// Sends everything queued through `fd` and empties the batch. Never blocks
    /// (`MSG_DONTWAIT`) and never fails as a whole: each datagram's fate is counted.
    /// If the kernel refuses a GSO message (EIO: no checksum offload on the route;
    /// EINVAL: no GSO), `gso` is switched off for good and the rest goes without it.
    pub fn send(&mut self, fd: RawFd, gso: &AtomicBool, counters: &MediaCounters) -> SendReport {
        let mut report = SendReport::default();
        let limits = gso.load(Ordering::Relaxed).then_some(GsoLimits::KERNEL);
        self.runs.clear();
        plan_runs(
            self.queued.iter().map(|q| (q.to, q.len)),
            limits,
            0,
            &mut self.runs,
        );

        // SAFETY: all-zero is a valid value of these plain C structs (null pointers, zero
        // lengths); every field the kernel reads is set below before each call.
        let mut hdrs: [libc::mmsghdr; MSGS_PER_CALL] = unsafe { zeroed() };
        let mut iovs: [libc::iovec; MSGS_PER_CALL] = unsafe { zeroed() };
        let mut addrs = [RawAddr::zeroed(); MSGS_PER_CALL];
        // One cmsg carrying a u16 per message; u64 elements give cmsghdr's alignment.
        let mut controls = [[0u64; 4]; MSGS_PER_CALL];

        let mut next = 0;
        while next < self.runs.len() {
            let chunk = &self.runs[next..self.runs.len().min(next + MSGS_PER_CALL)];
            for (i, run) in chunk.iter().enumerate() {
                let first = self.queued[run.first];
                let last = self.queued[run.first + run.count - 1];
                let payload = &self.bytes[first.start..last.start + last.len];
                iovs[i] = libc::iovec {
                    iov_base: payload.as_ptr() as *mut libc::c_void,
                    iov_len: payload.len(),
                };
                let addr_len = addrs[i].set(first.to);
                let hdr = &mut hdrs[i].msg_hdr;
                hdr.msg_name = (&mut addrs[i] as *mut RawAddr).cast();
                hdr.msg_namelen = addr_len;
                hdr.msg_iov = &mut iovs[i];
                hdr.msg_iovlen = 1;
                if run.is_gso() {
                    hdr.msg_control = controls[i].as_mut_ptr().cast();
                    // SAFETY: CMSG_SPACE only computes a length.
                    hdr.msg_controllen =
                        unsafe { libc::CMSG_SPACE(size_of::<u16>() as u32) } as usize;
                    // SAFETY: `hdr` points at a control buffer of 32 bytes, more than
                    // CMSG_SPACE(2) = 24, so the first header and its data fit in it.
                    unsafe {
                        let cm = libc::CMSG_FIRSTHDR(hdr);
                        (*cm).cmsg_level = libc::SOL_UDP;
                        (*cm).cmsg_type = libc::UDP_SEGMENT;
                        (*cm).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as usize;
                        // Runs never exceed 63 KiB, so the segment size fits.
                        libc::CMSG_DATA(cm)
                            .cast::<u16>()
                            .write_unaligned(run.segment as u16);
                    }
                } else {
                    hdr.msg_control = std::ptr::null_mut();
                    hdr.msg_controllen = 0;
                }
            }
            report.syscalls += 1;
            // SAFETY: the first `chunk.len()` headers point into `iovs`, `addrs`,
            // `controls` and `self.bytes`, all alive and unchanged during the call.
            let n = unsafe {
                libc::sendmmsg(
                    fd,
                    hdrs.as_mut_ptr(),
                    chunk.len() as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if n > 0 {
                for (run, iov) in chunk[..n as usize].iter().zip(&iovs) {
                    report.sent += run.count as u64;
                    report.sent_bytes += iov.iov_len as u64;
                    if run.is_gso() {
                        report.gso_datagrams += run.count as u64;
                    }
                }
                next += n as usize;
                continue;
            }
            // The first message of the chunk failed; the others were not tried.
            let err = io::Error::last_os_error();
            let run = chunk[0];
            match err.raw_os_error() {
                Some(libc::EINTR) => {}
                Some(libc::EAGAIN | libc::ENOBUFS) => {
                    report.dropped += run.count as u64;
                    next += 1;
                }
                Some(libc::EIO | libc::EINVAL) if run.is_gso() => {
                    if gso.swap(false, Ordering::Relaxed) {
                        tracing::warn!(error = %err, "UDP GSO refused by the kernel; sending datagrams one by one from now on");
                    }
                    // Re-plan what is left without segmentation.
                    self.runs.truncate(next);
                    let rest = self.queued[run.first..].iter().map(|q| (q.to, q.len));
                    plan_runs(rest, None, run.first, &mut self.runs);
                }
                _ => {
                    tracing::trace!(to = %self.queued[run.first].to, error = %err, "datagram not sent");
                    report.failed += run.count as u64;
                    next += 1;
                }
            }
        }
        self.clear();
        counters.add_send_report(&report);
        report
    }
}

/// A socket address as the kernel takes it.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) union RawAddr {
    v4: libc::sockaddr_in,
    v6: libc::sockaddr_in6,
}

impl RawAddr {
    pub(crate) fn zeroed() -> Self {
        // SAFETY: all-zero is a valid sockaddr_in and sockaddr_in6.
        unsafe { zeroed() }
    }

    /// Writes `addr` and returns its length.
    pub(crate) fn set(&mut self, addr: SocketAddr) -> libc::socklen_t {
        match addr {
            SocketAddr::V4(a) => {
                self.v4 = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                size_of::<libc::sockaddr_in>() as libc::socklen_t
            }
            SocketAddr::V6(a) => {
                self.v6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                size_of::<libc::sockaddr_in6>() as libc::socklen_t
            }
        }
    }
}

/// Whether the kernel knows UDP GSO on this socket (Linux 4.18+): reading the option
/// fails with ENOPROTOOPT where it does not. Whether the route can do it shows on the
/// first send.
pub(crate) fn gso_supported(fd: RawFd) -> bool {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: value and len are valid for writes of the sizes given.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_UDP,
            libc::UDP_SEGMENT,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    rc == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(first: usize, count: usize, segment: usize) -> Run {
        Run {
            first,
            count,
            segment,
        }
    }

    fn plan(datagrams: &[(char, usize)], gso: Option<GsoLimits>) -> Vec<Run> {
        let mut out = Vec::new();
        plan_runs(datagrams.iter().copied(), gso, 0, &mut out);
        out
    }

    const GSO: Option<GsoLimits> = Some(GsoLimits::KERNEL);

    /// Datagrams as (destination, length), the limits, and the runs expected.
    type Case<'a> = (&'a str, &'a [(char, usize)], Option<GsoLimits>, &'a [Run]);

    #[test]
    fn grouping_into_gso_runs() {
        let small = Some(GsoLimits {
            max_segments: 3,
            max_bytes: 3000,
        });
        #[rustfmt::skip]
        let cases: &[Case] = &[
            ("empty", &[], GSO, &[]),
            ("one datagram", &[('a', 1200)], GSO, &[run(0, 1, 1200)]),
            ("equal sizes, one destination", &[('a', 1200), ('a', 1200), ('a', 1200)], GSO,
                &[run(0, 3, 1200)]),
            ("shorter last segment joins", &[('a', 1200), ('a', 1200), ('a', 700)], GSO,
                &[run(0, 3, 1200)]),
            ("a shorter segment ends the run", &[('a', 1200), ('a', 700), ('a', 1200)], GSO,
                &[run(0, 2, 1200), run(2, 1, 1200)]),
            ("two shorter in a row", &[('a', 1200), ('a', 700), ('a', 700)], GSO,
                &[run(0, 2, 1200), run(2, 1, 700)]),
            ("a larger datagram starts a run", &[('a', 700), ('a', 1200), ('a', 1200)], GSO,
                &[run(0, 1, 700), run(1, 2, 1200)]),
            ("destinations alternate", &[('a', 1200), ('b', 1200), ('a', 1200)], GSO,
                &[run(0, 1, 1200), run(1, 1, 1200), run(2, 1, 1200)]),
            ("per destination", &[('a', 100), ('a', 100), ('b', 100), ('b', 90), ('c', 5)], GSO,
                &[run(0, 2, 100), run(2, 2, 100), run(4, 1, 5)]),
            ("segment count limit", &[('a', 10), ('a', 10), ('a', 10), ('a', 10)], small,
                &[run(0, 3, 10), run(3, 1, 10)]),
            ("byte limit", &[('a', 1000), ('a', 1000), ('a', 1000), ('a', 1000)],
                Some(GsoLimits { max_segments: 64, max_bytes: 2500 }),
                &[run(0, 2, 1000), run(2, 2, 1000)]),
            ("byte limit reached exactly", &[('a', 1000), ('a', 1000), ('a', 1000)], small,
                &[run(0, 3, 1000)]),
            // An empty segment would vanish inside a GSO message.
            ("empty datagram stays alone", &[('a', 100), ('a', 0), ('a', 0)], GSO,
                &[run(0, 1, 100), run(1, 1, 0), run(2, 1, 0)]),
            ("without GSO, one run each", &[('a', 1200), ('a', 1200)], None,
                &[run(0, 1, 1200), run(1, 1, 1200)]),
        ];
        for (name, datagrams, limits, expected) in cases {
            assert_eq!(plan(datagrams, *limits), *expected, "{name}");
        }
    }

    #[test]
    fn kernel_limits_cut_long_runs() {
        // 1000-byte segments: 64 of them stay under 63 KiB, so the segment count cuts.
        let runs = plan(&[('a', 1000); 130], GSO);
        assert_eq!(
            runs,
            [run(0, 64, 1000), run(64, 64, 1000), run(128, 2, 1000)]
        );
        // 1200-byte segments: 53 × 1200 = 63 600 bytes is the most under 63 KiB.
        let runs = plan(&[('a', 1200); 110], GSO);
        assert_eq!(
            runs,
            [run(0, 53, 1200), run(53, 53, 1200), run(106, 4, 1200)]
        );
    }

    #[test]
    fn replanning_keeps_indices() {
        let mut out = vec![run(0, 2, 10)];
        plan_runs([('a', 10), ('a', 10)], None, 2, &mut out);
        assert_eq!(out, [run(0, 2, 10), run(2, 1, 10), run(3, 1, 10)]);
    }

    /// The kernel refuses GSO on a socket without UDP checksums (SO_NO_CHECK) with EINVAL:
    /// the batch must still arrive, one datagram per message, and GSO stay off.
    #[test]
    fn refused_gso_falls_back_to_single_datagrams() {
        use std::net::UdpSocket;
        use std::os::fd::AsRawFd;
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let one: libc::c_int = 1;
        // SAFETY: `one` is a valid c_int for the length given.
        let rc = unsafe {
            libc::setsockopt(
                tx.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_NO_CHECK,
                (&one as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0);
        if !gso_supported(tx.as_raw_fd()) {
            return; // nothing to fall back from
        }
        let to = rx.local_addr().unwrap();
        let mut batch = EgressBatch::default();
        let sent: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 300]).collect();
        for d in &sent {
            batch.push(to, d);
        }
        let gso = AtomicBool::new(true);
        let counters = MediaCounters::default();
        let report = batch.send(tx.as_raw_fd(), &gso, &counters);
        assert!(!gso.load(Ordering::Relaxed), "GSO switched off");
        assert_eq!(
            (
                report.sent,
                report.gso_datagrams,
                report.failed,
                report.dropped
            ),
            (5, 0, 0, 0)
        );
        // One refused GSO call, then the five datagrams in one sendmmsg.
        assert_eq!(report.syscalls, 2);
        assert_eq!(counters.sent.load(Ordering::Relaxed), 5);
        let mut buf = [0u8; 2048];
        for d in &sent {
            let n = rx.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], &d[..]);
        }
        assert_eq!(batch.len(), 0, "the arena is empty again");
    }

    #[test]
    fn oversized_datagrams_are_refused() {
        let mut batch = EgressBatch::default();
        let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert!(!batch.push(to, &vec![0; MAX_DATAGRAM + 1]));
        assert!(batch.push(to, &[1, 2, 3]));
        assert_eq!((batch.len(), batch.queued_bytes()), (1, 3));
    }
}
