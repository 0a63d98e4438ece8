//! The room's forwarding path, through the real room core: `chorus_room::sim` runs a
//! `RoomCore` with real `rtc` client connections connected to it in memory (ICE,
//! DTLS-SRTP), routed by a real `Demux`, on a simulated clock. Nothing of the room is
//! copied here.
//!
//! - `fanout`: one publisher and `FANOUT_SUBSCRIBERS` (default 100) subscribers joined
//!   and connected, the publisher's camera flowing to all of them. One measured step is
//!   one SRTP video datagram from the publisher's client (made beforehand, untimed)
//!   fed to the core as `Input::Datagram` (SRTP unprotect and the publisher
//!   connection's reception bookkeeping, the room's forwarding: rewrite per subscriber,
//!   SRTP protect) and every `Output` drained: one datagram per subscriber. Throughput
//!   is per egress packet.
//! - `rtcp`: a subscriber's receiver report + NACK + PLI in one compound packet (made
//!   beforehand) fed to the core: SRTCP unprotect, RTCP parsing, the room's
//!   keyframe-request dispatch (throttled to the publisher), and the retransmission
//!   the NACK asks for.
//!
//! The simulated clock stands still while measuring: no timer runs, so nothing but the
//! packet is measured, and no connection is judged silent however long it takes.

use std::time::{Duration, Instant};

use chorus_room::sim::{ClientId, Sim, ms};
use chorus_transport::Datagram;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::reception_report::ReceptionReport;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{NackPair, TransportLayerNack};

fn subscribers() -> usize {
    std::env::var("FANOUT_SUBSCRIBERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100)
}

/// A room with one publisher's camera and `n` subscribers, every one of them receiving
/// it (a keyframe arrived).
fn room(n: usize) -> (Sim, ClientId, String, Vec<ClientId>) {
    let started = Instant::now();
    // Every subscriber joins at once: no join-rate limit in the way.
    let mut sim = Sim::with_join_rate(1, u32::MAX);
    let publisher = sim.join("publisher");
    let video = sim.publish_video(publisher);
    let subs: Vec<ClientId> = (0..n).map(|i| sim.join(&format!("sub{i}"))).collect();
    let receiving = |sim: &Sim| {
        subs.iter()
            .all(|&s| sim.rtp(s, &video).iter().any(|p| p.keyframe))
    };
    while !receiving(&sim) {
        assert!(sim.elapsed() < ms(5000), "not every subscriber receives");
        sim.run_for(ms(100));
    }
    eprintln!(
        "{n} subscribers receiving after {:?} simulated, {:.1} s real",
        sim.elapsed(),
        started.elapsed().as_secs_f64()
    );
    (sim, publisher, video, subs)
}

/// Feeds `datagrams` (made untimed) to the core, its egress shards one after the other
/// or at once (`parallel`); returns the time it took and how many datagrams the room sent.
fn feed(sim: &mut Sim, datagrams: Vec<Datagram>, parallel: bool) -> (Duration, usize) {
    let started = Instant::now();
    let sent = datagrams
        .into_iter()
        .map(|dg| {
            if parallel {
                sim.feed_datagram_parallel(dg)
            } else {
                sim.feed_datagram(dg)
            }
        })
        .sum();
    (started.elapsed(), sent)
}

/// Below the per-connection ingress limit (`chorus_transport::ingress::MAX_PACKETS_PER_SECOND`).
const PACKETS_PER_SIMULATED_SECOND: u64 = 2_000;

fn fanout(c: &mut Criterion) {
    let n = subscribers();
    let (mut sim, publisher, video, _) = room(n);
    let mut g = c.benchmark_group(format!("fanout/1 packet to {n} subscribers"));
    g.throughput(Throughput::Elements(n as u64));
    for (name, parallel) in [
        ("RoomCore, datagram in to every transmit out", false),
        ("RoomCore, its egress shards at once on every core", true),
    ] {
        // The publisher's connection takes 2 500 packets a second (the ingress limit, on
        // the simulated clock): datagrams are made in chunks below that, the clock moved
        // a simulated second on (untimed) before a chunk that would pass it.
        let mut made = 0;
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut took = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let chunk = left.min(PACKETS_PER_SIMULATED_SECOND);
                    left -= chunk;
                    if made + chunk > PACKETS_PER_SIMULATED_SECOND {
                        sim.run_for(ms(1000));
                        made = 0;
                    }
                    made += chunk;
                    let datagrams = (0..chunk)
                        .map(|_| sim.video_datagram(publisher, &video))
                        .collect();
                    let (t, sent) = feed(&mut sim, datagrams, parallel);
                    // A bench that forwards nothing measures nothing.
                    assert_eq!(sent, n * chunk as usize, "one datagram per subscriber");
                    took += t;
                }
                took
            })
        });
    }
    g.finish();
}

