//! The bandwidth estimator against a simulated link, on simulated time: a sender paced
//! at the estimate, a bottleneck with a drop-tail queue, propagation delay, seeded
//! jitter and random loss, a receiver that sends transport feedback every 50 ms.
//!
//! `cargo test -p chorus-core --test bwe_link -- --nocapture` prints the figures.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use chorus_core::bwe::{
    BandwidthEstimator, Bitrate, BweConfig, PacketResult, ProbeId, TransportSeq, Usage,
};

const PACKET: usize = 1200;
const TICK: Duration = Duration::from_millis(1);
const PROPAGATION: Duration = Duration::from_millis(40);
const FEEDBACK_INTERVAL: Duration = Duration::from_millis(50);
/// The bottleneck's buffer: 100 ms at 2.5 Mbit/s, 800 ms at 300 kbit/s.
const QUEUE_BYTES: f64 = 31_250.0;
/// Each packet's delay varies by up to this much more (order is kept).
const JITTER_US: u64 = 5_000;

/// splitmix64: small, seeded, good enough for loss decisions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A span of the run with one link condition.
#[derive(Debug, Clone, Copy)]
struct Phase {
    secs: u64,
    capacity_bps: f64,
    loss: f64,
}

/// The bottleneck: one queue drained at the capacity, then the propagation delay.
struct Link {
    busy_until: Instant,
    /// (delivered at, sequence number), in order.
    in_flight: VecDeque<(Instant, TransportSeq)>,
    rng: Rng,
}

impl Link {
    fn send(&mut self, seq: TransportSeq, size: usize, now: Instant, phase: Phase) {
        if self.rng.chance(phase.loss) {
            return;
        }
        let backlog =
            self.busy_until.saturating_duration_since(now).as_secs_f64() * phase.capacity_bps / 8.0;
        if backlog + size as f64 > QUEUE_BYTES {
            return; // drop-tail
        }
        let serialize = Duration::from_secs_f64(size as f64 * 8.0 / phase.capacity_bps);
        self.busy_until = self.busy_until.max(now) + serialize;
        let jitter = Duration::from_micros(self.rng.below(JITTER_US));
        let last = self.in_flight.back().map(|(at, _)| *at);
        let at = (self.busy_until + PROPAGATION + jitter).max(last.unwrap_or(now));
        self.in_flight.push_back((at, seq));
    }
}

/// The subscriber: notes arrivals, reports every number up to the highest received.
struct Receiver {
    t0: Instant,
    next: u16,
    arrivals: Vec<(TransportSeq, Duration)>,
    last_feedback: Instant,
}

impl Receiver {
    fn feedback(&mut self) -> Vec<PacketResult> {
        let Some(&(highest, _)) = self.arrivals.last() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut arrivals = self.arrivals.drain(..).peekable();
        let mut seq = self.next;
        loop {
            let arrival = match arrivals.peek() {
                Some(&(s, at)) if s.0 == seq => {
                    arrivals.next();
                    Some(at)
                }
                _ => None,
            };
            out.push(PacketResult {
                seq: TransportSeq(seq),
                arrival,
            });
            if seq == highest.0 {
                break;
            }
            seq = seq.wrapping_add(1);
        }
        self.next = highest.0.wrapping_add(1);
        out
    }
}

