//! Forwarding: one packet from a publisher (or the mixer) to every subscriber
//! connection of a track, rewritten for each (its SSRC, payload type, and the sequence
//! numbers and timestamps of its forwarder), straight into the connection. A copy that
//! does not go out is counted under its [`Skip`] reason.
//!
//! The room decides once per packet (numbering, keyframe, who gets it) and queues it
//! ([`EgressQueue`]), split by the subscribers' egress shards. At the end of its turn
//! each shard runs as a [`ShardJob`]: it makes and protects its subscribers' copies and
//! sends what its connections have waiting. Jobs share nothing mutable, so the driver
//! runs them on every core at once; what they found (skips, keyframes wanted) goes back
//! to the room when they are done.
//!
//! Resends that answer a NACK are decided by the room (what, under which numbers, within
//! the subscriber's budget) and queued as [`Resend`]s for the subscriber's shard, so
//! that protecting them runs with the other copies, not on the room's thread.
//!
//! A simulcast track's packets are queued once each, every layer's, with their layer
//! and own numbering ([`LayeredPacket`]), as are a VP9 track's with their spatial and
//! temporal layer; each subscriber's [`LayerSelection`] decides
//! whether its copy goes out, under which numbers, and with which VP8 numbering, which
//! is written into that subscriber's own copy in the shard's arena.

use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use chorus_core::{ConnId, ExtSeq, ExtTimestamp, Sent, SpatialLayer, TrackId, Vp8Rewrite};
use rtc::rtp::header::Header;

use crate::connections::Shard;
use crate::io::ParticipantKey;
use crate::negotiation::TrackPhase;
use crate::selection::{LayerSelection, LayeredPacket};
use crate::skips::{Skip, Skips};
use decide::{Wants, plain, select};

mod decide;

/// One packet as read from its source, in the source's (unwrapped) numbering, queued
/// for the subscribers of a track.
pub struct Outgoing {
    pub header: Header,
    /// Where the track's history keeps it (for a simulcast track: its arrival order
    /// among all layers' packets; else its own extended number).
    pub seq: ExtSeq,
    pub ts: ExtTimestamp,
    pub keyframe: bool,
    /// The down track it goes out on (a published track, or the room audio).
    pub down: TrackId,
    /// The published video track to ask a keyframe of when a subscriber waits for one.
    pub keyframes_of: Option<TrackId>,
    /// Which stream of the track it comes from: a simulcast track's changes when it
    /// forwards another layer, and each subscriber's forwarder then switches source.
    pub source: u32,
    /// A simulcast track's packet: each subscriber's layer forwarder decides.
    pub layered: Option<LayeredPacket>,
    pub payload: Payload,
}

/// What a copy carries.
pub enum Payload {
    /// The same bytes for everyone (shared, never copied).
    Shared(Bytes),
    /// A mix frame: everyone gets the common mix but the talkers in it, who get theirs.
    Mix(Arc<MixPayload>),
}

pub struct MixPayload {
    pub common: Bytes,
    pub own: Vec<(ParticipantKey, Bytes)>,
}

impl Payload {
    fn for_owner(&self, owner: ParticipantKey) -> &Bytes {
        match self {
            Payload::Shared(b) => b,
            Payload::Mix(mix) => mix
                .own
                .iter()
                .find(|(k, _)| *k == owner)
                .map_or(&mix.common, |(_, b)| b),
        }
    }
}

/// A packet sent again to one subscriber, exactly as it first went out.
pub struct Resend {
    pub conn: ConnId,
    pub header: Header,
    pub payload: Bytes,
    pub vp8: Option<Vp8Rewrite>,
}

/// The packets of one turn, and which of each shard's subscribers gets each.
pub struct EgressQueue {
    packets: Vec<Outgoing>,
    shards: Vec<ShardQueue>,
}

#[derive(Default)]
pub struct ShardQueue {
    /// (packet index, range of `subscribers`)
    items: Vec<(usize, Range<usize>)>,
    subscribers: Vec<ConnId>,
    /// Where the packet being queued starts in `subscribers`.
    open: usize,
    /// Resends to this shard's subscribers, sent before the turn's packets.
    resends: Vec<Resend>,
}

impl EgressQueue {
    /// A queue for a room split into `shards` (at least one), as its connections are.
    pub fn new(shards: usize) -> Self {
        Self {
            packets: Vec::new(),
            shards: (0..shards.max(1)).map(|_| ShardQueue::default()).collect(),
        }
    }

    /// Queues `packet` for `subscribers`, each under its shard (`conn % shards`).
    pub fn push(&mut self, packet: Outgoing, subscribers: &[ConnId]) {
        let shards = self.shards.len() as u64;
        let index = self.packets.len();
        self.packets.push(packet);
        for q in &mut self.shards {
            q.open = q.subscribers.len();
        }
        for &conn in subscribers {
            self.shards[(conn.0 % shards) as usize]
                .subscribers
                .push(conn);
        }
        for q in &mut self.shards {
            let end = q.subscribers.len();
            if end > q.open {
                q.items.push((index, q.open..end));
            }
        }
    }

