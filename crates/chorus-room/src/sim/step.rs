//! One datagram at a time, the clock stopped: what benches use to price the room's
//! own path for one packet.

use chorus_transport::{Datagram, Delivery};
use rtc::sansio::Protocol;

use super::{ClientId, Sim};
use crate::io::{Input, Output};

impl Sim {
    /// Client `c` writes one more packet of its video track `track` now, outside the
    /// frame clock (a one-packet delta frame with the next sequence number and
    /// timestamp: every call is new to SRTP's replay check); returns its SRTP datagram
    /// as the demultiplexer hands it to the room, not yet fed. Panics if the track does
    /// not send yet (run the simulation until it does).
    pub fn video_datagram(&mut self, c: ClientId, track: &str) -> Datagram {
        let sent = self.clients[c.0].send_extra_video(track, self.now);
        assert!(
            sent,
            "{} cannot send {track} yet",
            self.clients[c.0].identity
        );
        self.routed(c, true)
    }

    /// Client `c` writes `packets` as one compound RTCP packet on its subscriber
    /// connection, from the receiver of the server's track `track`; returns the SRTCP
    /// datagram as routed to the room, not yet fed. Panics if no media of `track`
    /// reached the client yet. `rtp(c, track)` has the SSRC and sequence numbers to
    /// report on.
    pub fn rtcp_datagram(
        &mut self,
        c: ClientId,
        track: &str,
        packets: Vec<Box<dyn rtc::rtcp::Packet>>,
    ) -> Datagram {
        let sent = self.clients[c.0].send_rtcp(track, packets, self.now);
        assert!(sent, "{} receives no {track}", self.clients[c.0].identity);
        self.routed(c, false)
    }

    /// Feeds one datagram to the core at the current time (which does not move: no
    /// timer runs) and drains every output. Returns how many datagrams the room sent;
    /// they are dropped, not delivered, so the clients see them as lost if the
    /// simulation runs on (frames, routes and departures are applied as usual).
    pub fn feed_datagram(&mut self, dg: Datagram) -> usize {
        self.core.handle_input(Input::Datagram(dg), self.now);
        let mut sent = 0;
        while let Some(out) = self.core.poll_output() {
            match out {
                Output::Transmit { .. } => sent += 1,
                other => self.apply(other),
            }
        }
        sent
    }

    /// [`Self::feed_datagram`] with the room's egress shards run at once on rayon's
    /// pool, as the server's driver runs them on a big turn; their datagrams are
    /// counted and dropped.
    pub fn feed_datagram_parallel(&mut self, dg: Datagram) -> usize {
        use rayon::prelude::*;
        use std::sync::atomic::{AtomicUsize, Ordering};
        self.core.handle_input(Input::Datagram(dg), self.now);
        let sent = AtomicUsize::new(0);
        self.core.run_egress(self.now, |jobs| {
            jobs.par_iter_mut().for_each(|job| {
                let mut n = 0;
                job.run(&mut |_, _| n += 1);
                sent.fetch_add(n, Ordering::Relaxed);
            })
        });
        let mut sent = sent.into_inner();
        while let Some(out) = self.core.poll_output() {
            match out {
                Output::Transmit { .. } => sent += 1,
                other => self.apply(other),
            }
        }
        sent
    }

    /// [`Self::video_datagram`] fed by [`Self::feed_datagram`]: one packet of `track`
    /// forwarded; returns how many datagrams the room sent.
    pub fn step_video(&mut self, c: ClientId, track: &str) -> usize {
        let dg = self.video_datagram(c, track);
        self.feed_datagram(dg)
    }

    /// The one datagram client `c` just wrote on its publisher (or subscriber)
    /// connection, through the demultiplexer into the room's inbox and out again.
    fn routed(&mut self, c: ClientId, publisher: bool) -> Datagram {
        let client = &mut self.clients[c.0];
        let pc = if publisher {
            &mut client.publisher
        } else {
            &mut client.subscriber
        };
        let msg = pc.pc.poll_write().expect("the client wrote a datagram");
        assert!(pc.pc.poll_write().is_none(), "one datagram at a time");
        let delivery = self.demux.deliver(pc.addr, self.now, msg.message);
        assert_eq!(delivery, Delivery::Delivered, "the room routes the client");
        self.inbox
            .1
            .try_recv()
            .expect("media goes to the room's inbox")
    }
}
