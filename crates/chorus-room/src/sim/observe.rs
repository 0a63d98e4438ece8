//! Looking at the simulation: the clock, the room, and what each client got (frames,
//! RTP and padding per track, keyframe requests, its connections, its losses).

use std::time::{Duration, Instant};

use chorus_protocol::control::SubscriberStats;
use chorus_protocol::signal::{PeerTarget, ServerMessage};
use chorus_protocol::webhook::WebhookEvent;
use chorus_transport::Demux;

use super::client::RtpIn;
use super::net::Dir;
use super::{ClientId, Sim};
use crate::core::RoomCore;
use crate::io::{Command, Reply};
use crate::skips::Skips;

impl Sim {
    /// `c`'s downstream bandwidth estimate as the room's info gives it (`None` before
    /// its client's first transport-wide feedback).
    pub fn subscriber_stats(&mut self, c: ClientId) -> Option<SubscriberStats> {
        let identity = self.identity(c).to_owned();
        match self.command(Command::Info) {
            Reply::Info(info) => info
                .subscribers
                .into_iter()
                .find(|s| s.identity == identity),
            other => panic!("{other:?}"),
        }
    }

    /// The webhook events the room produced so far, in order.
    pub fn events(&self) -> &[WebhookEvent] {
        &self.events
    }

    // --- looking ---

    pub fn now(&self) -> Instant {
        self.now
    }

    /// Simulated time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    pub fn core(&self) -> &RoomCore {
        &self.core
    }

    pub fn skips(&self) -> &Skips {
        self.core.skips()
    }

    pub fn demux(&self) -> &Demux {
        &self.demux
    }

    pub fn identity(&self, c: ClientId) -> &str {
        &self.clients[c.0].identity
    }

    /// The server's id of the client's session (`PA_…`).
    pub fn participant_id(&self, c: ClientId) -> &str {
        &self.clients[c.0].participant_id
    }

    /// Every frame the server sent the client, in order.
    pub fn frames(&self, c: ClientId) -> &[ServerMessage] {
        &self.clients[c.0].frames
    }

    /// How many of the client's frames match.
    pub fn count(&self, c: ClientId, pred: impl Fn(&ServerMessage) -> bool) -> usize {
        self.frames(c).iter().filter(|m| pred(m)).count()
    }

    /// The server's offers on the client's subscriber connection, in order.
    pub fn offers(&self, c: ClientId) -> Vec<&str> {
        self.frames(c)
            .iter()
            .filter_map(|m| match m {
                ServerMessage::Offer {
                    target: PeerTarget::Subscriber,
                    sdp,
                } => Some(sdp.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The RTP the client received on the server's track `track` (a track id, or
    /// `mix` for the room audio), in order of arrival.
    pub fn rtp(&self, c: ClientId, track: &str) -> &[RtpIn] {
        self.clients[c.0].rtp.get(track).map_or(&[], Vec::as_slice)
    }

    /// The padding-only packets (bandwidth probes) the client received on `track`.
    pub fn padding(&self, c: ClientId, track: &str) -> &[RtpIn] {
        self.clients[c.0]
            .padding
            .get(track)
            .map_or(&[], Vec::as_slice)
    }

    /// Every packet that carried `track`'s numbering to the client, media and padding,
    /// in order of arrival: its numbering whole, so none counts padding before it
    /// (and [`seq_jumps`] applies as is).
    pub fn numbered(&self, c: ClientId, track: &str) -> Vec<RtpIn> {
        let mut all: Vec<RtpIn> = self.rtp(c, track).to_vec();
        all.extend_from_slice(self.padding(c, track));
        for p in &mut all {
            p.padding_before = 0;
        }
        // Stable: packets of one instant keep their order within each list.
        all.sort_by_key(|p| p.at);
        all
    }

    /// Bandwidth probes on or off (on by default, as in the server).
    pub fn set_probing(&mut self, on: bool) {
        self.core.set_probing(on);
    }

    /// When keyframe requests (PLI, FIR) reached the client's publisher connection.
    pub fn plis(&self, c: ClientId) -> &[Instant] {
        &self.clients[c.0].plis
    }

    /// Keyframes the client sent on its track `track`.
    pub fn keyframes_sent(&self, c: ClientId, track: &str) -> u32 {
        let client = &self.clients[c.0];
        let p = client.publications.iter().find(|p| p.track_id == track);
        p.map_or(0, |p| p.keyframes_sent)
    }

    /// Whether the client's (publisher, subscriber) connections are up, as it sees them.
    pub fn connected(&self, c: ClientId) -> (bool, bool) {
        let client = &self.clients[c.0];
        (client.publisher.connected, client.subscriber.connected)
    }

    /// Whether the server closed the client's session.
    pub fn departed(&self, c: ClientId) -> bool {
        self.clients[c.0].departed
    }

    /// Datagrams lost so far on the client's `dir`.
    pub fn dropped(&self, c: ClientId, dir: Dir) -> u64 {
        let client = &self.clients[c.0];
        match dir {
            Dir::Up => client.up.dropped,
            Dir::Down => client.down.dropped,
        }
    }
}

/// Places where `packets` (media, as [`Sim::rtp`] gives them) do not follow one
/// another by one sequence number (wrapping), as (previous, next). Padding-only packets
/// that arrived between two (bandwidth probes, numbered into the track) fill the
/// numbers between them.
pub fn seq_jumps(packets: &[RtpIn]) -> Vec<(u16, u16)> {
    packets
        .windows(2)
        .filter(|w| w[1].seq != w[0].seq.wrapping_add(1 + w[1].padding_before))
        .map(|w| (w[0].seq, w[1].seq))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_between_two_packets_fills_their_numbers() {
        let at = Instant::now();
        let packet = |seq: u16, padding_before: u16| RtpIn {
            at,
            ssrc: 1,
            seq,
            ts: 0,
            marker: false,
            payload_len: 100,
            keyframe: false,
            picture_id: None,
            padding_before,
            vp9: None,
            payload_type: 96,
        };
        // (media packets as (seq, padding before), the jumps)
        type Case<'a> = (&'a [(u16, u16)], &'a [(u16, u16)]);
        let cases: [Case; 4] = [
            (&[(1, 0), (2, 0), (3, 0)], &[]),
            // Five padding packets took 3..=7.
            (&[(1, 0), (2, 0), (8, 5)], &[]),
            // A hole the padding does not explain (one lost), and one it overfills.
            (&[(1, 0), (2, 0), (9, 5), (10, 1)], &[(2, 9), (9, 10)]),
            (&[(65_534, 0), (65_535, 0), (2, 2)], &[]),
        ];
        for (media, want) in cases {
            let packets: Vec<RtpIn> = media.iter().map(|&(s, p)| packet(s, p)).collect();
            assert_eq!(seq_jumps(&packets), want, "{media:?}");
        }
    }
}
