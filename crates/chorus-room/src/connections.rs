//! The room's media connections, by id: who owns each, which have output waiting, and
//! when each must next be woken. Connection ids come from the room's own range (the
//! registry hands each room a distinct one: the demultiplexer's routes of all rooms
//! share one table).

use std::collections::HashMap;
use std::time::Instant;

use chorus_core::ConnId;

use crate::peer::Peer;
use crate::timers::Timers;

pub struct Connections {
    /// Boxed: a `Peer` is large, and the map's spare buckets (up to half of them after
    /// a resize) would otherwise each hold one's worth of memory.
    peers: HashMap<ConnId, Box<Peer>>,
    next_id: u64,
    /// Connections with output to send, in the order they got it.
    dirty: Vec<ConnId>,
    timers: Timers,
}

impl Connections {
    /// Ids are drawn from `first_id` upwards.
    pub fn new(first_id: u64) -> Self {
        Self {
            peers: HashMap::new(),
            next_id: first_id,
            dirty: Vec::new(),
            timers: Timers::default(),
        }
    }

    pub fn next_id(&mut self) -> ConnId {
        let id = ConnId(self.next_id);
        self.next_id += 1;
        id
    }

    pub fn insert(&mut self, peer: Peer) {
        self.peers.insert(peer.conn, Box::new(peer));
    }

    pub fn get(&self, conn: ConnId) -> Option<&Peer> {
        self.peers.get(&conn).map(|p| &**p)
    }

    pub fn get_mut(&mut self, conn: ConnId) -> Option<&mut Peer> {
        self.peers.get_mut(&conn).map(|p| &mut **p)
    }

    pub fn remove(&mut self, conn: ConnId) -> Option<Peer> {
        self.timers.cancel(conn);
        self.peers.remove(&conn).map(|p| *p)
    }

    /// Lists `conn` for flushing (once).
    pub fn mark_dirty(&mut self, conn: ConnId) {
        if let Some(peer) = self.peers.get_mut(&conn).map(|p| &mut **p)
            && peer.mark_dirty()
        {
            self.dirty.push(conn);
        }
    }

    /// Lists `conn`, whose [`Peer::mark_dirty`] just said it was not listed.
    pub fn list_dirty(&mut self, conn: ConnId) {
        self.dirty.push(conn);
    }

    /// A connection that had output listed (in no particular order); it is no longer
    /// listed (the caller drains it and reschedules it).
    pub fn pop_dirty(&mut self) -> Option<ConnId> {
        while let Some(conn) = self.dirty.pop() {
            if let Some(peer) = self.peers.get_mut(&conn) {
                peer.dirty = false;
                return Some(conn);
            }
        }
        None
    }

    pub fn schedule(&mut self, conn: ConnId, at: Option<Instant>) {
        self.timers.schedule(conn, at);
    }

    pub fn next_timeout(&mut self) -> Option<Instant> {
        self.timers.next()
    }

    pub fn pop_due(&mut self, now: Instant) -> Option<ConnId> {
        self.timers.pop_due(now)
    }

    pub fn len(&self) -> usize {
        self.peers.len()
    }
}
