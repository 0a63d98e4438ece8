//! The mixer's end-to-end tests: tone sources encoded like clients, listeners decoding
//! like clients, and the mix, timing, loss, bad input, leaving and config checks.

use super::*;
use opus::{Channels, Decoder};

const T20: Duration = FRAME_DURATION;

/// A test source: a tone of `freq` Hz at `amplitude`, encoded like a client would.
struct ToneSource {
    id: SourceId,
    freq: f64,
    amplitude: f64,
    encoder: Encoder,
    phase: usize,
}

impl ToneSource {
    fn new(id: u64, freq: f64, amplitude: f64) -> Self {
        Self {
            id: SourceId(id),
            freq,
            amplitude,
            encoder: new_encoder(32_000).unwrap(),
            phase: 0,
        }
    }

    /// The next 20 ms: Opus payload and its RFC 6464 level.
    fn next_packet(&mut self) -> (Vec<u8>, u8) {
        let pcm: Vec<i16> = (0..FRAME_SAMPLES)
            .map(|i| {
                let t = (self.phase + i) as f64 / f64::from(SAMPLE_RATE);
                (self.amplitude * (2.0 * std::f64::consts::PI * self.freq * t).sin()) as i16
            })
            .collect();
        self.phase += FRAME_SAMPLES;
        let packet = self.encoder.encode_vec(&pcm, MAX_OPUS_PACKET).unwrap();
        (packet, audio_level(&pcm))
    }
}

