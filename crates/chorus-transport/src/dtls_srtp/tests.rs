use std::time::Duration;

use super::hello::client_hello_srtp_profiles;
use super::*;

fn config(profiles: &[SrtpProfile]) -> DtlsSrtpConfig {
    let mut c = DtlsSrtpConfig::generate().expect("certificate");
    c.profiles = profiles.to_vec();
    c
}

/// A client and a server that trust each other's certificates.
fn pair(client: &DtlsSrtpConfig, server: &DtlsSrtpConfig, now: Instant) -> (DtlsSrtp, DtlsSrtp) {
    let c = DtlsSrtp::new(
        DtlsRole::Client,
        client,
        &server.fingerprint().unwrap(),
        now,
    )
    .unwrap();
    let s = DtlsSrtp::new(
        DtlsRole::Server,
        server,
        &client.fingerprint().unwrap(),
        now,
    )
    .unwrap();
    (c, s)
}

/// Moves records both ways until neither has anything to send; the events each saw,
/// or the first error. `drop_first` loses the client's first flight.
fn run(
    c: &mut DtlsSrtp,
    s: &mut DtlsSrtp,
    now: &mut Instant,
    mut drop_first: bool,
) -> Result<(Vec<DtlsEvent>, Vec<DtlsEvent>), DtlsError> {
    let (mut ce, mut se) = (Vec::new(), Vec::new());
    for _ in 0..50 {
        let mut moved = false;
        while let Some(d) = c.poll_transmit() {
            moved = true;
            if std::mem::take(&mut drop_first) {
                continue;
            }
            se.extend(s.handle_datagram(d, *now)?);
        }
        while let Some(d) = s.poll_transmit() {
            moved = true;
            ce.extend(c.handle_datagram(d, *now)?);
        }
        if !moved {
            if c.profile().is_some() && s.profile().is_some() {
                break;
            }
            // Nothing in flight: let the retransmission timers run.
            *now += Duration::from_secs(1);
            c.handle_timeout(*now)?;
            s.handle_timeout(*now)?;
        }
    }
    Ok((ce, se))
}

fn rtp(seq: u16) -> Vec<u8> {
    let mut p = vec![
        0x80,
        96,
        (seq >> 8) as u8,
        seq as u8,
        0,
        0,
        0,
        1,
        0,
        0,
        0,
        42,
    ];
    p.extend_from_slice(&[7u8; 100]);
    p
}

/// A receiver report without report blocks.
const RR: [u8; 8] = [0x80, 201, 0, 1, 0, 0, 0, 42];

#[test]
fn the_server_picks_its_preferred_profile_among_those_the_client_offers() {
    use SrtpProfile::*;
    // (client's profiles, server's profiles, negotiated; None: the handshake fails)
    let cases: [(&[SrtpProfile], &[SrtpProfile], Option<SrtpProfile>); 6] = [
        (
            &[AeadAes128Gcm, Aes128CmHmacSha1_80],
            &[AeadAes128Gcm, Aes128CmHmacSha1_80],
            Some(AeadAes128Gcm),
        ),
        (
            &[Aes128CmHmacSha1_80],
            &[AeadAes128Gcm, Aes128CmHmacSha1_80],
            Some(Aes128CmHmacSha1_80),
        ),
        (
            &[AeadAes128Gcm],
            &[Aes128CmHmacSha1_80, AeadAes128Gcm],
            Some(AeadAes128Gcm),
        ),
        // The server's order wins (Chromium lists AES-CM first): GCM whenever offered.
        (
            &[Aes128CmHmacSha1_80, AeadAes128Gcm],
            &[AeadAes128Gcm, Aes128CmHmacSha1_80],
            Some(AeadAes128Gcm),
        ),
        (
            &[AeadAes128Gcm, Aes128CmHmacSha1_80],
            &[Aes128CmHmacSha1_80, AeadAes128Gcm],
            Some(Aes128CmHmacSha1_80),
        ),
        (&[Aes128CmHmacSha1_80], &[AeadAes128Gcm], None),
    ];
    for (i, (client, server, want)) in cases.into_iter().enumerate() {
        let mut now = Instant::now();
        let (mut c, mut s) = pair(&config(client), &config(server), now);
        let result = run(&mut c, &mut s, &mut now, false);
        match want {
            Some(p) => {
                let (ce, se) = result.unwrap_or_else(|e| panic!("case {i}: {e}"));
                assert_eq!(ce, vec![DtlsEvent::Established(p)], "case {i}");
                assert_eq!(se, vec![DtlsEvent::Established(p)], "case {i}");
            }
            None => assert!(result.is_err() && s.profile().is_none(), "case {i}"),
        }
    }
}

