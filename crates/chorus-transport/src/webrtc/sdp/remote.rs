//! Reading a client's description: what the server needs from its offer (publisher side)
//! or its answer (subscriber side).

use std::io::Cursor;

use rtc::sdp::description::common::Attribute;
use rtc::sdp::description::media::MediaDescription;
use rtc::sdp::description::session::SessionDescription;

use chorus_core::Codec;

use super::SdpError;
use super::attributes::{value, values};
use super::simulcast::{REPAIRED_RID_URI, RID_URI, offered_rids};

pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
pub const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
pub use crate::rtcp::twcc::EXTENSION_URI as TWCC_URI;
/// The AV1 RTP dependency descriptor (the AV1 RTP spec, appendix A).
pub const DD_URI: &str =
    "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension";

/// What the server needs from a client's offer or answer.
#[derive(Debug, Clone)]
pub struct Remote {
    /// `sha-256 AB:CD:…`: the certificate the client's DTLS must present.
    pub fingerprint: String,
    pub ice_ufrag: String,
    pub ice_pwd: String,
    /// The m-sections the client sends media on, in a codec Chorus takes, in order.
    pub media: Vec<RemoteMedia>,
    /// Live m-sections in a codec Chorus takes on which the client sends nothing
    /// (`recvonly`, `inactive`: a track it stopped sending). The answer keeps them alive,
    /// `inactive`, so the client can send on them again later.
    pub idle: Vec<RemoteMedia>,
    /// The live data channel m-section (`m=application … UDP/DTLS/SCTP
    /// webrtc-datachannel`), if any: the first one; others are rejected.
    pub application: Option<RemoteApplication>,
    /// `a=setup` of the first m-section (`active`, `passive`, `actpass`), if any.
    pub setup: Option<String>,
    pub(super) parsed: SessionDescription,
}

/// One m-section the client sends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteMedia {
    pub mid: String,
    /// `audio` or `video`.
    pub kind: String,
    /// The codec Chorus takes that the client listed first for this m-section.
    pub codec: Codec,
    /// Its payload type in the client's description.
    pub payload_type: u8,
    /// H.264: its `a=fmtp` parameters there (the answer repeats them).
    pub fmtp: Option<String>,
    /// Every codec Chorus takes that the section lists, `codec` first: in a subscriber's
    /// answer, what it can receive there.
    pub codecs: Vec<Codec>,
    /// The client's MediaStreamTrack id: `a=msid`'s second token, else `a=ssrc:N msid:S T`'s.
    pub track_id: Option<String>,
    /// The media SSRCs of the `a=ssrc` lines, in order, without duplicates; the repair
    /// SSRC of an `a=ssrc-group:FID` (RTX) or `FEC-FR` pair is left out.
    pub ssrcs: Vec<u32>,
    /// The `a=extmap` id of the audio level extension (RFC 6464); audio only.
    pub audio_level_ext: Option<u8>,
    /// The `a=extmap` id of the MID extension (RFC 8843).
    pub mid_ext: Option<u8>,
    /// The `a=extmap` id of the transport-wide sequence number, when the client also
    /// asks for `transport-cc` feedback on this m-section.
    pub twcc_ext: Option<u8>,
    /// Simulcast: the rids of its layers, lowest quality first (see
    /// [`offered_rids`](super::simulcast::offered_rids)); empty without simulcast.
    pub rids: Vec<String>,
    /// Simulcast only: the `a=extmap` ids of the rid and repaired-rid extensions.
    pub rid_ext: Option<u8>,
    pub repaired_rid_ext: Option<u8>,
    /// AV1 only: the `a=extmap` id of the dependency descriptor.
    pub dd_ext: Option<u8>,
}

/// The client's data channel m-section (RFC 8841).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteApplication {
    pub mid: String,
    /// `a=sctp-port` (5000 when absent).
    pub sctp_port: u16,
    /// `a=max-message-size`: absent means 64 KiB, 0 no limit (RFC 8841 §6).
    pub max_message_size: Option<u32>,
}

