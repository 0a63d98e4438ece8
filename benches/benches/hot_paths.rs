//! Per-packet work of the forwarding path that Chorus owns (the `rtc` send path is
//! measured end to end by `chorus-loadtest`).

use std::hint::black_box;

use std::time::{Duration, Instant};

use chorus_core::codec::vp8_is_keyframe;
use chorus_core::{
    ExtSeq, ExtTimestamp, Forwarder, Layer, LayerAction, LayerForwarder, LayerPacket, SeqUnwrapper,
    SpatialLayer, SvcForwarder, SvcLayers, SvcPacket, Targeted, TemporalLayer, VideoForwarder,
    Vp8Descriptor, Vp9Descriptor,
};
use chorus_transport::stun::binding_request_local_ufrag;
use criterion::{Criterion, criterion_group, criterion_main};

/// One incoming packet's rewrite for 349 subscribers, as a room does it.
fn fan_out_rewrite(c: &mut Criterion) {
    let mut forwarders: Vec<Forwarder> = (0..349).map(|_| Forwarder::audio()).collect();
    let mut unwrap = SeqUnwrapper::default();
    let mut seq: u16 = 0;
    c.bench_function("rewrite one packet for 349 subscribers", |b| {
        b.iter(|| {
            seq = seq.wrapping_add(1);
            let ext = unwrap.unwrap(seq);
            let ts = ExtTimestamp(ext.0 * 960);
            for f in forwarders.iter_mut() {
                black_box(f.translate(ext, ts, false, false));
            }
        })
    });
}

fn sequence_unwrap(c: &mut Criterion) {
    let mut u = SeqUnwrapper::default();
    let mut s: u16 = 65_000;
    c.bench_function("extend a sequence number", |b| {
        b.iter(|| {
            s = s.wrapping_add(1);
            black_box(u.unwrap(black_box(s)))
        })
    });
    let mut f = Forwarder::video();
    let mut n = 0u64;
    c.bench_function("forwarder translate", |b| {
        b.iter(|| {
            n += 1;
            black_box(f.translate(ExtSeq(n), ExtTimestamp(n * 3000), false, n == 1))
        })
    });
}

/// One subscriber's decision for one simulcast packet, VP8 descriptor parsed and
/// rewritten in place. The mix: a third forwarded (and rewritten), a third dropped above
/// the temporal cap (L1T3 capped at TL1: the TL2 half of the frames), a third of
/// another spatial layer.
fn layer_forwarder(c: &mut Criterion) {
    let mut f = LayerForwarder::new(Layer::new(
        SpatialLayer::MID,
        TemporalLayer::new(1).unwrap(),
    ));
    let t0 = Instant::now();
    // X, I L T K; 15-bit picture id; TL0PICIDX; TID/Y/KEYIDX; VP8 payload header.
    let mut payload = [0x90u8, 0xF0, 0x80, 0x00, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a];
    let mut n = 0u64;
    c.bench_function("layer forwarder decision + vp8 rewrite", |b| {
        b.iter(|| {
            n += 1;
            let frame = n / 2;
            let tid = [0u8, 2, 1, 2][(frame % 4) as usize];
            let pid = (frame % 32_768) as u16;
            payload[2] = 0x80 | (pid >> 8) as u8;
            payload[3] = pid as u8;
            payload[4] = (frame / 4) as u8;
            payload[5] = tid << 6;
            payload[0] = if n.is_multiple_of(2) { 0x90 } else { 0x80 };
            let layer = if n.is_multiple_of(3) {
                SpatialLayer::LOW
            } else {
                SpatialLayer::MID
            };
            let packet = LayerPacket {
                layer,
                seq: ExtSeq(n),
                timestamp: ExtTimestamp(frame * 3000),
                marker: n % 2 == 1,
                keyframe: n == 8, // frame 4: TL0, first packet
                vp8: Vp8Descriptor::parse(black_box(&payload)),
            };
            let d = f.forward(&packet, t0 + Duration::from_micros(n * 100));
            if let LayerAction::Forward { vp8: Some(v), .. } = d.action {
                black_box(v.apply(&mut payload)).ok();
            }
            black_box(d)
        })
    });
}

