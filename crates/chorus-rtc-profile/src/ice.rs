//! What a Chorus client says in ICE, and what the server reads back from it: the one
//! host candidate both ends gather, the credentials an SDP carries, and the binding
//! request and indication a client sends to keep a path.

use std::net::SocketAddr;

use rtc::crypto::RTCCrypto;
use rtc::ice::attributes::control::AttrControlling;
use rtc::ice::attributes::priority::PriorityAttr;
use rtc::ice::attributes::use_candidate::UseCandidateAttr;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::stun::attributes::ATTR_USERNAME;
use rtc::stun::fingerprint::FINGERPRINT;
use rtc::stun::integrity::MessageIntegrity;
use rtc::stun::message::{
    BINDING_REQUEST, CLASS_INDICATION, METHOD_BINDING, Message, MessageType, Setter, TransactionId,
};
use rtc::stun::textattrs::TextAttribute;

/// The one UDP host candidate at `addr`: what both ends here gather (no STUN, no TURN).
pub fn host_candidate(addr: SocketAddr) -> rtc::shared::error::Result<RTCIceCandidateInit> {
    let candidate = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".to_owned(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()?;
    RTCIceCandidate::from(&candidate).to_json()
}

/// A connection's local ICE credentials, as its SDP carries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceCredentials {
    pub ufrag: String,
    pub pwd: String,
}

impl IceCredentials {
    /// The first `a=ice-ufrag` and `a=ice-pwd` of an SDP (bundled: every section has the same).
    pub fn from_sdp(sdp: &str) -> Option<Self> {
        let attr = |name: &str| {
            sdp.lines()
                .find_map(|l| l.trim_end().strip_prefix(name))
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        Some(Self {
            ufrag: attr("a=ice-ufrag:")?,
            pwd: attr("a=ice-pwd:")?,
        })
    }
}

/// A binding request as a controlling agent sends it to `remote_ufrag`, authenticated
/// with the remote password; with `nominate` it carries USE-CANDIDATE.
pub fn binding_request(
    remote_ufrag: &str,
    local_ufrag: &str,
    remote_pwd: &str,
    nominate: bool,
    crypto: &dyn RTCCrypto,
) -> Vec<u8> {
    let mut setters: Vec<Box<dyn Setter>> = vec![
        Box::new(BINDING_REQUEST),
        Box::new(TransactionId::new()),
        Box::new(TextAttribute::new(
            ATTR_USERNAME,
            format!("{remote_ufrag}:{local_ufrag}"),
        )),
        Box::new(AttrControlling(rand::random())),
        Box::new(PriorityAttr(0x6e00_1eff)),
    ];
    if nominate {
        setters.push(Box::<UseCandidateAttr>::default());
    }
    setters.push(Box::new(
        MessageIntegrity::new_short_term_integrity_with_provider(remote_pwd.to_owned(), crypto),
    ));
    setters.push(Box::new(FINGERPRINT));
    let mut m = Message::new();
    m.build(&setters)
        .expect("the attributes of a binding request always encode");
    m.raw
}

/// A binding indication: libnice's keepalive, neither authenticated nor answered.
pub fn binding_indication() -> Vec<u8> {
    let mut m = Message::new();
    m.build(&[
        Box::new(MessageType::new(METHOD_BINDING, CLASS_INDICATION)),
        Box::new(TransactionId::new()),
        Box::new(FINGERPRINT),
    ])
    .expect("a bare indication always encodes");
    m.raw
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_from_sdp() {
        let sdp = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=ice-ufrag:abcd\r\na=ice-pwd:secretsecretsecretsecret\r\na=ice-lite\r\n";
        assert_eq!(
            IceCredentials::from_sdp(sdp),
            Some(IceCredentials {
                ufrag: "abcd".into(),
                pwd: "secretsecretsecretsecret".into()
            })
        );
        assert_eq!(IceCredentials::from_sdp("v=0\r\na=ice-ufrag:x\r\n"), None);
        assert_eq!(
            IceCredentials::from_sdp("a=ice-ufrag:\r\na=ice-pwd:p\r\n"),
            None
        );
    }
}
