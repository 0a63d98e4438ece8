//! Who should receive what, and the figures that two snapshots of everyone's counters
//! give: per-pair packets sent and received, the latency histogram of the window, and a
//! once-a-second timeline of the whole run.
//!
//! With Chorus every receiver gets **one** audio track, the room mix ([`MIX`]): it is
//! the other side's packets relayed in a 1:1 call and the server's own Opus mix with
//! three or more, so no publisher's counter says what was sent on it. Its loss comes
//! from its sequence numbers instead (highest − lowest + 1 against packets received).
//! Video (and, for an SFU without mixing, each participant's audio) is compared with
//! the publisher's outbound counter as before.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chorus_client::latency::LatencyHistogram;
use chorus_client::{ClientStats, MediaKind};
use serde::Serialize;

use crate::{Member, Percentiles, Snapshot, cpu_micros};

/// Inbound key of the room's mixed audio track on every subscriber connection.
pub const MIX: &str = chorus_protocol::signal::ROOM_AUDIO_TRACK;

/// What each receiver (by position in `members`) should get, as inbound stats keys, and
/// the position of each published track's owner. `stats` is aligned with `members` and
/// tells each track's kind. With `mixed_audio`, audio is the one [`MIX`] track when any
/// other participant publishes audio; without, every other participant's audio track.
pub(crate) fn expectations(
    members: &[Member],
    stats: &[ClientStats],
    mixed_audio: bool,
) -> (Vec<Vec<String>>, HashMap<String, usize>) {
    let owner: HashMap<String, usize> = members
        .iter()
        .enumerate()
        .flat_map(|(pos, m)| m.tracks.iter().map(move |t| (t.clone(), pos)))
        .collect();
    let is_audio = |pos: usize, track: &str| {
        stats
            .get(pos)
            .and_then(|s| s.outbound.get(track))
            .is_some_and(|o| o.kind == MediaKind::Audio)
    };
    let expected = members
        .iter()
        .map(|m| {
            if !m.subscribe {
                return Vec::new();
            }
            let mut want = Vec::new();
            let mut mix = false;
            for (pos, other) in members.iter().enumerate() {
                if other.index == m.index {
                    continue;
                }
                for track in &other.tracks {
                    if mixed_audio && is_audio(pos, track) {
                        mix = true;
                    } else {
                        want.push(track.clone());
                    }
                }
            }
            if mix {
                want.insert(0, MIX.to_owned());
            }
            want
        })
        .collect();
    (expected, owner)
}

/// Packets of one (receiver, track) pair between two snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct PairCount {
    /// What should have arrived: the publisher's sent packets, or for the mix the span
    /// of its sequence numbers.
    pub sent: u64,
    pub got: u64,
    pub video: bool,
}

/// `owner`: the publisher's (before, after) stats; `None` for the mix.
pub(crate) fn pair_count(
    track: &str,
    owner: Option<(&ClientStats, &ClientStats)>,
    (r0, r1): (&ClientStats, &ClientStats),
) -> PairCount {
    let inbound = |s: &ClientStats| {
        s.inbound
            .get(track)
            .map_or((0, 0), |i| (i.packets, i.expected_packets()))
    };
    let ((got0, span0), (got1, span1)) = (inbound(r0), inbound(r1));
    let got = got1.saturating_sub(got0);
    match owner {
        None => PairCount {
            sent: span1.saturating_sub(span0),
            got,
            video: false,
        },
        Some((o0, o1)) => {
            let sent = |s: &ClientStats| s.outbound.get(track).map_or(0, |o| o.packets);
            PairCount {
                sent: sent(o1).saturating_sub(sent(o0)),
                got,
                video: o1
                    .outbound
                    .get(track)
                    .is_some_and(|o| o.kind == MediaKind::Video),
            }
        }
    }
}

/// `1 - got / sent`, 0 when nothing was expected.
pub(crate) fn loss(sent: u64, got: u64) -> f64 {
    if sent == 0 {
        0.0
    } else {
        1.0 - got as f64 / sent as f64
    }
}

/// Every receiver's video latency recorded between the two snapshots, merged.
pub(crate) fn window_latency(s0: &[ClientStats], s1: &[ClientStats]) -> LatencyHistogram {
    interval_latency(&s0.iter().collect::<Vec<_>>(), s1)
}

fn interval_latency(s0: &[&ClientStats], s1: &[ClientStats]) -> LatencyHistogram {
    let mut merged = LatencyHistogram::default();
    let empty = LatencyHistogram::default();
    for (before, after) in s0.iter().zip(s1) {
        for (track, now) in &after.inbound {
            let then = before.inbound.get(track).map_or(&empty, |i| &i.latency);
            merged.merge(&now.latency.since(then));
        }
    }
    merged
}

/// p50 / p99 / max of a histogram (each the top of its ~3 % bucket).
pub(crate) fn percentiles(histogram: &LatencyHistogram) -> Percentiles {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    Percentiles {
        count: histogram.count() as usize,
        p50_ms: ms(histogram.quantile(0.5)),
        p99_ms: ms(histogram.quantile(0.99)),
        max_ms: ms(histogram.max()),
    }
}

