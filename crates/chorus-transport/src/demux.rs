//! Routing of incoming datagrams to the actor that owns their peer connection.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::BytesMut;
use chorus_core::ConnId;
use dashmap::DashMap;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use crate::stun;

/// One received datagram, tagged with the connection it belongs to.
#[derive(Debug)]
pub struct Datagram {
    pub conn: ConnId,
    pub from: SocketAddr,
    pub at: Instant,
    pub data: BytesMut,
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
}

/// Whether a datagram keeps a connection alive rather than carrying media: STUN
/// (first byte 0–3) or DTLS (20–63), by the demultiplexing rule of RFC 7983.
pub fn is_control(data: &[u8]) -> bool {
    matches!(data.first(), Some(0..=3 | 20..=63))
}

/// Routes by server ICE ufrag (first STUN request) and then by remote address.
#[derive(Debug, Default)]
pub struct Demux {
    by_ufrag: DashMap<String, Route>,
    by_addr: DashMap<SocketAddr, Route>,
}

/// What happened to one datagram; counted by the I/O threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Delivered,
    /// Not STUN from a known ufrag and not from a known address.
    Unroutable,
    /// The owner's inbox is full: it is overloaded, drop rather than queue.
    InboxFull,
    /// The owner is gone; its routes were removed.
    OwnerGone,
}

impl Demux {
    pub fn add_ufrag(&self, ufrag: String, route: Route) {
        self.by_ufrag.insert(ufrag, route);
    }

    /// Removes every route to `conn`.
    pub fn remove_conn(&self, ufrag: &str, conn: ConnId, addrs: &[SocketAddr]) {
        self.by_ufrag.remove_if(ufrag, |_, r| r.conn == conn);
        for a in addrs {
            self.by_addr.remove_if(a, |_, r| r.conn == conn);
        }
    }

    pub fn routes(&self) -> (usize, usize) {
        (self.by_ufrag.len(), self.by_addr.len())
    }

    pub fn deliver(&self, from: SocketAddr, at: Instant, data: BytesMut) -> Delivery {
        let route = match self.by_addr.get(&from) {
            Some(r) => r.clone(),
            None => {
                let Some(ufrag) = stun::binding_request_local_ufrag(&data) else {
                    return Delivery::Unroutable;
                };
                let Some(r) = self.by_ufrag.get(ufrag).map(|r| r.clone()) else {
                    return Delivery::Unroutable;
                };
                // The ICE agent decides whether this address is valid; learning it
                // here only saves the STUN parse for the next packets.
                self.by_addr.insert(from, r.clone());
                r
            }
        };
        let conn = route.conn;
        let queue = if is_control(&data) {
            &route.control
        } else {
            &route.inbox
        };
        match queue.try_send(Datagram {
            conn,
            from,
            at,
            data,
        }) {
            Ok(()) => Delivery::Delivered,
            Err(TrySendError::Full(_)) => Delivery::InboxFull,
            Err(TrySendError::Closed(_)) => {
                self.by_addr.remove_if(&from, |_, r| r.conn == conn);
                self.by_ufrag.retain(|_, r| r.conn != conn);
                Delivery::OwnerGone
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
