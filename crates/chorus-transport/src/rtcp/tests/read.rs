//! Reading: webrtc-rs's own packets and hand-crafted compounds into values, and no
//! input that panics.

use super::*;

#[test]
fn webrtc_rs_packets_are_read_into_values() {
    let twcc = TransportLayerCc {
        sender_ssrc: S,
        media_ssrc: M,
        base_sequence_number: 153,
        packet_status_count: 1,
        reference_time: 4_057_090,
        fb_pkt_count: 23,
        packet_chunks: vec![PacketStatusChunk::RunLengthChunk(RunLengthChunk {
            type_tcc: StatusChunkTypeTcc::RunLengthChunk,
            packet_status_symbol: SymbolTypeTcc::PacketReceivedSmallDelta,
            run_length: 1,
        })],
        recv_deltas: vec![RecvDelta {
            type_tcc_packet: SymbolTypeTcc::PacketReceivedSmallDelta,
            delta: 37_000,
        }],
    };
    let pli_box = || -> Boxed {
        Box::new(PictureLossIndication {
            sender_ssrc: S,
            media_ssrc: M,
        })
    };
    let cases: Vec<(&str, Vec<Boxed>, Vec<Feedback>)> = vec![
        ("PLI", vec![pli_box()], vec![pli()]),
        (
            "NACK, two pairs, the second across the wrap",
            vec![Box::new(nack_pairs(&[(100, 0b101), (65534, 0b111)]))],
            vec![Feedback::Nack {
                sender_ssrc: S,
                media_ssrc: M,
                lost: vec![100, 101, 103, 65534, 65535, 0, 1],
            }],
        ),
        (
            "RR with two blocks, one with cumulative loss -1",
            vec![Box::new(rr(vec![
                reception(M, 12, 300),
                reception(M2, 0, 0xFF_FFFF),
            ]))],
            vec![
                Feedback::Report {
                    reporter: S,
                    block: block(M, 12, 300),
                },
                Feedback::Report {
                    reporter: S,
                    block: block(M2, 0, -1),
                },
            ],
        ),
        (
            "SR with a block",
            vec![Box::new(SenderReport {
                ssrc: S,
                ntp_time: 0xDEAD_BEEF_0123_4567,
                rtp_time: 90_000,
                packet_count: 10,
                octet_count: 12_000,
                reports: vec![reception(M, 1, 2)],
                ..Default::default()
            })],
            vec![
                Feedback::SenderReport {
                    ssrc: S,
                    ntp: 0xDEAD_BEEF_0123_4567,
                    rtp_timestamp: 90_000,
                    packets: 10,
                    octets: 12_000,
                },
                Feedback::Report {
                    reporter: S,
                    block: block(M, 1, 2),
                },
            ],
        ),
        (
            "RR, SDES, BYE with a reason, FIR with two entries",
            vec![
                Box::new(rr(vec![])),
                Box::new(sdes(S, b"user@host")),
                Box::new(Goodbye {
                    sources: vec![S, M],
                    reason: Bytes::from_static(b"done"),
                }),
                Box::new(FullIntraRequest {
                    sender_ssrc: S,
                    media_ssrc: 0,
                    fir: vec![
                        FirEntry {
                            ssrc: M,
                            sequence_number: 7,
                        },
                        FirEntry {
                            ssrc: M2,
                            sequence_number: 255,
                        },
                    ],
                }),
            ],
            vec![
                Feedback::Bye { ssrcs: vec![S, M] },
                Feedback::Fir {
                    sender_ssrc: S,
                    media_ssrc: M,
                    seq: 7,
                },
                Feedback::Fir {
                    sender_ssrc: S,
                    media_ssrc: M2,
                    seq: 255,
                },
            ],
        ),
        (
            "REMB",
            vec![Box::new(ReceiverEstimatedMaximumBitrate {
                sender_ssrc: S,
                bitrate: 1_500_000.0,
                ssrcs: vec![M, M2],
            })],
            vec![Feedback::Remb {
                bitrate_bps: 1_500_000,
                ssrcs: vec![M, M2],
            }],
        ),
        (
            "transport-wide CC",
            vec![Box::new(twcc)],
            // webrtc-rs's encoding read back: reference time × 64 ms plus the delta.
            vec![Feedback::TransportCc {
                sender_ssrc: S,
                media_ssrc: M,
                packets: vec![chorus_core::bwe::PacketResult {
                    seq: chorus_core::bwe::TransportSeq(153),
                    arrival: Some(std::time::Duration::from_micros(
                        4_057_090 * 64_000 + 37_000,
                    )),
                }],
            }],
        ),
        (
            "RR, SDES, then several feedback packets",
            vec![
                Box::new(rr(vec![reception(M, 0, 0)])),
                Box::new(sdes(S, b"c")),
                pli_box(),
                Box::new(nack_pairs(&[(9, 0)])),
                pli_box(),
            ],
            vec![
                Feedback::Report {
                    reporter: S,
                    block: block(M, 0, 0),
                },
                pli(),
                Feedback::Nack {
                    sender_ssrc: S,
                    media_ssrc: M,
                    lost: vec![9],
                },
                pli(),
            ],
        ),
    ];
    for (name, packets, expected) in cases {
        let n = packets.len() as u32;
        let bytes = marshal(packets);
        assert_eq!(parse(&bytes), Ok((expected, read(n))), "{name}");
    }
}

