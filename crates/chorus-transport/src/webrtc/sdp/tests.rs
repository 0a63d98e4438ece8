//! The SDP tables: what is read from the offers of the clients Chorus meets (fixtures
//! written after what Chromium, Firefox and GStreamer's webrtcbin send), and what the
//! answer to each says back.

mod answers;
mod codecs;
mod offers;
mod server_offers;

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
        dd_ext: None,
    }
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

fn test_codec(kind: &str) -> Codec {
    if kind == "audio" {
        Codec::Opus
    } else {
        Codec::Vp8
    }
}
