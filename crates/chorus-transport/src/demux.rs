//! Routing of incoming datagrams to the room that owns their peer connection.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::BytesMut;
use chorus_core::ConnId;
use dashmap::DashMap;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use crate::ingress::{IngressError, IngressKey};
use crate::stun;

/// One received datagram, tagged with the connection it belongs to.
#[derive(Debug)]
pub struct Datagram {
    pub conn: ConnId,
    pub from: SocketAddr,
    pub at: Instant,
    pub data: BytesMut,
    /// SRTP/SRTCP already unprotected on the I/O thread with the connection's
    /// [`IngressKey`]: `data` is plain RTP/RTCP, and authentic.
    pub unprotected: bool,
}

/// Where a connection's datagrams go: handshakes and keepalives (STUN, DTLS) on their
/// own small queue, so that an owner overloaded with media drops media, not the
/// packets that keep its connections alive.
#[derive(Debug, Clone)]
pub struct Route {
    pub conn: ConnId,
    /// RTP and RTCP.
    pub inbox: mpsc::Sender<Datagram>,
    /// STUN and DTLS.
    pub control: mpsc::Sender<Datagram>,
    /// Unprotects the connection's SRTP here, once keyed (none: its owner does).
    pub ingress: Option<IngressKey>,
}

/// Whether a datagram keeps a connection alive rather than carrying media: STUN
/// (first byte 0–3) or DTLS (20–63), by the demultiplexing rule of RFC 7983.
pub fn is_control(data: &[u8]) -> bool {
    matches!(data.first(), Some(0..=3 | 20..=63))
}

/// Routes binding requests by the server ICE ufrag their USERNAME names, everything else
/// by remote address. Addresses are learned only when a connection's owner has
/// authenticated a binding request from them ([`Demux::confirm_addr`]): a forged request
/// can neither add a route nor take one from another connection.
#[derive(Debug, Default)]
pub struct Demux {
    by_ufrag: DashMap<String, Route>,
    by_addr: DashMap<SocketAddr, Route>,
}

/// What happened to one datagram; counted by the I/O threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Delivered,
    /// Not a binding request, from an address no connection has confirmed.
    UnknownAddress,
    /// A binding request whose USERNAME names no connection (a stale or wrong ufrag).
    UnknownUfrag,
    /// The owner's inbox is full: it is overloaded, drop rather than queue.
    InboxFull,
    /// The owner is gone; its routes were removed.
    OwnerGone,
    /// SRTP or SRTCP of a keyed connection that did not authenticate (forged, a replay,
    /// or damaged).
    SrtpRefused,
    /// The connection sends more than [`crate::ingress::MAX_PACKETS_PER_SECOND`] (a
    /// flood): dropped before decryption.
    RateLimited,
}

impl Demux {
    pub fn add_ufrag(&self, ufrag: String, route: Route) {
        self.by_ufrag.insert(ufrag, route);
    }

    /// Stops routing `ufrag` (a connection's credentials after an ICE restart).
    pub fn remove_ufrag(&self, ufrag: &str, conn: ConnId) {
        self.by_ufrag.remove_if(ufrag, |_, r| r.conn == conn);
    }

    /// Routes `addr` to the connection `ufrag` names: its owner authenticated a binding
    /// request from there. Takes the address over from another connection, if any (a
    /// client that reused a port). False if the ufrag is unknown.
    pub fn confirm_addr(&self, addr: SocketAddr, ufrag: &str) -> bool {
        let Some(route) = self.by_ufrag.get(ufrag).map(|r| r.clone()) else {
            return false;
        };
        self.by_addr.insert(addr, route);
        true
    }

    /// Stops routing `addr` to `conn` (consent for that path expired).
    pub fn forget_addr(&self, addr: SocketAddr, conn: ConnId) {
        self.by_addr.remove_if(&addr, |_, r| r.conn == conn);
    }

    /// Removes every route to `conn`.
    pub fn remove_conn(
        &self,
        ufrag: &str,
        conn: ConnId,
        addrs: impl IntoIterator<Item = SocketAddr>,
    ) {
        self.remove_ufrag(ufrag, conn);
        for a in addrs {
            self.forget_addr(a, conn);
        }
    }

    /// (ufrags, addresses) routed.
    pub fn routes(&self) -> (usize, usize) {
        (self.by_ufrag.len(), self.by_addr.len())
    }

