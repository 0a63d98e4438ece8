//! When a datagram arrived: the kernel's receive time (`SO_TIMESTAMPNS`), not the time
//! our task got to read it.
//!
//! A load test runs hundreds of clients in one process; when it is short of CPU a
//! datagram waits in the socket until its task runs. Transport-wide CC feedback built
//! from read times would tell the server that wait as a queue on the link, and its
//! bandwidth estimate would fall for a delay no real receiver has. The kernel stamps
//! each datagram when it queues it on the socket; [`arrival_instant`] turns that
//! wall-clock stamp into the [`Instant`] the connection takes as the packet's `now`.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use tokio::net::UdpSocket;

use super::cmsg::{control_message, enable_option};

/// The oldest arrival taken from a stamp: a datagram does not wait in a socket longer
/// unless the clock stepped, and then the stamp is not to be trusted either.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(2);

/// A datagram read into the caller's buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Datagram {
    pub(crate) len: usize,
    pub(crate) from: SocketAddr,
    /// The kernel's receive time (`CLOCK_REALTIME`); `None` when it gave none.
    pub(crate) stamp: Option<SystemTime>,
}

/// Asks the kernel to stamp every datagram the socket receives.
pub(crate) fn enable_stamps(socket: &UdpSocket) -> io::Result<()> {
    enable_option(socket, libc::SO_TIMESTAMPNS)
}

/// The `SCM_TIMESTAMPNS` control message among those `header` carries.
///
/// # Safety
/// `header` was filled in by `recvmmsg`, and its control buffer is alive.
pub(crate) unsafe fn stamp_of(header: &libc::msghdr) -> Option<SystemTime> {
    // SAFETY: the caller's promise; this message carries a timespec.
    let ts: libc::timespec = unsafe { control_message(header, libc::SCM_TIMESTAMPNS) }?;
    let since_epoch = Duration::new(
        u64::try_from(ts.tv_sec).ok()?,
        u32::try_from(ts.tv_nsec).ok()?,
    );
    SystemTime::UNIX_EPOCH.checked_add(since_epoch)
}