#[test]
fn hand_crafted_compounds() {
    let cat = |parts: &[&[u8]]| parts.concat();
    let pli_bytes = raw(1, 206, &[S, M]);
    let rr0 = raw(0, 201, &[S]);
    // SDES chunk: SSRC, CNAME "ab", one null, padded to 32 bits.
    let sdes = raw(1, 202, &[S, 0x0102_6162, 0]);
    let bye = raw(1, 203, &[S]);
    let app = raw(0, 204, &[S, u32::from_be_bytes(*b"chor"), 42]);
    let mut padded = raw(1, 206, &[S, M, 4]);
    padded[0] |= 0x20;
    let mut bad_padding = padded.clone();
    bad_padding[15] = 0;
    let mut v1 = pli_bytes.clone();
    v1[0] = 0x41;
    let mut past_end = pli_bytes.clone();
    past_end[3] = 5;
    let nack = |fci: &[u32]| raw(1, 205, &[&[S, M][..], fci].concat());
    // No SSRCs, exponent 63, mantissa all ones.
    let remb_max = raw(15, 206, &[S, 0, u32::from_be_bytes(*b"REMB"), 0x00FF_FFFF]);
    let report = |lost: u32| raw(1, 201, &[S, M, lost, 0x0001_0203, 44, 0xAABB_CCDD, 65_536]);
    let parsed = |read, unknown, malformed| Parsed {
        read,
        unknown,
        malformed,
    };

    type Expected = Result<(Vec<Feedback>, Parsed), RtcpError>;
    let cases: Vec<(&str, Vec<u8>, Expected)> = vec![
        ("RR with no blocks", rr0.clone(), Ok((vec![], read(1)))),
        (
            "RR, SDES, BYE, then PLI",
            cat(&[&rr0, &sdes, &bye, &pli_bytes]),
            Ok((vec![Feedback::Bye { ssrcs: vec![S] }, pli()], read(4))),
        ),
        (
            "reduced-size lone NACK",
            nack(&[100 << 16 | 0x8001]),
            Ok((
                vec![Feedback::Nack {
                    sender_ssrc: S,
                    media_ssrc: M,
                    lost: vec![100, 101, 116],
                }],
                read(1),
            )),
        ),
        (
            "padding on the last packet",
            cat(&[&rr0, &padded]),
            Ok((vec![pli()], read(2))),
        ),
        (
            "padding count of zero",
            bad_padding,
            Ok((vec![], parsed(0, 0, 1))),
        ),
        (
            "BYE of no one, header only, then PLI",
            cat(&[&raw(0, 203, &[]), &pli_bytes]),
            Ok((vec![Feedback::Bye { ssrcs: vec![] }, pli()], read(2))),
        ),
        (
            "APP between two PLIs",
            cat(&[&pli_bytes, &app, &pli_bytes]),
            Ok((vec![pli(), pli()], parsed(2, 1, 0))),
        ),
        (
            "XR and an SLI skipped",
            cat(&[
                &rr0,
                &raw(0, 207, &[S, 0x0400_0002, 1, 2]),
                &raw(2, 206, &[S, M, 0]),
            ]),
            Ok((vec![], parsed(1, 2, 0))),
        ),
        (
            "truncated last packet after a PLI",
            cat(&[&pli_bytes, &[0x81, 206, 0, 2, 1, 2, 3]]),
            Ok((vec![pli()], parsed(1, 0, 1))),
        ),
        (
            "version 1 after a PLI",
            cat(&[&pli_bytes, &v1]),
            Ok((vec![pli()], parsed(1, 0, 1))),
        ),
        (
            "PLI too short between valid packets",
            cat(&[&rr0, &raw(1, 206, &[S]), &pli_bytes]),
            Ok((vec![pli()], parsed(2, 0, 1))),
        ),
        (
            "RR claiming two blocks with one present leaks none",
            cat(&[&raw(2, 201, &[S, M, 0, 0, 0, 0, 0]), &pli_bytes]),
            Ok((vec![pli()], parsed(1, 0, 1))),
        ),
        (
            "NACK without a pair",
            nack(&[]),
            Ok((vec![], parsed(0, 0, 1))),
        ),
        (
            "RR block with cumulative loss -2",
            report(7 << 24 | 0xFF_FFFE),
            Ok((
                vec![Feedback::Report {
                    reporter: S,
                    block: block(M, 7, -2),
                }],
                read(1),
            )),
        ),
        (
            "REMB beyond u64 saturates",
            remb_max,
            Ok((
                vec![Feedback::Remb {
                    bitrate_bps: u64::MAX,
                    ssrcs: vec![],
                }],
                read(1),
            )),
        ),
        ("zero-length input", vec![], Err(RtcpError::Empty)),
        (
            "three bytes",
            vec![0x80, 201, 0],
            Err(RtcpError::ShortHeader(3)),
        ),
        ("version 1 header", v1, Err(RtcpError::Version(1))),
        (
            "length field past the end",
            past_end,
            Err(RtcpError::Truncated {
                claimed: 24,
                available: 12,
            }),
        ),
    ];
    for (name, bytes, expected) in cases {
        assert_eq!(parse(&bytes), expected, "{name}");
    }
}