fn rtcp_compound(c: &mut Criterion) {
    let mut sim = Sim::new(2);
    let publisher = sim.join("publisher");
    let subscriber = sim.join("subscriber");
    let video = sim.publish_video(publisher);
    sim.run_for(ms(1000));
    let received = sim.rtp(subscriber, &video);
    // NACKs for packets the subscriber got, all in the server's send history.
    let recent: Vec<u16> = received.iter().rev().take(32).map(|p| p.seq).collect();
    let ssrc = received.last().expect("video arrived").ssrc;
    let client_ssrc = 0x7777_0001;
    let compound = |seq: u16| -> Vec<Box<dyn rtc::rtcp::Packet>> {
        vec![
            Box::new(ReceiverReport {
                ssrc: client_ssrc,
                reports: vec![ReceptionReport {
                    ssrc,
                    last_sequence_number: u32::from(recent[0]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            Box::new(TransportLayerNack {
                sender_ssrc: client_ssrc,
                media_ssrc: ssrc,
                nacks: vec![NackPair {
                    packet_id: seq,
                    lost_packets: 0,
                }],
            }),
            Box::new(PictureLossIndication {
                sender_ssrc: client_ssrc,
                media_ssrc: ssrc,
            }),
        ]
    };
    let (mut handled, mut sent) = (0u64, 0u64);
    let mut recent = recent.clone();
    // The subscriber's connection takes 2 500 packets a second (the ingress limit, on the
    // simulated clock): as in `fanout`, chunks below that, a simulated second apart
    // (untimed), the NACKed numbers then taken afresh from what arrived.
    let mut made = 0;
    c.bench_function(
        "rtcp/RR + NACK + PLI from a subscriber, through RoomCore",
        |b| {
            b.iter_custom(|iters| {
                let mut took = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let chunk = left.min(PACKETS_PER_SIMULATED_SECOND);
                    left -= chunk;
                    if made + chunk > PACKETS_PER_SIMULATED_SECOND {
                        sim.run_for(ms(1000));
                        made = 0;
                        recent = sim
                            .rtp(subscriber, &video)
                            .iter()
                            .rev()
                            .take(32)
                            .map(|p| p.seq)
                            .collect();
                    }
                    made += chunk;
                    // SRTCP's index is replay-checked: every datagram is new.
                    let datagrams = (0..chunk as usize)
                        .map(|i| {
                            sim.rtcp_datagram(
                                subscriber,
                                &video,
                                compound(recent[i % recent.len()]),
                            )
                        })
                        .collect();
                    let (t, out) = feed(&mut sim, datagrams, false);
                    handled += chunk;
                    sent += out as u64;
                    took += t;
                }
                took
            })
        },
    );
    // A packet is resent at most once per throttle interval (`resend_too_soon`), and a
    // PLI reaches the publisher once per interval: with the clock standing still between
    // its moves, most compounds send nothing; the work to decide that is what is measured.
    eprintln!("rtcp bench: {handled} compound packets in, {sent} datagrams out");
    assert!(sent > 0, "NACKs retransmitted");
}

fn short() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = short();
    targets = fanout, rtcp_compound
}
criterion_main!(benches);
