//! What the answer to each client's offer says back.

use super::*;

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

/// The answers to the plain offers as they were before simulcast, byte for byte.
#[test]
fn plain_offers_are_answered_as_before_simulcast() {
    let cases = [
        (
            "chromium",
            CHROMIUM,
            include_str!("../fixtures/chromium.answer.sdp"),
        ),
        (
            "firefox",
            FIREFOX,
            include_str!("../fixtures/firefox.answer.sdp"),
        ),
        (
            "webrtcbin",
            WEBRTCBIN,
            include_str!("../fixtures/webrtcbin.answer.sdp"),
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
