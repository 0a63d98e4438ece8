//! Feedback read back by webrtc-rs's own (independent) TWCC parser.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rtc::rtcp::transport_feedbacks::transport_layer_cc::{
    PacketStatusChunk, SymbolTypeTcc, TransportLayerCc,
};

use super::*;

const S: u32 = 0x0A11_CE00;
const M: u32 = 0x5E47_0001;

/// What one feedback packet says, as webrtc-rs reads it.
#[derive(Debug)]
struct Read {
    fb_count: u8,
    len: usize,
    run_lengths: usize,
    /// Sequence number, arrival in µs since the origin if received.
    statuses: Vec<(u16, Option<i64>)>,
}

fn read(bytes: &[u8]) -> Vec<Read> {
    let mut lens = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let len = (usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]])) + 1) * 4;
        lens.push(len);
        at += len;
    }
    assert_eq!(at, bytes.len(), "framing");
    let packets = rtc::rtcp::packet::unmarshal(&mut &bytes[..]).unwrap();
    assert_eq!(packets.len(), lens.len());
    packets
        .iter()
        .zip(lens)
        .map(|(p, len)| {
            let cc = p
                .as_any()
                .downcast_ref::<TransportLayerCc>()
                .expect("a TransportLayerCc");
            assert_eq!((cc.sender_ssrc, cc.media_ssrc), (S, M));
            let count = usize::from(cc.packet_status_count);
            let mut symbols = Vec::new();
            let mut run_lengths = 0;
            for chunk in &cc.packet_chunks {
                match chunk {
                    PacketStatusChunk::RunLengthChunk(c) => {
                        run_lengths += 1;
                        let n = usize::from(c.run_length);
                        symbols.extend(std::iter::repeat_n(c.packet_status_symbol, n));
                    }
                    PacketStatusChunk::StatusVectorChunk(c) => {
                        symbols.extend(&c.symbol_list);
                    }
                }
            }
            assert!(symbols.len() >= count);
            assert!(
                symbols[count..]
                    .iter()
                    .all(|s| *s == SymbolTypeTcc::PacketNotReceived),
                "padding symbols must be 'not received'"
            );
            let mut time = i64::from(cc.reference_time) * 64_000;
            let mut deltas = cc.recv_deltas.iter();
            let statuses = symbols[..count]
                .iter()
                .enumerate()
                .map(|(k, s)| {
                    let seq = cc.base_sequence_number.wrapping_add(k as u16);
                    if *s == SymbolTypeTcc::PacketNotReceived {
                        return (seq, None);
                    }
                    let d = deltas.next().expect("a delta per received packet");
                    assert_eq!(d.type_tcc_packet, *s);
                    time += d.delta;
                    (seq, Some(time))
                })
                .collect();
            assert!(deltas.next().is_none(), "no extra deltas");
            Read {
                fb_count: cc.fb_pkt_count,
                len,
                run_lengths,
                statuses,
            }
        })
        .collect()
}

fn us(t: u64) -> Duration {
    Duration::from_micros(t)
}

struct Case {
    name: &'static str,
    /// Sequence number and arrival in µs since the first.
    arrivals: Vec<(u16, u64)>,
    /// At least this many feedback packets.
    min_packets: usize,
    max_packets: usize,
    /// Some chunk is run-length coded.
    run_length: bool,
}

fn case(name: &'static str, arrivals: Vec<(u16, u64)>, packets: (usize, usize)) -> Case {
    Case {
        name,
        arrivals,
        min_packets: packets.0,
        max_packets: packets.1,
        run_length: false,
    }
}

fn every(seqs: impl IntoIterator<Item = u16>, start_us: u64, step_us: u64) -> Vec<(u16, u64)> {
    seqs.into_iter()
        .enumerate()
        .map(|(k, s)| (s, start_us + k as u64 * step_us))
        .collect()
}

