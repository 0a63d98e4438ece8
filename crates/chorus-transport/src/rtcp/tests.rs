//! Both directions against webrtc-rs's own (independent) RTCP marshalling, plus
//! hand-crafted bytes for the forms it does not produce.

use bytes::Bytes;
use chorus_core::reports::{ReportBlock, SenderInfo};
use rtc::rtcp::Packet;
use rtc::rtcp::goodbye::Goodbye;
use rtc::rtcp::payload_feedbacks::full_intra_request::{FirEntry, FullIntraRequest};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::reception_report::ReceptionReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::source_description::{
    SdesType, SourceDescription, SourceDescriptionChunk, SourceDescriptionItem,
};
use rtc::rtcp::transport_feedbacks::transport_layer_cc::{
    PacketStatusChunk, RecvDelta, RunLengthChunk, StatusChunkTypeTcc, SymbolTypeTcc,
    TransportLayerCc,
};
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{NackPair, TransportLayerNack};

use super::*;

/// The remote end's own SSRC, the one feedback comes from.
const S: u32 = 0x0A11_CE00;
/// A media stream.
const M: u32 = 0x5E47_0001;
const M2: u32 = 0x5E47_0002;

type Boxed = Box<dyn Packet>;

fn marshal(packets: Vec<Boxed>) -> Vec<u8> {
    rtc::rtcp::packet::marshal(&packets).unwrap().to_vec()
}

fn unmarshal(bytes: &[u8]) -> Vec<Boxed> {
    rtc::rtcp::packet::unmarshal(&mut &bytes[..]).unwrap()
}

fn parse(bytes: &[u8]) -> Result<(Vec<Feedback>, Parsed), RtcpError> {
    let mut out = Vec::new();
    parse_compound(bytes, &mut out).map(|parsed| (out, parsed))
}

fn read(n: u32) -> Parsed {
    Parsed {
        read: n,
        ..Parsed::default()
    }
}

/// A packet built by hand: header from `count`, `pt` and the body's length.
fn raw(count: u8, pt: u8, body: &[u32]) -> Vec<u8> {
    let mut b = vec![0x80 | count, pt, 0, body.len() as u8];
    body.iter().for_each(|w| b.extend(w.to_be_bytes()));
    b
}

fn pli() -> Feedback {
    Feedback::Pli {
        sender_ssrc: S,
        media_ssrc: M,
    }
}

fn block(ssrc: u32, fraction_lost: u8, cumulative_lost: i32) -> ReportBlockIn {
    ReportBlockIn {
        ssrc,
        fraction_lost,
        cumulative_lost,
        highest_seq: 0x0001_0203,
        jitter: 44,
        last_sr: 0xAABB_CCDD,
        delay_since_last_sr: 65_536,
    }
}

fn reception(ssrc: u32, fraction_lost: u8, total_lost: u32) -> ReceptionReport {
    ReceptionReport {
        ssrc,
        fraction_lost,
        total_lost,
        last_sequence_number: 0x0001_0203,
        jitter: 44,
        last_sender_report: 0xAABB_CCDD,
        delay: 65_536,
    }
}

fn sdes(ssrc: u32, cname: &[u8]) -> SourceDescription {
    SourceDescription {
        chunks: vec![SourceDescriptionChunk {
            source: ssrc,
            items: vec![SourceDescriptionItem {
                sdes_type: SdesType::SdesCname,
                text: Bytes::copy_from_slice(cname),
            }],
        }],
    }
}

fn rr(reports: Vec<ReceptionReport>) -> ReceiverReport {
    ReceiverReport {
        ssrc: S,
        reports,
        ..Default::default()
    }
}

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
    let nack = |pairs: &[(u16, u16)]| TransportLayerNack {
        sender_ssrc: S,
        media_ssrc: M,
        nacks: pairs
            .iter()
            .map(|&(packet_id, lost_packets)| NackPair {
                packet_id,
                lost_packets,
            })
            .collect(),
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
            vec![Box::new(nack(&[(100, 0b101), (65534, 0b111)]))],
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
            vec![Feedback::TransportCc {
                sender_ssrc: S,
                media_ssrc: M,
            }],
        ),
        (
            "RR, SDES, then several feedback packets",
            vec![
                Box::new(rr(vec![reception(M, 0, 0)])),
                Box::new(sdes(S, b"c")),
                pli_box(),
                Box::new(nack(&[(9, 0)])),
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
    let nack_of = |pairs: &[(u16, u16)]| -> Boxed {
        Box::new(TransportLayerNack {
            sender_ssrc: S,
            media_ssrc: M,
            nacks: pairs
                .iter()
                .map(|&(packet_id, lost_packets)| NackPair {
                    packet_id,
                    lost_packets,
                })
                .collect(),
        })
    };
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
