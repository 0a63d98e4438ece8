//! What a run found (`Report`, `Percentiles`); printed by `text`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::measure;

mod text;

/// p50 / p99 / max of a set of durations, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    pub(crate) fn of(mut values: Vec<Duration>) -> Self {
        values.sort();
        let at = |q: f64| {
            let i = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1;
            values[i].as_secs_f64() * 1e3
        };
        if values.is_empty() {
            return Self::default();
        }
        Self {
            count: values.len(),
            p50_ms: at(0.5),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        }
    }
}

/// What one run measured. Packet and byte counts are RTP packets and RTP payload
/// bytes as the clients count them.
/// Two of the server's skip counters over the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ServerSkipped {
    /// Copies the bandwidth allocation held back (`bandwidth_paused`).
    pub bandwidth_paused: u64,
    /// Datagrams dropped unprocessed because the room fell behind (`stale`).
    pub stale: u64,
}

impl ServerSkipped {
    /// From a room's `GET /v1/rooms/{room}` answer; `None` if it has no counters.
    pub fn from_room(info: &serde_json::Value) -> Option<Self> {
        let skipped = &info["forwarding"]["skipped"];
        Some(Self {
            bandwidth_paused: skipped["bandwidth_paused"].as_u64()?,
            stale: skipped["stale"].as_u64()?,
        })
    }

