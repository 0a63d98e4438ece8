//! The physical floor of sending forwarded media: what one 1200-byte RTP packet costs the
//! sender in SRTP and in the kernel's UDP send path, with nothing of Chorus or `rtc` around
//! it. Chorus's per-egress-packet CPU (docs/BENCHMARKS.md) is judged against these figures.
//!
//! Sends go over loopback to a socket nobody reads: once its receive buffer is full the
//! kernel drops the datagrams after the full IP/UDP path, and `sendto` still succeeds, which
//! is what a send-cost floor needs without a drain thread competing for the two cores.
//! `FLOOR_DRAIN=1` adds a thread that reads the receiver, to price delivery + wakeup too.

use std::hint::black_box;
use std::io;
use std::mem::{size_of, zeroed};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use chorus_transport::dtls_srtp::SrtpProfile;
use chorus_transport::dtls_srtp::protect::rtp_header;
use chorus_transport::{BytesMut, MAX_RTP_OVERHEAD, SrtpSender};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use srtp::context::Context;
use srtp::protection_profile::ProtectionProfile;

/// Packet size the brief's figures use (a full-MTU video packet).
const PACKET: usize = 1200;
/// Packets per batched call: roughly what one video frame owes one subscriber.
const BATCH: usize = 32;

/// A 12-byte RTP header (V=2, PT=96) followed by a 1188-byte payload.
fn rtp_packet(seq: u16) -> Vec<u8> {
    let mut p = vec![0xab; PACKET];
    p[..12].copy_from_slice(&[0x80, 96, 0, 0, 0, 0, 0x10, 0, 0x12, 0x34, 0x56, 0x78]);
    set_seq(&mut p, seq);
    p
}

fn set_seq(p: &mut [u8], seq: u16) {
    p[2..4].copy_from_slice(&seq.to_be_bytes());
}

/// An SRTP sending context with a fixed test key (the key's value does not change the cost).
fn srtp(profile: ProtectionProfile) -> Context {
    let provider = srtp::crypto::default_provider().expect("ring provider");
    let key = vec![0x11; profile.key_len()];
    let salt = vec![0x22; profile.salt_len()];
    Context::new(&key, &salt, profile, None, None, provider.crypto()).expect("srtp context")
}

/// A sending socket and local destinations; each receiver is kept open (so no ICMP
/// unreachable) but never read.
struct Loopback {
    tx: UdpSocket,
    _rx: Vec<UdpSocket>,
    dst: SocketAddr,
    dst_raw: Vec<libc::sockaddr_in>,
}

