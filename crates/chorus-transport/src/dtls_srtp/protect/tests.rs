use bytes::BytesMut;
use rtc::crypto::RTCCryptoProvider;
use srtp::context::Context;

use super::*;

const A: u32 = 0x1111_aaaa;
const B: u32 = 0x2222_bbbb;
const C: u32 = 0xcafe_f00d;
const PROFILES: [SrtpProfile; 2] = [SrtpProfile::AeadAes128Gcm, SrtpProfile::Aes128CmHmacSha1_80];

fn provider() -> std::sync::Arc<dyn RTCCryptoProvider> {
    rtc::crypto::default_provider().unwrap()
}

fn keys(profile: SrtpProfile, seed: u8) -> (Vec<u8>, Vec<u8>) {
    let key = (0..16)
        .map(|i| seed.wrapping_mul(31).wrapping_add(i))
        .collect();
    let salt = (0..salt_len(profile) as u8)
        .map(|i| seed ^ (0xa0 + i))
        .collect();
    (key, salt)
}

fn sender(profile: SrtpProfile, (key, salt): &(Vec<u8>, Vec<u8>)) -> SrtpSender {
    SrtpSender::new(profile, key, salt, provider().crypto()).unwrap()
}

fn context(profile: SrtpProfile, (key, salt): &(Vec<u8>, Vec<u8>)) -> Context {
    Context::new(key, salt, profile.srtp(), None, None, provider().crypto()).unwrap()
}

/// One packet sent, in order.
struct Send {
    ssrc: u32,
    seq: u16,
    csrcs: u8,
    /// A one-byte-header extension block (RFC 8285) of two elements, 8 bytes.
    ext: bool,
    payload: usize,
}

const fn send(ssrc: u32, seq: u16, csrcs: u8, ext: bool, payload: usize) -> Send {
    Send {
        ssrc,
        seq,
        csrcs,
        ext,
        payload,
    }
}

/// Several SSRCs, A across the wrap (ROC 0 → 1) with a resend of its seq 65534 after
/// the wrap, CSRCs and extensions (longer headers), an empty payload, a stream that
/// starts high.
const SENDS: &[Send] = &[
    send(A, 65533, 0, false, 160),
    send(B, 100, 2, true, 1200),
    send(A, 65534, 0, true, 1188),
    send(A, 65535, 1, false, 1),
    send(A, 0, 0, false, 500),
    send(B, 101, 0, false, 0),
    send(A, 1, 15, true, 1000),
    send(A, 65534, 0, true, 1188),
    send(C, 40000, 0, true, 16),
    send(A, 2, 0, false, 33),
    send(C, 40001, 3, false, 1200),
    send(A, 65535, 1, false, 1),
];

/// The plaintext packet and its header length.
fn packet(s: &Send) -> (BytesMut, usize) {
    let mut p = BytesMut::new();
    p.extend_from_slice(&[0x80 | (u8::from(s.ext) << 4) | s.csrcs, 96]);
    p.extend_from_slice(&s.seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(s.seq) * 90).to_be_bytes());
    p.extend_from_slice(&s.ssrc.to_be_bytes());
    for i in 0..u32::from(s.csrcs) {
        p.extend_from_slice(&(0x5000 + i).to_be_bytes());
    }
    if s.ext {
        // 0xBEDE, 2 words: id 1 (1 byte), id 3 (3 bytes), 2 bytes of padding.
        p.extend_from_slice(&[0xbe, 0xde, 0, 2, 0x10, 0x55, 0x32, 1, 2, 3, 0, 0]);
    }
    let header_len = p.len();
    p.extend((0..s.payload).map(|i| (i * 7) as u8 ^ s.seq as u8));
    (p, header_len)
}

#[test]
fn output_is_rtc_srtps_byte_for_byte() {
    for profile in PROFILES {
        let keys = keys(profile, 1);
        let (mut ours, mut theirs) = (sender(profile, &keys), context(profile, &keys));
        for (i, s) in SENDS.iter().enumerate() {
            let (mut buf, header_len) = packet(s);
            let expected = theirs.encrypt_rtp(&buf).unwrap();
            assert_eq!(rtp_header(&buf), Ok((header_len, s.ssrc, s.seq)));
            buf.reserve(ours.rtp_overhead());
            let capacity = buf.capacity();
            ours.protect_rtp(&mut buf, header_len, s.ssrc, s.seq)
                .unwrap();
            assert_eq!(buf, expected, "{profile:?} send #{i}");
            assert_eq!(buf.len(), header_len + s.payload + ours.rtp_overhead());
            assert_eq!(buf.capacity(), capacity, "{profile:?} #{i}: reallocated");
        }
    }
}

