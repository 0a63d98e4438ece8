//! Per-packet work of the forwarding path that Chorus owns (the `rtc` send path is
//! measured end to end by `chorus-loadtest`).

use std::hint::black_box;

use chorus_core::codec::vp8_is_keyframe;
use chorus_core::{ExtSeq, ExtTimestamp, Forwarder, SeqUnwrapper};
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

criterion_group!(benches, fan_out_rewrite, sequence_unwrap, parsing);
criterion_main!(benches);
