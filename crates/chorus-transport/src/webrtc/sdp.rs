//! SDP as Chorus writes and reads it, rather than negotiated by a peer-connection stack.
//! What the server needs from the client's description ([`Remote`], read in [`remote`]);
//! the server's answer on a publisher connection (ICE-lite with one host candidate, the
//! server as DTLS server, `a=setup:passive`, unless the client insists on being it; one
//! BUNDLE; per m-section the client sends on, the first codec Chorus takes that the
//! client prefers, Opus, VP8, constrained-baseline H.264, VP9 profile 0 or AV1 main
//! profile, receive-only, with the header extensions and feedback Chorus uses among
//! those offered (on AV1 sections the dependency descriptor, and `extmap-allow-mixed`), and the simulcast layers offered, up to three; anything else
//! rejected); and the server's offer on a subscriber
//! connection (one send-only m-section per track, `a=setup:actpass`).

mod attributes;
mod remote;
pub mod simulcast;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;

use rtc::sdp::description::media::{MediaDescription, RangedPort};
use rtc::sdp::description::session::SessionDescription;
use thiserror::Error;

use chorus_core::Codec;
use chorus_rtc_profile::{AV1_FMTP, AV1_PT, H264_FMTP, H264_PT, OPUS_PT, VP8_PT, VP9_FMTP, VP9_PT};

use attributes::{value, values};
pub use remote::{
    AUDIO_LEVEL_URI, DD_URI, MID_URI, Remote, RemoteApplication, RemoteMedia, TWCC_URI,
};
pub use simulcast::{MAX_LAYERS, REPAIRED_RID_URI, RID_URI};

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum SdpError {
    #[error("the description does not parse: {0}")]
    Parse(String),
    #[error("the description has no sha-256 fingerprint")]
    NoFingerprint,
    #[error("the description has no ICE credentials")]
    NoCredentials,
    #[error("the description carries no data channel, nor audio or video in a codec Chorus takes")]
    NothingToReceive,
}

/// The server's side of the answer.
#[derive(Debug, Clone)]
pub struct Local<'a> {
    pub ice_ufrag: &'a str,
    pub ice_pwd: &'a str,
    /// `sha-256 AB:CD:…`
    pub fingerprint: &'a str,
    /// The media port, as announced.
    pub candidate: SocketAddr,
    pub session_id: u64,
    /// Goes up with every description of the session (`o=` line).
    pub version: u64,
    /// The server's `a=setup` in an answer (`passive` or `active`).
    pub setup: &'a str,
}

/// The VP8 feedback Chorus takes part in: retransmission and keyframe requests
/// (`transport-cc` toward publishers is added where offered, see
/// [`ACCEPT_TRANSPORT_CC`]; toward subscribers the server's offers ask for it on every
/// m-section, see [`OFFER_TWCC_EXT`]; `goog-remb` never).
const VIDEO_FEEDBACK: [&str; 3] = ["nack", "nack pli", "ccm fir"];

/// The `a=extmap` id of the transport-wide sequence number in the server's offers to
/// subscribers (one id for the whole BUNDLE). With `a=rtcp-fb:<pt> transport-cc` on
/// every m-section, the subscriber reports what arrived when, and the server estimates
/// the bandwidth toward it (`chorus_core::bwe`). Unlike [`ACCEPT_TRANSPORT_CC`], this
/// does not hold the browser's own sending back: it only receives here.
pub const OFFER_TWCC_EXT: u8 = 3;

/// Whether answers accept `transport-cc` (and the transport-wide sequence number). Off
/// for now: with it, the pair-switch browser test once saw Chromium send no video for
/// over 4 s around an ICE pair switch (while the path back to it is cut no feedback
/// arrives, and its congestion window holds media back); without it video continues.
/// The server's side (`rtcp/twcc.rs`, fed by the room) is ready for when that is settled.
pub const ACCEPT_TRANSPORT_CC: bool = false;