    /// Queues a resend for its subscriber's shard.
    pub fn resend(&mut self, resend: Resend) {
        let shard = (resend.conn.0 % self.shards.len() as u64) as usize;
        self.shards[shard].resends.push(resend);
    }

    pub fn is_empty(&self) -> bool {
        self.packets.is_empty() && self.shards.iter().all(|q| q.resends.is_empty())
    }

    pub fn clear(&mut self) {
        self.packets.clear();
        for q in &mut self.shards {
            q.items.clear();
            q.subscribers.clear();
            q.resends.clear();
        }
    }

    /// One job per shard, each over its own connections and its part of the queue.
    pub fn jobs<'a>(&'a self, shards: &'a mut [Shard], now: Instant) -> Vec<ShardJob<'a>> {
        debug_assert_eq!(shards.len(), self.shards.len(), "split alike");
        shards
            .iter_mut()
            .zip(&self.shards)
            .map(|(shard, queue)| ShardJob {
                shard,
                queue,
                packets: &self.packets,
                now,
                skips: Skips::default(),
                keyframes: Vec::new(),
                layer_keyframes: Vec::new(),
                panic: false,
            })
            .collect()
    }
}

/// One shard's part of a turn's egress: it owns its connections for the duration.
pub struct ShardJob<'a> {
    shard: &'a mut Shard,
    queue: &'a ShardQueue,
    packets: &'a [Outgoing],
    now: Instant,
    pub skips: Skips,
    /// Published tracks some subscriber waits for a keyframe of.
    pub keyframes: Vec<TrackId>,
    /// Layers of simulcast tracks some subscriber's layer forwarder asks a keyframe of.
    pub layer_keyframes: Vec<(TrackId, SpatialLayer)>,
    /// Fault injection: this job panics, to prove a shard's panic is a room's panic.
    panic: bool,
}

impl ShardJob<'_> {
    /// Fault injection: the job panics when it runs.
    pub fn inject_panic(&mut self) {
        self.panic = true;
    }

    pub fn panics(&self) -> bool {
        self.panic
    }

    /// Copies this job has to make (resends included).
    pub fn copies(&self) -> usize {
        self.queue.subscribers.len() + self.queue.resends.len()
    }

    /// Makes and protects every copy, then hands each datagram its connections have
    /// waiting (those copies, and anything else written to them) to `send`.
    pub fn run(&mut self, send: &mut impl FnMut(SocketAddr, BytesMut)) {
        if self.panic {
            panic!("fault injection: an egress shard panics on request");
        }
        for r in &self.queue.resends {
            resend(self.shard, &mut self.skips, r, self.now);
        }
        for (index, range) in &self.queue.items {
            let packet = &self.packets[*index];
            let mut wants_keyframe = false;
            for &conn in &self.queue.subscribers[range.clone()] {
                match forward_to(self.shard, &mut self.skips, conn, packet, self.now) {
                    Wants::Nothing => {}
                    Wants::Keyframe => wants_keyframe = true,
                    Wants::LayerKeyframe(layer) => {
                        if let Some(id) = &packet.keyframes_of
                            && !self
                                .layer_keyframes
                                .iter()
                                .any(|(i, l)| i == id && *l == layer)
                        {
                            self.layer_keyframes.push((id.clone(), layer));
                        }
                    }
                }
            }
            if let Some(id) = packet.keyframes_of.as_ref().filter(|_| wants_keyframe)
                && !self.keyframes.contains(id)
            {
                self.keyframes.push(id.clone());
            }
        }
        self.shard.flush(send);
    }
}

/// A resend into its connection.
fn resend(shard: &mut Shard, skips: &mut Skips, r: &Resend, now: Instant) {
    let Some((peer, arena)) = shard.peer_and_arena(r.conn) else {
        skips.count(Skip::UnknownConnection);
        return;
    };
    if peer.send_rtp(arena, &r.header, &r.payload, r.vp8.as_ref(), now) {
        skips.resent();
        shard.mark_dirty(r.conn);
    } else {
        skips.count(Skip::WriteFailed);
    }
}