#[test]
fn media_is_keyed_both_ways_and_replays_are_refused() {
    for profile in SrtpProfile::ALL {
        let mut now = Instant::now();
        let both = config(&[profile]);
        let (mut c, mut s) = pair(&both, &both, now);
        run(&mut c, &mut s, &mut now, false).unwrap();
        for seq in [1u16, 2, 65535, 0] {
            let sent = c.protect_rtp(&rtp(seq)).unwrap();
            assert_ne!(
                &sent[12..],
                &rtp(seq)[12..],
                "{profile:?}: the payload is encrypted"
            );
            assert_eq!(
                &s.unprotect_rtp(&sent).unwrap()[..],
                &rtp(seq)[..],
                "{profile:?}"
            );
            let back = s.protect_rtp(&rtp(seq)).unwrap();
            assert_eq!(
                &c.unprotect_rtp(&back).unwrap()[..],
                &rtp(seq)[..],
                "{profile:?}"
            );
        }
        // In place, in the caller's buffer, with the room for the tag reserved.
        let overhead = c.rtp_overhead().unwrap();
        let mut buf = BytesMut::with_capacity(rtp(3).len() + overhead);
        buf.extend_from_slice(&rtp(3));
        c.protect_rtp_in_place(&mut buf, 12, 42, 3).unwrap();
        assert_eq!(buf.len(), rtp(3).len() + overhead, "{profile:?}");
        assert_eq!(
            &s.unprotect_rtp(&buf).unwrap()[..],
            &rtp(3)[..],
            "{profile:?}"
        );
        let again = c.protect_rtp(&rtp(7)).unwrap();
        s.unprotect_rtp(&again).unwrap();
        assert!(
            s.unprotect_rtp(&again).is_err(),
            "{profile:?}: a replay is refused"
        );
        let rr = c.protect_rtcp(&RR).unwrap();
        assert_eq!(&s.unprotect_rtcp(&rr).unwrap()[..], &RR[..], "{profile:?}");
        // A packet protected for the other direction does not decrypt here.
        let wrong_way = s.protect_rtp(&rtp(9)).unwrap();
        assert!(s.unprotect_rtp(&wrong_way).is_err(), "{profile:?}");
    }
}

#[test]
fn a_certificate_that_does_not_match_the_fingerprint_is_refused() {
    let now = Instant::now();
    let (client, server, other) = (
        config(&SrtpProfile::ALL),
        config(&SrtpProfile::ALL),
        config(&SrtpProfile::ALL),
    );
    let mut c = DtlsSrtp::new(
        DtlsRole::Client,
        &client,
        &other.fingerprint().unwrap(),
        now,
    )
    .unwrap();
    let mut s = DtlsSrtp::new(
        DtlsRole::Server,
        &server,
        &client.fingerprint().unwrap(),
        now,
    )
    .unwrap();
    let mut clock = now;
    assert!(run(&mut c, &mut s, &mut clock, false).is_err());
    assert_eq!(c.profile(), None);
    assert!(matches!(
        c.protect_rtp(&rtp(1)),
        Err(DtlsError::NotEstablished)
    ));
}

#[test]
fn a_lost_flight_is_sent_again_on_the_timer() {
    let mut now = Instant::now();
    let both = config(&SrtpProfile::ALL);
    let (mut c, mut s) = pair(&both, &both, now);
    let start = now;
    run(&mut c, &mut s, &mut now, true).unwrap();
    assert_eq!(c.profile(), Some(SrtpProfile::AeadAes128Gcm));
    assert!(now > start, "the handshake waited for a retransmission");
}

#[test]
fn fingerprints_are_sha_256_only() {
    assert_eq!(parse_fingerprint("sha-256 AB:cd").unwrap(), "ab:cd");
    assert_eq!(parse_fingerprint("SHA-256  01:02 ").unwrap(), "01:02");
    assert!(parse_fingerprint("sha-1 AB:CD").is_err());
    assert!(parse_fingerprint("AB:CD").is_err());
    let f = config(&SrtpProfile::ALL).fingerprint().unwrap();
    assert!(
        f.starts_with("sha-256 ") && f.len() == 8 + 32 * 3 - 1,
        "{f}"
    );
}

#[test]
fn the_client_protects_with_the_client_write_key_of_rfc_5764() {
    for profile in SrtpProfile::ALL {
        let mut now = Instant::now();
        let both = config(&[profile]);
        let (mut c, mut s) = pair(&both, &both, now);
        run(&mut c, &mut s, &mut now, false).unwrap();
        // The layout written out here, independently of `export_keys`:
        // client_write_key | server_write_key | client_write_salt | server_write_salt.
        let p = profile.srtp();
        let (k, n) = (p.key_len(), p.salt_len());
        let state = c.endpoint.get_connection_state(ASSOCIATION).unwrap();
        let m = state
            .export_keying_material("EXTRACTOR-dtls_srtp", &[], 2 * (k + n))
            .unwrap();
        let m = m.as_ref();
        let crypto = both.crypto.crypto();
        let mut client_write =
            Context::new(&m[..k], &m[2 * k..2 * k + n], p, None, None, crypto).unwrap();
        let mut server_write =
            Context::new(&m[k..2 * k], &m[2 * k + n..], p, None, None, crypto).unwrap();
        let from_client = c.protect_rtp(&rtp(5)).unwrap();
        assert_eq!(
            &client_write.decrypt_rtp(&from_client).unwrap()[..],
            &rtp(5)[..],
            "{profile:?}"
        );
        let from_server = s.protect_rtp(&rtp(6)).unwrap();
        assert_eq!(
            &server_write.decrypt_rtp(&from_server).unwrap()[..],
            &rtp(6)[..],
            "{profile:?}"
        );
    }
}