/// The estimate every 100 ms: (seconds since start, bits per second), and the mean
/// round trip the estimator measured (queueing included).
fn run_with_rtt(phases: &[Phase], seed: u64) -> (Vec<(f64, u64)>, Duration) {
    let t0 = Instant::now();
    let mut bwe = BandwidthEstimator::new(BweConfig::default(), t0);
    let mut link = Link {
        busy_until: t0,
        in_flight: VecDeque::new(),
        rng: Rng(seed),
    };
    let mut receiver = Receiver {
        t0,
        next: 0,
        arrivals: Vec::new(),
        last_feedback: t0,
    };
    // Feedback on its way back: (arrives at the sender, results).
    let mut returning: VecDeque<(Instant, Vec<PacketResult>)> = VecDeque::new();
    let mut budget_bits = 0.0;
    let mut trace = Vec::new();
    let mut rtts = Vec::new();
    let mut now = t0;
    for phase in phases {
        let end = now + Duration::from_secs(phase.secs);
        while now < end {
            now += TICK;
            // Paced at the estimate, one packet's burst at most.
            budget_bits = (budget_bits + bwe.estimate().bps() as f64 * TICK.as_secs_f64())
                .min(2.0 * PACKET as f64 * 8.0);
            while budget_bits >= PACKET as f64 * 8.0 {
                budget_bits -= PACKET as f64 * 8.0;
                let seq = bwe.on_sent(PACKET, now);
                link.send(seq, PACKET, now, *phase);
            }
            while link.in_flight.front().is_some_and(|(at, _)| *at <= now) {
                let (at, seq) = link.in_flight.pop_front().expect("peeked");
                receiver.arrivals.push((seq, at - receiver.t0));
            }
            if now - receiver.last_feedback >= FEEDBACK_INTERVAL {
                receiver.last_feedback = now;
                let results = receiver.feedback();
                if !results.is_empty() {
                    returning.push_back((now + PROPAGATION, results));
                }
            }
            while returning.front().is_some_and(|(at, _)| *at <= now) {
                let (_, results) = returning.pop_front().expect("peeked");
                bwe.on_feedback(&results, now);
            }
            let ms = (now - t0).as_millis();
            if ms.is_multiple_of(100) {
                trace.push((ms as f64 / 1000.0, bwe.estimate().bps()));
                rtts.push(bwe.stats().rtt);
            }
        }
    }
    let rtt = rtts.iter().sum::<Duration>() / rtts.len().max(1) as u32;
    (trace, rtt)
}

fn run(phases: &[Phase], seed: u64) -> Vec<(f64, u64)> {
    run_with_rtt(phases, seed).0
}

fn phase(secs: u64, kbps: u64, loss: f64) -> Phase {
    Phase {
        secs,
        capacity_bps: kbps as f64 * 1000.0,
        loss,
    }
}

/// The mean estimate from `from` to `to` seconds.
fn mean(trace: &[(f64, u64)], from: f64, to: f64) -> f64 {
    let window: Vec<_> = trace
        .iter()
        .filter(|(t, _)| (from..to).contains(t))
        .map(|&(_, bps)| bps as f64)
        .collect();
    window.iter().sum::<f64>() / window.len() as f64
}

/// Seconds after `after` until `pred` holds for the estimate (and still does 1 s later).
fn time_until(trace: &[(f64, u64)], after: f64, pred: impl Fn(u64) -> bool) -> Option<f64> {
    trace
        .iter()
        .position(|&(t, bps)| {
            t > after
                && pred(bps)
                && trace
                    .iter()
                    .filter(|(u, _)| *u > t && *u <= t + 1.0)
                    .all(|&(_, b)| pred(b))
        })
        .map(|i| trace[i].0 - after)
}

#[test]
fn converges_near_the_capacity() {
    for seed in [1, 2, 3] {
        let (trace, rtt) = run_with_rtt(&[phase(30, 2_500, 0.0)], seed);
        let steady = mean(&trace, 15.0, 30.0);
        eprintln!(
            "seed {seed}: mean estimate 15-30 s at a 2.5 Mbit/s cap: {steady:.0} bit/s, \
             mean round trip {rtt:?}"
        );
        assert!(
            (1_750_000.0..=2_800_000.0).contains(&steady),
            "seed {seed}: {steady}"
        );
        // The delay side keeps the bottleneck's queue short: 80 ms of propagation and
        // up to 50 ms waiting for feedback, where a full queue would add 100 ms.
        assert!(rtt < Duration::from_millis(130), "seed {seed}: {rtt:?}");
    }
}

