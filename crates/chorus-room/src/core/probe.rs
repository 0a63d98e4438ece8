//! Bandwidth probes toward subscribers. While the room sends a subscriber less than its
//! link could take, its estimate stays near 1.5 × what it acknowledges, and the
//! allocation cannot see the room for a higher layer. So when the allocator's next
//! step up does not fit in the estimate, it asks for a probe (`core/bandwidth.rs`
//! passes it on), and the room sends one probe cluster: padding-only RTP packets at a
//! target rate (what the step needs, at most [`MAX_TARGET_FACTOR`] × the estimate),
//! [`CLUSTER_PACKETS`] of them paced, at most one per [`PROBE_INTERVAL`] per subscriber.
//! What gets through raises the estimate at once (`chorus_core::bwe::probe`), and the
//! step is taken.
//!
//! The packets go on the SSRC of a video the subscriber is receiving, numbered in its
//! sequence: its forwarder (the layer forwarder of a simulcast video, the plain one of
//! a video without layers) makes room for them, and what follows is numbered after
//! them, so the client sees no gap (and takes them as padding).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chorus_core::bwe::ProbeId;
use chorus_core::{Bitrate, ConnId, TrackId};
use rtc::rtp::header::Header;

use super::RoomCore;
use crate::negotiation::TrackPhase;
use crate::peer::Peer;

/// At most one cluster per subscriber this often.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// Packets per cluster (about 11.6 kB): several times a shaper's burst, which lets a
/// short cluster through at line rate (a `tbf` cap of 300 kbit/s with a 4 kB burst
/// passed 5-packet clusters at twice the cap); the rest of the cluster arrives at the
/// shaper's rate, and the cluster shows that. At 500 kbit/s it lasts 190 ms.
pub const CLUSTER_PACKETS: u64 = 40;
/// A cluster aims at most this far above the estimate.
pub const MAX_TARGET_FACTOR: u64 = 2;
/// One padding packet on the wire: header, transport-wide number, padding, SRTP tag.
const PACKET_WIRE_BYTES: u64 = 12 + 8 + 255 + 16;

/// Every subscriber's probing.
#[derive(Debug, Default)]
pub(super) struct Probes {
    /// Off in tests that compare with and without.
    pub disabled: bool,
    by_conn: HashMap<ConnId, ProbeState>,
}

#[derive(Debug)]
struct ProbeState {
    last_start: Instant,
    cluster: Option<Cluster>,
}

/// A cluster being sent.
#[derive(Debug)]
struct Cluster {
    id: ProbeId,
    /// The video whose SSRC and numbering carry it.
    track: TrackId,
    left: u64,
    /// One packet per this, at the target rate.
    spacing: Duration,
    next_at: Instant,
}

impl Probes {
    /// When the next probe packet is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.by_conn
            .values()
            .filter_map(|s| s.cluster.as_ref().map(|c| c.next_at))
            .min()
    }

    /// Forgets connections that are gone.
    pub fn retain(&mut self, live: impl Fn(ConnId) -> bool) {
        self.by_conn.retain(|c, _| live(*c));
    }
}

impl RoomCore {
    /// `conn`'s allocator waits for a probe at `wanted` (above its `estimate`, or at
    /// it when the estimate was shown wrong): starts a probe cluster, unless one went
    /// out within [`PROBE_INTERVAL`].
    pub(super) fn probe_for(
        &mut self,
        conn: ConnId,
        wanted: Bitrate,
        estimate: Bitrate,
        now: Instant,
    ) {
        if self.probes.disabled {
            return;
        }
        if let Some(state) = self.probes.by_conn.get(&conn)
            && (state.cluster.is_some() || now < state.last_start + PROBE_INTERVAL)
        {
            return;
        }
        let Some(peer) = self.conns.get_mut(conn) else {
            return;
        };
        let Some(track) = flowing_video(peer) else {
            return;
        };
        let Some(id) = peer.start_probe(now) else {
            return;
        };
        let target = wanted.bps().min(estimate.bps() * MAX_TARGET_FACTOR).max(1);
        let left = CLUSTER_PACKETS;
        let spacing = Duration::from_micros(PACKET_WIRE_BYTES * 8 * 1_000_000 / target);
        tracing::debug!(?conn, %track, target, packets = left, "bandwidth probe");
        self.probes.by_conn.insert(
            conn,
            ProbeState {
                last_start: now,
                cluster: Some(Cluster {
                    id,
                    track,
                    left,
                    spacing,
                    next_at: now,
                }),
            },
        );
        self.send_probes(now);
    }