/// The codec Chorus takes of those an m-section lists, in the client's order of
/// preference (the m-line's formats), with its payload type and (H.264) `a=fmtp` parameters:
/// Opus for audio; VP8, VP9 profile 0 (see [`vp9_taken`]), H.264 in packetization
/// mode 1 and the baseline profile (see [`h264_taken`]), or AV1 in the main profile
/// (see [`av1_taken`]), for video.
fn chosen_codec(m: &MediaDescription) -> Option<(Codec, u8, Option<String>)> {
    taken_codecs(m).into_iter().next()
}

/// Every codec Chorus takes that an m-section lists, in its order (see [`chosen_codec`]).
fn taken_codecs(m: &MediaDescription) -> Vec<(Codec, u8, Option<String>)> {
    let kind = m.media_name.media.as_str();
    let rtpmaps: Vec<(&str, &str)> = values(&m.attributes, "rtpmap")
        .filter_map(|v| v.split_once(' '))
        .collect();
    let fmtp = |pt: &str| {
        values(&m.attributes, "fmtp")
            .filter_map(|v| v.split_once(' '))
            .find(|(p, _)| *p == pt)
            .map(|(_, params)| params.trim().to_owned())
    };
    let taken = m.media_name.formats.iter().filter_map(|pt| {
        let (_, encoding) = rtpmaps.iter().find(|(p, _)| p == pt)?;
        let name = encoding.split('/').next()?;
        let codec = match (kind, name.to_ascii_lowercase().as_str()) {
            ("audio", "opus") => Codec::Opus,
            ("video", "vp8") => Codec::Vp8,
            ("video", "h264") if fmtp(pt).as_deref().is_some_and(h264_taken) => Codec::H264,
            ("video", "vp9") if vp9_taken(fmtp(pt).as_deref()) => Codec::Vp9,
            ("video", "av1") if av1_taken(fmtp(pt).as_deref()) => Codec::Av1,
            _ => return None,
        };
        let params = matches!(codec, Codec::H264 | Codec::Vp9 | Codec::Av1)
            .then(|| fmtp(pt))
            .flatten();
        Some((codec, pt.parse().ok()?, params))
    });
    taken.collect()
}

/// H.264 `a=fmtp` parameters Chorus takes: packetization mode 1, and a profile-level-id
/// of the baseline profile (profile_idc 0x42, RFC 6184 §8.1), any level and constraints:
/// what WebRTC encoders produce under either label (Chromium's first H.264 says
/// `42001f`) is constrained baseline, which Chorus offers subscribers as `42e01f`.
fn h264_taken(params: &str) -> bool {
    h264_params_taken(params)
}

/// VP9 `a=fmtp` parameters Chorus takes: profile 0 (8-bit 4:2:0, what every browser
/// decodes), which is also what no `profile-id` means (RFC 9628 §6); not profile 2.
fn vp9_taken(params: Option<&str>) -> bool {
    fmtp_param(params, "profile-id").is_none_or(|p| p == "0")
}

/// AV1 `a=fmtp` parameters Chorus takes: the main profile (`profile=0`, 8- and 10-bit
/// 4:2:0, what browsers decode), which is also what no `profile` means (AV1 RTP spec
/// §7.2); not high (1) or professional (2).
fn av1_taken(params: Option<&str>) -> bool {
    fmtp_param(params, "profile").is_none_or(|p| p == "0")
}

/// The value of `key` in `a=fmtp` parameters (`k=v;k=v`, keys in any case).
fn fmtp_param(params: Option<&str>, key: &str) -> Option<String> {
    params?.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(key)
            .then(|| v.trim().to_owned())
    })
}

fn h264_params_taken(params: &str) -> bool {
    let param = |key: &str| {
        params.split(';').find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim().eq_ignore_ascii_case(key).then_some(v.trim())
        })
    };
    let baseline = param("profile-level-id")
        .filter(|v| v.len() == 6)
        .is_some_and(|v| v[..2].eq_ignore_ascii_case("42"));
    param("packetization-mode") == Some("1") && baseline
}