/// Amplitude of the `freq` Hz component of `x` (Goertzel).
fn tone_amplitude(x: &[i16], freq: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / f64::from(SAMPLE_RATE);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &v in x {
        let s0 = f64::from(v) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    2.0 * power.max(0.0).sqrt() / x.len() as f64
}

/// Decodes one listener's stream as a client would.
struct Listener {
    id: SourceId,
    decoder: Decoder,
    pcm: Vec<i16>,
}

impl Listener {
    fn new(id: u64) -> Self {
        Self {
            id: SourceId(id),
            decoder: Decoder::new(SAMPLE_RATE, Channels::Mono).unwrap(),
            pcm: Vec::new(),
        }
    }

    fn receive(&mut self, frame: &MixedFrame<'_>) {
        let mut out = vec![0i16; MAX_PACKET_SAMPLES];
        let n = self
            .decoder
            .decode(frame.payload_for(self.id), &mut out, false)
            .unwrap();
        assert_eq!(n, FRAME_SAMPLES);
        self.pcm.extend_from_slice(&out[..n]);
    }
}

fn mixer_with(ids: &[u64]) -> Mixer {
    let mut m = Mixer::new(MixerConfig::default()).unwrap();
    for &id in ids {
        m.add_source(SourceId(id));
    }
    m
}

#[test]
fn mixes_the_three_loudest_and_removes_each_talker_from_its_own_mix() {
    let t0 = Instant::now();
    let mut sources = [
        ToneSource::new(1, 440.0, 6000.0),
        ToneSource::new(2, 1000.0, 6000.0),
        ToneSource::new(3, 2500.0, 6000.0),
        // Quieter by about 20 dB: the fourth, never mixed.
        ToneSource::new(4, 1600.0, 600.0),
    ];
    let mut mixer = mixer_with(&[1, 2, 3, 4]);
    // 99 only listens; 1 and 4 also talk.
    let mut listeners = [Listener::new(99), Listener::new(1), Listener::new(4)];
    let mut last_seq = None;
    for n in 0..60u64 {
        let now = t0 + T20 * n as u32;
        for s in &mut sources {
            let (packet, level) = s.next_packet();
            mixer.push(s.id, 1000 + n, Some(level), &packet, now);
        }
        let frame = mixer.tick(now).expect("a frame every 20 ms");
        assert_eq!(frame.seq, n, "seq continuous");
        assert_eq!(frame.timestamp, n * FRAME_SAMPLES as u64, "ts continuous");
        if n > 5 {
            assert!(frame.level < 20, "a loud mix, level {}", frame.level);
        }
        assert_eq!(
            frame.payload_for(SourceId(4)),
            frame.common(),
            "the unmixed source hears the common mix"
        );
        last_seq = Some(frame.seq);
        for l in &mut listeners {
            l.receive(&frame);
        }
        assert!(mixer.tick(now).is_none(), "one frame per slot");
    }
    assert_eq!(last_seq, Some(59));
    let mut mixed = mixer.mixed().to_vec();
    mixed.sort();
    assert_eq!(mixed, [SourceId(1), SourceId(2), SourceId(3)]);

    // (listener, frequency, expected present) over the last 40 frames, after the
    // selection and the codecs settled.
    let cases = [
        (99, 440.0, true),
        (99, 1000.0, true),
        (99, 2500.0, true),
        (99, 1600.0, false),
        (1, 440.0, false),
        (1, 1000.0, true),
        (1, 2500.0, true),
        (1, 1600.0, false),
        (4, 440.0, true),
        (4, 1600.0, false),
    ];
    for (id, freq, present) in cases {
        let l = listeners.iter().find(|l| l.id == SourceId(id)).unwrap();
        let a = tone_amplitude(&l.pcm[20 * FRAME_SAMPLES..], freq);
        if present {
            assert!(
                a > 3000.0,
                "listener {id}: {freq} Hz should be there, amplitude {a:.0}"
            );
        } else {
            assert!(
                a < 100.0,
                "listener {id}: {freq} Hz should be absent, amplitude {a:.0}"
            );
        }
    }
    assert_eq!(mixer.stats().decode_errors, 0);
}

#[test]
fn seeded_loss_and_jitter_keep_latency_bounded() {
    // Two talkers; each packet arrives 0-35 ms after its slot, 5% never arrive.
    let t0 = Instant::now();
    let mut rng: u64 = 0x5eed;
    let mut random = move |below: u64| {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (rng >> 33) % below
    };
    let mut mixer = mixer_with(&[1, 2]);
    let mut sources = [
        ToneSource::new(1, 440.0, 6000.0),
        ToneSource::new(2, 1000.0, 6000.0),
    ];
    let mut in_flight: Vec<(Instant, SourceId, u64, Vec<u8>, u8)> = Vec::new();
    let mut listener = Listener::new(99);
    let (mut lost, mut queued_sum) = (0u64, 0usize);
    const FRAMES: u64 = 500;
    for n in 0..FRAMES {
        let slot = t0 + T20 * n as u32;
        for s in &mut sources {
            let (packet, level) = s.next_packet();
            if random(100) < 5 {
                lost += 1;
                continue;
            }
            let arrival = slot + Duration::from_millis(random(36));
            in_flight.push((arrival, s.id, n, packet, level));
        }
        in_flight.sort_by_key(|p| p.0);
        let due = in_flight.partition_point(|p| p.0 <= slot);
        for (at, id, seq, packet, level) in in_flight.drain(..due) {
            mixer.push(id, seq, Some(level), &packet, at);
        }
        let frame = mixer.tick(slot).expect("a frame every 20 ms");
        assert_eq!(frame.seq, n);
        listener.receive(&frame);
        if n >= FRAMES - 200 {
            queued_sum += mixer.talkers.iter().map(|t| t.queue.len()).sum::<usize>();
        }
    }
    let stats = mixer.stats();
    assert_eq!(mixer.mixed().len(), 2, "{stats:?}");
    // Each talker holds about what 35 ms of jitter needs (under a packet on
    // average); losses must not each add a frame of delay (that gave 1.5).
    let mean_queued = queued_sum as f64 / 200.0 / 2.0;
    assert!(mean_queued < 1.0, "mean queue {mean_queued:.2}, {stats:?}");
    // Every loss is concealed about once; late packets add a few more.
    assert!(
        stats.concealed_frames <= lost * 2,
        "{} concealed for {lost} lost, {stats:?}",
        stats.concealed_frames
    );
    let tail = &listener.pcm[(FRAMES as usize - 200) * FRAME_SAMPLES..];
    for freq in [440.0, 1000.0] {
        let a = tone_amplitude(tail, freq);
        assert!(a > 3000.0, "{freq} Hz amplitude {a:.0}, {stats:?}");
    }
}

#[test]
fn tick_timing() {
    // (name, ticks as ms offsets from the start, expected (seq, timestamp) of each
    // produced frame in order)
    type Case = (&'static str, &'static [u64], &'static [(u64, u64)]);
    let cases: [Case; 4] = [
        (
            "on time",
            &[0, 20, 40, 60],
            &[(0, 0), (1, 960), (2, 1920), (3, 2880)],
        ),
        (
            "early ticks produce nothing",
            &[0, 5, 19, 20],
            &[(0, 0), (1, 960)],
        ),
        (
            "a little late: the overdue frames follow at once",
            &[0, 65, 65, 65, 65, 80],
            &[(0, 0), (1, 960), (2, 1920), (3, 2880), (4, 3840)],
        ),
        (
            "very late: skip ahead, seq continuous, ts covers the gap",
            &[0, 20, 230, 230, 250],
            &[(0, 0), (1, 960), (2, 11 * 960), (3, 12 * 960)],
        ),
    ];
    for (name, ticks, want) in cases {
        let t0 = Instant::now();
        let mut m = mixer_with(&[1]);
        assert_eq!(m.poll_timeout(), None, "{name}: clock not started");
        let mut got = Vec::new();
        for &ms in ticks {
            if let Some(f) = m.tick(t0 + Duration::from_millis(ms)) {
                got.push((f.seq, f.timestamp));
            }
        }
        assert_eq!(got, want, "{name}");
        let due = m.poll_timeout().expect("running");
        let last = *ticks.last().unwrap();
        assert!(
            due > t0 + Duration::from_millis(last) - T20
                && due <= t0 + Duration::from_millis(last) + T20,
            "{name}: next deadline within one frame"
        );
    }
}

#[test]
fn silence_keeps_the_stream_going_and_no_sources_stop_it() {
    let t0 = Instant::now();
    let mut m = mixer_with(&[1, 2]);
    let mut silent = ToneSource::new(1, 440.0, 0.0);
    for n in 0..10u64 {
        let now = t0 + T20 * n as u32;
        let (packet, level) = silent.next_packet();
        assert_eq!(level, 127);
        assert_eq!(
            m.push(SourceId(1), n, Some(level), &packet, now),
            Pushed::LevelOnly
        );
        assert_eq!(m.poll_timeout(), Some(now), "due now");
        let f = m.tick(now).expect("frames while nobody talks");
        assert_eq!((f.seq, f.level), (n, 127));
        assert!(!f.common().is_empty());
    }
    assert!(m.mixed().is_empty());
    m.remove_source(SourceId(1));
    m.remove_source(SourceId(2));
    assert_eq!(m.poll_timeout(), None, "no sources, no ticks");
    assert!(m.tick(t0 + T20 * 10).is_none());

    // Back after a pause of a second: no burst, ts jumps over the pause.
    m.add_source(SourceId(3));
    let back = t0 + Duration::from_millis(1200);
    m.push(SourceId(3), 0, Some(127), &[0xF8, 0xFF, 0xFE], back);
    let f = m.tick(back).expect("running again");
    assert_eq!((f.seq, f.timestamp), (10, 60 * 960));
    assert!(m.tick(back).is_none(), "no catch-up burst");
}

#[test]
fn bad_input_is_counted_never_fatal() {
    let t0 = Instant::now();
    let mut m = mixer_with(&[1]);
    let mut tone = ToneSource::new(1, 440.0, 6000.0);
    let mut now = t0;
    // Become a mixed talker with good packets first.
    for n in 0..5u64 {
        let (packet, level) = tone.next_packet();
        m.push(SourceId(1), n, Some(level), &packet, now);
        m.tick(now);
        now += T20;
    }
    assert_eq!(m.mixed(), [SourceId(1)]);
    // (name, seq, payload, expected)
    let garbage: [(&str, u64, &[u8], Pushed); 6] = [
        ("code 3 with zero frames", 5, &[0x03, 0x00], Pushed::Queued),
        ("code 3 without a count byte", 6, &[0xFF], Pushed::Queued),
        (
            "code 1 with an odd length",
            7,
            &[0x01, 0x02],
            Pushed::Queued,
        ),
        ("empty", 8, &[], Pushed::Dropped(DropReason::EmptyPayload)),
        (
            "duplicate",
            7,
            &[0x01, 0x02],
            Pushed::Dropped(DropReason::Duplicate),
        ),
        (
            "too old",
            2,
            &[0x01, 0x02],
            Pushed::Dropped(DropReason::TooOld),
        ),
    ];
    for (name, seq, payload, want) in garbage {
        assert_eq!(
            m.push(SourceId(1), seq, Some(20), payload, now),
            want,
            "{name}"
        );
    }
    assert_eq!(
        m.push(SourceId(9), 0, Some(0), &[1, 2, 3], now),
        Pushed::Dropped(DropReason::UnknownSource)
    );
    for _ in 0..5 {
        assert!(m.tick(now).is_some());
        now += T20;
    }
    let stats = m.stats();
    assert_eq!(stats.decode_errors, 3, "{stats:?}");
    assert!(
        stats.concealed_frames >= 3,
        "errors are concealed as losses: {stats:?}"
    );
    assert_eq!(
        (stats.duplicates, stats.too_old, stats.unknown_source),
        (1, 1, 1)
    );
}

#[test]
fn leaving_and_muting_take_effect_before_the_next_mix() {
    let t0 = Instant::now();
    let mut m = mixer_with(&[1, 2]);
    let mut tones = [
        ToneSource::new(1, 440.0, 6000.0),
        ToneSource::new(2, 1000.0, 6000.0),
    ];
    let mut now = t0;
    let mut run = |m: &mut Mixer, frames: u64, muted_2: bool| {
        let mut last = (Vec::new(), Vec::new());
        for _ in 0..frames {
            for t in &mut tones {
                let (packet, level) = t.next_packet();
                m.push(
                    t.id,
                    (now - t0).as_millis() as u64 / 20,
                    Some(level),
                    &packet,
                    now,
                );
            }
            m.set_muted(SourceId(2), muted_2);
            let f = m.tick(now).unwrap();
            last = (f.payload_for(SourceId(1)).to_vec(), f.common().to_vec());
            now += T20;
        }
        last
    };
    run(&mut m, 10, false);
    assert_eq!(m.mixed().len(), 2);
    let (for_1, common) = run(&mut m, 1, true);
    assert_eq!(m.mixed(), [SourceId(1)], "muted leaves at once");
    assert_ne!(for_1, common, "1 still gets its mix-minus-self");
    m.remove_source(SourceId(1));
    assert!(m.mixed().is_empty(), "removal is immediate");
    let (for_1, common) = run(&mut m, 1, true);
    assert_eq!(for_1, common, "a removed talker gets the common mix");
}

#[test]
fn config_is_checked() {
    // (name, config change, ok)
    type Case = (&'static str, fn(&mut MixerConfig), bool);
    let cases: [Case; 5] = [
        ("default", |_| {}, true),
        ("K = 0", |c| c.max_mixed = 0, false),
        ("no jitter queue", |c| c.jitter_frames = 0, false),
        ("bitrate too low", |c| c.bitrate_bps = 100, false),
        ("K = 5 reaches the detector", |c| c.max_mixed = 5, true),
    ];
    for (name, change, ok) in cases {
        let mut config = MixerConfig::default();
        change(&mut config);
        let want_k = config.max_mixed;
        match Mixer::new(config) {
            Ok(m) => {
                assert!(ok, "{name}");
                assert_eq!(m.speakers().config().max_active, want_k, "{name}");
            }
            Err(e) => assert!(!ok, "{name}: {e}"),
        }
    }
}

/// 20 ms of a tone as samples, for a source that pushes samples.
fn tone_pcm(freq: f64, amplitude: f64, frame: u64) -> Vec<i16> {
    (0..FRAME_SAMPLES)
        .map(|i| {
            let t = (frame as usize * FRAME_SAMPLES + i) as f64 / f64::from(SAMPLE_RATE);
            (amplitude * (2.0 * std::f64::consts::PI * freq * t).sin()) as i16
        })
        .collect()
}

#[test]
fn a_phone_pushes_samples_and_takes_its_mix_minus_self_as_samples() {
    let t0 = Instant::now();
    let mut mixer = Mixer::new(MixerConfig::default()).unwrap();
    // 1: a WebRTC talker (Opus both ways); 2: a G.711 phone (samples both ways);
    // 3: an Opus phone (samples in, Opus out).
    mixer.add_source(SourceId(1));
    let phone = SourceKind {
        pcm_in: true,
        pcm_out: true,
    };
    mixer.add_source_as(SourceId(2), phone);
    mixer.add_source_as(
        SourceId(3),
        SourceKind {
            pcm_in: true,
            pcm_out: false,
        },
    );
    let mut webrtc = ToneSource::new(1, 880.0, 6000.0);
    let mut listener = Listener::new(1);
    let (mut phone_heard, mut common) = (Vec::new(), Vec::new());
    for n in 0..60u64 {
        let now = t0 + T20 * n as u32;
        let (packet, level) = webrtc.next_packet();
        mixer.push(SourceId(1), n, Some(level), &packet, now);
        let pushed = mixer.push_pcm(SourceId(2), n, &tone_pcm(440.0, 6000.0, n), now);
        assert_ne!(pushed, Pushed::Dropped(DropReason::UnknownSource));
        mixer.push_pcm(SourceId(3), n, &tone_pcm(2500.0, 6000.0, n), now);
        let frame = mixer.tick(now).expect("a frame every 20 ms");
        listener.receive(&frame);
        phone_heard.extend_from_slice(frame.pcm_for(SourceId(2)));
        common.extend_from_slice(frame.pcm_for(SourceId(99)));
        assert_eq!(frame.pcm_for(SourceId(2)).len(), FRAME_SAMPLES);
    }
    // An Opus source cannot push samples.
    assert_eq!(
        mixer.push_pcm(SourceId(1), 99, &[0; FRAME_SAMPLES], t0),
        Pushed::Dropped(DropReason::UnknownSource)
    );
    let tail = 20 * FRAME_SAMPLES;
    // (what, samples, frequency, expected present)
    let cases: [(&str, &[i16], f64, bool); 7] = [
        (
            "WebRTC hears the G.711 phone",
            &listener.pcm[tail..],
            440.0,
            true,
        ),
        (
            "WebRTC hears the Opus phone",
            &listener.pcm[tail..],
            2500.0,
            true,
        ),
        (
            "WebRTC does not hear itself",
            &listener.pcm[tail..],
            880.0,
            false,
        ),
        ("the phone hears WebRTC", &phone_heard[tail..], 880.0, true),
        (
            "the phone hears the Opus phone",
            &phone_heard[tail..],
            2500.0,
            true,
        ),
        (
            "the phone does not hear itself",
            &phone_heard[tail..],
            440.0,
            false,
        ),
        ("the common mix has the phone", &common[tail..], 440.0, true),
    ];
    for (what, pcm, freq, present) in cases {
        let a = tone_amplitude(pcm, freq);
        if present {
            assert!(a > 3000.0, "{what}: {freq} Hz amplitude {a:.0}");
        } else {
            assert!(a < 100.0, "{what}: {freq} Hz amplitude {a:.0}");
        }
    }
}