impl Remote {
    /// The answer: every offered m-section in order, the accepted ones receive-only with
    /// their one codec (`inactive` where the client sends nothing now), the rest rejected.
    pub fn answer(&self, local: &Local<'_>) -> String {
        let live = |mid: &str| self.media(mid).or_else(|| self.idle(mid));
        let data = |mid: &str| self.application.as_ref().filter(|a| a.mid == mid);
        let mids = self.parsed.media_descriptions.iter().filter_map(|m| {
            let mid = value(&m.attributes, "mid")?;
            let live = live(mid).map(|m| m.mid.as_str());
            live.or_else(|| data(mid).map(|a| a.mid.as_str()))
        });
        let mut answer = session(mids, local);
        // A dependency descriptor with its structure is longer than a one-byte header
        // extension holds (16 bytes): the client may use two-byte headers (RFC 8285 §6).
        let dd = self
            .media
            .iter()
            .chain(&self.idle)
            .any(|m| m.dd_ext.is_some());
        if dd && self.allows_mixed_extensions() {
            answer = answer.with_property_attribute("extmap-allow-mixed".to_owned());
        }
        let (alg, fp) = fingerprint_parts(local);
        let candidate = candidate_line(local.candidate);
        for offered in &self.parsed.media_descriptions {
            let kind = offered.media_name.media.clone();
            let mid = value(&offered.attributes, "mid").unwrap_or_default();
            let mut m = MediaDescription::new_jsep_media_description(kind, vec![]);
            m = m.with_value_attribute("mid".to_owned(), mid.to_owned());
            let sends = self.media(mid).is_some();
            if data(mid).is_some() && offered.media_name.media == "application" {
                answer = answer.with_media(application(mid, local.setup, local));
                continue;
            }
            let Some(accepted) = live(mid) else {
                m.media_name.port = RangedPort {
                    value: 0,
                    range: None,
                };
                // As offered (RFC 3264 §6): an application section keeps its own proto.
                m.media_name.protos = offered.media_name.protos.clone();
                m.media_name.formats = offered.media_name.formats.clone();
                answer = answer.with_media(m.with_property_attribute("inactive".to_owned()));
                continue;
            };
            let c = accepted.codec;
            let pt = accepted.payload_type;
            let fmtp = accepted.fmtp.clone().unwrap_or_default();
            m = m
                .with_codec(
                    pt,
                    c.sdp_name().to_owned(),
                    c.clock_rate(),
                    c.channels(),
                    fmtp,
                )
                .with_ice_credentials(local.ice_ufrag.to_owned(), local.ice_pwd.to_owned())
                .with_fingerprint(alg.to_owned(), fp.to_owned())
                .with_value_attribute("setup".to_owned(), local.setup.to_owned())
                .with_property_attribute("rtcp-mux".to_owned())
                .with_property_attribute("rtcp-rsize".to_owned())
                .with_property_attribute(if sends { "recvonly" } else { "inactive" }.to_owned());
            // The client's ids: an answer may not renumber an extension (RFC 8285 §6).
            let extensions = [
                (accepted.audio_level_ext, AUDIO_LEVEL_URI),
                (accepted.mid_ext, MID_URI),
                (accepted.twcc_ext.filter(|_| ACCEPT_TRANSPORT_CC), TWCC_URI),
                (accepted.rid_ext, RID_URI),
                (accepted.repaired_rid_ext, REPAIRED_RID_URI),
                (accepted.dd_ext, DD_URI),
            ];
            for (id, uri) in extensions {
                if let Some(id) = id {
                    m = m.with_value_attribute("extmap".to_owned(), format!("{id} {uri}"));
                }
            }
            if accepted.kind == "video" {
                for fb in offered_feedback(offered, pt) {
                    m = m.with_value_attribute("rtcp-fb".to_owned(), format!("{pt} {fb}"));
                }
            }
            // Simulcast: every offered layer taken (RFC 8853 §5.3), in the client's order.
            if !accepted.rids.is_empty() {
                for rid in &accepted.rids {
                    m = m.with_value_attribute("rid".to_owned(), format!("{rid} recv"));
                }
                let list = accepted.rids.join(";");
                m = m.with_value_attribute("simulcast".to_owned(), format!("recv {list}"));
            }
            // The server sends transport-wide feedback for what the client numbers, so
            // the browser's own send-side bandwidth estimate works.
            if ACCEPT_TRANSPORT_CC && accepted.twcc_ext.is_some() {
                m = m.with_value_attribute("rtcp-fb".to_owned(), format!("{pt} transport-cc"));
            }
            m = m
                .with_candidate(candidate.clone())
                .with_property_attribute("end-of-candidates".to_owned());
            answer = answer.with_media(m);
        }
        answer.marshal()
    }
}

