//! The audio mixer's cost per 20 ms, which must not grow with the number of sources:
//! every source's level goes through the speaker detector, but only the K mixed
//! talkers are decoded, and K+1 streams are encoded, whatever the room size.

use std::hint::black_box;
use std::time::{Duration, Instant};

use chorus_mixer::opus::{Application, Bitrate, Channels, Decoder, Encoder};
use chorus_mixer::{
    FRAME_SAMPLES, Mixer, MixerConfig, SAMPLE_RATE, SourceId, SpeakerConfig, SpeakerDetector,
    audio_level,
};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

const FRAME: Duration = Duration::from_millis(20);
/// Frames of recorded audio each talker loops over.
const LOOP_FRAMES: usize = 50;

/// One second of a tone, as a client's Opus packets with their levels.
fn tone_packets(freq: f64) -> Vec<(Vec<u8>, u8)> {
    let mut enc = Encoder::new(SAMPLE_RATE, Channels::Mono, Application::Voip).unwrap();
    (0..LOOP_FRAMES)
        .map(|f| {
            let pcm: Vec<i16> = (0..FRAME_SAMPLES)
                .map(|i| {
                    let t = (f * FRAME_SAMPLES + i) as f64 / f64::from(SAMPLE_RATE);
                    (6000.0 * (2.0 * std::f64::consts::PI * freq * t).sin()) as i16
                })
                .collect();
            (enc.encode_vec(&pcm, 1275).unwrap(), audio_level(&pcm))
        })
        .collect()
}

/// A room of `n` sources: three talk (tones), the rest send background noise levels
/// (-60 to -95 dBov, loud enough to count as talking, so every one is a candidate the
/// detector must rank) with a small Opus packet.
struct Room {
    mixer: Mixer,
    talk: Vec<Vec<(Vec<u8>, u8)>>,
    quiet_packet: Vec<u8>,
    n: u64,
    frame: u64,
    now: Instant,
}

impl Room {
    fn new(n: u64) -> Self {
        let mut mixer = Mixer::new(MixerConfig::default()).unwrap();
        for id in 0..n {
            mixer.add_source(SourceId(id));
        }
        let mut room = Self {
            mixer,
            talk: [440.0, 1000.0, 2500.0].map(tone_packets).to_vec(),
            quiet_packet: vec![0xF8, 0xFF, 0xFE],
            n,
            frame: 0,
            now: Instant::now(),
        };
        // Settle the selection and the codecs.
        for _ in 0..100 {
            room.push_all();
            room.mixer.tick(room.now);
        }
        assert_eq!(room.mixer.mixed().len(), 3.min(n as usize));
        room
    }

    /// One packet from every source: the 20 ms of ingress a tick follows.
    fn push_all(&mut self) {
        self.frame += 1;
        self.now += FRAME;
        let slot = self.frame as usize % LOOP_FRAMES;
        for id in 0..self.n {
            let (payload, level) = match self.talk.get(id as usize) {
                Some(t) => (&t[slot].0[..], t[slot].1),
                None => (&self.quiet_packet[..], 60 + ((id + self.frame) % 36) as u8),
            };
            self.mixer
                .push(SourceId(id), self.frame, Some(level), payload, self.now);
        }
    }
}

/// CPU time this thread has used.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn tick(c: &mut Criterion) {
    let mut group = c.benchmark_group("mixer");
    for n in [3u64, 50, 350] {
        let mut room = Room::new(n);
        group.bench_with_input(BenchmarkId::new("tick, thread CPU", n), &n, |b, _| {
            // Only the tick is timed, in CPU time of this thread: the budget is CPU,
            // and the machine is shared, so wall time would count others' work.
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    room.push_all();
                    let start = thread_cpu_time();
                    let frame = room.mixer.tick(room.now).expect("a frame is due");
                    black_box(frame.common());
                    spent += thread_cpu_time() - start;
                }
                spent
            })
        });
        let mut room = Room::new(n);
        group.bench_with_input(BenchmarkId::new("20 ms of pushes + tick", n), &n, |b, _| {
            b.iter(|| {
                room.push_all();
                black_box(room.mixer.tick(room.now).map(|f| f.seq))
            })
        });
    }
    group.finish();
}

/// A packet from a source that is not mixed: only its level reaches the detector.
fn push_unselected(c: &mut Criterion) {
    let mut room = Room::new(350);
    let packet = [0xF8u8, 0xFF, 0xFE];
    let mut seq = 0u64;
    c.bench_function("mixer/push from an unselected source (350 sources)", |b| {
        b.iter(|| {
            seq += 1;
            let id = SourceId(3 + seq % 347);
            black_box(room.mixer.push(id, seq, Some(80), &packet, room.now))
        })
    });
}

/// The unit costs a tick is made of: K decodes and K+1 encodes.
fn codec(c: &mut Criterion) {
    let packets = tone_packets(1000.0);
    let pcm: Vec<i16> = (0..FRAME_SAMPLES)
        .map(|i| ((i as f64 * 0.13).sin() * 6000.0) as i16)
        .collect();
    let mut enc = Encoder::new(SAMPLE_RATE, Channels::Mono, Application::Voip).unwrap();
    enc.set_bitrate(Bitrate::Bits(32_000)).unwrap();
    let mut out = vec![0u8; 1275];
    c.bench_function("mixer/opus encode 20 ms (32 kbit/s voip)", |b| {
        b.iter(|| black_box(enc.encode(black_box(&pcm), &mut out).unwrap()))
    });
    let mut dec = Decoder::new(SAMPLE_RATE, Channels::Mono).unwrap();
    let mut pcm_out = vec![0i16; FRAME_SAMPLES];
    let mut i = 0;
    c.bench_function("mixer/opus decode 20 ms", |b| {
        b.iter(|| {
            i = (i + 1) % LOOP_FRAMES;
            black_box(dec.decode(&packets[i].0, &mut pcm_out, false).unwrap())
        })
    });
}

/// The only part of a tick that grows with the room: ranking every source's level.
fn detector_poll(c: &mut Criterion) {
    let mut d = SpeakerDetector::new(SpeakerConfig::default());
    for id in 0..350 {
        d.add(SourceId(id));
    }
    let mut now = Instant::now();
    let mut frame = 0u64;
    c.bench_function("mixer/speaker poll, 350 sources talking", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                frame += 1;
                now += FRAME;
                for id in 0..350u64 {
                    d.observe(SourceId(id), Some(20 + ((id + frame) % 70) as u8), now);
                }
                let start = Instant::now();
                black_box(d.poll_change(now));
                spent += start.elapsed();
            }
            spent
        })
    });
}

criterion_group!(benches, codec, tick, push_unselected, detector_poll);
criterion_main!(benches);