    /// What was counted between `self` (start) and `end`.
    pub fn since(self, end: Self) -> Self {
        Self {
            bandwidth_paused: end.bandwidth_paused.saturating_sub(self.bandwidth_paused),
            stale: end.stale.saturating_sub(self.stale),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub scenario: String,
    pub room: String,
    /// Participants planned.
    pub participants: usize,
    /// Of them, publishing anything.
    pub publishers: usize,
    /// Of them, publishing a camera.
    pub video_publishers: usize,
    /// Of them, receiving.
    pub receivers: usize,
    /// `connect` returned `joined`.
    pub joined: usize,
    pub join_failures: usize,
    /// Joined, but at least one `publish` failed.
    pub publish_failures: usize,
    /// The first distinct error messages.
    pub errors: Vec<String>,
    /// From the first join started to the last one finished.
    pub join_phase_secs: f64,
    /// From starting `connect` to receiving `joined`.
    pub join_time: Percentiles,
    /// Per receiver, from `joined` to its first inbound RTP packet.
    pub first_media: Percentiles,
    /// Per receiver with every expected track, from `joined` to the first packet of
    /// the last of them to arrive.
    pub all_media: Percentiles,
    /// Receivers that got no packet at all.
    pub receivers_without_media: usize,
    /// (receiver, track) pairs: every receiver × every track the others published.
    pub tracks_expected: u64,
    /// Of those pairs, the ones with at least one packet by the end of the window.
    pub tracks_received: u64,
    /// Receivers with every expected track when the window began.
    pub receivers_complete: usize,
    /// Publishers whose publisher connection was connected at the end of the window.
    pub publisher_connections_up: usize,
    /// Receivers whose subscriber connection was connected at the end of the window.
    pub subscriber_connections_up: usize,
    /// Waited after the join phase for media to reach everyone.
    pub media_wait_secs: f64,
    pub window_secs: f64,
    /// Packets the publishers sent in the window (server ingress).
    pub ingress_packets: u64,
    /// Packets the receivers got in the window (server egress).
    pub egress_packets: u64,
    pub egress_bytes: u64,
    pub egress_packets_per_sec: f64,
    /// RTP payload bits per second received by all receivers.
    pub egress_bitrate_bps: f64,
    /// Sum over expected (receiver, track) pairs of the sequence numbers the receiver
    /// saw numbered in the window (or, for a published track of which it saw none, the
    /// packets the publisher sent); see [`measure::pair_count`].
    pub expected_packets: u64,
    /// Of those, the distinct sequence numbers that arrived: duplicates count once.
    pub received_packets: u64,
    /// `1 - received / expected`; see the crate documentation.
    pub loss_ratio: f64,
    /// The same, audio tracks only.
    pub audio_loss_ratio: f64,
    /// The same, video tracks only.
    pub video_loss_ratio: f64,
    /// The part of `expected_packets` that is video.
    pub video_expected_packets: u64,
    /// Video packets expected with those sent while the server had told the receiver
    /// the video was paused (`video_paused` until `video_resumed`) left out; see
    /// `told.rs`. Received ones are the same as for `video_loss_ratio`.
    pub video_expected_outside_pauses: u64,
    /// `1 - received / expected` of video outside told pauses.
    pub video_loss_outside_pauses_ratio: f64,
    /// Datagrams all clients read in the window whose arrival time (transport-wide CC
    /// feedback, latency) is the kernel's receive time.
    pub arrivals_stamped: u64,
    /// Datagrams read in the window without a kernel receive time: their arrival time
    /// is when the harness read them.
    pub arrivals_unstamped: u64,
    /// Of the stamped, those dated later than their stamp (the client had driven the
    /// connection past it before it read them).
    pub arrivals_clamped: u64,
    /// How much later than their stamps those were dated, in all (µs).
    pub arrivals_clamped_micros: u64,
    /// Datagrams the kernel dropped in the window on the clients' sockets, their
    /// receive buffers full: loss the harness caused, not having read them in time.
    pub harness_socket_drops: u64,
    /// Server user+system CPU time in the window.
    pub server_cpu_micros: f64,
    pub server_cpu_percent: f64,
    pub cpu_per_egress_packet_micros: f64,
    /// Server CPU time over the packets it received (RTP from publishers) in the window.
    pub cpu_per_ingress_packet_micros: f64,
    /// User + system CPU time of this process (all the clients) in the window.
    pub harness_cpu_micros: f64,
    /// The same in % of one core.
    pub harness_cpu_percent: f64,
    /// Harness CPU time in the window over the RTP packets all its clients received in
    /// it (`egress_packets`): what receiving a packet costs the harness, sending and
    /// everything else included.
    pub harness_cpu_per_received_packet_micros: f64,
    /// Server VmRSS before the first join.
    pub rss_before_kib: u64,
    /// Server VmRSS once everyone joined and media flows (start of the window).
    pub rss_after_kib: u64,
    /// (after - before) / joined.
    pub rss_per_participant_kib: f64,
    /// Participants sending real Opus talk (the others send silence).
    pub talkers: usize,
    /// Video payload format of the cameras.
    pub video_codec: String,
    /// Cameras sent three simulcast layers (`--simulcast`).
    pub simulcast: bool,
    /// Cameras sent VP9 in L3T3_KEY spatial and temporal layers, one stream (`--svc`).
    pub svc: bool,
    /// How receivers showed the cameras (`--view`: `any`, or `tiles (speaker WxH)`).
    pub view: String,
    /// `track_settings` the receivers sent (`--view tiles`: one per receiver and camera).
    pub track_settings_sent: usize,
    /// Copies the server chose not to send in the window, by its skip reasons
    /// (`GET /v1/rooms/{room}`'s `forwarding.skipped`, Chorus only): why packets count
    /// as lost without being lost on the way.
    pub server_skipped: Option<ServerSkipped>,
    /// At the end of the window, (receiver, camera) pairs by the size of the last
    /// keyframe received (`"320x180"`; VP8, and of VP9 the highest spatial layer of the
    /// last picture): which simulcast or SVC layer the server sends.
    pub received_sizes: BTreeMap<String, usize>,
    /// `--view tiles`: received video per tile and per speaker view in the window.
    pub view_bitrates: Option<crate::view::ViewBitrates>,
    /// Send-to-receive time of video packets in the window, from the stamps in their
    /// payloads to the kernel's receive time: what the server adds, plus the sending
    /// task's scheduling.
    pub video_latency: Percentiles,
    /// The same as a histogram: buckets about 3 % wide, empty ones left out.
    pub latency_histogram: Vec<measure::LatencyBucket>,
    /// With `--decode-audio`: mix frames decoded by all receivers in the window, of them
    /// at -50 dBov or louder (sound, not silence), and packets the decoder refused.
    pub audio_frames_decoded: u64,
    pub audio_frames_loud: u64,
    pub audio_decode_errors: u64,
    /// With `--data-rate`: data messages sent in the window, the copies that should have
    /// reached the others (each to every other member), those delivered, and the
    /// difference (messages still in flight when the window closed count as lost).
    pub data_sent: u64,
    pub data_expected: u64,
    pub data_delivered: u64,
    pub data_lost: u64,
    /// About once a second over the whole run.
    pub timeline: Vec<measure::TimelinePoint>,
    /// Start of the window on the timeline's clock (seconds since the run started).
    pub window_at_secs: f64,
    /// The `churn` scenario's storms, beside the steady room this report measures
    /// (its window is the storms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub churn: Option<ChurnReport>,
    /// `--cap-subscribers`: each capped receiver's video in the window.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub capped: Vec<crate::capped::CappedMember>,
}

impl Report {
    pub fn cpu_per_packet_micros(&self) -> f64 {
        per_packet_micros(self.server_cpu_micros, self.egress_packets)
    }
}

/// CPU time per packet, in µs; 0 without packets.
pub(crate) fn per_packet_micros(cpu_micros: f64, packets: u64) -> f64 {
    if packets == 0 {
        0.0
    } else {
        cpu_micros / packets as f64
    }
}

/// What the storms measured; in the report as `churn`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChurnReport {
    pub room: String,
    /// Storms started (each of `per_storm` participants).
    pub storms: usize,
    pub per_storm: usize,
    pub storm_secs: f64,
    pub vanish_share: f64,
    pub joins_started: usize,
    pub joins_completed: usize,
    pub joins_failed: usize,
    /// Of the completed: how they went.
    pub left_with_leave: usize,
    pub closed_socket: usize,
    pub vanished: usize,
    /// `connect` → `joined`, churn room.
    pub join_time: Percentiles,
    /// `GET /v1/rooms` during the storms.
    pub api_latency: Percentiles,
    pub api_failures: usize,
    /// Server RSS and live tokio tasks before the first storm and at the end (the churn
    /// room emptied, or `churn::DRAIN_WAIT` passed, and then `churn::SETTLE`).
    pub rss_start_kib: u64,
    pub rss_end_kib: u64,
    pub tasks_start: u64,
    pub tasks_end: u64,
    /// Participants still in the churn room at the end (0 once everyone was reaped).
    pub churn_room_left: u64,
    /// After the last storm, until the churn room was empty.
    pub drain_secs: f64,
    /// One after each storm, and the last at the end.
    pub samples: Vec<ChurnSample>,
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ChurnSample {
    /// Seconds since the first storm began.
    pub at_secs: f64,
    pub rss_kib: u64,
    pub tasks: u64,
    /// In the churn room when sampled.
    pub churn_participants: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harness_cpu_per_received_packet() {
        let report = Report {
            window_secs: 10.0,
            harness_cpu_micros: 3_000_000.0,
            harness_cpu_percent: 30.0,
            harness_cpu_per_received_packet_micros: per_packet_micros(3_000_000.0, 600_000),
            server_cpu_micros: 1_200_000.0,
            egress_packets: 600_000,
            ..Report::default()
        };
        // 3 s of CPU over 600 000 packets: 5 µs each; the server's 1.2 s: 2 µs.
        assert_eq!(report.harness_cpu_per_received_packet_micros, 5.0);
        assert_eq!(report.cpu_per_packet_micros(), 2.0);
        assert_eq!(per_packet_micros(3_000_000.0, 0), 0.0);
        let text = report.to_string();
        assert!(
            text.contains("harness CPU per pkt  5.00 µs per received packet"),
            "{text}"
        );
    }
}

#[cfg(test)]
mod server_skipped_tests {
    use super::ServerSkipped;

    #[test]
    fn read_from_the_room_and_taken_over_the_window() {
        let start = serde_json::json!({"forwarding": {"skipped": {"stale": 5, "bandwidth_paused": 7, "muted": 1}}});
        let end =
            serde_json::json!({"forwarding": {"skipped": {"stale": 9, "bandwidth_paused": 20}}});
        let (a, b) = (
            ServerSkipped::from_room(&start).unwrap(),
            ServerSkipped::from_room(&end).unwrap(),
        );
        assert_eq!(
            a.since(b),
            ServerSkipped {
                bandwidth_paused: 13,
                stale: 4
            }
        );
        assert_eq!(
            ServerSkipped::from_room(&serde_json::json!({"error": "room_not_found"})),
            None
        );
    }
}