/// The [`VIDEO_FEEDBACK`] the client offered for `pt` (or for every format, `*`).
fn offered_feedback(offered: &MediaDescription, pt: u8) -> Vec<&'static str> {
    let pt = pt.to_string();
    let lines: Vec<(&str, String)> = values(&offered.attributes, "rtcp-fb")
        .filter_map(|v| {
            let (format, fb) = v.split_once(' ')?;
            Some((format, fb.split_whitespace().collect::<Vec<_>>().join(" ")))
        })
        .collect();
    VIDEO_FEEDBACK
        .into_iter()
        .filter(|want| {
            lines
                .iter()
                .any(|(format, fb)| (*format == pt || *format == "*") && fb == want)
        })
        .collect()
}

/// A track the server sends on a subscriber connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutTrack {
    pub mid: String,
    /// `audio` or `video`.
    pub kind: String,
    /// The codec it arrives in from its publisher, which the subscriber gets unchanged.
    pub codec: Codec,
    pub ssrc: u32,
    /// The media stream id and track id the client sees (`a=msid`).
    pub stream_id: String,
    pub track_id: String,
    /// No track now (it was removed): the m-section stays, inactive and bundled, until
    /// a later track of its kind takes it over.
    pub idle: bool,
}

/// The server's offer on a subscriber connection: one send-only m-section per track in
/// its codec, Opus (111), VP8 (96), VP9 (98, profile 0), H.264 (102) or AV1 (45, main profile; video with NACK, PLI and FIR; see
/// [`offered_codecs`]), transport-wide CC on every one ([`OFFER_TWCC_EXT`]),
/// `a=setup:actpass` (the client's answer picks the DTLS roles).
pub fn offer(tracks: &[OutTrack], local: &Local<'_>) -> String {
    offer_with(tracks, None, local)
}

/// [`offer`], with a data channel m-section under mid `data` when given. It goes first,
/// so it keeps its place whatever tracks come and go (m-sections never move, JSEP).
pub fn offer_with(tracks: &[OutTrack], data: Option<&str>, local: &Local<'_>) -> String {
    let mids = data
        .into_iter()
        .chain(tracks.iter().map(|t| t.mid.as_str()));
    let mut offer = session(mids, local);
    if let Some(mid) = data {
        offer = offer.with_media(application(mid, "actpass", local));
    }
    let (alg, fp) = fingerprint_parts(local);
    for t in tracks {
        let codecs = offered_codecs(t.codec);
        let mut m = MediaDescription::new_jsep_media_description(t.kind.clone(), vec![])
            .with_value_attribute("mid".to_owned(), t.mid.clone());
        for &c in codecs {
            let fmtp = match c {
                Codec::H264 => H264_FMTP,
                Codec::Vp9 => VP9_FMTP,
                Codec::Av1 => AV1_FMTP,
                _ => "",
            };
            let (name, clock) = (c.sdp_name().to_owned(), c.clock_rate());
            m = m.with_codec(payload_type(c), name, clock, c.channels(), fmtp.to_owned());
        }
        let m = m
            .with_ice_credentials(local.ice_ufrag.to_owned(), local.ice_pwd.to_owned())
            .with_fingerprint(alg.to_owned(), fp.to_owned())
            .with_value_attribute("setup".to_owned(), "actpass".to_owned())
            .with_property_attribute("rtcp-mux".to_owned())
            .with_property_attribute("rtcp-rsize".to_owned());
        if t.idle {
            // Not rejected (port 0): a rejected m-section leaves the BUNDLE, and when it
            // was the first one Firefox tears the transport down with it.
            offer = offer.with_media(m.with_property_attribute("inactive".to_owned()));
            continue;
        }
        let mut m = m
            .with_property_attribute("sendonly".to_owned())
            .with_value_attribute("msid".to_owned(), format!("{} {}", t.stream_id, t.track_id))
            .with_value_attribute("ssrc".to_owned(), format!("{} cname:chorus", t.ssrc))
            .with_value_attribute(
                "ssrc".to_owned(),
                format!("{} msid:{} {}", t.ssrc, t.stream_id, t.track_id),
            );
        if t.kind == "video" {
            for (pt, fb) in codecs
                .iter()
                .flat_map(|&c| VIDEO_FEEDBACK.map(|fb| (payload_type(c), fb)))
            {
                m = m.with_value_attribute("rtcp-fb".to_owned(), format!("{pt} {fb}"));
            }
        }
        for &c in codecs {
            let pt = payload_type(c);
            m = m.with_value_attribute("rtcp-fb".to_owned(), format!("{pt} transport-cc"));
        }
        let m = m
            .with_value_attribute("extmap".to_owned(), format!("{OFFER_TWCC_EXT} {TWCC_URI}"))
            .with_candidate(candidate_line(local.candidate))
            .with_property_attribute("end-of-candidates".to_owned());
        offer = offer.with_media(m);
    }
    offer.marshal()
}

