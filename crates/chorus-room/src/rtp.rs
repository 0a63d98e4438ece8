//! Plain-RTP participants at the registry: the request checked, a UDP port opened on
//! the media bind address, the room asked to let the participant in. The room's
//! driver then runs its endpoint ([`chorus_plainrtp::driver::run`]).

mod handoff;

pub(crate) use handoff::{frame_to_room, mix_to_task};

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use chorus_plainrtp::{PlainCodec, SdesKey};
use chorus_protocol::control::CreateRtpParticipantRequest;
use chorus_room_api::RoomError;

/// Plain-RTP participants' settings.
#[derive(Debug, Clone)]
pub struct PlainRtpConfig {
    /// Where their UDP ports are opened (the media bind address; port chosen by the
    /// system).
    pub bind_ip: IpAddr,
    /// No RTP this long and the participant leaves (`rtp_timeout`).
    pub timeout: Duration,
    /// At most this many in one room.
    pub max_per_room: u32,
    /// Allow remote addresses that are neither loopback nor private.
    pub allow_public_remote: bool,
}

impl Default for PlainRtpConfig {
    fn default() -> Self {
        Self {
            bind_ip: IpAddr::from([127, 0, 0, 1]),
            timeout: Duration::from_secs(10),
            max_per_room: 8,
            allow_public_remote: false,
        }
    }
}

/// Opus's payload type when the request names none (as WebRTC clients use).
const DEFAULT_OPUS_PT: u8 = 111;

/// What a request asks for, checked.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RtpSpec {
    pub codec: PlainCodec,
    pub payload_type: u8,
    pub remote: SocketAddr,
    /// The participant's SDES key, with SRTP.
    pub srtp: Option<SdesKey>,
}

fn invalid(message: impl Into<String>) -> RoomError {
    RoomError::InvalidRtpParticipant(message.into())
}

/// Checks the codec, the payload type and the remote address.
pub(crate) fn check(
    req: &CreateRtpParticipantRequest,
    config: &PlainRtpConfig,
) -> Result<RtpSpec, RoomError> {
    let codec = PlainCodec::parse(&req.codec).ok_or_else(|| {
        invalid(format!(
            "codec must be opus, pcmu or pcma, not {:?}",
            req.codec
        ))
    })?;
    // Any dynamic type, for either codec (SDP may map PCMU to one); absent, the static
    // one. The document says the same (`minimum`, `maximum`).
    let payload_type = match req.payload_type {
        None => codec.static_payload_type().unwrap_or(DEFAULT_OPUS_PT),
        Some(asked) if (96..=127).contains(&asked) => asked,
        Some(_) => return Err(invalid("payload_type must be a dynamic one, 96 to 127")),
    };
    // IPv4 `ip:port` with a port, as the document's pattern says; then what this server
    // allows (`403`).
    let remote: SocketAddr = req
        .remote_address
        .parse()
        .ok()
        .filter(|a: &SocketAddr| a.is_ipv4() && a.port() != 0)
        .ok_or_else(|| invalid("remote_address must be IPv4 ip:port, port 1 to 65535"))?;
    let not_allowed = |m: &str| Err(RoomError::RemoteNotAllowed(m.to_owned()));
    let ip = remote.ip();
    if ip.is_unspecified() || ip.is_multicast() || ip == IpAddr::from([255, 255, 255, 255]) {
        return not_allowed("not one host's address");
    }
    if ip.is_ipv4() != config.bind_ip.is_ipv4() {
        return not_allowed("not of the media bind address's family");
    }
    if !(config.allow_public_remote || ip.is_loopback() || is_private(ip)) {
        return not_allowed("loopback or private only (plain_rtp.allow_public_remote is off)");
    }
    let srtp = match &req.srtp {
        Some(p) => Some(SdesKey::parse(&p.suite, &p.key).map_err(|e| invalid(e.to_string()))?),
        None => None,
    };
    Ok(RtpSpec {
        codec,
        payload_type,
        remote,
        srtp,
    })
}

/// RFC 1918 and IPv6 unique local addresses.
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(codec: &str, remote: &str, pt: Option<u8>) -> CreateRtpParticipantRequest {
        CreateRtpParticipantRequest {
            identity: "phone".into(),
            name: None,
            codec: codec.into(),
            remote_address: remote.into(),
            payload_type: pt,
            srtp: None,
            early_media: false,
        }
    }

    #[test]
    fn requests_are_checked() {
        let config = PlainRtpConfig::default();
        let public = PlainRtpConfig {
            allow_public_remote: true,
            ..PlainRtpConfig::default()
        };
        // (codec, remote, payload type, config, expected: (codec, type) or an error code)
        type Want = Result<(PlainCodec, u8), &'static str>;
        let cases: Vec<(&str, &str, Option<u8>, &PlainRtpConfig, Want)> = vec![
            (
                "pcmu",
                "127.0.0.1:4000",
                None,
                &config,
                Ok((PlainCodec::Pcmu, 0)),
            ),
            (
                "pcma",
                "10.1.2.3:4000",
                None,
                &config,
                Ok((PlainCodec::Pcma, 8)),
            ),
            (
                "pcmu",
                "172.16.0.1:4000",
                Some(100),
                &config,
                Ok((PlainCodec::Pcmu, 100)),
            ),
            (
                "opus",
                "192.168.1.9:5004",
                None,
                &config,
                Ok((PlainCodec::Opus, 111)),
            ),
            (
                "opus",
                "127.0.0.1:5004",
                Some(127),
                &config,
                Ok((PlainCodec::Opus, 127)),
            ),
            (
                "g729",
                "127.0.0.1:4000",
                None,
                &config,
                Err("invalid_rtp_participant"),
            ),
            (
                "PCMU",
                "127.0.0.1:4000",
                None,
                &config,
                Err("invalid_rtp_participant"),
            ),
            (
                "pcmu",
                "127.0.0.1:4000",
                Some(0),
                &config,
                Err("invalid_rtp_participant"),
            ),
            (
                "opus",
                "127.0.0.1:4000",
                Some(95),
                &config,
                Err("invalid_rtp_participant"),
            ),
            (
                "pcmu",
                "127.0.0.1",
                None,
                &config,
                Err("invalid_rtp_participant"),
            ),
            (
                "pcmu",
                "localhost:4000",
                None,
                &config,
                Err("invalid_rtp_participant"),
            ),
            (
                "pcmu",
                "127.0.0.1:0",
                None,
                &config,
                Err("invalid_rtp_participant"),
            ),
            (
                "pcmu",
                "[::1]:4000",
                None,
                &config,
                Err("invalid_rtp_participant"),
            ),
            (
                "pcmu",
                "0.0.0.0:4000",
                None,
                &config,
                Err("remote_address_not_allowed"),
            ),
            (
                "pcmu",
                "224.0.0.1:4000",
                None,
                &config,
                Err("remote_address_not_allowed"),
            ),
            (
                "pcmu",
                "255.255.255.255:4000",
                None,
                &public,
                Err("remote_address_not_allowed"),
            ),
            (
                "pcmu",
                "8.8.8.8:4000",
                None,
                &config,
                Err("remote_address_not_allowed"),
            ),
            (
                "pcmu",
                "8.8.8.8:4000",
                None,
                &public,
                Ok((PlainCodec::Pcmu, 0)),
            ),
        ];
        for (codec, remote, pt, config, want) in cases {
            let got = check(&req(codec, remote, pt), config)
                .map(|s| (s.codec, s.payload_type))
                .map_err(|e| e.code());
            assert_eq!(got, want, "{codec} {remote} {pt:?}");
        }
    }
}
