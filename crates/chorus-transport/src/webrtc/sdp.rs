//! SDP as Chorus writes and reads it, rather than negotiated by a peer-connection stack.
//! What the server needs from the client's description ([`Remote`]); the server's answer
//! on a publisher connection (ICE-lite with one host candidate, the server as DTLS server,
//! `a=setup:passive`, unless the client insists on being it; one BUNDLE, per offered m-section the one codec Chorus takes for its
//! kind, Opus or VP8, receive-only, anything else rejected); and the server's offer on a
//! subscriber connection (one send-only m-section per track, `a=setup:actpass`).

use std::io::Cursor;
use std::net::SocketAddr;

use rtc::sdp::description::common::Attribute;
use rtc::sdp::description::media::{MediaDescription, RangedPort};
use rtc::sdp::description::session::SessionDescription;
use thiserror::Error;

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum SdpError {
    #[error("the description does not parse: {0}")]
    Parse(String),
    #[error("the description has no sha-256 fingerprint")]
    NoFingerprint,
    #[error("the description has no ICE credentials")]
    NoCredentials,
    #[error("the description carries no audio or video in a codec Chorus takes")]
    NothingToReceive,
}

/// What the server needs from a client's offer or answer.
#[derive(Debug, Clone)]
pub struct Remote {
    /// `sha-256 AB:CD:…`: the certificate the client's DTLS must present.
    pub fingerprint: String,
    pub ice_ufrag: String,
    pub ice_pwd: String,
    /// The accepted m-sections: (mid, kind, payload type).
    pub media: Vec<(String, String, u8)>,
    /// `a=setup` of the first m-section (`active`, `passive`, `actpass`), if any.
    pub setup: Option<String>,
    parsed: SessionDescription,
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

/// The codec Chorus takes for a kind of media.
fn wanted(kind: &str) -> Option<&'static str> {
    match kind {
        "audio" => Some("opus"),
        "video" => Some("vp8"),
        _ => None,
    }
}

fn value<'a>(attrs: &'a [Attribute], key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_deref())
}

impl Remote {
    pub fn parse(sdp: &str) -> Result<Self, SdpError> {
        let parsed = SessionDescription::unmarshal(&mut Cursor::new(sdp.as_bytes()))
            .map_err(|e| SdpError::Parse(e.to_string()))?;
        let session = |key| value(&parsed.attributes, key);
        let first = parsed.media_descriptions.first();
        let media_attr = |key| first.and_then(|m| value(&m.attributes, key));
        let fingerprint = session("fingerprint")
            .or_else(|| media_attr("fingerprint"))
            .filter(|f| f.to_ascii_lowercase().starts_with("sha-256 "))
            .ok_or(SdpError::NoFingerprint)?
            .to_owned();
        let ice_ufrag = session("ice-ufrag").or_else(|| media_attr("ice-ufrag"));
        let ice_pwd = session("ice-pwd").or_else(|| media_attr("ice-pwd"));
        let (Some(ice_ufrag), Some(ice_pwd)) = (ice_ufrag, ice_pwd) else {
            return Err(SdpError::NoCredentials);
        };
        let mut media = Vec::new();
        for m in &parsed.media_descriptions {
            let kind = m.media_name.media.clone();
            let (Some(mid), Some(codec)) = (value(&m.attributes, "mid"), wanted(&kind)) else {
                continue;
            };
            let pt = m
                .attributes
                .iter()
                .filter(|a| a.key == "rtpmap")
                .filter_map(|a| a.value.as_deref()?.split_once(' '))
                .find(|(_, enc)| {
                    enc.split('/')
                        .next()
                        .is_some_and(|name| name.eq_ignore_ascii_case(codec))
                })
                .and_then(|(pt, _)| pt.parse::<u8>().ok());
            if let Some(pt) = pt {
                media.push((mid.to_owned(), kind, pt));
            }
        }
        if media.is_empty() {
            return Err(SdpError::NothingToReceive);
        }
        Ok(Self {
            fingerprint,
            ice_ufrag: ice_ufrag.to_owned(),
            ice_pwd: ice_pwd.to_owned(),
            media,
            setup: media_attr("setup").map(str::to_owned),
            parsed,
        })
    }