#[test]
fn follows_the_cap_down_and_back_up() {
    for seed in [1, 2, 3] {
        let trace = run(
            &[
                phase(20, 2_500, 0.0),
                phase(20, 300, 0.0),
                phase(20, 2_500, 0.0),
            ],
            seed,
        );
        let fall = time_until(&trace, 20.0, |bps| bps <= 300_000);
        let low = mean(&trace, 30.0, 40.0);
        let climb = time_until(&trace, 40.0, |bps| bps >= 2_000_000);
        eprintln!(
            "seed {seed}: 2.5 Mbit/s -> 300 kbit/s: below 300 kbit/s after {fall:?} s, \
             mean {low:.0} bit/s; lifted: above 2 Mbit/s after {climb:?} s"
        );
        assert!(fall.is_some_and(|s| s <= 2.0), "seed {seed}: fall {fall:?}");
        assert!(
            (150_000.0..=330_000.0).contains(&low),
            "seed {seed}: at 300 kbit/s the estimate averages {low}"
        );
        assert!(
            climb.is_some_and(|s| s <= 10.0),
            "seed {seed}: climb {climb:?}"
        );
    }
}

#[test]
fn random_loss_within_the_band_holds_and_above_it_lowers() {
    // (random loss, mean estimate 20-40 s as a share of the 2.5 Mbit/s cap: range)
    let cases = [(0.0, 0.7, 1.15), (0.05, 0.5, 1.15), (0.20, 0.0, 0.25)];
    for (loss, low, high) in cases {
        let trace = run(&[phase(40, 2_500, loss)], 7);
        let share = mean(&trace, 20.0, 40.0) / 2_500_000.0;
        eprintln!(
            "{:.0} % random loss: mean estimate {share:.2} of the cap",
            loss * 100.0
        );
        assert!(
            (low..=high).contains(&share),
            "{loss} loss: {share} of the cap not in {low}..{high}"
        );
    }
}

#[test]
fn the_estimate_stays_within_its_bounds() {
    let config = BweConfig::default();
    for (kbps, loss) in [(50, 0.0), (100_000, 0.0), (2_500, 0.5)] {
        let trace = run(&[phase(20, kbps, loss)], 3);
        for &(t, bps) in &trace {
            assert!(
                Bitrate(bps) >= config.min && Bitrate(bps) <= config.max,
                "{kbps} kbit/s, {loss} loss, at {t} s: {bps}"
            );
        }
    }
}