impl Loopback {
    /// `receivers` destinations: 1 for a subscriber's burst, several for a fan-out (one
    /// packet to many subscribers, where neither GSO nor a receiver's batching helps).
    fn new(receivers: usize) -> Self {
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind tx");
        let rx: Vec<UdpSocket> = (0..receivers)
            .map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind rx"))
            .collect();
        let drain = std::env::var_os("FLOOR_DRAIN").is_some();
        let dst_raw = rx
            .iter()
            .map(|rx| {
                if drain {
                    let drain = rx.try_clone().expect("clone rx");
                    // Detached: it blocks in recv until the bench process exits.
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 2048];
                        while drain.recv(&mut buf).is_ok() {}
                    });
                }
                let SocketAddr::V4(v4) = rx.local_addr().expect("rx addr") else {
                    unreachable!()
                };
                // SAFETY: sockaddr_in is plain data; all-zero is a valid value.
                let mut raw: libc::sockaddr_in = unsafe { zeroed() };
                raw.sin_family = libc::AF_INET as libc::sa_family_t;
                raw.sin_port = v4.port().to_be();
                raw.sin_addr.s_addr = u32::from_ne_bytes(v4.ip().octets());
                raw
            })
            .collect();
        Loopback {
            tx,
            dst: rx[0].local_addr().expect("rx addr"),
            _rx: rx,
            dst_raw,
        }
    }

    /// One `sendmmsg` carrying one datagram per packet, the receivers taking turns.
    fn sendmmsg(&self, pkts: &[&[u8]]) {
        let mut iov: Vec<libc::iovec> = pkts.iter().map(|p| iovec(p)).collect();
        let mut msgs: Vec<libc::mmsghdr> = iov
            .iter_mut()
            .enumerate()
            .map(|(i, v)| {
                let dst = &self.dst_raw[i % self.dst_raw.len()];
                // SAFETY: mmsghdr is plain data; all-zero is a valid value.
                let mut m: libc::mmsghdr = unsafe { zeroed() };
                m.msg_hdr.msg_name = dst as *const _ as *mut libc::c_void;
                m.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
                m.msg_hdr.msg_iov = v;
                m.msg_hdr.msg_iovlen = 1;
                m
            })
            .collect();
        // SAFETY: every pointer in `msgs` points into `iov`, `pkts` or `self`, all alive here.
        let n =
            unsafe { libc::sendmmsg(self.tx.as_raw_fd(), msgs.as_mut_ptr(), msgs.len() as _, 0) };
        assert_eq!(
            n,
            msgs.len() as i32,
            "sendmmsg: {}",
            io::Error::last_os_error()
        );
    }

    /// One `sendmsg` with a `UDP_SEGMENT` cmsg to the first receiver: the kernel splits the buffer into `seg`-byte
    /// datagrams (UDP GSO), so the per-datagram syscall and routing work is paid once.
    /// All packets must be `seg` bytes long (the last may be shorter).
    fn send_gso(&self, pkts: &[&[u8]], seg: u16) -> io::Result<()> {
        let mut iov: Vec<libc::iovec> = pkts.iter().map(|p| iovec(p)).collect();
        // Room for one cmsg carrying a u16, 8-byte aligned as cmsghdr requires.
        let mut control = [0u64; 4];
        // SAFETY: msghdr is plain data; the CMSG_* helpers stay inside `control`, which is
        // larger than CMSG_SPACE(2); every pointer outlives the sendmsg call.
        let n = unsafe {
            let mut msg: libc::msghdr = zeroed();
            msg.msg_name = &self.dst_raw[0] as *const _ as *mut libc::c_void;
            msg.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            msg.msg_iov = iov.as_mut_ptr();
            msg.msg_iovlen = iov.len();
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(size_of::<u16>() as u32) as usize;
            let cm = libc::CMSG_FIRSTHDR(&msg);
            (*cm).cmsg_level = libc::SOL_UDP;
            (*cm).cmsg_type = libc::UDP_SEGMENT;
            (*cm).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as usize;
            libc::CMSG_DATA(cm).cast::<u16>().write_unaligned(seg);
            libc::sendmsg(self.tx.as_raw_fd(), &msg, 0)
        };
        let total: usize = pkts.iter().map(|p| p.len()).sum();
        match n {
            n if n as usize == total => Ok(()),
            n if n < 0 => Err(io::Error::last_os_error()),
            n => Err(io::Error::other(format!("GSO sent {n} of {total} bytes"))),
        }
    }
}

fn iovec(p: &[u8]) -> libc::iovec {
    libc::iovec {
        iov_base: p.as_ptr() as *mut libc::c_void,
        iov_len: p.len(),
    }
}

/// SRTP protect of one packet, per profile. `encrypt_rtp` parses the header again and
/// allocates its output, as the `rtc` send path does; Chorus's `SrtpSender` protects the
/// caller's buffer in place ("in place": the caller's buffer already holds the packet and
/// has room for the tag), or a copy of it ("copy + in place": what `DtlsSrtp::protect_rtp`
/// does for callers that hold only a slice). The sequence number changes so each call is a
/// fresh packet.
fn srtp_protect(c: &mut Criterion) {
    let provider = srtp::crypto::default_provider().expect("ring provider");
    let mut g = c.benchmark_group("floor/srtp protect 1200 B");
    g.throughput(Throughput::Elements(1));
    for (name, profile, ours) in [
        (
            "AES-128-CM + HMAC-SHA1-80",
            ProtectionProfile::Aes128CmHmacSha1_80,
            SrtpProfile::Aes128CmHmacSha1_80,
        ),
        (
            "AEAD AES-128-GCM",
            ProtectionProfile::AeadAes128Gcm,
            SrtpProfile::AeadAes128Gcm,
        ),
    ] {
        let mut ctx = srtp(profile);
        let mut pkt = rtp_packet(0);
        let mut seq = 0u16;
        g.bench_function(name, |b| {
            b.iter(|| {
                seq = seq.wrapping_add(1);
                set_seq(&mut pkt, seq);
                black_box(ctx.encrypt_rtp(&pkt).expect("protect"))
            })
        });

        let key = vec![0x11; profile.key_len()];
        let salt = vec![0x22; profile.salt_len()];
        let mut sender =
            SrtpSender::new(ours, &key, &salt, provider.crypto()).expect("srtp sender");
        let mut buf = BytesMut::with_capacity(PACKET + MAX_RTP_OVERHEAD);
        buf.extend_from_slice(&pkt);
        g.bench_function(format!("{name} in place"), |b| {
            b.iter(|| {
                seq = seq.wrapping_add(1);
                // The caller rewrites its reused buffer: here only the header changes.
                buf.truncate(PACKET);
                set_seq(&mut buf, seq);
                sender
                    .protect_rtp(&mut buf, 12, 0x1234_5678, seq)
                    .expect("protect");
                black_box(&buf);
            })
        });
        g.bench_function(format!("{name} copy + in place"), |b| {
            b.iter(|| {
                seq = seq.wrapping_add(1);
                set_seq(&mut pkt, seq);
                let (header_len, ssrc, seq) = rtp_header(&pkt).expect("header");
                let mut out = BytesMut::with_capacity(pkt.len() + MAX_RTP_OVERHEAD);
                out.extend_from_slice(&pkt);
                sender
                    .protect_rtp(&mut out, header_len, ssrc, seq)
                    .expect("protect");
                black_box(out)
            })
        });
    }
    g.finish();
}