impl Remote {
    /// A client's offer: it must send something the server takes.
    pub fn parse(sdp: &str) -> Result<Self, SdpError> {
        let remote = Self::parse_description(sdp)?;
        if remote.media.is_empty() && remote.application.is_none() {
            return Err(SdpError::NothingToReceive);
        }
        Ok(remote)
    }

    /// Any description of the client's: it may send nothing (an answer to the server's
    /// send-only offer is `recvonly`; a publisher's re-offer may have stopped every track).
    pub fn parse_description(sdp: &str) -> Result<Self, SdpError> {
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
        let (mut media, mut idle) = (Vec::new(), Vec::new());
        for (m, sends) in parsed
            .media_descriptions
            .iter()
            .filter_map(|m| read_media(m, &parsed.attributes))
        {
            if sends { media.push(m) } else { idle.push(m) }
        }
        Ok(Self {
            fingerprint,
            ice_ufrag: ice_ufrag.to_owned(),
            ice_pwd: ice_pwd.to_owned(),
            media,
            idle,
            application: parsed.media_descriptions.iter().find_map(read_application),
            setup: media_attr("setup").map(str::to_owned),
            parsed,
        })
    }

    /// Whether the client may mix one- and two-byte header extensions
    /// (`a=extmap-allow-mixed`, at session level or on a media section).
    pub fn allows_mixed_extensions(&self) -> bool {
        let has = |attrs: &[Attribute]| attrs.iter().any(|a| a.key == "extmap-allow-mixed");
        has(&self.parsed.attributes)
            || self
                .parsed
                .media_descriptions
                .iter()
                .any(|m| has(&m.attributes))
    }

    /// The accepted m-section with this mid.
    pub fn media(&self, mid: &str) -> Option<&RemoteMedia> {
        self.media.iter().find(|m| m.mid == mid)
    }

    /// The live m-section with this mid on which the client sends nothing.
    pub fn idle(&self, mid: &str) -> Option<&RemoteMedia> {
        self.idle.iter().find(|m| m.mid == mid)
    }
}

/// An m-section's direction; the session's if it has none (RFC 4566: `sendrecv` by default).
fn direction<'a>(m: &'a MediaDescription, session: &'a [Attribute]) -> &'a str {
    const DIRECTIONS: [&str; 4] = ["sendrecv", "sendonly", "recvonly", "inactive"];
    let find = |attrs: &'a [Attribute]| {
        attrs
            .iter()
            .map(|a| a.key.as_str())
            .find(|k| DIRECTIONS.contains(k))
    };
    find(&m.attributes)
        .or_else(|| find(session))
        .unwrap_or("sendrecv")
}

/// The m-section, if it is live in a codec Chorus takes, and whether the client sends on it.
fn read_media(m: &MediaDescription, session: &[Attribute]) -> Option<(RemoteMedia, bool)> {
    let kind = m.media_name.media.as_str();
    let mid = value(&m.attributes, "mid")?;
    // Port 0 rejects or stops an m-section, unless it is bundled without a port of its own.
    let rejected = m.media_name.port.value == 0 && attribute(m, "bundle-only").is_none();
    if rejected {
        return None;
    }
    let sends = matches!(direction(m, session), "sendrecv" | "sendonly");
    let codecs: Vec<Codec> = taken_codecs(m).into_iter().map(|(c, ..)| c).collect();
    let (codec, payload_type, fmtp) = chosen_codec(m)?;
    let extmap = |uri| extmap_id(&m.attributes, uri).or_else(|| extmap_id(session, uri));
    // Without layers the rid extensions are not taken (browsers offer them anyway): a
    // plain offer is answered as before simulcast.
    let rids = if kind == "video" {
        offered_rids(&m.attributes)
    } else {
        Vec::new()
    };
    let simulcast = !rids.is_empty();
    let media = RemoteMedia {
        mid: mid.to_owned(),
        kind: kind.to_owned(),
        codec,
        payload_type,
        fmtp,
        codecs,
        track_id: track_id(&m.attributes),
        ssrcs: media_ssrcs(&m.attributes),
        audio_level_ext: (kind == "audio").then(|| extmap(AUDIO_LEVEL_URI)).flatten(),
        mid_ext: extmap(MID_URI),
        twcc_ext: extmap(TWCC_URI).filter(|_| {
            values(&m.attributes, "rtcp-fb").any(|v| {
                let mut parts = v.split_whitespace();
                let format = parts.next();
                let fb = parts.next();
                fb == Some("transport-cc")
                    && format.is_some_and(|f| f == "*" || f == payload_type.to_string())
            })
        }),
        rid_ext: extmap(RID_URI).filter(|_| simulcast),
        repaired_rid_ext: extmap(REPAIRED_RID_URI).filter(|_| simulcast),
        // Taken for AV1 only: others have their layers in their payload descriptors,
        // and would carry it for nothing.
        dd_ext: extmap(DD_URI).filter(|_| codec == Codec::Av1),
        rids,
    };
    Some((media, sends))
}

