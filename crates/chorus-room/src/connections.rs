//! The room's media connections, by id, split into egress shards: who owns each, which
//! have output waiting, and when each must next be woken. A shard owns its connections
//! outright (transport, SRTP contexts, forwarders, NACK maps) and the send arena they
//! all write their packets into, so the
//! shards of one room can forward and send at the same time on different cores
//! (`egress.rs`). Subscriber connections are spread evenly over the shards; a
//! connection's shard is part of its id (`id % shards`), so finding it costs nothing.
//!
//! Connection ids come from the room's own range (the registry hands each room a
//! distinct one: the demultiplexer's routes of all rooms share one table).

use std::collections::HashMap;
use std::time::Instant;

use bytes::BytesMut;
use chorus_core::ConnId;
use chorus_protocol::signal::PeerTarget;

use crate::peer::Peer;
use crate::timers::Timers;

pub struct Connections {
    shards: Vec<Shard>,
    next_id: u64,
}

/// One egress shard's connections.
#[derive(Default)]
pub struct Shard {
    /// Boxed: a `Peer` is large, and the map's spare buckets (up to half of them after
    /// a resize) would otherwise each hold one's worth of memory.
    peers: HashMap<ConnId, Box<Peer>>,
    /// Connections with output to send.
    dirty: Vec<ConnId>,
    timers: Timers,
    /// How many of its connections are subscriber connections (they carry the egress).
    subscribers: usize,
    /// Where its connections write and protect the RTP they send, packet after packet.
    arena: BytesMut,
}

impl Connections {
    /// Ids are drawn from `first_id` upwards; `shards` is at least one.
    pub fn new(first_id: u64, shards: usize) -> Self {
        Self {
            shards: (0..shards.max(1)).map(|_| Shard::default()).collect(),
            next_id: first_id,
        }
    }

    /// A fresh id for a `target` connection, in the shard with the fewest of that kind.
    pub fn next_id(&mut self, target: PeerTarget) -> ConnId {
        let subscriber = target == PeerTarget::Subscriber;
        let load = |s: &Shard| {
            if subscriber {
                s.subscribers
            } else {
                s.peers.len() - s.subscribers
            }
        };
        let n = self.shards.len() as u64;
        let shard = (0..self.shards.len())
            .min_by_key(|&i| load(&self.shards[i]))
            .unwrap_or(0) as u64;
        // The next id that falls into that shard: at most `n - 1` ids go unused.
        let id = self.next_id + (shard + n - self.next_id % n) % n;
        self.next_id = id + 1;
        ConnId(id)
    }

    fn shard_of(&self, conn: ConnId) -> usize {
        (conn.0 % self.shards.len() as u64) as usize
    }

    pub fn insert(&mut self, peer: Peer) {
        let i = self.shard_of(peer.conn);
        let shard = &mut self.shards[i];
        shard.subscribers += usize::from(peer.target == PeerTarget::Subscriber);
        shard.peers.insert(peer.conn, Box::new(peer));
    }

    pub fn get(&self, conn: ConnId) -> Option<&Peer> {
        self.shards[self.shard_of(conn)]
            .peers
            .get(&conn)
            .map(|p| &**p)
    }

    pub fn get_mut(&mut self, conn: ConnId) -> Option<&mut Peer> {
        let i = self.shard_of(conn);
        self.shards[i].peers.get_mut(&conn).map(|p| &mut **p)
    }

    /// A connection with its shard's send arena, to send on.
    pub fn peer_and_arena(&mut self, conn: ConnId) -> Option<(&mut Peer, &mut BytesMut)> {
        let i = self.shard_of(conn);
        self.shards[i].peer_and_arena(conn)
    }

    pub fn remove(&mut self, conn: ConnId) -> Option<Peer> {
        let i = self.shard_of(conn);
        let shard = &mut self.shards[i];
        shard.timers.cancel(conn);
        let peer = shard.peers.remove(&conn)?;
        shard.subscribers -= usize::from(peer.target == PeerTarget::Subscriber);
        Some(*peer)
    }

