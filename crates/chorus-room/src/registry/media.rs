//! The server's shared media socket as the registry reports it: its address and counters.

use std::sync::atomic::{AtomicU64, Ordering};

use chorus_protocol::control::{MediaStats, RtcpStats, UnroutableStats};

use super::RoomRegistry;

impl RoomRegistry {
    /// The UDP address media flows through.
    pub fn media_addr(&self) -> std::net::SocketAddr {
        self.inner.media.local_addr()
    }

    /// Counters of the media I/O threads.
    pub fn media_counters(&self) -> &chorus_transport::MediaCounters {
        self.inner.media.counters()
    }

    /// What the server's connections did with inbound RTCP: delivered, or dropped why.
    pub fn rtcp_totals(&self) -> &chorus_transport::rtcp::RtcpTotals {
        self.inner.peers.rtcp_totals()
    }

    /// A reading of [`Self::media_counters`] and [`Self::rtcp_totals`] for the
    /// control API. The counters are read one by one, not as one snapshot.
    pub fn media_stats(&self) -> MediaStats {
        let c = self.media_counters();
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let rtcp = self.rtcp_totals();
        MediaStats {
            received: get(&c.received),
            receive_syscalls: get(&c.receive_syscalls),
            received_bytes: get(&c.received_bytes),
            unroutable: UnroutableStats {
                unknown_addr: get(&c.unroutable_unknown_addr),
                unknown_ufrag: get(&c.unroutable_unknown_ufrag),
                bad_integrity: get(&c.stun_bad_integrity),
            },
            inbox_full: get(&c.inbox_full),
            sent: get(&c.sent),
            sent_bytes: get(&c.sent_bytes),
            send_dropped: get(&c.send_dropped),
            send_errors: get(&c.send_errors),
            send_syscalls: get(&c.send_syscalls),
            gso_datagrams: get(&c.gso_datagrams),
            srtp_refused: get(&c.srtp_refused),
            rate_limited: get(&c.rate_limited),
            rtcp: RtcpStats {
                delivered: rtcp.read(),
                // Every reason, zeros included, so a reader sees what can be dropped.
                dropped: rtcp
                    .skipped()
                    .into_iter()
                    .map(|(reason, n)| (reason.to_owned(), n))
                    .collect(),
            },
        }
    }
}
