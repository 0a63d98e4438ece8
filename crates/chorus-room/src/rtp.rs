//! Plain-RTP participants at the registry: the request checked, a UDP port opened on
//! the media bind address, the room asked to let the participant in. The room's
//! driver then runs its endpoint ([`chorus_plainrtp::driver::run`]).

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use chorus_plainrtp::PlainCodec;
use chorus_protocol::control::{CreateRtpParticipantRequest, RtpParticipantInfo};
use chorus_room_api::RoomError;

use crate::command::RoomCommand;
use crate::io::RtpJoin;
use crate::registry::RoomRegistry;

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
    let payload_type = match (codec.static_payload_type(), req.payload_type) {
        (Some(pt), None) => pt,
        (Some(pt), Some(asked)) if asked == pt => pt,
        (Some(pt), Some(_)) => {
            return Err(invalid(format!(
                "{} uses payload type {pt}",
                codec.as_str()
            )));
        }
        (None, None) => DEFAULT_OPUS_PT,
        (None, Some(asked)) if (96..=127).contains(&asked) => asked,
        (None, Some(_)) => return Err(invalid("opus needs a dynamic payload type, 96 to 127")),
    };
    let remote: SocketAddr = req
        .remote_address
        .parse()
        .map_err(|_| invalid("remote_address must be ip:port"))?;
    let ip = remote.ip();
    if remote.port() == 0 || ip.is_unspecified() || ip.is_multicast() {
        return Err(invalid(
            "remote_address must be one host's address with a port",
        ));
    }
    if ip.is_ipv4() != config.bind_ip.is_ipv4() {
        return Err(invalid(format!(
            "remote_address must be of the media bind address's family ({})",
            config.bind_ip
        )));
    }
    if !(config.allow_public_remote || ip.is_loopback() || is_private(ip)) {
        return Err(invalid(
            "remote_address must be loopback or private (plain_rtp.allow_public_remote is off)",
        ));
    }
    Ok(RtpSpec {
        codec,
        payload_type,
        remote,
    })
}

/// RFC 1918 and IPv6 unique local addresses.
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

impl RoomRegistry {
    /// A phone or bot joins `room` (which must exist) over plain RTP.
    pub async fn create_rtp_participant(
        &self,
        room: &str,
        req: CreateRtpParticipantRequest,
    ) -> Result<RtpParticipantInfo, RoomError> {
        if self.is_draining() {
            return Err(RoomError::Draining);
        }
        let config = self.config().plain_rtp.clone();
        let spec = check(&req, &config)?;
        let socket = UdpSocket::bind((config.bind_ip, 0))
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .map_err(|e| RoomError::RtpSocket(e.to_string()))?;
        let local = socket
            .local_addr()
            .map_err(|e| RoomError::RtpSocket(e.to_string()))?;
        let join = RtpJoin {
            name: req.name.unwrap_or_else(|| req.identity.clone()),
            identity: req.identity,
            codec: spec.codec,
            max_in_room: config.max_per_room,
        };
        let spec2 = spec.clone();
        let admitted = self
            .call(room, move |reply| RoomCommand::AddRtp {
                join,
                socket,
                remote: spec2.remote,
                payload_type: spec2.payload_type,
                timeout: config.timeout,
                reply,
            })
            .await??;
        Ok(RtpParticipantInfo {
            participant: admitted.info,
            codec: spec.codec.as_str().to_owned(),
            payload_type: spec.payload_type,
            local_address: local.to_string(),
            remote_address: spec.remote.to_string(),
            ssrc: admitted.ssrc,
        })
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
        }
    }

    #[test]
    fn requests_are_checked() {
        let config = PlainRtpConfig::default();
        let public = PlainRtpConfig {
            allow_public_remote: true,
            ..PlainRtpConfig::default()
        };
        let ok = |codec, pt, remote: &str| {
            Ok(RtpSpec {
                codec,
                payload_type: pt,
                remote: remote.parse().unwrap(),
            })
        };
        let bad = |m: &str| Err(m.to_owned());
        // (request, config, expected: the spec, or a word of the error)
        let cases: Vec<(
            CreateRtpParticipantRequest,
            &PlainRtpConfig,
            Result<RtpSpec, String>,
        )> = vec![
            (
                req("pcmu", "127.0.0.1:4000", None),
                &config,
                ok(PlainCodec::Pcmu, 0, "127.0.0.1:4000"),
            ),
            (
                req("pcma", "10.1.2.3:4000", Some(8)),
                &config,
                ok(PlainCodec::Pcma, 8, "10.1.2.3:4000"),
            ),
            (
                req("opus", "192.168.1.9:5004", None),
                &config,
                ok(PlainCodec::Opus, 111, "192.168.1.9:5004"),
            ),
            (
                req("opus", "127.0.0.1:5004", Some(100)),
                &config,
                ok(PlainCodec::Opus, 100, "127.0.0.1:5004"),
            ),
            (req("g729", "127.0.0.1:4000", None), &config, bad("codec")),
            (req("PCMU", "127.0.0.1:4000", None), &config, bad("codec")),
            (
                req("pcmu", "127.0.0.1:4000", Some(8)),
                &config,
                bad("payload type 0"),
            ),
            (
                req("opus", "127.0.0.1:4000", Some(0)),
                &config,
                bad("dynamic"),
            ),
            (req("pcmu", "127.0.0.1", None), &config, bad("ip:port")),
            (req("pcmu", "localhost:4000", None), &config, bad("ip:port")),
            (req("pcmu", "127.0.0.1:0", None), &config, bad("one host")),
            (req("pcmu", "0.0.0.0:4000", None), &config, bad("one host")),
            (
                req("pcmu", "224.0.0.1:4000", None),
                &config,
                bad("one host"),
            ),
            (req("pcmu", "[::1]:4000", None), &config, bad("family")),
            (
                req("pcmu", "8.8.8.8:4000", None),
                &config,
                bad("allow_public_remote"),
            ),
            (
                req("pcmu", "8.8.8.8:4000", None),
                &public,
                ok(PlainCodec::Pcmu, 0, "8.8.8.8:4000"),
            ),
        ];
        for (r, config, want) in cases {
            let got = check(&r, config);
            match (got, want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w, "{r:?}"),
                (Err(RoomError::InvalidRtpParticipant(m)), Err(w)) => {
                    assert!(m.contains(&w), "{r:?}: {m}")
                }
                (got, want) => panic!("{r:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}
