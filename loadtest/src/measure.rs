//! Who should receive what, and the figures that two snapshots of everyone's counters
//! give: per-pair packets sent and received, the latency histogram of the window, and a
//! once-a-second timeline of the whole run.
//!
//! Loss is counted by the receiver's sequence numbers, which the SFU keeps continuous
//! per receiver and track (it offsets the publisher's numbers; a gap is a packet lost
//! on the way in or out). With Chorus every receiver gets **one** audio track, the room
//! mix ([`MIX`]): the other side's packets relayed in a 1:1 call and the server's own
//! Opus mix with three or more, so no publisher's counter says what was sent on it;
//! its numbers do. A range of numbers (above the highest at one read, up to the
//! highest at a later one) is what was sent; the distinct numbers of it in the
//! receiver's set ([`chorus_client::SeqSet`]) are what arrived, so received never
//! exceeds expected, whatever was duplicated or retransmitted. The timeline gives each
//! second the numbers its sample first saw and counts their arrivals at the end.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chorus_client::latency::LatencyHistogram;
use chorus_client::{ClientStats, InboundTrackStats, MediaKind};
use serde::Serialize;

use crate::Percentiles;
use crate::member::{Member, Snapshot};
use crate::probe::cpu_micros;

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
    /// What should have arrived: the sequence numbers the receiver saw numbered in the
    /// window, or, when it saw none, what the track's publisher sent.
    pub sent: u64,
    /// Of them, the distinct sequence numbers that arrived (never more than `sent`).
    pub got: u64,
    pub video: bool,
    /// `sent` is what the publisher sent: the receiver saw no new number.
    pub from_publisher: bool,
}

/// The sequence numbers of one inbound track above `after` (`None`: from the lowest
/// received) up to `through`, and how many of them arrived, each once:
/// `(numbered, received)`, so never more received than numbered.
pub(crate) fn numbered(
    inbound: &InboundTrackStats,
    after: Option<u64>,
    through: u64,
) -> (u64, u64) {
    let Some((low, _)) = inbound.seq_range else {
        return (0, 0);
    };
    let after = after.unwrap_or(low.saturating_sub(1));
    (
        through.saturating_sub(after),
        inbound.received.count_between(after, through),
    )
}

/// Highest extended sequence number of `track` received by `stats`.
fn highest(stats: &ClientStats, track: &str) -> Option<u64> {
    stats
        .inbound
        .get(track)
        .and_then(|i| i.seq_range)
        .map(|(_, high)| high)
}

