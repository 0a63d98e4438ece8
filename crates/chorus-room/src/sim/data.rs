//! Data messages in the simulation: a client opens its `_reliable` and `_lossy`
//! channels ([`Sim::open_data`]), writes text or binary messages on them
//! ([`Sim::send_data`], [`Sim::send_data_binary`]) and reads what the room delivered
//! ([`Sim::data_in`], parsed by [`Sim::data_text`] and [`Sim::data_binary`]). The
//! messages go through the real channels, SCTP and DTLS to the core, as in a server.
//!
//! ```
//! use chorus_room::sim::Sim;
//! use chorus_protocol::data::DataMode;
//!
//! let mut sim = Sim::new(1);
//! let alice = sim.join("alice");
//! let bob = sim.join("bob");
//! sim.open_data(alice);
//! sim.open_data(bob);
//! sim.send_data(alice, DataMode::Reliable, r#"{"data": "hi"}"#);
//! let got = sim.data_text(bob);
//! assert_eq!((got[0].1.from.identity.as_str(), &got[0].1.data), ("alice", &"hi".into()));
//! ```

use bytes::Bytes;
use chorus_protocol::data::{BinaryDelivery, DataDelivery, DataMode, read_binary};

use super::client::DataIn;
use super::{ClientId, STEP, Sim, ms};

impl Sim {
    /// Opens the client's data channels and runs the clock until both are open (at
    /// most 5 s of simulated time; panics if they do not open).
    pub fn open_data(&mut self, c: ClientId) {
        self.clients[c.0].open_data(self.now);
        self.pump();
        let until = self.now + ms(5000);
        while !self.clients[c.0].data.is_open() {
            assert!(
                self.now < until,
                "{}: data channels not open after 5 s",
                self.clients[c.0].identity
            );
            self.run_for(STEP);
        }
    }

    /// The client writes `text` on its channel of `mode` (a JSON message of the
    /// protocol's, or anything else); it travels at once.
    pub fn send_data(&mut self, c: ClientId, mode: DataMode, text: &str) {
        self.clients[c.0].send_data(mode, false, text.as_bytes(), self.now);
        self.pump();
    }

    /// The client writes `message` as one binary message on its channel of `mode`.
    pub fn send_data_binary(&mut self, c: ClientId, mode: DataMode, message: &[u8]) {
        self.clients[c.0].send_data(mode, true, message, self.now);
        self.pump();
    }

    /// Every message the room delivered to the client, in order of arrival.
    pub fn data_in(&self, c: ClientId) -> &[DataIn] {
        &self.clients[c.0].data.received
    }

    /// The text messages delivered to the client, parsed; panics on one that is not a
    /// delivery.
    pub fn data_text(&self, c: ClientId) -> Vec<(DataMode, DataDelivery)> {
        self.data_in(c)
            .iter()
            .filter(|m| !m.binary)
            .map(|m| {
                let delivery = serde_json::from_slice(&m.data)
                    .unwrap_or_else(|e| panic!("not a delivery ({e}): {:?}", m.data));
                (m.mode, delivery)
            })
            .collect()
    }

    /// The binary messages delivered to the client: header and payload; panics on one
    /// not framed as a delivery.
    pub fn data_binary(&self, c: ClientId) -> Vec<(DataMode, BinaryDelivery, Bytes)> {
        self.data_in(c)
            .iter()
            .filter(|m| m.binary)
            .map(|m| {
                let (header, at) = read_binary::<Option<BinaryDelivery>>(&m.data)
                    .unwrap_or_else(|e| panic!("not a binary delivery ({e}): {:?}", m.data));
                let header = header.expect("a delivery has a header");
                (m.mode, header, m.data.slice(at..))
            })
            .collect()
    }
}