/// All arrivals recorded, one poll after the last: every number from the lowest to
/// the highest (unwrapped) is reported once, the received ones at their arrival
/// time to 250 µs.
#[test]
fn feedback_reads_back_as_fed() {
    let lossy: Vec<_> = every(0..40u16, 0, 3_000)
        .into_iter()
        .filter(|(s, _)| s % 7 != 3 && !(20..25).contains(s))
        .collect();
    let mut reordered = every([1, 2, 4, 3, 5, 9, 6, 8, 7], 0, 1_000);
    reordered.push((0, 9_500)); // older than the first, nothing reported yet
    let mut pause = every(0..4, 0, 20_000);
    pause.extend(every(4..7, 10_060_000, 20_000));
    let mut gap = every(0..3, 0, 1_000);
    gap.extend(every(1003..1006, 4_000, 1_000));
    let mut jitter = Vec::new();
    for k in 0..2000u16 {
        // Every other packet lost, arrivals 0..=100 ms apart: large deltas and vectors.
        if k % 2 == 0 {
            jitter.push((k, u64::from(k) * 40_000 + u64::from(k % 5) * 25_000));
        }
    }
    let cases = [
        case("in order", every(0..20, 0, 5_000), (1, 1)),
        case("losses", lossy, (1, 1)),
        case(
            "wrap-around",
            every((65_530..=65_535).chain(0..6), 0, 2_000),
            (1, 1),
        ),
        case("reordering", reordered, (1, 1)),
        case(
            "backwards in time",
            vec![(0, 0), (1, 5_000), (2, 1_000), (3, 4_000)],
            (1, 1),
        ),
        case("gap of 1000", gap, (1, 1)),
        case("10 s pause: delta overflow", pause, (2, 2)),
        Case {
            run_length: true,
            ..case("burst of 300", every(100..400, 0, 100), (1, 1))
        },
        case("big: split by size", jitter, (2, 10)),
        case("single", vec![(7, 0)], (1, 1)),
        case(
            "delta boundaries: 255, 256, -1, 32767, 32768 ticks",
            vec![
                (0, 0),
                (1, 63_750),
                (2, 127_750),
                (3, 127_500),
                (4, 8_319_250),
                (5, 16_511_250),
            ],
            (2, 2),
        ),
    ];
    for c in cases {
        let t0 = Instant::now();
        let mut rec = TwccRecorder::new(S);
        for &(seq, at) in &c.arrivals {
            rec.received(seq, M, t0 + us(at));
        }
        let last = c.arrivals.iter().map(|a| a.1).max().unwrap();
        let mut out = Vec::new();
        assert!(
            rec.poll_feedback(t0 + us(last) + FEEDBACK_INTERVAL, &mut out),
            "{}",
            c.name
        );
        assert_eq!(rec.poll_timeout(), None, "{}", c.name);
        let packets = read(&out);
        assert!(
            (c.min_packets..=c.max_packets).contains(&packets.len()),
            "{}: {} packets",
            c.name,
            packets.len()
        );
        assert!(
            packets.iter().all(|p| p.len <= MAX_PACKET_LEN),
            "{}",
            c.name
        );
        if c.run_length {
            assert!(packets.iter().any(|p| p.run_lengths > 0), "{}", c.name);
        }
        for (k, p) in packets.iter().enumerate() {
            assert_eq!(usize::from(p.fb_count), k, "{}", c.name);
        }

        // Expected: unwrap around the first, first arrival of each number counts.
        let first = i64::from(c.arrivals[0].0);
        let mut highest = first;
        let mut expected = BTreeMap::new();
        for &(seq, at) in &c.arrivals {
            let ext = highest + i64::from(seq.wrapping_sub(highest as u16) as i16);
            highest = highest.max(ext);
            expected.entry(ext).or_insert(at as i64);
        }
        let (lo, hi) = (*expected.keys().next().unwrap(), highest);
        let got: Vec<_> = packets.iter().flat_map(|p| p.statuses.clone()).collect();
        assert_eq!(got.len() as i64, hi - lo + 1, "{}: status count", c.name);
        for (k, (seq, time)) in got.into_iter().enumerate() {
            let ext = lo + k as i64;
            assert_eq!(seq, ext as u16, "{}: sequence", c.name);
            match (expected.get(&ext), time) {
                (None, None) => {}
                (Some(&at), Some(time)) => assert!(
                    (0..250).contains(&(at - time)),
                    "{}: seq {seq} arrived at {at} µs, reported {time} µs",
                    c.name
                ),
                (want, got) => panic!("{}: seq {seq}: fed {want:?}, reported {got:?}", c.name),
            }
        }
    }
}