/// The arrival of a datagram stamped `stamp` (wall clock), read at `now` (`wall_now` on
/// the wall clock): as long before `now` as the stamp is before `wall_now`. Never after
/// `now`, never more than [`MAX_WAIT`] before it, and never before `floor` (the last
/// time the connection was given: its clock does not run backwards); and how much
/// later than stamped it was dated to keep to `floor` (zero when it was not).
pub(crate) fn arrival_instant(
    stamp: SystemTime,
    now: Instant,
    wall_now: SystemTime,
    floor: Instant,
) -> (Instant, Duration) {
    let waited = wall_now.duration_since(stamp).unwrap_or_default();
    let stamped = now.checked_sub(waited.min(MAX_WAIT)).unwrap_or(now);
    let dated = stamped.max(floor).min(now);
    (dated, dated.saturating_duration_since(stamped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::batch::RecvBatch;

    /// The one datagram waiting on `socket` and its bytes.
    async fn read_one(socket: &UdpSocket) -> (Datagram, Vec<u8>) {
        socket.readable().await.unwrap();
        let mut batch = RecvBatch::default();
        assert_eq!(batch.try_fill(socket).unwrap(), 1);
        let (datagram, bytes) = batch.next_datagram().unwrap();
        (datagram, bytes.to_vec())
    }

    #[test]
    fn arrival_from_the_stamp_clamped() {
        let now = Instant::now();
        let wall = SystemTime::now();
        let ms = Duration::from_millis;
        let long_ago = now - ms(10_000);
        // (stamp, floor, expected arrival, how much later than stamped)
        let cases = [
            (
                "waited 200 ms",
                wall - ms(200),
                long_ago,
                now - ms(200),
                ms(0),
            ),
            ("stamped now", wall, long_ago, now, ms(0)),
            ("stamp in the future", wall + ms(50), long_ago, now, ms(0)),
            (
                "waited past the bound",
                wall - ms(60_000),
                long_ago,
                now - MAX_WAIT,
                ms(0),
            ),
            (
                "before the floor",
                wall - ms(500),
                now - ms(100),
                now - ms(100),
                ms(400),
            ),
            (
                "floor after now",
                wall - ms(500),
                now + ms(100),
                now,
                ms(500),
            ),
        ];
        for (name, stamp, floor, expected, later) in cases {
            let got = arrival_instant(stamp, now, wall, floor);
            assert_eq!(got, (expected, later), "{name}");
        }
    }

    /// A stamped socket, once the kernel stamps on arrival. It turns stamping on lazily
    /// (a static key flipped from a work queue) when the first socket asks, and until
    /// then stamps a datagram when it is read; an open stamped socket keeps it on.
    async fn stamping_on() -> UdpSocket {
        let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        enable_stamps(&receiver).unwrap();
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..100 {
            sender
                .send_to(b"warm", receiver.local_addr().unwrap())
                .unwrap();
            std::thread::sleep(Duration::from_millis(20));
            let (datagram, _) = read_one(&receiver).await;
            let (now, wall) = (Instant::now(), SystemTime::now());
            let stamp = datagram.stamp.expect("the kernel stamps the datagram");
            if now - arrival_instant(stamp, now, wall, now - MAX_WAIT).0
                >= Duration::from_millis(10)
            {
                return receiver;
            }
        }
        panic!("the kernel never stamped a datagram on arrival");
    }

    #[tokio::test]
    async fn a_datagram_left_waiting_is_stamped_when_it_came() {
        let receiver = stamping_on().await;
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sender
            .send_to(b"hello", receiver.local_addr().unwrap())
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));

        let (datagram, bytes) = read_one(&receiver).await;
        let (now, wall) = (Instant::now(), SystemTime::now());
        assert_eq!(bytes, b"hello");
        assert_eq!(datagram.from, sender.local_addr().unwrap());
        let stamp = datagram.stamp.expect("the kernel stamps the datagram");
        let arrival = arrival_instant(stamp, now, wall, now - MAX_WAIT).0;
        assert!(
            now - arrival >= Duration::from_millis(150),
            "{:?}",
            now - arrival
        );
        assert!(matches!(
            RecvBatch::default().try_fill(&receiver),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock
        ));
    }

    /// The connection's own sockets: what it is handed is stamped when the datagram
    /// came, not when it was read.
    #[tokio::test]
    async fn a_peer_takes_the_kernel_time_as_arrival() {
        use chorus_protocol::signal::PeerTarget;

        use crate::peer::{ArrivalCounts, Peer};
        use crate::profile::MediaProfile;

        let _on = stamping_on().await;
        let localhost = std::net::Ipv4Addr::LOCALHOST.into();
        let mut peer = Peer::bind(PeerTarget::Subscriber, localhost, &MediaProfile::default())
            .await
            .unwrap();
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sender.send_to(b"not rtp", peer.local_addr()).unwrap();
        std::thread::sleep(Duration::from_millis(200));

        peer.recv().await.unwrap();
        let read_at = Instant::now();
        let arrival = peer.handle_next(read_at).unwrap();
        assert!(
            read_at - arrival >= Duration::from_millis(150),
            "{:?}",
            read_at - arrival
        );
        assert_eq!(
            peer.arrivals(),
            ArrivalCounts {
                stamped: 1,
                unstamped: 0,
                clamped: 0,
                clamped_micros: 0,
                socket_drops: 0,
            }
        );

        // Driven past a waiting datagram before it is read: its arrival can only be
        // the drive's time (the engine reads everything before it drives), counted.
        sender.send_to(b"not rtp", peer.local_addr()).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let driven = Instant::now();
        peer.handle_timeout(driven);
        peer.recv().await.unwrap();
        assert_eq!(peer.handle_next(Instant::now()), Some(driven));
        assert_eq!(peer.arrivals().clamped, 1);
    }

    #[tokio::test]
    async fn no_stamp_without_the_option() {
        let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sender
            .send_to(b"x", receiver.local_addr().unwrap())
            .unwrap();
        let (datagram, _) = read_one(&receiver).await;
        assert_eq!((datagram.len, datagram.stamp), (1, None));
    }
}