#[test]
fn a_client_hello_is_read_for_its_profiles_and_garbage_is_not() {
    let now = Instant::now();
    let mut client = config(&[SrtpProfile::Aes128CmHmacSha1_80, SrtpProfile::AeadAes128Gcm]);
    client.profiles = vec![SrtpProfile::Aes128CmHmacSha1_80, SrtpProfile::AeadAes128Gcm];
    let server = config(&SrtpProfile::ALL);
    let mut c = DtlsSrtp::new(
        DtlsRole::Client,
        &client,
        &server.fingerprint().unwrap(),
        now,
    )
    .unwrap();
    let hello = c.poll_transmit().expect("the client's first flight");
    assert_eq!(
        client_hello_srtp_profiles(&hello),
        Some(vec![
            SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
            SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm
        ])
    );
    // Every truncation of it, and other records, read as nothing, without a panic.
    for n in 0..hello.len() {
        assert_eq!(client_hello_srtp_profiles(&hello[..n]), None, "{n} bytes");
    }
    let mut not_hello = hello.to_vec();
    not_hello[13] = 2;
    assert_eq!(client_hello_srtp_profiles(&not_hello), None);
    assert_eq!(client_hello_srtp_profiles(&[23, 254, 253]), None);
}

/// The client's hello cut into two handshake fragments, each in a record of its own
/// (as a hello larger than a datagram arrives): the record header, then the handshake
/// header with `offset` and the fragment's length, then the bytes.
fn fragments(hello: &[u8], at: usize) -> (Vec<u8>, Vec<u8>) {
    let body = &hello[13 + 12..];
    let record = |n: u8, offset: usize, part: &[u8]| {
        let mut r = hello[..11].to_vec();
        r[10] += n; // the record sequence number: a second record is not a replay
        r.extend_from_slice(&((12 + part.len()) as u16).to_be_bytes());
        r.extend_from_slice(&hello[13..13 + 6]); // type, length, message sequence
        r.extend_from_slice(&(offset as u32).to_be_bytes()[1..]);
        r.extend_from_slice(&(part.len() as u32).to_be_bytes()[1..]);
        r.extend_from_slice(part);
        r
    };
    (record(0, 0, &body[..at]), record(1, at, &body[at..]))
}

#[test]
fn a_hello_in_fragments_is_read_once_whole_and_gcm_is_chosen() {
    let now = Instant::now();
    // The client lists AES-CM first, as Chromium does.
    let client = config(&[SrtpProfile::Aes128CmHmacSha1_80, SrtpProfile::AeadAes128Gcm]);
    let server_config = config(&SrtpProfile::ALL);
    let mut c = DtlsSrtp::new(
        DtlsRole::Client,
        &client,
        &server_config.fingerprint().unwrap(),
        now,
    )
    .unwrap();
    let hello = c.poll_transmit().expect("the client's first flight");
    // Cut before the extensions: `use_srtp` is only in the second fragment.
    let (first, second) = fragments(&hello, 40);
    let mut assembly = HelloAssembly::default();
    assert_eq!(assembly.add(&first), Hello::Incomplete);
    assert_eq!(
        assembly.add(&second),
        Hello::Offers(vec![
            SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
            SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm
        ])
    );
    // Both fragments in one datagram read the same.
    let both = [first.clone(), second.clone()].concat();
    assert!(matches!(HelloAssembly::default().add(&both), Hello::Offers(p) if p.len() == 2));

    // A server fed the fragments holds the first, then answers, choosing GCM.
    let mut s = DtlsSrtp::new(
        DtlsRole::Server,
        &server_config,
        &client.fingerprint().unwrap(),
        now,
    )
    .unwrap();
    s.handle_datagram(BytesMut::from(&first[..]), now).unwrap();
    assert!(
        s.poll_transmit().is_none(),
        "nothing before the hello is whole"
    );
    s.handle_datagram(BytesMut::from(&second[..]), now).unwrap();
    let mut now = now;
    let (client_events, _) = run(&mut c, &mut s, &mut now, false).unwrap();
    let established = client_events.iter().find_map(|e| match e {
        DtlsEvent::Established(p) => Some(*p),
        _ => None,
    });
    assert_eq!(established, Some(SrtpProfile::AeadAes128Gcm));
    assert_eq!(s.profile(), Some(SrtpProfile::AeadAes128Gcm));
}
