//! How simulated time moves: each step of [`STEP`] fires the clients' and the room's
//! timeouts, sends the clients' media, carries datagrams both ways through the
//! simulated network and the real demultiplexer, and applies what the room outputs.

use std::time::Duration;

use rtc::sansio::Protocol;

use super::client::SimClient;
use super::{STEP, Sim};
use crate::driver::apply_route;
use crate::io::{Input, Output, Recipients};

impl Sim {
    /// Advances the clock by `d` in steps of [`STEP`], moving datagrams both ways and
    /// firing every timeout due.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now = (self.now + STEP).min(end);
            self.tick();
        }
    }

    fn tick(&mut self) {
        let now = self.now;
        for client in &mut self.clients {
            client.take_arrivals(now);
            client.handle_timeouts(now);
            client.send_media(now);
        }
        self.pump();
        // As the driver: whatever is due runs (and may make more due at once).
        for _ in 0..16 {
            if self.core.poll_timeout().is_none_or(|t| t > now) {
                break;
            }
            self.core.handle_input(Input::Timeout, now);
            self.pump();
        }
    }

    /// Moves everything that can move at this instant, until nothing does.
    pub(super) fn pump(&mut self) {
        for round in 0.. {
            assert!(round < 10_000, "the simulation does not settle");
            let mut moved = false;
            while let Some(out) = self.core.poll_output() {
                moved = true;
                self.apply(out);
            }
            for i in 0..self.clients.len() {
                while let Some(frame) = self.clients[i].outbox.pop_front() {
                    moved = true;
                    let client = &self.clients[i];
                    if !client.departed {
                        let participant = client.key;
                        let input = Input::Signal { participant, frame };
                        self.core.handle_input(input, self.now);
                    }
                }
                moved |= self.uplink(i);
            }
            moved |= self.deliver();
            for client in &mut self.clients {
                client.drain(self.now);
            }
            if !moved {
                return;
            }
        }
    }

    /// Datagrams of client `i` to the demultiplexer; true if any left.
    fn uplink(&mut self, i: usize) -> bool {
        let client = &mut self.clients[i];
        let mut moved = false;
        for pc in [&mut client.publisher, &mut client.subscriber] {
            while let Some(msg) = pc.pc.poll_write() {
                moved = true;
                if client.offline || client.departed || client.up.drops() {
                    continue;
                }
                // Undeliverable datagrams (no route) are lost, as on the real port.
                let _ = self.demux.deliver(pc.addr, self.now, msg.message);
            }
        }
        moved
    }

    /// What the demultiplexer delivered, into the core: handshakes first.
    fn deliver(&mut self) -> bool {
        let mut moved = false;
        while let Ok(dg) = self
            .control
            .1
            .try_recv()
            .or_else(|_| self.inbox.1.try_recv())
        {
            moved = true;
            self.core.handle_input(Input::Datagram(dg), self.now);
        }
        moved
    }

    pub(super) fn apply(&mut self, out: Output) {
        match out {
            Output::Transmit { to, data } => {
                let Some(client) = self
                    .clients
                    .iter_mut()
                    .find(|c| c.publisher.addr == to || c.subscriber.addr == to)
                else {
                    return;
                };
                if client.offline || client.departed || client.down.drops() {
                    return;
                }
                if !client.downlink.direct() {
                    client.downlink.send(self.now, to, data);
                    return;
                }
                client.pc_at(to).receive(data, self.now);
            }
            Output::ToClient { to, msg } => {
                let broadcast = !matches!(to, Recipients::One(_));
                for client in &mut self.clients {
                    if !client.departed && to.includes(client.key) && !(broadcast && client.waiting)
                    {
                        client.on_frame(msg.clone(), self.now);
                    }
                }
            }
            Output::Departed(key) => {
                // Those of a closed room keep their keys: the live one is meant.
                let live = |c: &&mut SimClient| c.key == key && !c.departed;
                if let Some(client) = self.clients.iter_mut().find(live) {
                    client.departed = true;
                }
            }
            Output::Route(change) => {
                apply_route(&self.demux, change, &self.inbox.0, &self.control.0)
            }
            Output::Event(event) => self.events.push(event),
            Output::Lobby {
                participant,
                waiting,
            } => {
                let live = |c: &&mut SimClient| c.key == participant && !c.departed;
                if let Some(client) = self.clients.iter_mut().find(live) {
                    client.waiting = waiting;
                }
            }
            Output::RtpMix { participant, frame } => self.rtp_mix.push((participant, frame)),
        }
    }
}