/// The m-section, if it is a live data channel section in the form Chorus takes (the
/// one of RFC 8841; the older `DTLS/SCTP 5000` with `a=sctpmap` is not).
fn read_application(m: &MediaDescription) -> Option<RemoteApplication> {
    let name = &m.media_name;
    let sctp = name.media == "application"
        && name.protos.join("/") == "UDP/DTLS/SCTP"
        && name.formats == ["webrtc-datachannel"];
    let rejected = name.port.value == 0 && attribute(m, "bundle-only").is_none();
    if !sctp || rejected {
        return None;
    }
    Some(RemoteApplication {
        mid: value(&m.attributes, "mid")?.to_owned(),
        sctp_port: value(&m.attributes, "sctp-port").map_or(Some(5000), |p| p.parse().ok())?,
        max_message_size: value(&m.attributes, "max-message-size").and_then(|v| v.parse().ok()),
    })
}

fn attribute<'a>(m: &'a MediaDescription, key: &str) -> Option<&'a Attribute> {
    m.attributes.iter().find(|a| a.key == key)
}

/// `a=extmap:<id>[/<direction>] <uri> [<attributes>]`: the id for `uri`.
fn extmap_id(attrs: &[Attribute], uri: &str) -> Option<u8> {
    values(attrs, "extmap").find_map(|v| {
        let mut parts = v.split_whitespace();
        let id = parts.next()?.split('/').next()?.parse().ok()?;
        (parts.next()? == uri).then_some(id)
    })
}

/// `a=msid:<stream> <track>`; else `a=ssrc:<n> msid:<stream> <track>` (older stacks,
/// webrtcbin).
fn track_id(attrs: &[Attribute]) -> Option<String> {
    let from_msid = values(attrs, "msid").find_map(|v| v.split_whitespace().nth(1));
    let from_ssrc = || {
        values(attrs, "ssrc").find_map(|v| {
            let (_, attr) = v.split_once(' ')?;
            attr.strip_prefix("msid:")?.split_whitespace().nth(1)
        })
    };
    from_msid.or_else(from_ssrc).map(str::to_owned)
}

/// The SSRCs of `a=ssrc` lines, less the repair streams their groups name.
fn media_ssrcs(attrs: &[Attribute]) -> Vec<u32> {
    // `FID <media> <rtx>` (RFC 4588), `FEC-FR <media> <fec>` (RFC 5956): the first is media.
    let repair: Vec<u32> = values(attrs, "ssrc-group")
        .filter_map(|v| {
            let mut parts = v.split_whitespace();
            let semantics = parts.next()?;
            matches!(semantics, "FID" | "FEC-FR").then_some(parts.skip(1))
        })
        .flatten()
        .filter_map(|s| s.parse().ok())
        .collect();
    let mut ssrcs = Vec::new();
    for v in values(attrs, "ssrc") {
        let ssrc = v.split_whitespace().next().and_then(|s| s.parse().ok());
        if let Some(ssrc) = ssrc.filter(|s| !repair.contains(s) && !ssrcs.contains(s)) {
            ssrcs.push(ssrc);
        }
    }
    ssrcs
}
