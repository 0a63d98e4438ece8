use super::*;
use crate::g711::ulaw_encode;
use crate::sdes::SdesKey;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn endpoint(codec: PlainCodec, pt: u8, now: Instant) -> Endpoint {
    Endpoint::new(
        EndpointConfig {
            codec,
            payload_type: pt,
            remote: addr("127.0.0.1:4000"),
            ssrc: 0x1234_5678,
            initial_timestamp: 1_000,
            timeout: Duration::from_secs(5),
            srtp: None,
        },
        now,
    )
    .unwrap()
}

fn packet(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let h = RtpHeader {
        marker: false,
        payload_type: pt,
        seq,
        timestamp: ts,
        ssrc,
    };
    rtp::write(&h, payload, &mut out);
    out
}

#[test]
fn packets_are_taken_or_dropped_by_name() {
    let t0 = Instant::now();
    let from = addr("127.0.0.1:5555");
    let silence = [0xffu8; 160];
    // (name, source, bytes, expected)
    type Case = (&'static str, SocketAddr, Vec<u8>, Result<(), DropReason>);
    let cases: Vec<Case> = vec![
        (
            "first packet",
            from,
            packet(0, 10, 8_000, 7, &silence),
            Ok(()),
        ),
        // Another port of the same host is the same participant.
        (
            "another port",
            addr("127.0.0.1:6666"),
            packet(0, 11, 8_160, 7, &silence),
            Ok(()),
        ),
        (
            "another host",
            addr("127.0.0.2:5555"),
            packet(0, 12, 8_320, 7, &silence),
            Err(DropReason::WrongSource),
        ),
        (
            "not RTP",
            from,
            vec![0x16, 0xfe, 0xfd],
            Err(DropReason::BadPacket),
        ),
        (
            "comfort noise",
            from,
            packet(13, 12, 8_320, 7, &[0x40]),
            Err(DropReason::WrongPayloadType),
        ),
        (
            "PCMA on a PCMU line",
            from,
            packet(8, 12, 8_320, 7, &silence),
            Err(DropReason::WrongPayloadType),
        ),
        (
            "late",
            from,
            packet(0, 9, 7_840, 7, &silence),
            Err(DropReason::Late),
        ),
        (
            "duplicate",
            from,
            packet(0, 11, 8_160, 7, &silence),
            Err(DropReason::Late),
        ),
        (
            "two seconds in one packet",
            from,
            packet(0, 12, 8_320, 7, &[0xff; 16_000]),
            Err(DropReason::TooLong),
        ),
        ("next", from, packet(0, 12, 8_320, 7, &silence), Ok(())),
        // A new SSRC starts a new stream, whatever its numbers.
        ("new SSRC", from, packet(0, 1, 5, 8, &silence), Ok(())),
    ];
    let mut e = endpoint(PlainCodec::Pcmu, 0, t0);
    for (name, source, bytes, want) in &cases {
        assert_eq!(e.handle_datagram(*source, bytes, t0), *want, "{name}");
    }
    let stats = e.stats();
    assert_eq!(stats.received, cases.len() as u64);
    assert_eq!(stats.dropped(DropReason::WrongSource), 1);
    assert_eq!(stats.dropped(DropReason::BadPacket), 1);
    assert_eq!(stats.dropped(DropReason::WrongPayloadType), 2);
    assert_eq!(stats.dropped(DropReason::Late), 2);
    assert_eq!(stats.dropped(DropReason::TooLong), 1);
    // Four 20 ms packets taken: four frames, numbered in order.
    let seqs: Vec<u64> = std::iter::from_fn(|| e.poll_frame())
        .map(|f| f.seq)
        .collect();
    assert_eq!(seqs, vec![0, 1, 2, 3]);
}

#[test]
fn odd_packet_sizes_and_gaps_become_20_ms_frames() {
    let t0 = Instant::now();
    let mut e = endpoint(PlainCodec::Pcmu, 0, t0);
    let from = addr("127.0.0.1:5555");
    // 30 ms, then a 10 ms gap, then 40 ms: 80 ms in all, four frames.
    let loud = [ulaw_encode(8_000); 240];
    e.handle_datagram(from, &packet(0, 1, 0, 1, &loud), t0)
        .unwrap();
    e.handle_datagram(from, &packet(0, 2, 320, 1, &[0xff; 320]), t0)
        .unwrap();
    let frames: Vec<InboundFrame> = std::iter::from_fn(|| e.poll_frame()).collect();
    assert_eq!(frames.len(), 4);
    assert!(frames.iter().all(|f| f.pcm.len() == FRAME_SAMPLES));
    // The first frame carries the loud part (after the filter's start).
    assert!(frames[0].pcm[200..].iter().all(|&s| s > 6_000));
}

#[test]
fn the_mix_goes_out_as_rtp_in_the_participants_codec() {
    let t0 = Instant::now();
    // (codec, payload type, audio, expected payload length, timestamp step)
    let pcm = vec![1_000i16; FRAME_SAMPLES];
    let opus = [0xf8u8, 0xff, 0xfe];
    let cases: [(PlainCodec, u8, MixAudio, usize, u32); 3] = [
        (PlainCodec::Pcmu, 0, MixAudio::Pcm(&pcm), 160, 160),
        (PlainCodec::Pcma, 8, MixAudio::Pcm(&pcm), 160, 160),
        (PlainCodec::Opus, 111, MixAudio::Opus(&opus), 3, 960),
    ];
    for (codec, pt, audio, len, step) in cases {
        let mut e = endpoint(codec, pt, t0);
        let mut out = Vec::new();
        let mut headers = Vec::new();
        // Mix frames 7, 8 and 10 (the mixer skipped 9).
        for seq in [7, 8, 10] {
            assert!(e.send_mix(seq, audio, &mut out), "{codec:?}");
            let (h, payload) = rtp::parse(&out).unwrap();
            assert_eq!(payload.len(), len, "{codec:?}");
            headers.push(h);
        }
        let first = 0x1234u16;
        let want = [
            (true, first, 1_000),
            (false, first + 1, 1_000 + step),
            (false, first + 2, 1_000 + 3 * step),
        ];
        for (h, (marker, seq, ts)) in headers.iter().zip(want) {
            assert_eq!(
                (h.marker, h.payload_type, h.seq, h.timestamp, h.ssrc),
                (marker, pt, seq, ts, 0x1234_5678),
                "{codec:?}"
            );
        }
        // The wrong kind of audio for the codec is refused.
        let wrong = match audio {
            MixAudio::Pcm(_) => MixAudio::Opus(&opus),
            MixAudio::Opus(_) => MixAudio::Pcm(&pcm),
        };
        assert!(!e.send_mix(11, wrong, &mut out), "{codec:?}");
    }
}

#[test]
fn silence_for_the_timeout_lets_it_go() {
    let t0 = Instant::now();
    let mut e = endpoint(PlainCodec::Pcma, 8, t0);
    let from = addr("127.0.0.1:5555");
    let s = Duration::from_secs(1);
    assert_eq!(e.handle_timeout(t0 + 4 * s), None);
    // A packet at 4 s moves the deadline to 9 s; a dropped one does not.
    e.handle_datagram(from, &packet(8, 1, 0, 1, &[0xd5; 160]), t0 + 4 * s)
        .unwrap();
    let _ = e.handle_datagram(from, &packet(0, 2, 160, 1, &[0xd5; 160]), t0 + 8 * s);
    assert_eq!(e.poll_timeout(), t0 + 9 * s);
    assert_eq!(e.handle_timeout(t0 + 8 * s), None);
    assert_eq!(e.handle_timeout(t0 + 9 * s), Some(Gone::RtpTimeout));
}

#[test]
fn srtp_both_ways_with_sdes_keys() {
    let t0 = Instant::now();
    let phone_key = SdesKey([7; 30]);
    let chorus_key = SdesKey([9; 30]);
    let config = |srtp| EndpointConfig {
        codec: PlainCodec::Pcmu,
        payload_type: 0,
        remote: addr("127.0.0.1:4000"),
        ssrc: 5,
        initial_timestamp: 0,
        timeout: Duration::from_secs(5),
        srtp,
    };
    // Chorus's side and, as the phone, an endpoint keyed the other way round.
    let mut chorus =
        Endpoint::new(config(Some((phone_key.clone(), chorus_key.clone()))), t0).unwrap();
    let mut phone =
        Endpoint::new(config(Some((chorus_key.clone(), phone_key.clone()))), t0).unwrap();
    let from = addr("127.0.0.1:4000");
    let pcm = vec![3_000i16; FRAME_SAMPLES];
    let mut sent = Vec::new();
    // (name, packet from the phone, expected)
    let mut cases: Vec<(&str, Vec<u8>, Result<(), DropReason>)> = Vec::new();
    assert!(phone.send_mix(0, MixAudio::Pcm(&pcm), &mut sent));
    assert_eq!(sent.len(), 12 + 160 + 10, "header, payload, 80-bit tag");
    cases.push(("protected", sent.clone(), Ok(())));
    cases.push(("replayed", sent.clone(), Err(DropReason::SrtpAuth)));
    assert!(phone.send_mix(1, MixAudio::Pcm(&pcm), &mut sent));
    let mut tampered = sent.clone();
    tampered[20] ^= 1;
    cases.push(("tampered", tampered, Err(DropReason::SrtpAuth)));
    cases.push((
        "in the clear",
        packet(0, 9, 320, 5, &[0xff; 160]),
        Err(DropReason::SrtpAuth),
    ));
    cases.push(("the next", sent.clone(), Ok(())));
    for (name, bytes, want) in cases {
        assert_eq!(chorus.handle_datagram(from, &bytes, t0), want, "{name}");
    }
    assert_eq!(chorus.stats().dropped(DropReason::SrtpAuth), 3);
    // What Chorus sends, the phone's side decrypts.
    let mut out = Vec::new();
    assert!(chorus.send_mix(0, MixAudio::Pcm(&pcm), &mut out));
    assert_eq!(phone.handle_datagram(from, &out, t0), Ok(()));
    // Keys are read as SDP's inline: base64 of 30 bytes, suite by name.
    let cases: [(&str, &str, bool); 5] = [
        (
            "AES_CM_128_HMAC_SHA1_80",
            "inline:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH",
            true,
        ),
        (
            "AES_CM_128_HMAC_SHA1_80",
            "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH",
            true,
        ),
        (
            "AES_CM_128_HMAC_SHA1_32",
            "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH",
            false,
        ),
        ("AES_CM_128_HMAC_SHA1_80", "BwcHBwcH", false),
        (
            "AES_CM_128_HMAC_SHA1_80",
            "inline:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH|2^20",
            false,
        ),
    ];
    for (suite, key, ok) in cases {
        assert_eq!(SdesKey::parse(suite, key).is_ok(), ok, "{suite} {key}");
    }
    assert_eq!(
        phone_key.to_base64(),
        "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH"
    );
}
