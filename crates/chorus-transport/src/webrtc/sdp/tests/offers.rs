//! What is read from each client's offer, and what its directions and rejections decide.

use super::*;

#[test]
fn offers_of_the_clients_chorus_meets_are_read() {
    let cases = [
        (
            "chromium: a=msid, FID with RTX left out, mid extension 4 and 9",
            CHROMIUM,
            "Xq9h",
            Some("actpass"),
            vec![
                twcc(
                    media(
                        "0",
                        "audio",
                        111,
                        Some("3a0d9a9e-1c34-4c9b-a1a8-6f0e8d2f5b01"),
                        &[2733518341],
                        (Some(1), Some(4)),
                    ),
                    3,
                ),
                twcc(
                    media(
                        "1",
                        "video",
                        96,
                        Some("c4f1e2d3-5a6b-4c7d-8e9f-0a1b2c3d4e5f"),
                        &[1434620129],
                        (None, Some(9)),
                    ),
                    3,
                ),
            ],
        ),
        (
            "firefox: {uuid} msid, FID after the ssrc lines, data channel not taken",
            FIREFOX,
            "8c7a1f2e",
            Some("actpass"),
            vec![
                media(
                    "0",
                    "audio",
                    109,
                    Some("{8a0f6e2b-1c3d-4e5f-a6b7-c8d9e0f1a2b3}"),
                    &[1849317293],
                    (Some(1), Some(3)),
                ),
                twcc(
                    media(
                        "1",
                        "video",
                        120,
                        Some("{e4d3c2b1-a0f9-4e8d-b7c6-a5f4e3d2c1b0}"),
                        &[3567212883],
                        (None, Some(3)),
                    ),
                    7,
                ),
            ],
        ),
        (
            "webrtcbin: no a=msid, track from a=ssrc msid or none, recvonly not taken",
            WEBRTCBIN,
            "Q1b0XqzV0oJ8kHxnPz3bTdCg2m9sLf4e",
            Some("actpass"),
            vec![
                media("video0", "video", 96, None, &[1811563471], (None, Some(2))),
                media(
                    "audio1",
                    "audio",
                    97,
                    Some("webrtctransceiver1"),
                    &[2967810045],
                    (Some(3), None),
                ),
            ],
        ),
    ];
    for (name, fixture, ufrag, setup, want) in cases {
        let remote = Remote::parse(&wire(fixture)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(remote.ice_ufrag, ufrag, "{name}");
        assert!(remote.fingerprint.starts_with("sha-256 "), "{name}");
        assert_eq!(remote.setup.as_deref(), setup, "{name}");
        // Every codec taken is listed, the chosen one first (the rest: another test).
        let media: Vec<RemoteMedia> = (remote.media.iter().cloned())
            .map(|mut m| {
                assert_eq!(m.codecs.first(), Some(&m.codec), "{name}");
                m.codecs.truncate(1);
                m
            })
            .collect();
        assert_eq!(media, want, "{name}");
    }
}

#[test]
fn directions_and_rejections_decide_what_is_taken() {
    let base = wire(WEBRTCBIN);
    // (change to the webrtcbin offer, the mids taken)
    let cases: [(&str, String, &[&str]); 5] = [
        ("as offered", base.clone(), &["video0", "audio1"]),
        (
            "an inactive m-section",
            base.replacen("a=sendrecv", "a=inactive", 1),
            &["audio1"],
        ),
        (
            "no direction: sendrecv",
            base.replacen("a=sendrecv\r\n", "", 1),
            &["video0", "audio1"],
        ),
        (
            "port 0: stopped",
            base.replacen("m=audio 9", "m=audio 0", 1),
            &["video0"],
        ),
        (
            "port 0 but bundle-only",
            base.replacen("m=audio 9", "m=audio 0", 1).replacen(
                "a=mid:audio1",
                "a=mid:audio1\r\na=bundle-only",
                1,
            ),
            &["video0", "audio1"],
        ),
    ];
    for (name, sdp, want) in cases {
        let remote = Remote::parse(&sdp).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mids: Vec<&str> = remote.media.iter().map(|m| m.mid.as_str()).collect();
        assert_eq!(mids, want, "{name}");
    }
    // The inactive one stays live (idle); the stopped one (port 0) does not.
    let inactive = Remote::parse(&base.replacen("a=sendrecv", "a=inactive", 1)).unwrap();
    let idle: Vec<&str> = inactive.idle.iter().map(|m| m.mid.as_str()).collect();
    assert!(idle.contains(&"video0"), "{idle:?}");
    let stopped = Remote::parse(&base.replacen("m=audio 9", "m=audio 0", 1)).unwrap();
    assert!(stopped.idle.iter().all(|m| m.mid != "audio1"));
    // Nothing sent: an offer is refused, an answer is read.
    let silent = base
        .replace("a=sendrecv", "a=recvonly")
        .replace("a=sendonly", "a=inactive");
    assert_eq!(
        Remote::parse(&silent).err(),
        Some(SdpError::NothingToReceive)
    );
    assert!(Remote::parse_description(&silent).unwrap().media.is_empty());
}
