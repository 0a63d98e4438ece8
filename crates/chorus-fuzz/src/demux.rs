//! Datagrams on the media port before a connection is keyed: the demultiplexer (STUN by
//! USERNAME, the rest by address), ICE-lite's checks of binding requests and the paths
//! they confirm, and DTLS ClientHello fragments read for their SRTP profiles.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use chorus_core::ConnId;
use chorus_transport::dtls_srtp::HelloAssembly;
use chorus_transport::{Datagram, Demux, IceCredentials, IceEvent, Route, StunCheck, stun};
use tokio::sync::mpsc;

use crate::{frames, peers};

/// The server's credentials of the one connection the demultiplexer knows.
pub const UFRAG: &str = "srvufrag";
pub const PWD: &str = "srvpwd-srvpwd-srvpwd-srvpwd";

/// A frame that starts with this byte (no STUN, DTLS or RTP does) is turned into a
/// binding request signed with [`PWD`], so that the fuzzer reaches what ICE does with
/// authenticated requests: `[MARK, flags, remote ufrag…]`, bit 0 of `flags` nominates.
pub const SIGN: u8 = 0xff;

fn from(i: u8) -> SocketAddr {
    match i % 4 {
        0 => ([192, 0, 2, 1], 5000).into(),
        1 => ([192, 0, 2, 1], 5001).into(),
        2 => ([198, 51, 100, 7], 40000).into(),
        _ => "[2001:db8::1]:6000".parse().expect("an address"),
    }
}

/// Frames are datagrams; each is preceded by a byte choosing which of four client
/// addresses it comes from, and time moves a second per datagram.
pub fn demux(data: &[u8]) {
    let start = Instant::now();
    let demux = Demux::default();
    let (inbox, mut inbox_rx) = mpsc::channel::<Datagram>(4);
    let (control, mut control_rx) = mpsc::channel::<Datagram>(4);
    let conn = ConnId(1);
    let route = Route {
        conn,
        inbox,
        control,
        ingress: None,
    };
    demux.add_ufrag(UFRAG.to_owned(), route);
    let mut ice = peers().idle_ice(start);
    let credentials = IceCredentials {
        ufrag: UFRAG.to_owned(),
        pwd: PWD.to_owned(),
    };
    ice.set_credentials(credentials, start);
    let mut hello = HelloAssembly::default();
    let crypto = rtc::crypto::default_provider().expect("crypto provider");

    for (i, frame) in frames(data).enumerate() {
        let now = start + Duration::from_secs(i as u64);
        let Some((&who, datagram)) = frame.split_first() else {
            continue;
        };
        let signed;
        let datagram = match datagram {
            [SIGN, flags, remote @ ..] => {
                // Capped: a USERNAME of hundreds of bytes `binding_request` (client code)
                // cannot encode, and panics (the fuzzer's first find, in this harness).
                let remote = String::from_utf8_lossy(&remote[..remote.len().min(128)]);
                signed =
                    stun::binding_request(UFRAG, &remote, PWD, flags & 1 != 0, crypto.crypto());
                &signed[..]
            }
            _ => datagram,
        };
        let addr = from(who);
        let _ = chorus_transport::is_control(datagram);
        let _ = demux.deliver(addr, now, BytesMut::from(datagram));
        while let Ok(dg) = control_rx.try_recv() {
            if stun::looks_like_stun(&dg.data) {
                if let StunCheck::Request { .. } = ice.check_stun(dg.from, &dg.data, now) {
                    let _ = ice.binding_success(&dg.data, dg.from);
                }
            } else {
                let _ = hello.add(&dg.data);
            }
        }
        while inbox_rx.try_recv().is_ok() {}
        ice.handle_timeout(now);
        while let Some(event) = ice.poll_event() {
            match event {
                IceEvent::RouteConfirmed(a) => {
                    assert!(demux.confirm_addr(a, UFRAG), "our ufrag is routed");
                }
                IceEvent::RouteExpired(a) => demux.forget_addr(a, conn),
                _ => {}
            }
        }
        let _ = ice.poll_timeout();
    }
}
