//! Janus VideoRoom as a load-test target (`--target janus`), so that the same fan-out
//! runs against Janus and Chorus on the same machine and the figure that matters,
//! server CPU per forwarded packet, is measured the same way for both.
//!
//! Each participant is what a browser using `janus.js` would be: its own Janus session
//! over the HTTP API (requests by `POST`, events by long-poll `GET
//! /janus/<session>?maxev=..`, a keepalive every 25 s) with one VideoRoom handle.
//! Publishers join as `publisher` and send the offer (`publish`, later `configure`);
//! subscribers join as `subscriber` with the multistream `streams` list of Janus ≥ 1.0,
//! Janus offers, and they answer with `start`. The media side is the harness's own
//! [`Engine`] (the same `rtc` peer connections and synthetic Opus/VP8 as against
//! Chorus); only the signaling differs. Janus is a full ICE agent, so the engine does
//! full ICE here (controlling on the publisher connection, where it offers).
//!
//! Only `fanout` is supported: subscribers subscribe to the publishers' feeds when they
//! join, so every publisher is in the room (published or failed) before the first
//! subscriber joins. The wait for that is not part of a subscriber's join time, which
//! runs from creating its session to Janus's offer (`attached`); a publisher's runs from
//! creating its session to `joined`. Publishers do not subscribe to each other.

mod api;
mod participant;
mod protocol;
mod room;

pub use api::Api;
pub use protocol::{
    Event, EventKind, FeedId, HandleId, Jsep, Relayed, Request, RequestError, RoomId, SessionId,
    engine_message, name_tracks,
};
pub(crate) use room::JanusRoom;
pub use room::room_id;
