//! The SDP tables: what is read from the offers of the clients Chorus meets (fixtures
//! written after what Chromium, Firefox and GStreamer's webrtcbin send), and what the
//! answer to each says back.

use super::*;

const CHROMIUM: &str = include_str!("fixtures/chromium.sdp");
const FIREFOX: &str = include_str!("fixtures/firefox.sdp");
const WEBRTCBIN: &str = include_str!("fixtures/webrtcbin.sdp");
/// Chromium's offer with three `sendEncodings` (rids q, h, f): no `a=ssrc` lines for
/// the video, `a=rid` and `a=simulcast` instead.
const CHROMIUM_SIMULCAST: &str = include_str!("fixtures/chromium-simulcast.sdp");

/// A fixture as it goes on the wire: CRLF line ends.
fn wire(fixture: &str) -> String {
    fixture.lines().map(|l| format!("{l}\r\n")).collect()
}

/// `m`, with the transport-wide sequence number under extension `id`.
fn twcc(mut m: RemoteMedia, id: u8) -> RemoteMedia {
    m.twcc_ext = Some(id);
    m
}

fn media(
    mid: &str,
    kind: &str,
    payload_type: u8,
    track_id: Option<&str>,
    ssrcs: &[u32],
    (audio_level_ext, mid_ext): (Option<u8>, Option<u8>),
) -> RemoteMedia {
    RemoteMedia {
        mid: mid.into(),
        kind: kind.into(),
        codec: test_codec(kind),
        payload_type,
        fmtp: None,
        codecs: vec![test_codec(kind)],
        track_id: track_id.map(str::to_owned),
        ssrcs: ssrcs.to_vec(),
        audio_level_ext,
        mid_ext,
        twcc_ext: None,
        rids: Vec::new(),
        rid_ext: None,
        repaired_rid_ext: None,
    }
}

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

fn local() -> Local<'static> {
    Local {
        ice_ufrag: "srvufrag",
        ice_pwd: "server-password-0123456789abcdef",
        fingerprint: "sha-256 AA:BB",
        candidate: "127.0.0.1:7882".parse().unwrap(),
        session_id: 42,
        version: 2,
        setup: "passive",
    }
}

/// The m-section of `sdp` with `a=mid:<mid>`, from its `m=` line to the next.
fn section<'a>(sdp: &'a str, mid: &str) -> &'a str {
    sdp.split("m=")
        .skip(1)
        .find(|s| s.contains(&format!("a=mid:{mid}\r\n")))
        .unwrap_or_else(|| panic!("no m-section {mid}:\n{sdp}"))
}

/// (client, its offer, mid, lines the answer's m-section has, lines it has not)
type AnswerCase = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);

#[test]
fn the_answer_echoes_the_extensions_and_feedback_chorus_uses() {
    let cases: [AnswerCase; 8] = [
        (
            "chromium",
            CHROMIUM,
            "0",
            &[
                "audio 9 UDP/TLS/RTP/SAVPF 111\r\n",
                "a=rtpmap:111 opus/48000/2",
                "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
                "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
                "a=recvonly",
            ],
            &["a=extmap:2 ", "a=rtcp-fb:111 nack"],
        ),
        (
            "chromium",
            CHROMIUM,
            "1",
            &[
                "a=rtpmap:96 VP8/90000",
                "a=extmap:9 urn:ietf:params:rtp-hdrext:sdes:mid",
                "a=rtcp-fb:96 nack\r\n",
                "a=rtcp-fb:96 nack pli",
                "a=rtcp-fb:96 ccm fir",
            ],
            // No transport-cc: see ACCEPT_TRANSPORT_CC.
            &[
                "transport-cc",
                "transport-wide",
                "goog-remb",
                "ssrc-audio-level",
                "rtx",
            ],
        ),
        (
            "firefox",
            FIREFOX,
            "0",
            &[
                "a=rtpmap:109 opus/48000/2",
                "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
                "a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid",
            ],
            &["csrc-audio-level"],
        ),
        (
            "firefox",
            FIREFOX,
            "1",
            &[
                "a=rtpmap:120 VP8/90000",
                "a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid",
                "a=rtcp-fb:120 nack\r\n",
                "a=rtcp-fb:120 nack pli",
                "a=rtcp-fb:120 ccm fir",
            ],
            &["transport-cc", "goog-remb"],
        ),
        (
            "firefox, its data channel accepted",
            FIREFOX,
            "2",
            &[
                "application 9 UDP/DTLS/SCTP webrtc-datachannel",
                "a=sctp-port:5000",
                "a=max-message-size:65536",
                "a=setup:passive",
                "a=candidate",
            ],
            &["a=rtpmap", "a=inactive", "a=recvonly"],
        ),
        (
            "webrtcbin",
            WEBRTCBIN,
            "video0",
            &[
                "a=extmap:2 urn:ietf:params:rtp-hdrext:sdes:mid",
                "a=rtcp-fb:96 nack\r\n",
                "a=rtcp-fb:96 nack pli",
            ],
            &["ccm fir", "transport-cc"],
        ),
        (
            "webrtcbin",
            WEBRTCBIN,
            "audio1",
            &[
                "a=rtpmap:97 opus/48000/2",
                "a=extmap:3 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n",
                "a=recvonly",
            ],
            &["sdes:mid", "a=rtcp-fb"],
        ),
        (
            "webrtcbin, recvonly: nothing to receive, kept alive inactive",
            WEBRTCBIN,
            "video2",
            &["video 9 UDP/TLS/RTP/SAVPF 96", "a=inactive", "a=candidate"],
            &["a=recvonly"],
        ),
    ];
    for (name, fixture, mid, has, has_not) in cases {
        let answer = Remote::parse(&wire(fixture)).unwrap().answer(&local());
        let m = section(&answer, mid);
        for line in has {
            assert!(m.contains(line), "{name} {mid}: {line:?} missing:\n{m}");
        }
        for line in has_not {
            assert!(!m.contains(line), "{name} {mid}: {line:?} there:\n{m}");
        }
    }
}