    pub fn deliver(&self, from: SocketAddr, at: Instant, data: BytesMut) -> Delivery {
        // A binding request goes where its ufrag says, wherever it comes from: that is
        // how a client's new path (another interface, a new network) reaches its connection.
        let route = match stun::binding_request_local_ufrag(&data) {
            Some(ufrag) => match self.by_ufrag.get(ufrag) {
                Some(r) => r.clone(),
                None => return Delivery::UnknownUfrag,
            },
            None => match self.by_addr.get(&from) {
                Some(r) => r.clone(),
                None => return Delivery::UnknownAddress,
            },
        };
        let conn = route.conn;
        let queue = if is_control(&data) {
            &route.control
        } else {
            &route.inbox
        };
        // A place in the inbox first: what is unprotected is marked in the replay window,
        // and a packet dropped here must stay acceptable when the client resends it.
        let permit = match queue.try_reserve() {
            Ok(permit) => permit,
            Err(TrySendError::Full(())) => return Delivery::InboxFull,
            Err(TrySendError::Closed(())) => {
                self.by_addr.retain(|_, r| r.conn != conn);
                self.by_ufrag.retain(|_, r| r.conn != conn);
                return Delivery::OwnerGone;
            }
        };
        let (data, unprotected) = match &route.ingress {
            Some(key) if matches!(data.first(), Some(128..=191)) => {
                match key.unprotect_metered(&data, at) {
                    Ok(plain) => (plain, true),
                    Err(IngressError::NotKeyed) => (data, false),
                    Err(IngressError::Refused) => return Delivery::SrtpRefused,
                    Err(IngressError::RateLimited) => return Delivery::RateLimited,
                }
            }
            _ => (data, false),
        };
        permit.send(Datagram {
            conn,
            from,
            at,
            data,
            unprotected,
        });
        Delivery::Delivered
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stun::binding_request;

    fn route(conn: u64) -> (Route, mpsc::Receiver<Datagram>, mpsc::Receiver<Datagram>) {
        let (inbox, inbox_rx) = mpsc::channel(16);
        let (control, control_rx) = mpsc::channel(16);
        let route = Route {
            conn: ConnId(conn),
            inbox,
            control,
            ingress: None,
        };
        (route, inbox_rx, control_rx)
    }

    fn request(ufrag: &str) -> BytesMut {
        let crypto = rtc::crypto::default_provider().expect("ring");
        BytesMut::from(
            &binding_request(
                ufrag,
                "cli",
                "pwd-pwd-pwd-pwd-pwd-pwd",
                true,
                crypto.crypto(),
            )[..],
        )
    }

    const RTP: &[u8] = &[0x80, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// Route updates, step by step: (what happens, datagram from, data, expected delivery).
    #[test]
    fn route_updates() {
        let demux = Demux::default();
        let (a, mut a_in, mut a_ctl) = route(1);
        let (b, mut b_in, mut b_ctl) = route(2);
        demux.add_ufrag("ua".into(), a);
        demux.add_ufrag("ub".into(), b);
        let now = Instant::now();
        let rtp = || BytesMut::from(RTP);
        let got = |rx: &mut mpsc::Receiver<Datagram>| rx.try_recv().ok().map(|d| d.conn.0);
        type Step<'a> = (&'a str, &'a dyn Fn(&Demux), SocketAddr, BytesMut, Delivery);
        let nothing = |_: &Demux| {};
        let confirm_a1 = |d: &Demux| assert!(d.confirm_addr(addr(1), "ua"));
        let confirm_b1 = |d: &Demux| assert!(d.confirm_addr(addr(1), "ub"));
        let forget_b1 = |d: &Demux| d.forget_addr(addr(1), ConnId(2));
        let steps: Vec<Step> = vec![
            (
                "media before any check",
                &nothing,
                addr(1),
                rtp(),
                Delivery::UnknownAddress,
            ),
            (
                "request: by ufrag",
                &nothing,
                addr(1),
                request("ua"),
                Delivery::Delivered,
            ),
            (
                "unconfirmed: media still unknown",
                &nothing,
                addr(1),
                rtp(),
                Delivery::UnknownAddress,
            ),
            (
                "confirmed: media routed",
                &confirm_a1,
                addr(1),
                rtp(),
                Delivery::Delivered,
            ),
            (
                "unknown ufrag from a known address",
                &nothing,
                addr(1),
                request("zz"),
                Delivery::UnknownUfrag,
            ),
            (
                "request for b from a's address goes to b",
                &nothing,
                addr(1),
                request("ub"),
                Delivery::Delivered,
            ),
            (
                "b confirms: the address moves to b",
                &confirm_b1,
                addr(1),
                rtp(),
                Delivery::Delivered,
            ),
            (
                "a cannot forget b's route",
                &|d: &Demux| d.forget_addr(addr(1), ConnId(1)),
                addr(1),
                rtp(),
                Delivery::Delivered,
            ),
            (
                "b forgets it",
                &forget_b1,
                addr(1),
                rtp(),
                Delivery::UnknownAddress,
            ),
        ];
        let expect_conn = [
            None,
            Some(1),
            None,
            Some(1),
            None,
            Some(2),
            Some(2),
            Some(2),
            None,
        ];
        for ((name, action, from, data, want), conn) in steps.into_iter().zip(expect_conn) {
            action(&demux);
            assert_eq!(demux.deliver(from, now, data), want, "{name}");
            let seen = [
                got(&mut a_in),
                got(&mut a_ctl),
                got(&mut b_in),
                got(&mut b_ctl),
            ]
            .into_iter()
            .flatten()
            .next();
            assert_eq!(seen, conn, "{name}: delivered to");
        }
        assert!(
            !demux.confirm_addr(addr(5), "zz"),
            "unknown ufrag confirms nothing"
        );
        demux.remove_ufrag("ua", ConnId(2));
        assert_eq!(demux.routes(), (2, 0), "only the owner removes its ufrag");
        demux.remove_conn("ua", ConnId(1), [addr(1)]);
        assert_eq!(demux.routes(), (1, 0));
    }

    /// A keyed route's SRTP is unprotected on the way through; forged SRTP goes no
    /// further; an unkeyed route and control datagrams pass as they came.
    #[test]
    fn srtp_is_unprotected_on_the_io_thread_once_keyed() {
        use crate::ingress::tests::{pair, rtp};
        let demux = Demux::default();
        let (mut sender, key) = pair();
        let (mut keyed, mut keyed_in, mut keyed_ctl) = route(1);
        keyed.ingress = Some(key);
        let (mut unkeyed, mut unkeyed_in, _) = route(2);
        unkeyed.ingress = Some(IngressKey::default());
        demux.add_ufrag("ua".into(), keyed);
        demux.add_ufrag("ub".into(), unkeyed);
        assert!(demux.confirm_addr(addr(1), "ua"));
        assert!(demux.confirm_addr(addr(2), "ub"));
        let now = Instant::now();
        let mut srtp = |seq| BytesMut::from(&sender.encrypt_rtp(&rtp(seq)).unwrap()[..]);
        let (one, two) = (srtp(1), srtp(2));
        let mut forged = two.clone();
        forged[12] ^= 0x55;

        assert_eq!(demux.deliver(addr(1), now, one), Delivery::Delivered);
        let dg = keyed_in.try_recv().expect("delivered");
        assert!(dg.unprotected);
        assert_eq!(&dg.data[..], &rtp(1)[..]);
        assert_eq!(demux.deliver(addr(1), now, forged), Delivery::SrtpRefused);
        assert!(keyed_in.try_recv().is_err(), "forged SRTP goes no further");
        let dtls = BytesMut::from(&[22u8, 0xfe, 0xfd][..]);
        assert_eq!(demux.deliver(addr(1), now, dtls), Delivery::Delivered);
        assert!(!keyed_ctl.try_recv().expect("DTLS to control").unprotected);

        let before = two.clone();
        assert_eq!(demux.deliver(addr(2), now, two), Delivery::Delivered);
        let dg = unkeyed_in.try_recv().expect("delivered");
        assert!(!dg.unprotected, "not keyed yet: its owner unprotects it");
        assert_eq!(dg.data, before);
    }

    /// A packet dropped because the room's inbox is full was never unprotected: when
    /// the client resends it (a NACK), it is no replay.
    #[test]
    fn a_packet_dropped_at_a_full_inbox_is_taken_when_resent() {
        use crate::ingress::tests::{pair, rtp};
        let demux = Demux::default();
        let (mut sender, key) = pair();
        let (inbox, mut inbox_rx) = mpsc::channel(1);
        let (control, _control_rx) = mpsc::channel(1);
        let route = Route {
            conn: ConnId(1),
            inbox,
            control,
            ingress: Some(key),
        };
        demux.add_ufrag("ua".into(), route);
        assert!(demux.confirm_addr(addr(1), "ua"));
        let now = Instant::now();
        let one = BytesMut::from(&sender.encrypt_rtp(&rtp(1)).unwrap()[..]);
        let two = BytesMut::from(&sender.encrypt_rtp(&rtp(2)).unwrap()[..]);
        assert_eq!(demux.deliver(addr(1), now, one), Delivery::Delivered);
        assert_eq!(
            demux.deliver(addr(1), now, two.clone()),
            Delivery::InboxFull
        );
        inbox_rx.try_recv().expect("the first");
        assert_eq!(demux.deliver(addr(1), now, two), Delivery::Delivered);
        assert_eq!(&inbox_rx.try_recv().expect("resent").data[..], &rtp(2)[..]);
    }

    #[test]
    fn control_datagrams_by_first_byte() {
        let cases: [(&[u8], bool); 7] = [
            (&[0x00, 0x01], true),     // STUN binding request
            (&[0x01, 0x01], true),     // STUN success response
            (&[22, 0xfe, 0xfd], true), // DTLS handshake
            (&[23, 0xfe, 0xfd], true), // DTLS application data
            (&[0x80, 111], false),     // RTP
            (&[0x81, 201], false),     // RTCP receiver report
            (&[], false),
        ];
        for (data, want) in cases {
            assert_eq!(is_control(data), want, "{data:?}");
        }
    }
}