#[test]
fn no_input_panics() {
    let mut compound = Vec::new();
    write_sender_report(
        &mut compound,
        S,
        &SenderInfo {
            ntp: 1,
            rtp_timestamp: 2,
            packets: 3,
            octets: 4,
        },
        &[],
    );
    write_sdes_cname(&mut compound, S, "abc");
    write_nack(&mut compound, S, M, &[1, 5, 40]);
    write_fir(&mut compound, S, M, 1);
    compound.extend(raw(
        15,
        206,
        &[S, 0, u32::from_be_bytes(*b"REMB"), 0x02FF_FFFF, M, M2],
    ));
    compound.extend(raw(2, 203, &[S, M]));
    for len in 0..=compound.len() {
        let _ = parse(&compound[..len]);
    }
    for at in 0..compound.len() {
        for flip in [0x01, 0x20, 0x80, 0xFF] {
            let mut bytes = compound.clone();
            bytes[at] ^= flip;
            let _ = parse(&bytes);
        }
    }
}

#[test]
fn totals_count_what_each_compound_held() {
    let totals = RtcpTotals::default();
    totals.count(&Ok(Parsed {
        read: 3,
        unknown: 1,
        malformed: 0,
    }));
    totals.count(&Ok(Parsed {
        read: 1,
        unknown: 0,
        malformed: 1,
    }));
    totals.count(&Err(RtcpError::Empty));
    assert_eq!(totals.read(), 4);
    assert_eq!(totals.skipped(), [("unknown_type", 1), ("malformed", 2)]);
}