/// (frames decoded, of them loud, packets refused) by all receivers between the two
/// snapshots; zeros without `--decode-audio`.
pub(crate) fn decoded_audio(s0: &[ClientStats], s1: &[ClientStats]) -> (u64, u64, u64) {
    let mut totals = (0, 0, 0);
    for (before, after) in s0.iter().zip(s1) {
        for (track, now) in &after.inbound {
            let Some(now) = &now.decoded else { continue };
            let then = before.inbound.get(track).and_then(|i| i.decoded.as_ref());
            let (frames, loud, errors) =
                then.map_or((0, 0, 0), |t| (t.frames, t.loud_frames, t.errors));
            totals.0 += now.frames.saturating_sub(frames);
            totals.1 += now.loud_frames.saturating_sub(loud);
            totals.2 += now.errors.saturating_sub(errors);
        }
    }
    totals
}

/// One bucket of the latency histogram in the report.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyBucket {
    pub low_ms: f64,
    pub high_ms: f64,
    pub count: u64,
}

pub(crate) fn buckets(histogram: &LatencyHistogram) -> Vec<LatencyBucket> {
    histogram
        .buckets()
        .map(|(low, high, count)| LatencyBucket {
            low_ms: low.as_secs_f64() * 1e3,
            high_ms: high.as_secs_f64() * 1e3,
            count,
        })
        .collect()
}

/// One second of the run.
#[derive(Debug, Clone, Serialize)]
pub struct TimelinePoint {
    /// Since the run started.
    pub t_secs: f64,
    pub phase: String,
    /// Participants joined so far.
    pub joined: usize,
    /// RTP packets all receivers got, per second.
    pub egress_packets_per_sec: f64,
    /// Server CPU in % of one core.
    pub server_cpu_percent: f64,
    /// Loss over the pairs already flowing at the previous sample (a pair still starting
    /// up would count its start as loss); `None` when no pair was.
    pub loss_percent: Option<f64>,
    /// p99 of the video latency since the previous sample; `None` without video.
    pub video_latency_p99_ms: Option<f64>,
}

/// Samples everyone's counters about once a second, whichever phase runs.
pub(crate) struct Timeline {
    pub started: Instant,
    pid: u32,
    mixed_audio: bool,
    last: Option<Sample>,
    pub points: Vec<TimelinePoint>,
}

struct Sample {
    at: Instant,
    cpu: Option<u64>,
    /// By participant index, which stays put while `members` grows or is sorted.
    stats: HashMap<usize, ClientStats>,
}

/// Shortest time between two samples.
const PERIOD: Duration = Duration::from_secs(1);

impl Timeline {
    pub(crate) fn new(started: Instant, pid: u32, mixed_audio: bool) -> Self {
        Self {
            started,
            pid,
            mixed_audio,
            last: None,
            points: Vec::new(),
        }
    }

    /// Takes a sample if a period has passed since the last one.
    pub(crate) fn tick(&mut self, members: &[Member], phase: &str) {
        let now = Instant::now();
        if self.last.as_ref().is_some_and(|l| now < l.at + PERIOD) {
            return;
        }
        let current = Snapshot::take(members).stats;
        let cpu = cpu_micros(self.pid).ok();
        if let Some(last) = &self.last {
            let secs = (now - last.at).as_secs_f64().max(1e-6);
            let egress: u64 = members
                .iter()
                .zip(&current)
                .map(|(m, s)| {
                    let before = last.stats.get(&m.index);
                    s.inbound
                        .iter()
                        .map(|(track, i)| {
                            let then = before
                                .and_then(|b| b.inbound.get(track))
                                .map_or(0, |t| t.packets);
                            i.packets.saturating_sub(then)
                        })
                        .sum::<u64>()
                })
                .sum();
            let (sent, got) = self.interval_counts(members, &current, &last.stats);
            let empty = ClientStats::default();
            let before: Vec<&ClientStats> = members
                .iter()
                .map(|m| last.stats.get(&m.index).unwrap_or(&empty))
                .collect();
            let latency = interval_latency(&before, &current);
            self.points.push(TimelinePoint {
                t_secs: (now - self.started).as_secs_f64(),
                phase: phase.to_owned(),
                joined: members.len(),
                egress_packets_per_sec: egress as f64 / secs,
                server_cpu_percent: match (cpu, last.cpu) {
                    (Some(now), Some(then)) => now.saturating_sub(then) as f64 / secs / 1e4,
                    _ => 0.0,
                },
                loss_percent: (sent > 0).then(|| loss(sent, got) * 100.0),
                video_latency_p99_ms: (latency.count() > 0)
                    .then(|| latency.quantile(0.99).as_secs_f64() * 1e3),
            });
        }
        let stats = members.iter().map(|m| m.index).zip(current).collect();
        self.last = Some(Sample {
            at: now,
            cpu,
            stats,
        });
    }

    /// (sent, got) over the pairs that had packets at the previous sample.
    fn interval_counts(
        &self,
        members: &[Member],
        current: &[ClientStats],
        before: &HashMap<usize, ClientStats>,
    ) -> (u64, u64) {
        let (expected, owner) = expectations(members, current, self.mixed_audio);
        let (mut sent, mut got) = (0, 0);
        for (pos, want) in expected.iter().enumerate() {
            let Some(r0) = before.get(&members[pos].index) else {
                continue;
            };
            for track in want {
                let flowing = r0.inbound.get(track).is_some_and(|i| i.packets > 0);
                if !flowing {
                    continue;
                }
                let owner = match owner.get(track) {
                    Some(&o) => match before.get(&members[o].index) {
                        Some(o0) => Some((o0, &current[o])),
                        None => continue,
                    },
                    None => None,
                };
                let count = pair_count(track, owner, (r0, &current[pos]));
                sent += count.sent;
                got += count.got;
            }
        }
        (sent, got)
    }
}
