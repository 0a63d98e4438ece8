//! Writing: every writer's bytes read back by webrtc-rs's parser and by ours; NACK
//! packing around the 16-bit circle; SDES padding.

use super::*;

#[test]
fn writers_round_trip_through_webrtc_rs_and_our_parser() {
    let sent = |ssrc, total_lost| SourceReport {
        ssrc,
        block: ReportBlock {
            fraction_lost: 3,
            total_lost,
            highest_seq: 0x0001_0203,
            jitter: 44,
            last_sr: 0xAABB_CCDD,
            delay_since_last_sr: 65_536,
        },
    };
    let info = SenderInfo {
        ntp: 0x0102_0304_0506_0708,
        rtp_timestamp: 48_000,
        packets: 5,
        octets: 600,
    };
    let nack_of = |pairs: &[(u16, u16)]| -> Boxed { Box::new(nack_pairs(pairs)) };
    let ours_nack = |lost: Vec<u16>| Feedback::Nack {
        sender_ssrc: S,
        media_ssrc: M,
        lost,
    };
    let ours_report = |ssrc, lost| Feedback::Report {
        reporter: S,
        block: block(ssrc, 3, lost),
    };
    let many: Vec<SourceReport> = (0..33).map(|i| sent(i, 0)).collect();
    type Write<'a> = Box<dyn Fn(&mut Vec<u8>) + 'a>;
    let cases: Vec<(&str, Write<'_>, Vec<Boxed>, Vec<Feedback>)> = vec![
        (
            "PLI",
            Box::new(|o| write_pli(o, S, M)),
            vec![Box::new(PictureLossIndication {
                sender_ssrc: S,
                media_ssrc: M,
            })],
            vec![pli()],
        ),
        (
            "FIR",
            Box::new(|o| write_fir(o, S, M, 9)),
            vec![Box::new(FullIntraRequest {
                sender_ssrc: S,
                media_ssrc: 0,
                fir: vec![FirEntry {
                    ssrc: M,
                    sequence_number: 9,
                }],
            })],
            vec![Feedback::Fir {
                sender_ssrc: S,
                media_ssrc: M,
                seq: 9,
            }],
        ),
        (
            "NACK across the wrap, given backwards",
            Box::new(|o| write_nack(o, S, M, &[3, 2, 1, 0, 65535])),
            vec![nack_of(&[(65535, 0b1111)])],
            vec![ours_nack(vec![65535, 0, 1, 2, 3])],
        ),
        (
            "NACK unordered with repeats, three pairs",
            Box::new(|o| write_nack(o, S, M, &[300, 100, 101, 100, 117, 118])),
            vec![nack_of(&[(100, 0b1), (117, 0b1), (300, 0)])],
            vec![ours_nack(vec![100, 101, 117, 118, 300])],
        ),
        (
            "NACK of seventeen in a row",
            Box::new(|o| write_nack(o, S, M, &(65530..=65535).chain(0..=10).collect::<Vec<_>>())),
            vec![nack_of(&[(65530, 0xFFFF)])],
            vec![ours_nack((65530..=65535).chain(0..=10).collect())],
        ),
        (
            "RR without blocks",
            Box::new(|o| write_receiver_report(o, S, &[])),
            vec![Box::new(rr(vec![]))],
            vec![],
        ),
        (
            "RR with two blocks, the loss clamped to 24 bits",
            Box::new(|o| write_receiver_report(o, S, &[sent(M, 300), sent(M2, u32::MAX)])),
            vec![Box::new(rr(vec![
                reception(M, 3, 300),
                reception(M2, 3, 0x7F_FFFF),
            ]))],
            vec![ours_report(M, 300), ours_report(M2, 0x7F_FFFF)],
        ),
        (
            "RR with 33 blocks goes in two",
            Box::new(move |o| write_receiver_report(o, S, &many)),
            vec![
                Box::new(rr((0..31).map(|i| reception(i, 3, 0)).collect())),
                Box::new(rr((31..33).map(|i| reception(i, 3, 0)).collect())),
            ],
            (0..33).map(|i| ours_report(i, 0)).collect(),
        ),
        (
            "SR with a block, SDES, PLI",
            Box::new(move |o| {
                write_sender_report(o, S, &info, &[sent(M, 1)]);
                write_sdes_cname(o, S, "chorus");
                write_pli(o, S, M);
            }),
            vec![
                Box::new(SenderReport {
                    ssrc: S,
                    ntp_time: 0x0102_0304_0506_0708,
                    rtp_time: 48_000,
                    packet_count: 5,
                    octet_count: 600,
                    reports: vec![reception(M, 3, 1)],
                    ..Default::default()
                }),
                Box::new(sdes(S, b"chorus")),
                Box::new(PictureLossIndication {
                    sender_ssrc: S,
                    media_ssrc: M,
                }),
            ],
            vec![
                Feedback::SenderReport {
                    ssrc: S,
                    ntp: 0x0102_0304_0506_0708,
                    rtp_timestamp: 48_000,
                    packets: 5,
                    octets: 600,
                },
                ours_report(M, 1),
                pli(),
            ],
        ),
    ];
    for (name, write, theirs, ours) in cases {
        let mut bytes = Vec::new();
        write(&mut bytes);
        let got = unmarshal(&bytes);
        assert_eq!(got.len(), theirs.len(), "{name}: {got:?}");
        for (g, t) in got.iter().zip(&theirs) {
            assert!(g.equal(t.as_ref()), "{name}: {g:?} != {t:?}");
        }
        let n = theirs.len() as u32;
        assert_eq!(parse(&bytes), Ok((ours, read(n))), "{name}");
    }
}