#[test]
fn the_answer_bundles_only_what_it_takes() {
    let cases = [
        (CHROMIUM, "a=group:BUNDLE 0 1\r\n"),
        (FIREFOX, "a=group:BUNDLE 0 1 2\r\n"),
        // The recvonly video2 stays live, inactive: bundled.
        (WEBRTCBIN, "a=group:BUNDLE video0 audio1 video2\r\n"),
    ];
    for (fixture, bundle) in cases {
        let answer = Remote::parse(&wire(fixture)).unwrap().answer(&local());
        assert!(answer.contains(bundle), "{bundle:?}:\n{answer}");
        assert!(answer.contains("a=ice-lite\r\n"), "{answer}");
    }
}

#[test]
fn data_channel_sections_are_answered_in_rfc_8841_form_only() {
    let firefox = wire(FIREFOX);
    let app = |max_message_size| RemoteApplication {
        mid: "2".into(),
        sctp_port: 5000,
        max_message_size,
    };
    // (case, the offer, what is read, a line of the answer's m-section)
    let cases = [
        (
            "firefox",
            firefox.clone(),
            Some(app(Some(1073741823))),
            "application 9 UDP/DTLS/SCTP",
        ),
        (
            "no max-message-size: 64 KiB by default",
            firefox.replace("a=max-message-size:1073741823\r\n", ""),
            Some(app(None)),
            "a=max-message-size:65536",
        ),
        (
            "the older form (DTLS/SCTP 5000, sctpmap): rejected",
            firefox.replace("UDP/DTLS/SCTP webrtc-datachannel", "DTLS/SCTP 5000"),
            None,
            "application 0 DTLS/SCTP 5000",
        ),
        (
            "stopped by the client: rejected",
            firefox.replace("m=application 9", "m=application 0"),
            None,
            "application 0 UDP/DTLS/SCTP",
        ),
        (
            "another application format: rejected",
            firefox.replace("webrtc-datachannel", "bfcp"),
            None,
            "application 0 UDP/DTLS/SCTP bfcp",
        ),
    ];
    for (name, sdp, want, line) in cases {
        let remote = Remote::parse(&sdp).unwrap();
        assert_eq!(remote.application, want, "{name}");
        let answer = remote.answer(&local());
        let m = section(&answer, "2");
        assert!(m.contains(line), "{name}: {line:?} missing:\n{m}");
    }
    // An offer of a data channel alone is answered; of nothing at all, refused.
    let data_only = [
        "v=0",
        "o=- 1 1 IN IP4 0.0.0.0",
        "s=-",
        "t=0 0",
        "a=fingerprint:sha-256 AB:CD",
        "a=ice-ufrag:u",
        "a=ice-pwd:p",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "c=IN IP4 0.0.0.0",
        "a=mid:0",
        "a=sctp-port:5000",
        "",
    ]
    .join("\r\n");
    let remote = Remote::parse(&data_only).unwrap();
    assert!(remote.answer(&local()).contains("a=group:BUNDLE 0\r\n"));
    let nothing = data_only.replace("webrtc-datachannel", "bfcp");
    assert_eq!(
        Remote::parse(&nothing).err(),
        Some(SdpError::NothingToReceive)
    );
}