/// A 10 s pause cannot be one delta: the second packet gets its own reference time.
#[test]
fn delta_overflow_starts_a_new_reference_time() {
    let t0 = Instant::now();
    let mut rec = TwccRecorder::new(S);
    rec.received(0, M, t0);
    rec.received(1, M, t0 + Duration::from_secs(10));
    let mut out = Vec::new();
    assert!(rec.poll_feedback(t0 + Duration::from_secs(11), &mut out));
    let packets = read(&out);
    assert_eq!(packets.len(), 2);
    assert_eq!(packets[0].statuses, [(0, Some(0))]);
    assert_eq!(packets[1].statuses, [(1, Some(10_000_000))]);
}

/// Reports continue where the last ended; a number already reported (as lost) that
/// arrives late is dropped, a duplicate is not reported twice.
#[test]
fn late_packets_after_a_report_are_dropped() {
    let t0 = Instant::now();
    let ms = |n| t0 + Duration::from_millis(n);
    let mut rec = TwccRecorder::new(S);
    for (seq, at) in [(10, 0), (11, 1), (13, 2)] {
        rec.received(seq, M, ms(at));
    }
    let mut out = Vec::new();
    assert!(rec.poll_feedback(ms(100), &mut out));
    let first = read(&out);
    assert_eq!(
        first[0].statuses,
        [
            (10, Some(0)),
            (11, Some(1_000)),
            (12, None),
            (13, Some(2_000))
        ]
    );
    rec.received(12, M, ms(101)); // reported lost: dropped
    rec.received(13, M, ms(101)); // duplicate: dropped
    assert_eq!(rec.poll_timeout(), None);
    assert!(!rec.poll_feedback(ms(300), &mut out));
    rec.received(16, M, ms(110));
    rec.received(15, M, ms(111)); // reordered, not yet reported: fills its slot
    out.clear();
    assert!(rec.poll_feedback(ms(200), &mut out));
    let second = read(&out);
    assert_eq!(second[0].fb_count, 1);
    assert_eq!(
        second[0].statuses,
        [(14, None), (15, Some(111_000)), (16, Some(110_000))]
    );
}

/// Due after the interval, or at once after a burst; never when nothing arrived.
#[test]
fn timing() {
    let t0 = Instant::now();
    let mut rec = TwccRecorder::new(S);
    let mut out = Vec::new();
    assert_eq!(rec.poll_timeout(), None);
    assert!(!rec.poll_feedback(t0 + Duration::from_secs(1), &mut out));
    rec.received(1, M, t0);
    assert_eq!(rec.poll_timeout(), Some(t0 + FEEDBACK_INTERVAL));
    assert!(!rec.poll_feedback(t0 + FEEDBACK_INTERVAL / 2, &mut out));
    assert!(out.is_empty());
    for seq in 2..=BURST as u16 {
        rec.received(seq, M, t0 + Duration::from_millis(1));
    }
    assert_eq!(rec.poll_timeout(), Some(t0));
    assert!(rec.poll_feedback(t0 + Duration::from_millis(1), &mut out));
    assert_eq!(read(&out)[0].statuses.len(), BURST);
}

/// The feedback packet count advances by one per packet, modulo 256.
#[test]
fn feedback_count_wraps() {
    let t0 = Instant::now();
    let mut rec = TwccRecorder::new(S);
    for k in 0..300u64 {
        let at = t0 + Duration::from_millis(100 * k);
        rec.received(k as u16, M, at);
        let mut out = Vec::new();
        assert!(rec.poll_feedback(at + FEEDBACK_INTERVAL, &mut out));
        let packets = read(&out);
        assert_eq!(packets.len(), 1);
        assert_eq!(packets[0].fb_count, k as u8);
    }
}

/// The extension payload is two bytes.
#[test]
fn extension_payload() {
    assert_eq!(read_extension(&[0x12, 0x34]), Some(0x1234));
    assert_eq!(read_extension(&[0x12]), None);
    assert_eq!(read_extension(&[0x12, 0x34, 0]), None);
}