/// One subscriber's decision for one packet of a VP9 SVC stream as Chromium sends
/// `L3T3_KEY` (three spatial layers in one stream, one packet per layer frame, TIDs 0,
/// 2, 1, 2, a keyframe with its scalability structure every 90 pictures), its payload
/// descriptor parsed as the room does (once per packet, for all subscribers). The
/// subscriber gets up to s1 and every temporal layer: two thirds forwarded (s1 marked
/// at its end), a third dropped above its spatial layer, the number closed.
fn svc_forwarder(c: &mut Criterion) {
    let mut f = SvcForwarder::new(Layer::new(SpatialLayer::MID, TemporalLayer::ALL));
    // I, P unless a keyframe, L, B, E, V on a keyframe's base layer; 15-bit picture id;
    // TID/U/SID/D; TL0PICIDX; the SS (three layers, sizes); then VP9 data.
    let payload = |keyframe: bool, sid: u8, tid: u8| -> Vec<u8> {
        let ss = keyframe && sid == 0;
        let first = 0xAC | u8::from(!keyframe) << 6 | u8::from(ss) << 1;
        let layer = tid << 5 | u8::from(tid > 0) << 4 | sid << 1 | u8::from(keyframe && sid > 0);
        let mut p = vec![first, 0x80, 0x01, layer, 0x00];
        if ss {
            p.push((2 << 5) | 0x10);
            for (w, h) in [(320u16, 180u16), (640, 360), (1280, 720)] {
                p.extend(w.to_be_bytes());
                p.extend(h.to_be_bytes());
            }
        }
        p.resize(p.len() + 32, 0x5a);
        p
    };
    let keyframe: Vec<Vec<u8>> = (0..3).map(|sid| payload(true, sid, 0)).collect();
    let deltas: Vec<Vec<Vec<u8>>> = [0, 2, 1, 2]
        .iter()
        .map(|&tid| (0..3).map(|sid| payload(false, sid, tid)).collect())
        .collect();
    let t0 = Instant::now();
    let mut n = 0u64;
    c.bench_function(
        "svc forwarder decision + vp9 descriptor (L3T3, up to s1)",
        |b| {
            b.iter(|| {
                let (picture, sid) = (n / 3, (n % 3) as usize);
                let bytes = if picture.is_multiple_of(90) {
                    &keyframe[sid]
                } else {
                    &deltas[(picture % 4) as usize][sid]
                };
                let d = Vp9Descriptor::parse(black_box(bytes));
                let packet = SvcPacket {
                    seq: ExtSeq(n + 1),
                    timestamp: ExtTimestamp(picture * 3000),
                    marker: sid == 2,
                    keyframe: d.as_ref().is_some_and(Vp9Descriptor::starts_keyframe),
                    layers: d.as_ref().map(SvcLayers::of),
                };
                n += 1;
                black_box(f.forward(&packet, t0 + Duration::from_micros(n * 11_111)))
            })
        },
    );
}

/// One subscriber of a tile view: six simulcast cameras (three layers each, the rates
/// the load test sends: 150, 500 and 1500 kbit/s in 1200-byte packets at 15 fps), five
/// shown small (layer 0) and the speaker's large (layer 2). Every packet of every layer
/// passes the subscriber's layer forwarder for its camera (the room decides per
/// subscriber, so the layers it does not receive are decided too), and every 500 ms
/// (`ALLOCATION_INTERVAL`) the allocator spends the subscriber's estimate across the six.
/// One iteration is one such interval: its packets and one allocation, so the time per
/// element is the cost per packet of both together. The estimate alternates between
/// enough for what is asked (3 Mbit/s) and too little (1 Mbit/s, congested), so the
/// allocation lowers and raises.
fn forwarder_and_allocator(c: &mut Criterion) {
    use chorus_core::bwe::Bitrate;
    use chorus_room::allocation::{
        ALLOCATION_INTERVAL, Allocation, Allocator, LinkState, Priority, VideoDemand,
    };

    const CAMERAS: usize = 6;
    const FPS: u64 = 15;
    // Packets per frame of each layer: bitrate / fps / 1200 bytes, at least one.
    const RATES: [u64; 3] = [150_000, 500_000, 1_500_000];
    let per_frame = RATES.map(|r| (r / FPS / 8 / 1200).max(1));
    let frames = FPS * ALLOCATION_INTERVAL.as_millis() as u64 / 1000;
    let per_interval = CAMERAS as u64 * frames * per_frame.iter().sum::<u64>();

    let top = |speaker: bool| {
        if speaker {
            SpatialLayer::HIGH
        } else {
            SpatialLayer::LOW
        }
    };
    let mut forwarders: Vec<LayerForwarder> = (0..CAMERAS)
        .map(|i| LayerForwarder::new(Layer::new(top(i == 0), TemporalLayer::ALL)))
        .collect();
    for (i, f) in forwarders.iter_mut().enumerate() {
        f.set_target(Some(Layer::new(top(i == 0), TemporalLayer::ALL)));
    }
    let videos: Vec<VideoDemand> = (0..CAMERAS)
        .map(|i| VideoDemand {
            priority: if i == 0 {
                Priority::Featured
            } else {
                Priority::Other
            },
            max: Some(top(i == 0)),
            layer_bitrates: RATES.map(Some),
        })
        .collect();
    let mut allocator = Allocator::default();
    let mut current: Vec<Option<Allocation>> = vec![None; CAMERAS];
    // VP8: X, I (15-bit picture id); payload header of a keyframe or a delta frame.
    let mut payload = [0x90u8, 0x80, 0x80, 0x00, 0x9d, 0x01, 0x2a];
    let t0 = Instant::now();
    let mut seq = [[0u64; 3]; CAMERAS];
    let mut frame = 0u64;
    let mut interval = 0u64;
    let mut group = c.benchmark_group("forwarder + allocator");
    group.throughput(criterion::Throughput::Elements(per_interval));
    group.bench_function(
        format!(
            "tile view: 6 cameras x 3 layers, {per_interval} packets + 1 allocation per 500 ms"
        ),
        |b| {
            b.iter(|| {
                interval += 1;
                let now = t0 + ALLOCATION_INTERVAL * interval as u32;
                let (estimate, lossy) = if interval.is_multiple_of(2) {
                    (Bitrate(1_000_000), true)
                } else {
                    (Bitrate(3_000_000), false)
                };
                let link = LinkState {
                    estimate,
                    lossy,
                    overuse: false,
                    overuses: 0,
                    probes_delivered: 0,
                    probe_rate: None,
                };
                let got = allocator.decide(link, &videos, &current, now);
                for (cur, a) in current.iter_mut().zip(&got.allocations) {
                    *cur = Some(*a);
                }
                for _ in 0..frames {
                    frame += 1;
                    let pid = (frame % 32_768) as u16;
                    payload[2] = 0x80 | (pid >> 8) as u8;
                    payload[3] = pid as u8;
                    for (cam, f) in forwarders.iter_mut().enumerate() {
                        for (l, &n) in per_frame.iter().enumerate() {
                            let layer = SpatialLayer::new(l as u8).expect("three layers");
                            for k in 0..n {
                                seq[cam][l] += 1;
                                payload[0] = if k == 0 { 0x90 } else { 0x80 };
                                let packet = LayerPacket {
                                    layer,
                                    seq: ExtSeq(seq[cam][l]),
                                    timestamp: ExtTimestamp(frame * 6000),
                                    marker: k + 1 == n,
                                    keyframe: k == 0 && frame % 150 == 1,
                                    vp8: Vp8Descriptor::parse(black_box(&payload)),
                                };
                                let d = f.forward(&packet, now);
                                if let LayerAction::Forward { vp8: Some(v), .. } = d.action {
                                    black_box(v.apply(&mut payload)).ok();
                                }
                                black_box(d);
                            }
                        }
                    }
                }
                black_box(got)
            })
        },
    );
    group.finish();
}