fn test_codec(kind: &str) -> Codec {
    if kind == "audio" {
        Codec::Opus
    } else {
        Codec::Vp8
    }
}

#[test]
fn the_offer_asks_for_video_feedback_and_transport_cc_everywhere() {
    let track = |mid: &str, kind: &str| OutTrack {
        mid: mid.into(),
        kind: kind.into(),
        codec: test_codec(kind),
        ssrc: 7,
        stream_id: "s".into(),
        track_id: "t".into(),
        idle: false,
    };
    let offer = offer(&[track("0", "audio"), track("1", "video")], &local());
    let feedback = [
        "a=rtcp-fb:96 nack\r\n",
        "a=rtcp-fb:96 nack pli",
        "a=rtcp-fb:96 ccm fir",
    ];
    // (mid, whether its m-section asks for NACK, PLI and FIR)
    for (mid, asks) in [("0", false), ("1", true)] {
        let m = section(&offer, mid);
        for line in feedback {
            assert_eq!(m.contains(line), asks, "{mid} {line:?}:\n{m}");
        }
        // Transport-wide CC on both kinds, one extension id for the BUNDLE.
        let pt = if mid == "0" { 111 } else { 96 };
        for line in [
            format!("a=rtcp-fb:{pt} transport-cc\r\n"),
            format!("a=extmap:{OFFER_TWCC_EXT} {TWCC_URI}\r\n"),
        ] {
            assert!(m.contains(&line), "{mid} {line:?}:\n{m}");
        }
        assert!(!m.contains("goog-remb"), "{m}");
    }
    // An idle m-section carries none of it.
    let idle = OutTrack {
        idle: true,
        ..track("2", "video")
    };
    let idle_offer = super::offer(&[idle], &local());
    assert!(
        !section(&idle_offer, "2").contains("transport-cc"),
        "{idle_offer}"
    );
}

/// The answers to the plain offers as they were before simulcast, byte for byte.
#[test]
fn plain_offers_are_answered_as_before_simulcast() {
    let cases = [
        (
            "chromium",
            CHROMIUM,
            include_str!("fixtures/chromium.answer.sdp"),
        ),
        (
            "firefox",
            FIREFOX,
            include_str!("fixtures/firefox.answer.sdp"),
        ),
        (
            "webrtcbin",
            WEBRTCBIN,
            include_str!("fixtures/webrtcbin.answer.sdp"),
        ),
    ];
    for (name, offer, before) in cases {
        let remote = Remote::parse(&wire(offer)).unwrap();
        assert!(remote.media.iter().all(|m| m.rids.is_empty()), "{name}");
        assert_eq!(remote.answer(&local()), before, "{name}");
    }
}

#[test]
fn a_simulcast_offer_gets_its_layers_and_rid_extensions_answered() {
    let remote = Remote::parse(&wire(CHROMIUM_SIMULCAST)).unwrap();
    let video = remote.media("1").expect("video taken");
    assert_eq!(video.rids, ["q", "h", "f"]);
    assert_eq!(
        (video.rid_ext, video.repaired_rid_ext),
        (Some(10), Some(11))
    );
    assert_eq!(video.mid_ext, Some(9));
    assert!(video.ssrcs.is_empty(), "layers are found by rid");
    let audio = remote.media("0").unwrap();
    assert_eq!((audio.rids.len(), audio.rid_ext), (0, None));

    let answer = remote.answer(&local());
    let m = section(&answer, "1");
    for line in [
        "a=recvonly",
        "a=extmap:9 urn:ietf:params:rtp-hdrext:sdes:mid\r\n",
        "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n",
        "a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id\r\n",
        "a=rid:q recv\r\na=rid:h recv\r\na=rid:f recv\r\n",
        "a=simulcast:recv q;h;f\r\n",
    ] {
        assert!(m.contains(line), "{line:?} missing:\n{m}");
    }
    assert!(!m.contains(" send"), "{m}");
    // The audio section is answered as for the plain offer.
    let plain = Remote::parse(&wire(CHROMIUM)).unwrap().answer(&local());
    assert_eq!(section(&answer, "0"), section(&plain, "0"));
}