#[test]
fn rtc_srtp_decrypts_what_it_protects() {
    for profile in PROFILES {
        let keys = keys(profile, 2);
        let (mut ours, mut receiver) = (sender(profile, &keys), context(profile, &keys));
        for (i, s) in SENDS.iter().enumerate() {
            let (mut buf, header_len) = packet(s);
            let plain = buf.clone();
            ours.protect_rtp(&mut buf, header_len, s.ssrc, s.seq)
                .unwrap();
            assert_ne!(buf[header_len..], plain[header_len..], "{profile:?} #{i}");
            let back = receiver.decrypt_rtp(&buf);
            assert_eq!(back.as_deref(), Ok(&plain[..]), "{profile:?} #{i}");
        }
    }
}

#[test]
fn other_keys_or_salts_give_other_output() {
    for profile in PROFILES {
        let (key, salt) = keys(profile, 3);
        let (other_key, other_salt) = keys(profile, 4);
        let variants = [
            (key.clone(), salt.clone()),
            (other_key, salt),
            (key, other_salt),
        ];
        let outputs: Vec<BytesMut> = variants
            .iter()
            .map(|keys| {
                let (mut buf, header_len) = packet(&SENDS[1]);
                sender(profile, keys)
                    .protect_rtp(&mut buf, header_len, B, 100)
                    .unwrap();
                buf
            })
            .collect();
        for (i, a) in outputs.iter().enumerate() {
            for b in &outputs[i + 1..] {
                assert_ne!(a, b, "{profile:?}");
            }
        }
    }
}

#[test]
fn bad_headers_are_errors_and_leave_the_buffer_alone() {
    // (buffer length, header_len)
    let cases = [(11, 12), (20, 21), (0, 12), (40, 11), (40, 0)];
    for profile in PROFILES {
        let mut s = sender(profile, &keys(profile, 5));
        for (len, header_len) in cases {
            let mut buf = BytesMut::from(&vec![0x80; len][..]);
            let got = s.protect_rtp(&mut buf, header_len, A, 1);
            assert_eq!(got, Err(ProtectError::BadHeader { header_len, len }));
            assert_eq!(buf, vec![0x80; len], "{profile:?} {len} {header_len}");
        }
    }
}

#[test]
fn master_key_and_salt_lengths_are_checked() {
    let crypto = provider();
    for profile in PROFILES {
        let salt = salt_len(profile);
        // (key length, salt length, is it accepted)
        let cases = [
            (16, salt, true),
            (15, salt, false),
            (32, salt, false),
            (16, salt + 1, false),
        ];
        for (key_len, salt_len, ok) in cases {
            let got = SrtpSender::new(
                profile,
                &vec![1; key_len],
                &vec![2; salt_len],
                crypto.crypto(),
            );
            assert_eq!(got.is_ok(), ok, "{profile:?} {key_len} {salt_len}");
        }
    }
}

#[test]
fn rollover_counter_per_ssrc() {
    // (ssrc, seq, expected ROC), in order.
    let cases = [
        (A, 65534, 0),
        (A, 65535, 0),
        (A, 0, 1),
        (B, 40000, 0),
        (A, 1, 1),
        // A NACK resend of a packet from before the wrap.
        (A, 65534, 0),
        (A, 2, 1),
        // From 100 at ROC 0 a seq far above is a jump forward, not ROC -1.
        (C, 100, 0),
        (C, 40000, 0),
        (C, 7000, 1),
        // Nearer 40000 at ROC 0 than 40000 at ROC 1: the resend of the earlier one.
        (C, 40000, 0),
        (B, 7000, 1),
        (A, 30000, 1),
        (A, 60000, 1),
        (A, 7000, 2),
    ];
    let mut streams = Streams::default();
    for (i, (ssrc, seq, roc)) in cases.into_iter().enumerate() {
        let (slot, index) = streams.index(ssrc, seq).unwrap();
        assert_eq!((index >> 16, index as u16), (roc, seq), "case #{i}");
        streams.sent(slot, index);
    }
}

#[test]
fn the_last_rollover_is_refused() {
    let mut streams = Streams::default();
    let (slot, _) = streams.index(A, 65535).unwrap();
    streams.sent(slot, MAX_INDEX);
    assert_eq!(streams.index(A, 0), Err(ProtectError::Exhausted(A)));
    assert_eq!(streams.index(A, 65000).map(|(_, i)| i), Ok(MAX_INDEX - 535));
}

#[test]
fn rtp_header_reads_length_ssrc_and_seq() {
    let ok = packet(&SENDS[6]).0;
    // (packet, expected)
    type Fields = Result<(usize, u32, u16), ProtectError>;
    let cases: [(&[u8], Fields); 4] = [
        (&ok, Ok((12 + 60 + 12, A, 1))),
        (
            &ok[..11],
            Err(ProtectError::BadHeader {
                header_len: 12,
                len: 11,
            }),
        ),
        // The CSRC list, then the extension's length, cut short.
        (
            &ok[..40],
            Err(ProtectError::BadHeader {
                header_len: 76,
                len: 40,
            }),
        ),
        (
            &ok[..80],
            Err(ProtectError::BadHeader {
                header_len: 84,
                len: 80,
            }),
        ),
    ];
    for (i, (p, expected)) in cases.into_iter().enumerate() {
        assert_eq!(rtp_header(p), expected, "case #{i}");
    }
}