    /// Lists `conn` for flushing (once).
    pub fn mark_dirty(&mut self, conn: ConnId) {
        let i = self.shard_of(conn);
        self.shards[i].mark_dirty(conn);
    }

    /// Lists `conn`, whose [`Peer::mark_dirty`] just said it was not listed.
    pub fn list_dirty(&mut self, conn: ConnId) {
        let i = self.shard_of(conn);
        self.shards[i].dirty.push(conn);
    }

    /// Whether a connection is listed for flushing.
    pub fn has_dirty(&self) -> bool {
        self.shards.iter().any(|s| !s.dirty.is_empty())
    }

    pub fn next_timeout(&mut self) -> Option<Instant> {
        self.shards.iter_mut().filter_map(|s| s.timers.next()).min()
    }

    pub fn pop_due(&mut self, now: Instant) -> Option<ConnId> {
        self.shards.iter_mut().find_map(|s| s.timers.pop_due(now))
    }

    pub fn shards_mut(&mut self) -> &mut [Shard] {
        &mut self.shards
    }
}

impl Shard {
    /// A connection of this shard with the shard's send arena, to send on.
    pub fn peer_and_arena(&mut self, conn: ConnId) -> Option<(&mut Peer, &mut BytesMut)> {
        let peer = self.peers.get_mut(&conn)?;
        Some((&mut **peer, &mut self.arena))
    }

    /// Lists `conn` for flushing, if [`Peer::mark_dirty`] says it is not listed yet.
    pub fn mark_dirty(&mut self, conn: ConnId) {
        if let Some(peer) = self.peers.get_mut(&conn)
            && peer.mark_dirty()
        {
            self.dirty.push(conn);
        }
    }

    fn pop_dirty(&mut self) -> Option<ConnId> {
        while let Some(conn) = self.dirty.pop() {
            if let Some(peer) = self.peers.get_mut(&conn) {
                peer.dirty = false;
                return Some(conn);
            }
        }
        None
    }

    /// Hands every datagram its connections have waiting to `send`, and files each
    /// drained connection under its next deadline.
    pub fn flush(&mut self, send: &mut impl FnMut(std::net::SocketAddr, BytesMut)) {
        while let Some(conn) = self.pop_dirty() {
            let Some(peer) = self.peers.get_mut(&conn) else {
                continue;
            };
            while let Some((to, data)) = peer.poll_transmit() {
                send(to, data);
            }
            self.timers.schedule(conn, peer.poll_timeout());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_spread_each_kind_evenly_and_name_their_shard() {
        // (shards, connections to make in order, subscriber connections per shard)
        let sub = PeerTarget::Subscriber;
        let publ = PeerTarget::Publisher;
        let cases: [(usize, Vec<PeerTarget>, Vec<usize>); 3] = [
            (1, vec![sub, publ, sub], vec![2]),
            // Publisher and subscriber connections alternate: a split by id parity
            // alone would put every subscriber in one shard.
            (
                2,
                vec![sub, publ, sub, publ, sub, publ, sub, publ],
                vec![2, 2],
            ),
            (3, vec![sub; 7], vec![3, 2, 2]),
        ];
        let factory = chorus_transport::PeerFactory::new("127.0.0.1:7882".parse().unwrap())
            .expect("a certificate");
        for (n, targets, want) in cases {
            let mut conns = Connections::new(1 << 32 | 5, n);
            let mut seen = std::collections::HashSet::new();
            for target in targets {
                let id = conns.next_id(target);
                assert!(seen.insert(id), "{id:?} drawn twice");
                let key = crate::io::ParticipantKey(id.0);
                conns.insert(Peer::for_tests(&factory, id, key, target));
            }
            let got: Vec<usize> = conns.shards.iter().map(|s| s.subscribers).collect();
            assert_eq!(got, want, "{n} shards");
            for (i, shard) in conns.shards.iter().enumerate() {
                for id in shard.peers.keys() {
                    assert_eq!(conns.shard_of(*id), i, "{id:?} lives in its own shard");
                }
            }
        }
    }
}