    /// The answer: every offered m-section in order, the accepted ones receive-only
    /// with their one codec, the rest rejected.
    pub fn answer(&self, local: &Local<'_>) -> String {
        let mids = self.media.iter().map(|(mid, _, _)| mid.as_str());
        let mut answer = session(mids, local);
        let (alg, fp) = fingerprint_parts(local);
        let candidate = candidate_line(local.candidate);
        for offered in &self.parsed.media_descriptions {
            let kind = offered.media_name.media.clone();
            let mid = value(&offered.attributes, "mid").unwrap_or_default();
            let accepted = self.media.iter().find(|(m, _, _)| m == mid);
            let mut m = MediaDescription::new_jsep_media_description(kind, vec![]);
            m = m.with_value_attribute("mid".to_owned(), mid.to_owned());
            match accepted {
                Some((_, kind, pt)) => {
                    let (_, name, clock, channels) = codec(kind);
                    m = m
                        .with_codec(*pt, name.to_owned(), clock, channels, String::new())
                        .with_ice_credentials(local.ice_ufrag.to_owned(), local.ice_pwd.to_owned())
                        .with_fingerprint(alg.to_owned(), fp.to_owned())
                        .with_value_attribute("setup".to_owned(), local.setup.to_owned())
                        .with_property_attribute("rtcp-mux".to_owned())
                        .with_property_attribute("rtcp-rsize".to_owned())
                        .with_property_attribute("recvonly".to_owned())
                        .with_candidate(candidate.clone())
                        .with_property_attribute("end-of-candidates".to_owned());
                }
                None => {
                    m.media_name.port = RangedPort {
                        value: 0,
                        range: None,
                    };
                    m.media_name.formats = offered.media_name.formats.clone();
                    m = m.with_property_attribute("inactive".to_owned());
                }
            }
            answer = answer.with_media(m);
        }
        answer.marshal()
    }
}

/// A track the server sends on a subscriber connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutTrack {
    pub mid: String,
    /// `audio` or `video`.
    pub kind: String,
    pub ssrc: u32,
    /// The media stream id and track id the client sees (`a=msid`).
    pub stream_id: String,
    pub track_id: String,
    /// The track was removed: its m-section stays (JSEP never removes one), rejected.
    pub stopped: bool,
}

/// The server's offer on a subscriber connection: one send-only m-section per track,
/// Opus (111) or VP8 (96), `a=setup:actpass` (the client's answer picks the DTLS roles).
pub fn offer(tracks: &[OutTrack], local: &Local<'_>) -> String {
    let mids = tracks.iter().filter(|t| !t.stopped).map(|t| t.mid.as_str());
    let mut offer = session(mids, local);
    let (alg, fp) = fingerprint_parts(local);
    for t in tracks {
        let (pt, name, clock, channels) = codec(&t.kind);
        let m = MediaDescription::new_jsep_media_description(t.kind.clone(), vec![])
            .with_value_attribute("mid".to_owned(), t.mid.clone())
            .with_codec(pt, name.to_owned(), clock, channels, String::new());
        if t.stopped {
            let mut m = m.with_property_attribute("inactive".to_owned());
            m.media_name.port = RangedPort {
                value: 0,
                range: None,
            };
            offer = offer.with_media(m);
            continue;
        }
        let m = m
            .with_ice_credentials(local.ice_ufrag.to_owned(), local.ice_pwd.to_owned())
            .with_fingerprint(alg.to_owned(), fp.to_owned())
            .with_value_attribute("setup".to_owned(), "actpass".to_owned())
            .with_property_attribute("rtcp-mux".to_owned())
            .with_property_attribute("rtcp-rsize".to_owned())
            .with_property_attribute("sendonly".to_owned())
            .with_value_attribute("msid".to_owned(), format!("{} {}", t.stream_id, t.track_id))
            .with_value_attribute("ssrc".to_owned(), format!("{} cname:chorus", t.ssrc))
            .with_value_attribute(
                "ssrc".to_owned(),
                format!("{} msid:{} {}", t.ssrc, t.stream_id, t.track_id),
            )
            .with_candidate(candidate_line(local.candidate))
            .with_property_attribute("end-of-candidates".to_owned());
        offer = offer.with_media(m);
    }
    offer.marshal()
}

/// The session level both descriptions share: ICE-lite, one BUNDLE of `mids`.
fn session<'a>(mids: impl Iterator<Item = &'a str>, local: &Local<'_>) -> SessionDescription {
    let mids: Vec<&str> = mids.collect();
    let mut d = SessionDescription::new_jsep_session_description(false)
        .with_property_attribute("ice-lite".to_owned())
        .with_value_attribute("group".to_owned(), format!("BUNDLE {}", mids.join(" ")));
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

/// The one codec Chorus sends and takes for a kind: (payload type, name, clock, channels).
fn codec(kind: &str) -> (u8, &'static str, u32, u16) {
    if kind == "audio" {
        (111, "opus", 48_000, 2)
    } else {
        (96, "VP8", 90_000, 0)
    }
}

fn candidate_line(addr: SocketAddr) -> String {
    format!("1 1 udp 2130706431 {} {} typ host", addr.ip(), addr.port())
}