/// `owner`: the publisher's (before, after) stats; `None` for the mix. Counted by the
/// receiver's sequence numbers: the numbers above the highest at `r0` up to the highest
/// at `r1` were sent; those of them in `r1`'s set arrived. A track with a publisher of
/// which the receiver saw no new number counts what the publisher sent as lost.
pub(crate) fn pair_count(
    track: &str,
    owner: Option<(&ClientStats, &ClientStats)>,
    (r0, r1): (&ClientStats, &ClientStats),
) -> PairCount {
    let (numbered, got) = match (r1.inbound.get(track), highest(r1, track)) {
        (Some(i), Some(high)) => numbered(i, highest(r0, track), high),
        _ => (0, 0),
    };
    match owner {
        None => PairCount {
            sent: numbered,
            got,
            video: false,
            from_publisher: false,
        },
        Some((o0, o1)) => {
            // A simulcast camera's receiver gets one layer: by default the highest.
            let sent = |s: &ClientStats| {
                s.outbound.get(track).map_or(0, |o| {
                    o.layers.last().map_or(o.packets, |layer| layer.packets)
                })
            };
            let video = o1
                .outbound
                .get(track)
                .is_some_and(|o| o.kind == MediaKind::Video);
            if numbered > 0 {
                PairCount {
                    sent: numbered,
                    got,
                    video,
                    from_publisher: false,
                }
            } else {
                PairCount {
                    sent: sent(o1).saturating_sub(sent(o0)),
                    got: 0,
                    video,
                    from_publisher: true,
                }
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
    /// Of the sequence numbers the receivers saw numbered in this second (above each
    /// track's highest at the previous sample, up to its highest at this one), the share
    /// that never arrived by the end of the window, in %; `None` when none were.
    /// Filled in by [`Timeline::finish`].
    pub loss_percent: Option<f64>,
    /// p99 of the video latency since the previous sample; `None` without video.
    pub video_latency_p99_ms: Option<f64>,
}

/// Samples everyone's counters about once a second, whichever phase runs.
pub(crate) struct Timeline {
    pub started: Instant,
    pid: u32,
    last: Option<Sample>,
    /// Samples taken; sample `k > 0` made point `k - 1`.
    samples: usize,
    /// Per (participant index, inbound track): (sample, highest extended sequence
    /// number) whenever it grew.
    highs: HashMap<(usize, String), Vec<(usize, u64)>>,
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
    pub(crate) fn new(started: Instant, pid: u32) -> Self {
        Self {
            started,
            pid,
            last: None,
            samples: 0,
            highs: HashMap::new(),
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
        let indices: Vec<usize> = members.iter().map(|m| m.index).collect();
        self.sample(now, &indices, current, cpu, phase);
    }

    /// Records `current` (aligned with `indices`, the participants' indices) taken at
    /// `now`, and a point for the time since the previous sample.
    fn sample(
        &mut self,
        now: Instant,
        indices: &[usize],
        current: Vec<ClientStats>,
        cpu: Option<u64>,
        phase: &str,
    ) {
        for (&index, stats) in indices.iter().zip(&current) {
            for (track, inbound) in &stats.inbound {
                let Some((_, high)) = inbound.seq_range else {
                    continue;
                };
                let seen = self.highs.entry((index, track.clone())).or_default();
                if seen.last().is_none_or(|&(_, h)| h < high) {
                    seen.push((self.samples, high));
                }
            }
        }
        if let Some(last) = &self.last {
            let secs = (now - last.at).as_secs_f64().max(1e-6);
            let egress: u64 = indices
                .iter()
                .zip(&current)
                .map(|(index, s)| {
                    let before = last.stats.get(index);
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
            let empty = ClientStats::default();
            let before: Vec<&ClientStats> = indices
                .iter()
                .map(|index| last.stats.get(index).unwrap_or(&empty))
                .collect();
            let latency = interval_latency(&before, &current);
            self.points.push(TimelinePoint {
                t_secs: (now - self.started).as_secs_f64(),
                phase: phase.to_owned(),
                joined: indices.len(),
                egress_packets_per_sec: egress as f64 / secs,
                server_cpu_percent: match (cpu, last.cpu) {
                    (Some(now), Some(then)) => now.saturating_sub(then) as f64 / secs / 1e4,
                    _ => 0.0,
                },
                loss_percent: None,
                video_latency_p99_ms: (latency.count() > 0)
                    .then(|| latency.quantile(0.99).as_secs_f64() * 1e3),
            });
        }
        let stats = indices.iter().copied().zip(current).collect();
        self.last = Some(Sample {
            at: now,
            cpu,
            stats,
        });
        self.samples += 1;
    }

    /// Fills in every point's loss from the last counters (`stats`, aligned with
    /// `indices`): each sequence number a receiver saw numbered belongs to the point
    /// of the sample at which its track's highest number first reached it, and counts
    /// as received if it arrived by then or later, once however often it arrived.
    pub(crate) fn finish(&mut self, indices: &[usize], stats: &[ClientStats]) {
        let mut counts = vec![(0u64, 0u64); self.points.len()];
        for (&index, s) in indices.iter().zip(stats) {
            for (track, inbound) in &s.inbound {
                let Some(seen) = self.highs.get(&(index, track.clone())) else {
                    continue;
                };
                let mut after = None;
                for &(sample, high) in seen {
                    let (sent, got) = numbered(inbound, after, high);
                    after = Some(high);
                    // Sample 0 has no point: its numbers only set where the next start.
                    if let Some(point) = sample.checked_sub(1).and_then(|p| counts.get_mut(p)) {
                        point.0 += sent;
                        point.1 += got;
                    }
                }
            }
        }
        for (point, (sent, got)) in self.points.iter_mut().zip(counts) {
            point.loss_percent = (sent > 0).then(|| loss(sent, got) * 100.0);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use chorus_client::{OutboundTrackStats, SeqSet};

    use super::*;

    /// An inbound track as the client counts it after `arrivals` (extended sequence
    /// numbers, duplicates and reordering included).
    fn inbound(kind: MediaKind, arrivals: &[u64]) -> InboundTrackStats {
        let mut track = InboundTrackStats::new(kind, 1);
        for &seq in arrivals {
            track.packets += 1;
            track.seq_range = Some(
                track
                    .seq_range
                    .map_or((seq, seq), |(low, high)| (low.min(seq), high.max(seq))),
            );
            track.received.insert(seq);
        }
        track
    }

    pub(crate) fn receiver(track: &str, kind: MediaKind, arrivals: &[u64]) -> ClientStats {
        let mut stats = ClientStats::default();
        stats
            .inbound
            .insert(track.to_owned(), inbound(kind, arrivals));
        stats
    }

    pub(crate) fn publisher(track: &str, sent: u64) -> ClientStats {
        let mut stats = ClientStats::default();
        let out = OutboundTrackStats {
            kind: MediaKind::Video,
            ssrc: 2,
            packets: sent,
            bytes: 0,
            frames: 0,
            keyframes: 0,
            plis_received: 0,
            firs_received: 0,
            nacks_received: 0,
            layers: Vec::new(),
        };
        stats.outbound.insert(track.to_owned(), out);
        stats
    }

    #[test]
    fn seq_set_counts_each_number_once() {
        let mut set = SeqSet::default();
        assert_eq!(set.count_between(0, u64::MAX), 0);
        for seq in [70_000, 70_001, 70_130, 69_990] {
            assert!(set.insert(seq), "{seq}");
        }
        // A duplicate, and one reordered far below the first word.
        assert!(!set.insert(70_001));
        assert!(set.insert(69_800));
        assert_eq!(set.len(), 5);
        assert!(set.contains(69_800) && set.contains(70_130) && !set.contains(70_002));
        assert_eq!(set.count_between(0, u64::MAX), 5);
        assert_eq!(set.count_between(69_999, 70_001), 2);
        assert_eq!(set.count_between(70_000, 70_129), 1);
        assert_eq!(set.count_between(70_000, 70_130), 2);
        assert_eq!(set.count_between(70_130, 80_000), 0);
        assert_eq!(set.count_between(69_800, 69_800), 0);
    }

    /// Numbers 1..=100 of the mix, 50 per second. In second 1 arrive 1..=45 but 30
    /// (lost) and 40; in second 2 arrive 40 (reordered), 46..=50 (sent in second 1),
    /// a duplicate of 10, and 51..=100 but 77 (lost). By arrivals second 2 got 56
    /// packets for 50 sent, so counting arrivals against the sender's count gave loss
    /// of -12 %; by sequence numbers each second stays in 0..100 % and the lost numbers
    /// of the seconds add up to the two really lost.
    #[test]
    fn per_second_loss_follows_sequence_numbers() {
        let first: Vec<u64> = (1..=45).filter(|s| ![30, 40].contains(s)).collect();
        let mut all = first.clone();
        all.extend([40, 46, 47, 48, 49, 50, 10]);
        all.extend((51..=100).filter(|&s| s != 77));
        let t0 = Instant::now();
        let mut timeline = Timeline::new(t0, 0);
        let at = |s: u64| t0 + Duration::from_secs(s);
        let stats = |arrivals: &[u64]| vec![receiver(MIX, MediaKind::Audio, arrivals)];
        timeline.sample(at(0), &[7], stats(&[]), None, "measuring");
        timeline.sample(at(1), &[7], stats(&first), None, "measuring");
        timeline.sample(at(2), &[7], stats(&all), None, "measuring");
        timeline.finish(&[7], &stats(&all));

        let points = &timeline.points;
        assert_eq!(points.len(), 2);
        // Arrivals: 43 in second 1, 56 (of which a duplicate) in second 2.
        assert_eq!(points[0].egress_packets_per_sec, 43.0);
        assert_eq!(points[1].egress_packets_per_sec, 56.0);
        // Second 1: numbers 1..=45, 30 lost (40 came late but came).
        let first_loss = points[0].loss_percent.unwrap();
        assert!((first_loss - 100.0 / 45.0).abs() < 1e-9, "{first_loss}");
        // Second 2: numbers 46..=100, 77 lost; the duplicate counts once.
        let second_loss = points[1].loss_percent.unwrap();
        assert!((second_loss - 100.0 / 55.0).abs() < 1e-9, "{second_loss}");
        for p in points {
            assert!((0.0..=100.0).contains(&p.loss_percent.unwrap()));
        }
        let lost = first_loss / 100.0 * 45.0 + second_loss / 100.0 * 55.0;
        assert!((lost - 2.0).abs() < 1e-9, "{lost}");
    }

    #[test]
    fn window_loss_counts_distinct_numbers_never_more_than_expected() {
        let mut all: Vec<u64> = (1..=100).filter(|&s| s != 77).collect();
        // Retransmissions of three numbers that had arrived.
        all.extend([5, 6, 7]);
        let (r0, r1) = (
            receiver(MIX, MediaKind::Audio, &[]),
            receiver(MIX, MediaKind::Audio, &all),
        );
        assert_eq!(r1.inbound[MIX].packets, 102);
        let count = pair_count(MIX, None, (&r0, &r1));
        assert_eq!((count.sent, count.got), (100, 99));
        assert!((loss(count.sent, count.got) - 0.01).abs() < 1e-12);

        // From a snapshot at 45 on: 46..=100, one reordered number below it (40) that
        // arrives within the window belongs to before it.
        let before: Vec<u64> = (1..=45).filter(|&s| s != 40).collect();
        let mut after = before.clone();
        after.push(40);
        after.extend((46..=100).filter(|&s| s != 77));
        after.push(60);
        let count = pair_count(
            MIX,
            None,
            (
                &receiver(MIX, MediaKind::Audio, &before),
                &receiver(MIX, MediaKind::Audio, &after),
            ),
        );
        assert_eq!((count.sent, count.got), (55, 54));

        // A published video track: by its numbers while they grow, what the publisher
        // sent when none arrived in the window.
        let cam = "cam";
        let (o0, o1) = (publisher(cam, 1000), publisher(cam, 1120));
        let flowing = (
            receiver(cam, MediaKind::Video, &[1, 2, 3]),
            receiver(cam, MediaKind::Video, &[1, 2, 3, 4, 5, 5, 7]),
        );
        let count = pair_count(cam, Some((&o0, &o1)), (&flowing.0, &flowing.1));
        assert_eq!((count.sent, count.got, count.video), (4, 3, true));
        let stalled = receiver(cam, MediaKind::Video, &[1, 2, 3]);
        let count = pair_count(cam, Some((&o0, &o1)), (&stalled, &stalled));
        assert_eq!((count.sent, count.got), (120, 0));
        let never = ClientStats::default();
        let count = pair_count(cam, Some((&o0, &o1)), (&never, &never));
        assert_eq!((count.sent, count.got), (120, 0));
    }
}
