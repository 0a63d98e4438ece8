//! The shared media port: I/O threads receive, the owners of connections send.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use socket2::{Domain, Protocol, Socket, Type};
use thiserror::Error;

use crate::demux::{Delivery, Demux};

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

/// Counters of the I/O threads.
#[derive(Debug, Default)]
pub struct MediaCounters {
    pub received: AtomicU64,
    pub unroutable: AtomicU64,
    pub inbox_full: AtomicU64,
    pub sent: AtomicU64,
    pub send_errors: AtomicU64,
}

struct Inner {
    demux: Arc<Demux>,
    /// Sends go out through any socket of the group: they share the port.
    send_socket: UdpSocket,
    local_addr: SocketAddr,
    counters: MediaCounters,
    stop: AtomicBool,
    threads: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

/// The UDP port every participant's media flows through. Cheap to clone.
#[derive(Clone)]
pub struct MediaPlane {
    inner: Arc<Inner>,
}

const RECV_BUF: usize = 1500;
const SOCKET_BUFFER_BYTES: usize = 8 << 20;

fn bind_reuseport(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    // Best effort: the kernel caps these at net.core.{r,w}mem_max.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES);
    socket.bind(&addr.into())?;
    // Lets the I/O threads look at the stop flag now and then.
    socket.set_read_timeout(Some(Duration::from_millis(200)))?;
    Ok(socket.into())
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
        let inner = Arc::new(Inner {
            demux: Arc::new(Demux::default()),
            send_socket,
            local_addr,
            counters: MediaCounters::default(),
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

    /// Sends one datagram. UDP to a full socket buffer drops, which is what we want.
    pub fn send(&self, to: SocketAddr, data: &[u8]) {
        match self.inner.send_socket.send_to(data, to) {
            Ok(_) => self.inner.counters.sent.fetch_add(1, Ordering::Relaxed),
            Err(_) => self
                .inner
                .counters
                .send_errors
                .fetch_add(1, Ordering::Relaxed),
        };
    }

    /// Stops the I/O threads and waits for them.
    pub fn stop(&self) {
        self.inner.stop.store(true, Ordering::Relaxed);
        let threads = std::mem::take(&mut *self.inner.threads.lock().expect("not poisoned"));
        for t in threads {
            let _ = t.join();
        }
    }
}

fn receive_loop(inner: &Inner, socket: UdpSocket) {
    let mut buf = BytesMut::with_capacity(64 * RECV_BUF);
    while !inner.stop.load(Ordering::Relaxed) {
        if buf.capacity() < RECV_BUF {
            buf.reserve(64 * RECV_BUF);
        }
        // One allocation serves many datagrams: each is split off the front.
        buf.resize(RECV_BUF, 0);
        match socket.recv_from(&mut buf[..]) {
            Ok((n, from)) => {
                let data = buf.split_to(n);
                buf.clear();
                let c = &inner.counters;
                c.received.fetch_add(1, Ordering::Relaxed);
                match inner.demux.deliver(from, Instant::now(), data) {
                    Delivery::Delivered | Delivery::OwnerGone => {}
                    Delivery::Unroutable => {
                        c.unroutable.fetch_add(1, Ordering::Relaxed);
                    }
                    Delivery::InboxFull => {
                        c.inbox_full.fetch_add(1, Ordering::Relaxed);
                    }
                }
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
