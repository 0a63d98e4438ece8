//! The server's offers to subscribers: feedback, transport-wide CC, the H.264 format.

use super::*;

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
        "m=video 9 UDP/TLS/RTP/SAVPF 102 96 98 45\r\n",
        "a=rtpmap:45 AV1/90000\r\n",
        "a=fmtp:45 level-idx=5;profile=0;tier=0\r\n",
        "a=rtpmap:98 VP9/90000\r\n",
        "a=fmtp:98 profile-id=0\r\n",
        "a=rtpmap:96 VP8/90000\r\n",
        "a=rtpmap:102 H264/90000\r\n",
        "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n",
        "a=rtcp-fb:102 nack pli\r\n",
    ] {
        assert!(offer.contains(line), "{line}: {offer}");
    }
}
