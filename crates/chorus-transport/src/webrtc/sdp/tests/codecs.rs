//! Which video codec a publisher's answer takes, in the client's order.

use super::*;

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
            Codec::Vp9,
            98,
        ),
        (
            "H.264 first, then VP9",
            "102 103 98 99 96 97 35 36",
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
        // H.264 is listed as taken only where it may be: in mode 1, baseline; VP9
        // (profile 0 in this offer) wherever it is listed.
        let h264 = fmtp.contains("packetization-mode=1") && fmtp.contains("=42");
        let listed = |pt: &str| formats.split(' ').any(|f| f == pt);
        let want = usize::from(listed("96"))
            + usize::from(h264 && listed("102"))
            + usize::from(listed("98"));
        assert_eq!(video.codecs.len(), want, "{what}: {:?}", video.codecs);
        let answer = remote.answer(&local());
        let section = &answer[answer.find("m=video").unwrap()..];
        assert!(
            section.starts_with(&format!("m=video 9 UDP/TLS/RTP/SAVPF {pt}\r\n")),
            "{what}: {section}"
        );
        let rtpmap = format!("a=rtpmap:{pt} {}/90000\r\n", codec.sdp_name());
        assert!(section.contains(&rtpmap), "{what}: {section}");
        // H.264's and VP9's parameters come back as offered; VP8 has none.
        let fmtp_line = format!("a=fmtp:{pt} {fmtp}\r\n");
        assert_eq!(
            section.contains(&fmtp_line),
            codec == Codec::H264,
            "{what}: {section}"
        );
        assert_eq!(
            section.contains("a=fmtp:98 profile-id=0\r\n"),
            codec == Codec::Vp9,
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
    // Only H.264 in packetization mode 0 (and RED): the video is refused, audio taken.
    let offer = chromium_preferring(
        "102 35",
        "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f",
    );
    let remote = Remote::parse(&offer).unwrap();
    assert!(remote.media("1").is_none());
    let answer = remote.answer(&local());
    assert!(answer.contains("m=video 0 "), "{answer}");
}

#[test]
fn vp9_is_taken_in_profile_0_only() {
    // (fmtp of the VP9 format, taken)
    let cases = [
        (Some("profile-id=0"), true),
        (None, true),
        (Some("profile-id=2"), false),
        (Some("x-google-min-bitrate=10; PROFILE-ID=1"), false),
    ];
    for (fmtp, taken) in cases {
        let mut offer =
            chromium_preferring("98 96", "packetization-mode=1;profile-level-id=42e01f");
        let line = "a=fmtp:98 profile-id=0\r\n";
        offer = offer.replace(
            line,
            &fmtp.map_or(String::new(), |f| format!("a=fmtp:98 {f}\r\n")),
        );
        let video = Remote::parse(&offer).unwrap();
        let video = video.media("1").unwrap();
        let want = if taken { Codec::Vp9 } else { Codec::Vp8 };
        assert_eq!(video.codec, want, "{fmtp:?}");
    }
}

/// Chromium's offer with AV1 (45, `fmtp`) first or after VP8, and the dependency
/// descriptor offered as extension 12.
fn chromium_with_av1(formats: &str, av1_fmtp: &str) -> String {
    chromium_preferring(formats, "packetization-mode=1;profile-level-id=42e01f").replace(
        "a=rtpmap:96 VP8/90000\r\n",
        &format!(
            "a=rtpmap:96 VP8/90000\r\na=rtpmap:45 AV1/90000\r\na=rtcp-fb:45 nack pli\r\n\
             a=fmtp:45 {av1_fmtp}\r\na=extmap:12 {DD_URI}\r\n"
        ),
    )
}

#[test]
fn av1_is_taken_in_the_main_profile_with_its_dependency_descriptor() {
    // (formats, AV1's fmtp, codec taken, DD extension taken)
    let cases = [
        ("45 96 98", "level-idx=5;profile=0;tier=0", Codec::Av1, true),
        ("45 96 98", "level-idx=5;tier=0", Codec::Av1, true),
        (
            "45 96 98",
            "level-idx=5;profile=1;tier=0",
            Codec::Vp8,
            false,
        ),
        (
            "96 45 98",
            "level-idx=5;profile=0;tier=0",
            Codec::Vp8,
            false,
        ),
    ];
    for (formats, fmtp, codec, dd) in cases {
        let remote = Remote::parse(&chromium_with_av1(formats, fmtp)).unwrap();
        let video = remote.media("1").unwrap();
        let what = format!("{formats} {fmtp}");
        assert_eq!(video.codec, codec, "{what}");
        assert_eq!(video.dd_ext, dd.then_some(12), "{what}");
        let listed = video.codecs.contains(&Codec::Av1);
        assert_eq!(listed, !fmtp.contains("profile=1"), "{what}");
        let answer = remote.answer(&local());
        let section = &answer[answer.find("m=video").unwrap()..];
        let lines = [
            "a=rtpmap:45 AV1/90000\r\n".to_owned(),
            format!("a=fmtp:45 {fmtp}\r\n"),
            format!("a=extmap:12 {DD_URI}\r\n"),
            "a=extmap-allow-mixed\r\n".to_owned(),
        ];
        for line in lines {
            assert_eq!(answer.contains(&line), dd, "{what}: {line}");
        }
        assert!(section.contains("a=rtcp-fb:"), "{what}");
    }
}