/// One copy of `packet` into `conn`.
fn forward_to(
    shard: &mut Shard,
    skips: &mut Skips,
    conn: ConnId,
    packet: &Outgoing,
    now: Instant,
) -> Wants {
    let Some((peer, arena)) = shard.peer_and_arena(conn) else {
        skips.count(Skip::UnknownConnection);
        return Wants::Nothing;
    };
    if !peer.ice().is_up() {
        skips.count(Skip::NotConnected);
        return Wants::Nothing;
    }
    if peer.on_hold {
        skips.count(Skip::SubscriberOnHold);
        return Wants::Nothing;
    }
    let allocated = peer.estimates_bandwidth();
    let Some(dt) = peer.downtracks.get_mut(&packet.down) else {
        skips.count(Skip::NegotiationNotLive);
        return Wants::Nothing;
    };
    if dt.phase != TrackPhase::Live {
        skips.count(Skip::NegotiationNotLive);
        return Wants::Nothing;
    }
    if dt.codec_refused {
        skips.count(Skip::CodecNotAccepted);
        return Wants::Nothing;
    }
    if dt.paused {
        skips.count(Skip::LastNPaused);
        return Wants::Nothing;
    }
    if dt.bandwidth_paused {
        skips.count(Skip::BandwidthPaused);
        return Wants::Nothing;
    }
    let (numbered, wants) = match &packet.layered {
        Some(layered) => {
            let selection = dt
                .layers
                .get_or_insert_with(|| Box::new(LayerSelection::starting(allocated)));
            select(selection, layered, now)
        }
        None => plain(dt, packet, now),
    };
    let Some(n) = numbered.map_err(|skip| skips.count(skip)).ok() else {
        return wants;
    };
    let mut header = packet.header.clone();
    header.ssrc = dt.ssrc;
    header.payload_type = dt.payload_type;
    header.sequence_number = n.seq;
    header.timestamp = n.timestamp;
    header.marker = n.marker;
    if let Some(sent) = dt.sent.as_mut() {
        let sent_as = Sent {
            source: packet.seq,
            timestamp: n.timestamp,
            marker: n.marker,
        };
        sent.record(n.seq, sent_as);
        if let Some(selection) = dt.layers.as_mut() {
            selection.record(n.seq, n.vp8);
        }
    }
    let payload = packet.payload.for_owner(peer.owner).clone();
    if peer.send_rtp(arena, &header, &payload, n.vp8.as_ref(), now) {
        skips.forwarded();
        shard.mark_dirty(conn);
    } else {
        skips.count(Skip::WriteFailed);
    }
    wants
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(n: u64) -> Outgoing {
        Outgoing {
            header: Header::default(),
            seq: ExtSeq(n),
            ts: ExtTimestamp(n),
            keyframe: false,
            down: TrackId::named("t"),
            keyframes_of: None,
            source: 0,
            layered: None,
            payload: Payload::Shared(Bytes::new()),
        }
    }

    #[test]
    fn the_queue_gives_each_shard_its_own_subscribers_of_each_packet() {
        let mut q = EgressQueue::new(2);
        let ids = |v: &[u64]| v.iter().map(|&n| ConnId(n)).collect::<Vec<_>>();
        q.push(packet(1), &ids(&[2, 3, 4, 5]));
        q.push(packet(2), &ids(&[7]));
        q.push(packet(3), &[]);
        // shard → (packet seq, its subscribers)
        let want: [&[(u64, &[u64])]; 2] = [&[(1, &[2, 4])], &[(1, &[3, 5]), (2, &[7])]];
        for (shard, want) in q.shards.iter().zip(want) {
            let got: Vec<(u64, Vec<ConnId>)> = shard
                .items
                .iter()
                .map(|(i, r)| (q.packets[*i].seq.0, shard.subscribers[r.clone()].to_vec()))
                .collect();
            let want: Vec<(u64, Vec<ConnId>)> = want.iter().map(|(s, c)| (*s, ids(c))).collect();
            assert_eq!(got, want);
        }
        assert_eq!(q.packets.len(), 3);
        q.clear();
        assert!(q.is_empty() && q.shards.iter().all(|s| s.subscribers.is_empty()));
    }

    #[test]
    fn a_resend_goes_to_its_subscribers_shard_and_keeps_the_queue_busy() {
        let mut q = EgressQueue::new(2);
        let resend = |conn| Resend {
            conn: ConnId(conn),
            header: Header::default(),
            payload: Bytes::new(),
            vp8: None,
        };
        q.resend(resend(5));
        assert!(!q.is_empty(), "a resend alone is work for a turn");
        q.resend(resend(4));
        q.resend(resend(7));
        let conns: Vec<Vec<u64>> = q
            .shards
            .iter()
            .map(|s| s.resends.iter().map(|r| r.conn.0).collect())
            .collect();
        assert_eq!(conns, [vec![4], vec![5, 7]]);
        q.clear();
        assert!(q.is_empty());
    }

    #[test]
    fn a_mix_gives_each_talker_its_own_and_everyone_else_the_common_mix() {
        let mix = Payload::Mix(Arc::new(MixPayload {
            common: Bytes::from_static(b"all"),
            own: vec![(ParticipantKey(7), Bytes::from_static(b"minus 7"))],
        }));
        assert_eq!(&mix.for_owner(ParticipantKey(7))[..], b"minus 7");
        assert_eq!(&mix.for_owner(ParticipantKey(8))[..], b"all");
        let shared = Payload::Shared(Bytes::from_static(b"x"));
        assert_eq!(&shared.for_owner(ParticipantKey(7))[..], b"x");
    }
}