#[test]
fn nack_order_follows_the_circle() {
    let cases: &[(&[u16], &[u16])] = &[
        (&[5], &[5]),
        (&[65535, 0, 1], &[65535, 0, 1]),
        (&[0, 65535], &[65535, 0]),
        (&[10, 9, 10, 27, 26], &[9, 10, 26, 27]),
        // Half the circle either way: numeric order.
        (&[32768, 0], &[0, 32768]),
        (&[40000, 2, 65000], &[40000, 65000, 2]),
    ];
    for &(lost, expected) in cases {
        let mut bytes = Vec::new();
        write_nack(&mut bytes, S, M, lost);
        let (out, _) = parse(&bytes).unwrap();
        let want = Feedback::Nack {
            sender_ssrc: S,
            media_ssrc: M,
            lost: expected.to_vec(),
        };
        assert_eq!(out, vec![want], "{lost:?}");
    }
    let mut bytes = Vec::new();
    write_nack(&mut bytes, S, M, &[]);
    assert!(bytes.is_empty(), "a NACK needs a pair");
}

#[test]
fn sdes_cname_is_null_terminated_and_padded() {
    let long = "x".repeat(300);
    // 254 ASCII bytes then a 2-byte character: cut before it.
    let wide = format!("{}é", "y".repeat(254));
    let cases: Vec<(&str, &str)> = vec![
        ("", ""),
        ("a", "a"),
        ("ab", "ab"),
        ("abc", "abc"),
        ("abcd", "abcd"),
        ("abcde", "abcde"),
        (&long, &long[..255]),
        (&wide, &wide[..254]),
    ];
    for (cname, sent) in cases {
        let mut bytes = Vec::new();
        write_sdes_cname(&mut bytes, S, cname);
        assert_eq!(bytes.len() % 4, 0, "{cname:?}");
        let got = unmarshal(&bytes);
        let want = sdes(S, sent.as_bytes());
        assert!(got.len() == 1 && got[0].equal(&want), "{cname:?}: {got:?}");
        assert_eq!(parse(&bytes), Ok((vec![], read(1))), "{cname:?}");
    }
}