/// Chromium's offer with its video formats reordered as `setCodecPreferences` would,
/// and the H.264 format's parameters replaced.
fn chromium_preferring(formats: &str, h264_fmtp: &str) -> String {
    wire(CHROMIUM)
        .replace(
            "m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99 102 103 35 36",
            &format!("m=video 9 UDP/TLS/RTP/SAVPF {formats}"),
        )
        .replace(
            "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
            &format!("a=fmtp:102 {h264_fmtp}"),
        )
}

#[test]
fn the_video_codec_is_the_first_the_client_prefers_that_chorus_takes() {
    const MODE_1: &str = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f";
    let cases = [
        (
            "VP8 first",
            "96 97 98 99 102 103 35 36",
            MODE_1,
            Codec::Vp8,
            96,
        ),
        (
            "H.264 first",
            "102 103 96 97 98 99 35 36",
            MODE_1,
            Codec::H264,
            102,
        ),
        (
            "VP9 first, then H.264",
            "98 99 102 103 96 97 35 36",
            MODE_1,
            Codec::H264,
            102,
        ),
        (
            "constrained baseline",
            "102 96",
            "packetization-mode=1;profile-level-id=42e01f",
            Codec::H264,
            102,
        ),
        (
            "H.264 in packetization mode 0 is not taken",
            "102 103 96 97",
            "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f",
            Codec::Vp8,
            96,
        ),
        (
            "H.264 main profile is not taken",
            "102 103 96 97",
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f",
            Codec::Vp8,
            96,
        ),
        (
            "H.264 without parameters is not taken",
            "102 103 96 97",
            "x-google-start-bitrate=800",
            Codec::Vp8,
            96,
        ),
    ];
    for (what, formats, fmtp, codec, pt) in cases {
        let remote = Remote::parse(&chromium_preferring(formats, fmtp)).unwrap();
        let video = remote.media("1").expect(what);
        assert_eq!((video.codec, video.payload_type), (codec, pt), "{what}");
        // H.264 is listed as taken only where it may be: in mode 1, baseline.
        let both = fmtp.contains("packetization-mode=1") && fmtp.contains("=42");
        assert_eq!(
            video.codecs.len(),
            if both { 2 } else { 1 },
            "{what}: {:?}",
            video.codecs
        );
        let answer = remote.answer(&local());
        let section = &answer[answer.find("m=video").unwrap()..];
        assert!(
            section.starts_with(&format!("m=video 9 UDP/TLS/RTP/SAVPF {pt}\r\n")),
            "{what}: {section}"
        );
        let rtpmap = format!("a=rtpmap:{pt} {}/90000\r\n", codec.sdp_name());
        assert!(section.contains(&rtpmap), "{what}: {section}");
        // H.264's parameters come back as offered; VP8 has none.
        let fmtp_line = format!("a=fmtp:{pt} {fmtp}\r\n");
        assert_eq!(
            section.contains(&fmtp_line),
            codec == Codec::H264,
            "{what}: {section}"
        );
        assert!(
            section.contains(&format!("a=rtcp-fb:{pt} nack pli\r\n")),
            "{what}"
        );
    }
}

#[test]
fn a_video_section_without_a_codec_chorus_takes_is_rejected() {
    // Only H.264 in packetization mode 0 (and VP9): the video is refused, audio taken.
    let offer = chromium_preferring(
        "102 98",
        "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f",
    );
    let remote = Remote::parse(&offer).unwrap();
    assert!(remote.media("1").is_none());
    let answer = remote.answer(&local());
    assert!(answer.contains("m=video 0 "), "{answer}");
}

#[test]
fn an_h264_track_is_offered_to_subscribers_as_constrained_baseline() {
    let track = OutTrack {
        mid: "0".into(),
        kind: "video".into(),
        codec: Codec::H264,
        ssrc: 9,
        stream_id: "s".into(),
        track_id: "t".into(),
        idle: false,
    };
    let offer = offer(&[track], &local());
    for line in [
        "m=video 9 UDP/TLS/RTP/SAVPF 102 96\r\n",
        "a=rtpmap:96 VP8/90000\r\n",
        "a=rtpmap:102 H264/90000\r\n",
        "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n",
        "a=rtcp-fb:102 nack pli\r\n",
    ] {
        assert!(offer.contains(line), "{line}: {offer}");
    }
}