/// A sender with less to send than the link takes: media at `media_kbps` whatever the
/// estimate, while it would take `wanted_kbps`; with `probing`, one probe cluster a
/// second (as the room sends: 300-byte padding at up to 2 × the estimate over 20 ms)
/// while the estimate is below that and the queue is not growing. The estimate every
/// 100 ms.
fn run_limited(capacity_kbps: u64, media_kbps: u64, wanted_kbps: u64, probing: bool) -> Vec<u64> {
    const PADDING: usize = 300;
    let t0 = Instant::now();
    let phase = phase(10, capacity_kbps, 0.0);
    let mut bwe = BandwidthEstimator::new(BweConfig::default(), t0);
    let mut link = Link {
        busy_until: t0,
        in_flight: VecDeque::new(),
        rng: Rng(5),
    };
    let mut receiver = Receiver {
        t0,
        next: 0,
        arrivals: Vec::new(),
        last_feedback: t0,
    };
    let mut returning: VecDeque<(Instant, Vec<PacketResult>)> = VecDeque::new();
    let mut media_bits = 0.0;
    // (cluster, packets left, spacing, next due)
    let mut cluster: Option<(ProbeId, u64, Duration, Instant)> = None;
    let mut last_probe: Option<Instant> = None;
    let mut trace = Vec::new();
    let mut now = t0;
    while now < t0 + Duration::from_secs(phase.secs) {
        now += TICK;
        media_bits += media_kbps as f64 * 1000.0 * TICK.as_secs_f64();
        while media_bits >= PACKET as f64 * 8.0 {
            media_bits -= PACKET as f64 * 8.0;
            let seq = bwe.on_sent(PACKET, now);
            link.send(seq, PACKET, now, phase);
        }
        let estimate = bwe.estimate().bps();
        let due = last_probe.is_none_or(|t| now - t >= Duration::from_secs(1));
        if probing
            && due
            && cluster.is_none()
            && estimate < wanted_kbps * 1000
            && bwe.stats().usage != Usage::Over
            && now - t0 >= Duration::from_secs(1)
        {
            let target = (wanted_kbps * 1000).min(2 * estimate);
            let packets = (target / 8 / 50 / PADDING as u64).clamp(5, 40);
            let spacing = Duration::from_micros(PADDING as u64 * 8 * 1_000_000 / target);
            cluster = Some((bwe.start_probe(now), packets, spacing, now));
            last_probe = Some(now);
        }
        if let Some((id, left, spacing, next)) = cluster.as_mut() {
            while *left > 0 && *next <= now {
                let seq = bwe.on_probe_sent(*id, PADDING, now);
                link.send(seq, PADDING, now, phase);
                *left -= 1;
                *next += *spacing;
            }
            if *left == 0 {
                bwe.end_probe(*id);
                cluster = None;
            }
        }
        while link.in_flight.front().is_some_and(|(at, _)| *at <= now) {
            let (at, seq) = link.in_flight.pop_front().expect("peeked");
            receiver.arrivals.push((seq, at - receiver.t0));
        }
        if now - receiver.last_feedback >= FEEDBACK_INTERVAL {
            receiver.last_feedback = now;
            let results = receiver.feedback();
            if !results.is_empty() {
                returning.push_back((now + PROPAGATION, results));
            }
        }
        while returning.front().is_some_and(|(at, _)| *at <= now) {
            let (_, results) = returning.pop_front().expect("peeked");
            bwe.on_feedback(&results, now);
        }
        if (now - t0).as_millis().is_multiple_of(100) {
            trace.push(bwe.estimate().bps());
        }
    }
    trace
}

#[test]
fn probes_find_room_a_limited_sender_cannot_show_but_not_past_the_cap() {
    // 300 kbit/s of media, 1.5 Mbit/s wanted.
    // Uncapped (20 Mbit/s): without probes the estimate stays near 1.5 × the media;
    // with them it reaches 2 × what gets through (media and probes), the most a probe
    // may show (a sender that then sends more climbs from there).
    let plain = run_limited(20_000, 300, 1_500, false);
    let probed = run_limited(20_000, 300, 1_500, true);
    // Capped at 600 kbit/s: probes find the cap, not more.
    let capped = run_limited(600, 300, 1_500, true);
    let stats = |t: &[u64]| (t[29], t[49], t[20..].iter().copied().max().unwrap_or(0));
    eprintln!("uncapped, no probes: (3 s, 5 s, max) {:?}", stats(&plain));
    eprintln!("uncapped, probes:    {:?}", stats(&probed));
    eprintln!("600 kbit/s, probes:  {:?}", stats(&capped));
    assert!(stats(&plain).2 < 600_000, "{:?}", stats(&plain));
    assert!(probed[29] >= 700_000, "{:?}", stats(&probed));
    assert!(probed[49] >= 700_000, "{:?}", stats(&probed));
    // Never far past the cap (up to 5 ms of jitter on a cluster's 40 ms of arrivals
    // moves a result by 15 %), and on average at or below it; above the 460 kbit/s the
    // media alone earns (5 % for the jitter).
    let settled = capped[30..].iter().sum::<u64>() / capped[30..].len() as u64;
    eprintln!("600 kbit/s, probes: mean from 3 s {settled}");
    assert!(stats(&capped).2 <= 690_000, "{capped:?}");
    assert!((500_000..=630_000).contains(&settled), "{capped:?}");
}