/// Kernel send cost on loopback: per-datagram syscall vs batched syscall vs GSO.
fn udp_send(c: &mut Criterion) {
    let lo = Loopback::new(1);
    let pkts: Vec<Vec<u8>> = (0..BATCH as u16).map(rtp_packet).collect();
    let refs: Vec<&[u8]> = pkts.iter().map(Vec::as_slice).collect();

    let mut g = c.benchmark_group("floor/udp send 1200 B");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sendto", |b| {
        b.iter(|| lo.tx.send_to(&pkts[0], lo.dst).expect("sendto"))
    });
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("sendmmsg x32", |b| b.iter(|| lo.sendmmsg(&refs)));
    match lo.send_gso(&refs, PACKET as u16) {
        Ok(()) => {
            g.bench_function("GSO x32", |b| {
                b.iter(|| lo.send_gso(&refs, PACKET as u16).expect("GSO"))
            });
        }
        Err(e) => eprintln!("skipping GSO benches: kernel refused UDP_SEGMENT ({e})"),
    }
    g.finish();
}

/// Protect and send 32 packets, the realistic pairings: GCM + GSO (a burst to one
/// subscriber, the best case), GCM + sendmmsg to 32 subscribers (a fan-out: one packet, a
/// copy each) and HMAC + sendmmsg (what a browser without GCM and a kernel without GSO
/// would give).
fn combined(c: &mut Criterion) {
    let lo = Loopback::new(1);
    let fanout = Loopback::new(BATCH);
    let mut plain: Vec<Vec<u8>> = (0..BATCH as u16).map(rtp_packet).collect();
    let mut seq = 0u16;
    // Protect the batch with fresh sequence numbers; outputs are owned buffers, sent in place.
    let mut protect = move |ctx: &mut Context| {
        plain
            .iter_mut()
            .map(|p| {
                seq = seq.wrapping_add(1);
                set_seq(p, seq);
                ctx.encrypt_rtp(p).expect("protect")
            })
            .collect::<Vec<_>>()
    };

    let mut g = c.benchmark_group("floor/protect + send 1200 B");
    g.throughput(Throughput::Elements(BATCH as u64));

    let mut gcm = srtp(ProtectionProfile::AeadAes128Gcm);
    // GSO segments are the protected size (1200 + 16-byte GCM tag).
    let seg = (PACKET + ProtectionProfile::AeadAes128Gcm.aead_auth_tag_len()) as u16;
    let probe = protect(&mut gcm);
    let probe: Vec<&[u8]> = probe.iter().map(|p| &p[..]).collect();
    match lo.send_gso(&probe, seg) {
        Ok(()) => {
            g.bench_function("AES-128-GCM + GSO x32", |b| {
                b.iter(|| {
                    let out = protect(&mut gcm);
                    let refs: Vec<&[u8]> = out.iter().map(|p| &p[..]).collect();
                    lo.send_gso(&refs, seg).expect("GSO")
                })
            });
        }
        Err(e) => eprintln!("skipping GCM + GSO: kernel refused UDP_SEGMENT ({e})"),
    }

    // The fan-out's floor: a copy to each of 32 subscribers, one `sendmmsg`.
    g.bench_function("AES-128-GCM + sendmmsg to 32 subscribers", |b| {
        b.iter(|| {
            let out = protect(&mut gcm);
            let refs: Vec<&[u8]> = out.iter().map(|p| &p[..]).collect();
            fanout.sendmmsg(&refs)
        })
    });

    let mut hmac = srtp(ProtectionProfile::Aes128CmHmacSha1_80);
    g.bench_function("AES-CM + HMAC-SHA1-80 + sendmmsg x32", |b| {
        b.iter(|| {
            let out = protect(&mut hmac);
            let refs: Vec<&[u8]> = out.iter().map(|p| &p[..]).collect();
            lo.sendmmsg(&refs)
        })
    });
    g.finish();
}

criterion_group!(benches, srtp_protect, udp_send, combined);
criterion_main!(benches);