    /// Sends every probe packet due by `now`.
    pub(super) fn send_probes(&mut self, now: Instant) {
        if self.probes.next_due().is_none_or(|t| t > now) {
            return;
        }
        let due: Vec<ConnId> = self
            .probes
            .by_conn
            .iter()
            .filter(|(_, s)| s.cluster.as_ref().is_some_and(|c| c.next_at <= now))
            .map(|(c, _)| *c)
            .collect();
        for conn in due {
            let Some(state) = self.probes.by_conn.get_mut(&conn) else {
                continue;
            };
            let Some(cluster) = state.cluster.as_mut() else {
                continue;
            };
            let Some((peer, arena)) = self.conns.peer_and_arena(conn) else {
                state.cluster = None;
                continue;
            };
            let mut stop = peer.on_hold;
            while !stop && cluster.left > 0 && cluster.next_at <= now {
                // The track's numbering makes room for this one packet: what follows
                // is numbered after it.
                let dt = peer.downtracks.get_mut(&cluster.track);
                let room = dt
                    .filter(|dt| dt.phase == TrackPhase::Live && !dt.paused && !dt.bandwidth_paused)
                    .and_then(|dt| {
                        let (seq, ts) = match dt.layers.as_mut() {
                            Some(layers) => layers.insert_padding(1)?,
                            None => dt.forwarder.insert(1)?,
                        };
                        Some((dt.ssrc, dt.payload_type, seq, ts))
                    });
                let Some((ssrc, payload_type, seq, ts)) = room else {
                    stop = true; // the video stopped: the cluster ends short
                    break;
                };
                let header = Header {
                    version: 2,
                    ssrc,
                    payload_type,
                    sequence_number: seq,
                    timestamp: ts,
                    ..Default::default()
                };
                peer.send_padding(arena, &header, cluster.id, now);
                cluster.left -= 1;
                cluster.next_at += cluster.spacing;
            }
            if cluster.left == 0 || stop {
                peer.end_probe(cluster.id);
                state.cluster = None;
            }
            if peer.mark_dirty() {
                self.conns.list_dirty(conn);
            }
        }
    }
}

/// A video the subscriber receives now, so that padding can be numbered into it: a
/// simulcast one whose layer forwarder has a current layer, or one without layers
/// whose forwarder sent something (simulcast first: their numbering is the one a
/// layer switch renumbers anyway).
fn flowing_video(peer: &mut Peer) -> Option<TrackId> {
    if peer.on_hold || !peer.ice().is_up() {
        return None;
    }
    let mut ids: Vec<&TrackId> = peer.downtracks.keys().collect();
    ids.sort();
    let live = |dt: &crate::peer::DownTrack| {
        dt.phase == TrackPhase::Live && !dt.paused && !dt.bandwidth_paused
    };
    let layered = ids.iter().find(|id| {
        let dt = &peer.downtracks[**id];
        live(dt) && dt.layers.as_ref().is_some_and(|l| l.forwarding())
    });
    let plain = || {
        ids.iter().find(|id| {
            let dt = &peer.downtracks[**id];
            // A video (only video keeps what it sent for NACKs).
            live(dt) && dt.layers.is_none() && dt.sent.is_some() && dt.forwarder.has_sent()
        })
    };
    layered.or_else(plain).map(|id| (*id).clone())
}