fn parsing(c: &mut Criterion) {
    let vp8 = [0x90u8, 0xE0, 0x85, 0x01, 0x07, 0x20, 0x00, 0x9d, 0x01, 0x2a];
    c.bench_function("vp8 keyframe check", |b| {
        b.iter(|| black_box(vp8_is_keyframe(black_box(&vp8))))
    });
    let mut stun = vec![0x00, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xA4, 0x42];
    stun.extend_from_slice(&[7; 12]);
    stun.extend_from_slice(&[0x00, 0x06, 0x00, 0x07]);
    stun.extend_from_slice(b"srv:cli\0");
    c.bench_function("stun ufrag of a binding request", |b| {
        b.iter(|| black_box(binding_request_local_ufrag(black_box(&stun))))
    });
}

/// The bandwidth estimator's share of the egress path: numbering one packet as it
/// is sent (per copy, in the shard), and reading one packet's result from the
/// subscriber's feedback (100 per feedback, as a browser reports a burst).
fn bandwidth_estimator(c: &mut Criterion) {
    use chorus_core::bwe::{BandwidthEstimator, BweConfig, PacketResult};
    let t0 = Instant::now();
    let mut bwe = BandwidthEstimator::new(BweConfig::default(), t0);
    let mut sent = 0u64;
    c.bench_function("bwe: number one sent packet", |b| {
        b.iter(|| {
            sent += 1;
            black_box(bwe.on_sent(1200, t0 + Duration::from_micros(sent * 400)))
        })
    });
    let mut bwe = BandwidthEstimator::new(BweConfig::default(), t0);
    let mut n = 0u64;
    c.bench_function("bwe: 100 packets sent, then their feedback", |b| {
        b.iter(|| {
            let mut results = Vec::with_capacity(100);
            for _ in 0..100 {
                n += 1;
                let at = t0 + Duration::from_micros(n * 400);
                let seq = bwe.on_sent(1200, at);
                let arrival = Some(Duration::from_micros(n * 400 + 20_000));
                results.push(PacketResult { seq, arrival });
            }
            bwe.on_feedback(&results, t0 + Duration::from_micros(n * 400 + 40_000));
            black_box(bwe.estimate())
        })
    });
}

criterion_group!(
    benches,
    fan_out_rewrite,
    sequence_unwrap,
    layer_forwarder,
    svc_forwarder,
    forwarder_and_allocator,
    parsing,
    bandwidth_estimator
);
criterion_main!(benches);