/// The data channel m-section in the server's descriptions (RFC 8841): SCTP port 5000,
/// [`MAX_MESSAGE_SIZE`](super::datachannel::MAX_MESSAGE_SIZE) as the limit, bundled.
fn application(mid: &str, setup: &str, local: &Local<'_>) -> MediaDescription {
    let (alg, fp) = fingerprint_parts(local);
    let mut m = MediaDescription::new_jsep_media_description("application".to_owned(), vec![]);
    m.media_name.protos = ["UDP", "DTLS", "SCTP"].map(str::to_owned).to_vec();
    m.media_name.formats = vec!["webrtc-datachannel".to_owned()];
    m.with_value_attribute("mid".to_owned(), mid.to_owned())
        .with_ice_credentials(local.ice_ufrag.to_owned(), local.ice_pwd.to_owned())
        .with_fingerprint(alg.to_owned(), fp.to_owned())
        .with_value_attribute("setup".to_owned(), setup.to_owned())
        .with_value_attribute(
            "sctp-port".to_owned(),
            super::datachannel::SCTP_PORT.to_string(),
        )
        .with_value_attribute(
            "max-message-size".to_owned(),
            super::datachannel::MAX_MESSAGE_SIZE.to_string(),
        )
        .with_candidate(candidate_line(local.candidate))
        .with_property_attribute("end-of-candidates".to_owned())
}

/// The session level both descriptions share: ICE-lite, one BUNDLE of `mids`.
fn session<'a>(mids: impl Iterator<Item = &'a str>, local: &Local<'_>) -> SessionDescription {
    let mids: Vec<&str> = mids.collect();
    // Credentials and certificate at session level too: a description whose every
    // m-section is rejected (all tracks stopped) still carries them, as JSEP wants.
    let mut d = SessionDescription::new_jsep_session_description(false)
        .with_property_attribute("ice-lite".to_owned())
        .with_value_attribute("ice-ufrag".to_owned(), local.ice_ufrag.to_owned())
        .with_value_attribute("ice-pwd".to_owned(), local.ice_pwd.to_owned())
        .with_value_attribute("fingerprint".to_owned(), local.fingerprint.to_owned());
    if !mids.is_empty() {
        d = d.with_value_attribute("group".to_owned(), format!("BUNDLE {}", mids.join(" ")));
    }
    d.origin.session_id = local.session_id;
    d.origin.session_version = local.version;
    d
}

/// `sha-256 AB:…` as (algorithm, value).
fn fingerprint_parts<'a>(local: &Local<'a>) -> (&'a str, &'a str) {
    local
        .fingerprint
        .split_once(' ')
        .unwrap_or(("sha-256", local.fingerprint))
}

/// The codecs a section of the server's offer lists for a track in `codec`: every video
/// section lists every video codec, the track's first (what is sent), because clients
/// whose media engine works as pion's (webrtc-rs `rtc`, chorus-client) take the codecs
/// of a kind from their first section only, and would drop VP8 in a later section when
/// the first is H.264.
fn offered_codecs(codec: Codec) -> &'static [Codec] {
    match codec {
        Codec::Opus => &[Codec::Opus],
        Codec::Vp8 => &[Codec::Vp8, Codec::H264, Codec::Vp9, Codec::Av1],
        Codec::H264 => &[Codec::H264, Codec::Vp8, Codec::Vp9, Codec::Av1],
        Codec::Vp9 => &[Codec::Vp9, Codec::Vp8, Codec::H264, Codec::Av1],
        Codec::Av1 => &[Codec::Av1, Codec::Vp8, Codec::H264, Codec::Vp9],
    }
}

/// The payload type the server's offers give a codec.
pub fn payload_type(codec: Codec) -> u8 {
    match codec {
        Codec::Opus => OPUS_PT,
        Codec::Vp8 => VP8_PT,
        Codec::H264 => H264_PT,
        Codec::Vp9 => VP9_PT,
        Codec::Av1 => AV1_PT,
    }
}

fn candidate_line(addr: SocketAddr) -> String {
    format!("1 1 udp 2130706431 {} {} typ host", addr.ip(), addr.port())
}
