//! The shared media port: I/O threads receive, the owners of connections send.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use thiserror::Error;

use crate::counters::{MediaCounters, SendReport};
use crate::demux::{Delivery, Demux};
use crate::egress::{self, EgressBatch, MAX_QUEUED_BYTES, RawAddr};
use crate::receive::ReceiveBatch;

#[derive(Debug, Clone)]
pub struct MediaPlaneConfig {
    pub bind: SocketAddr,
    /// I/O threads; 0 means one per core.
    pub workers: usize,
}

#[derive(Debug, Error)]
pub enum MediaPlaneError {
    #[error("cannot bind media socket {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

struct Inner {
    demux: Arc<Demux>,
    /// Sends go out through any socket of the group: they share the port.
    send_socket: UdpSocket,
    local_addr: SocketAddr,
    counters: MediaCounters,
    /// UDP GSO works on the send socket: probed at start, switched off for good if the
    /// kernel refuses a segmented send.
    gso: AtomicBool,
    /// Arenas of finished batches, for the next turn to reuse.
    egress_pool: Mutex<Vec<EgressBatch>>,
    stop: AtomicBool,
    threads: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

/// The UDP port every participant's media flows through. Cheap to clone.
#[derive(Clone)]
pub struct MediaPlane {
    inner: Arc<Inner>,
}

/// Arenas kept for reuse: about one per room turn running at the same time.
const EGRESS_POOL: usize = 16;
const SOCKET_BUFFER_BYTES: usize = 8 << 20;

fn bind_reuseport(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    // Best effort: the kernel caps these at net.core.{r,w}mem_max.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES);
    // Sends never wait (MSG_DONTWAIT), so a frame's burst to hundreds of subscribers must
    // fit the send buffer; with CAP_NET_ADMIN the cap does not apply.
    if socket.send_buffer_size().unwrap_or(0) < SOCKET_BUFFER_BYTES {
        force_send_buffer(&socket, SOCKET_BUFFER_BYTES);
    }
    socket.bind(&addr.into())?;
    // Lets the I/O threads look at the stop flag now and then.
    socket.set_read_timeout(Some(Duration::from_millis(200)))?;
    Ok(socket.into())
}

fn force_send_buffer(socket: &Socket, bytes: usize) {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: `value` is a valid c_int for the length given. Failing (no privilege) is fine.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUFFORCE,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

impl MediaPlane {
    pub fn start(config: MediaPlaneConfig) -> Result<Self, MediaPlaneError> {
        let workers = if config.workers == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            config.workers
        };
        let bind_err = |addr, source| MediaPlaneError::Bind { addr, source };
        let first = bind_reuseport(config.bind).map_err(|e| bind_err(config.bind, e))?;
        // With port 0 the kernel picked one; the other sockets join that port.
        let local_addr = first.local_addr().map_err(|e| bind_err(config.bind, e))?;
        let mut sockets = vec![first];
        for _ in 1..workers {
            sockets.push(bind_reuseport(local_addr).map_err(|e| bind_err(local_addr, e))?);
        }
        let send_socket = sockets[0]
            .try_clone()
            .map_err(|e| bind_err(local_addr, e))?;
        let gso = egress::gso_supported(send_socket.as_raw_fd());
        if !gso {
            tracing::info!("UDP GSO not available: batches go out through sendmmsg alone");
        }
        // The kernel reports twice what was granted (bookkeeping overhead included).
        let send_buffer = socket2::SockRef::from(&send_socket)
            .send_buffer_size()
            .unwrap_or(0);
        if send_buffer < SOCKET_BUFFER_BYTES {
            tracing::warn!(
                send_buffer,
                "small UDP send buffer: bursts to many subscribers will drop (counted as \
                 send_dropped); raise net.core.wmem_max"
            );
        }
        let inner = Arc::new(Inner {
            demux: Arc::new(Demux::default()),
            send_socket,
            local_addr,
            counters: MediaCounters::default(),
            gso: AtomicBool::new(gso),
            egress_pool: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            threads: Default::default(),
        });
        let mut threads = Vec::new();
        for (i, socket) in sockets.into_iter().enumerate() {
            let inner = inner.clone();
            let handle = std::thread::Builder::new()
                .name(format!("chorus-media-{i}"))
                .spawn(move || receive_loop(&inner, socket))
                .expect("spawning a thread only fails when the OS is out of resources");
            threads.push(handle);
        }
        *inner.threads.lock().expect("not poisoned") = threads;
        tracing::info!(%local_addr, workers, "media plane listening");
        Ok(Self { inner })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    pub fn demux(&self) -> &Demux {
        &self.inner.demux
    }

    pub fn counters(&self) -> &MediaCounters {
        &self.inner.counters
    }

    /// Sends one datagram now, for the odd packet outside a room turn; a turn's output
    /// goes through [`MediaPlane::egress`]. Never waits: a full socket buffer drops it,
    /// as a congested link would.
    pub fn send(&self, to: SocketAddr, data: &[u8]) {
        let mut addr = RawAddr::zeroed();
        let addr_len = addr.set(to);
        // SAFETY: `data` and `addr` are valid for the lengths given during the call.
        let rc = unsafe {
            libc::sendto(
                self.inner.send_socket.as_raw_fd(),
                data.as_ptr().cast(),
                data.len(),
                libc::MSG_DONTWAIT,
                (&addr as *const RawAddr).cast(),
                addr_len,
            )
        };
        let c = &self.inner.counters;
        c.send_syscalls.fetch_add(1, Ordering::Relaxed);
        let counter = match rc {
            0.. => {
                c.sent_bytes.fetch_add(rc as u64, Ordering::Relaxed);
                &c.sent
            }
            _ => match std::io::Error::last_os_error().raw_os_error() {
                Some(libc::EAGAIN | libc::ENOBUFS) => &c.send_dropped,
                _ => &c.send_errors,
            },
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A batch for one room turn: push what the turn produced, then [`Egress::send`].
    /// The arena comes from a pool, so a steady stream of turns allocates nothing.
    pub fn egress(&self) -> Egress<'_> {
        let batch = self
            .inner
            .egress_pool
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop()
            .unwrap_or_default();
        Egress {
            inner: &self.inner,
            batch,
            report: SendReport::default(),
        }
    }

    /// Whether batches use UDP GSO (false if the kernel lacks it or refused it once).
    pub fn gso_enabled(&self) -> bool {
        self.inner.gso.load(Ordering::Relaxed)
    }

    /// Turns GSO off (for measurements and tests of the fallback); it cannot be turned
    /// back on.
    pub fn disable_gso(&self) {
        self.inner.gso.store(false, Ordering::Relaxed);
    }

    /// Stops the I/O threads and waits for them.
    pub fn stop(&self) {
        self.inner.stop.store(true, Ordering::Relaxed);
        let threads = std::mem::take(&mut *self.inner.threads.lock().expect("not poisoned"));
        for t in threads {
            let _ = t.join();
        }
        let c = &self.inner.counters;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        tracing::info!(
            received = get(&c.received),
            receive_syscalls = get(&c.receive_syscalls),
            unroutable_unknown_addr = get(&c.unroutable_unknown_addr),
            unroutable_unknown_ufrag = get(&c.unroutable_unknown_ufrag),
            stun_bad_integrity = get(&c.stun_bad_integrity),
            inbox_full = get(&c.inbox_full),
            srtp_refused = get(&c.srtp_refused),
            rate_limited = get(&c.rate_limited),
            sent = get(&c.sent),
            send_syscalls = get(&c.send_syscalls),
            gso_datagrams = get(&c.gso_datagrams),
            send_dropped = get(&c.send_dropped),
            send_errors = get(&c.send_errors),
            "media plane stopped"
        );
    }
}

/// The datagrams of one room turn, gathered in a pooled arena and sent together: runs
/// of equal-size datagrams to one destination as one GSO message, all of them through
/// `sendmmsg`. Dropping it sends what is left.
pub struct Egress<'a> {
    inner: &'a Inner,
    batch: EgressBatch,
    report: SendReport,
}

impl Egress<'_> {
    /// Queues a datagram (copied: the caller's buffer can go back to its allocator).
    pub fn push(&mut self, to: SocketAddr, datagram: &[u8]) {
        if self.batch.len() > 0 && self.batch.queued_bytes() + datagram.len() > MAX_QUEUED_BYTES {
            self.flush();
        }
        if !self.batch.push(to, datagram) {
            self.inner
                .counters
                .send_errors
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Datagrams queued and not yet sent.
    pub fn len(&self) -> usize {
        self.batch.len()
    }

    pub fn is_empty(&self) -> bool {
        self.batch.len() == 0
    }

    /// Sends everything queued; what happened to each datagram, over the batch's life.
    pub fn send(mut self) -> SendReport {
        self.flush();
        self.report
    }

    fn flush(&mut self) {
        if self.batch.len() == 0 {
            return;
        }
        let fd = self.inner.send_socket.as_raw_fd();
        let r = self.batch.send(fd, &self.inner.gso, &self.inner.counters);
        self.report.merge(&r);
    }
}

impl Drop for Egress<'_> {
    fn drop(&mut self) {
        self.flush();
        let batch = std::mem::take(&mut self.batch);
        let mut pool = self
            .inner
            .egress_pool
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if pool.len() < EGRESS_POOL {
            pool.push(batch);
        }
    }
}

fn receive_loop(inner: &Inner, socket: UdpSocket) {
    let mut batch = ReceiveBatch::default();
    let fd = socket.as_raw_fd();
    let c = &inner.counters;
    while !inner.stop.load(Ordering::Relaxed) {
        // One reading of the clock per burst: its datagrams arrived together.
        let mut at = None;
        let mut bytes = 0;
        let received = batch.receive(fd, |from, data| {
            let at = *at.get_or_insert_with(Instant::now);
            bytes += data.len() as u64;
            let counter = match inner.demux.deliver(from, at, data) {
                Delivery::Delivered | Delivery::OwnerGone => return,
                Delivery::UnknownAddress => &c.unroutable_unknown_addr,
                Delivery::UnknownUfrag => &c.unroutable_unknown_ufrag,
                Delivery::InboxFull => &c.inbox_full,
                Delivery::SrtpRefused => &c.srtp_refused,
                Delivery::RateLimited => &c.rate_limited,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        });
        match received {
            Ok(n) => {
                c.received.fetch_add(n as u64, Ordering::Relaxed);
                c.received_bytes.fetch_add(bytes, Ordering::Relaxed);
                c.receive_syscalls.fetch_add(1, Ordering::Relaxed);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            // ICMP errors surface as ConnectionRefused on some kernels: not fatal.
            Err(e) => tracing::trace!(error = %e, "media socket receive error"),
        }
    }
}
