//! Batched egress over loopback: every datagram of a batch arrives intact and in order,
//! with GSO and without.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

use chorus_transport::{MediaPlane, MediaPlaneConfig};

fn plane() -> MediaPlane {
    MediaPlane::start(MediaPlaneConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        workers: 1,
    })
    .expect("media plane on loopback")
}

/// A receiver that gets GSO segments as separate datagrams: UDP_GRO off (the default,
/// set anyway so the test does not depend on it).
fn receiver() -> UdpSocket {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let off: libc::c_int = 0;
    // SAFETY: `off` is a valid c_int for the length given.
    let rc = unsafe {
        libc::setsockopt(
            rx.as_raw_fd(),
            libc::SOL_UDP,
            libc::UDP_GRO,
            (&off as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "UDP_GRO off: {}", std::io::Error::last_os_error());
    rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    rx
}

fn receive(rx: &UdpSocket, n: usize) -> Vec<Vec<u8>> {
    let mut buf = [0u8; 2048];
    (0..n)
        .map(|i| {
            let len = rx
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("datagram {i} of {n} missing: {e}"));
            buf[..len].to_vec()
        })
        .collect()
}

/// Distinct contents: the index in the first bytes, then a pattern.
fn datagram(index: usize, len: usize) -> Vec<u8> {
    let mut d: Vec<u8> = (0..len).map(|i| (i * 7 + index) as u8).collect();
    d[..2].copy_from_slice(&(index as u16).to_be_bytes());
    d
}

/// Sizes per destination, interleaved as a room turn would produce them: a video frame
/// (equal sizes, shorter last), audio packets between, and a run broken by a larger one.
const A: &[usize] = &[1200, 1200, 1200, 1200, 700, 160, 1200, 1200, 90, 1200];
const B: &[usize] = &[
    160, 160, 160, 1100, 1100, 1100, 1100, 1100, 1100, 1100, 40, 1300,
];

fn send_and_check(plane: &MediaPlane) -> chorus_transport::SendReport {
    let (ra, rb) = (receiver(), receiver());
    let (a, b): (SocketAddr, SocketAddr) = (ra.local_addr().unwrap(), rb.local_addr().unwrap());
    let mut want = [Vec::new(), Vec::new()];
    let mut egress = plane.egress();
    let mut index = 0;
    // Each destination's datagrams in two groups, so runs to A and B alternate.
    for (dest, sizes) in [(0, &A[..6]), (1, &B[..4]), (0, &A[6..]), (1, &B[4..])] {
        for &len in sizes {
            let d = datagram(index, len);
            index += 1;
            egress.push([a, b][dest], &d);
            want[dest].push(d);
        }
    }
    let [want_a, want_b] = want;
    assert_eq!(egress.len(), A.len() + B.len());
    let report = egress.send();
    assert_eq!(receive(&ra, A.len()), want_a);
    assert_eq!(receive(&rb, B.len()), want_b);
    assert_eq!(report.sent, (A.len() + B.len()) as u64);
    assert_eq!((report.dropped, report.failed), (0, 0));
    report
}

#[test]
fn batch_with_gso_arrives_intact_and_in_order() {
    let plane = plane();
    let gso = plane.gso_enabled();
    let report = send_and_check(&plane);
    if gso && plane.gso_enabled() {
        // A: [1200×4 + 700], [160], [1200×2 + 90], [1200]; B: [160×3], [1100], [1100×6 + 40], [1300].
        assert_eq!(report.gso_datagrams, 5 + 3 + 3 + 7);
        assert_eq!(report.syscalls, 1, "8 messages fit one sendmmsg");
    } else {
        eprintln!("kernel without UDP GSO: only the fallback was exercised");
    }
    let c = plane.counters();
    assert_eq!(
        c.sent.load(std::sync::atomic::Ordering::Relaxed),
        report.sent
    );
    plane.stop();
}

#[test]
fn batch_without_gso_arrives_intact_and_in_order() {
    let plane = plane();
    plane.disable_gso();
    let report = send_and_check(&plane);
    assert_eq!(report.gso_datagrams, 0);
    // 22 single-datagram messages, 64 per sendmmsg.
    assert_eq!(report.syscalls, 1);
    plane.stop();
}

#[test]
fn dropping_a_batch_sends_it_and_single_sends_still_work() {
    let plane = plane();
    let rx = receiver();
    let to = rx.local_addr().unwrap();
    {
        let mut egress = plane.egress();
        egress.push(to, &datagram(1, 100));
        egress.push(to, &datagram(2, 100));
    }
    plane.send(to, &datagram(3, 50));
    assert_eq!(
        receive(&rx, 3),
        [datagram(1, 100), datagram(2, 100), datagram(3, 50)]
    );
    plane.stop();
}

#[test]
fn many_destinations_take_several_sendmmsg_calls() {
    let plane = plane();
    let receivers: Vec<UdpSocket> = (0..150).map(|_| receiver()).collect();
    let mut egress = plane.egress();
    for (i, rx) in receivers.iter().enumerate() {
        egress.push(rx.local_addr().unwrap(), &datagram(i, 1000));
        egress.push(rx.local_addr().unwrap(), &datagram(i + 1000, 1000));
    }
    let report = egress.send();
    assert_eq!(report.sent, 300);
    // 150 messages (GSO pairs) or 300 (without), 64 per call.
    let messages: u64 = if report.gso_datagrams > 0 { 150 } else { 300 };
    assert_eq!(report.syscalls, messages.div_ceil(64));
    for (i, rx) in receivers.iter().enumerate() {
        assert_eq!(
            receive(rx, 2),
            [datagram(i, 1000), datagram(i + 1000, 1000)]
        );
    }
    plane.stop();
}
