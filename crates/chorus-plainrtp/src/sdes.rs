//! SRTP keyed by SDES (RFC 4568, `a=crypto` in SDP): each side picks its own master key
//! and salt and tells the other in the signaling, here the control API. One suite,
//! AES_CM_128_HMAC_SHA1_80, what SIP gateways offer first.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use srtp::context::Context;
use srtp::option::srtp_replay_protection;
use srtp::protection_profile::ProtectionProfile;

/// The one suite taken, as SDP names it.
pub const SUITE: &str = "AES_CM_128_HMAC_SHA1_80";
/// A master key (16 bytes) and salt (14 bytes), as `inline:` carries them.
pub const KEY_LEN: usize = 30;
const MASTER_KEY_LEN: usize = 16;
/// Packets of the replay window (an RTP packet seen before is refused).
const REPLAY_WINDOW: usize = 64;

/// One side's master key and salt.
#[derive(Clone, PartialEq, Eq)]
pub struct SdesKey(pub [u8; KEY_LEN]);

impl std::fmt::Debug for SdesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SdesKey(..)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdesError {
    #[error("the SRTP suite must be {SUITE}")]
    Suite,
    #[error(
        "the SRTP key must be base64 of 30 bytes (16 of key, 14 of salt), without lifetime or MKI"
    )]
    Key,
    #[error("SRTP context: {0}")]
    Context(String),
}

impl SdesKey {
    /// `inline:` key params (the `inline:` prefix optional).
    pub fn parse(suite: &str, key: &str) -> Result<Self, SdesError> {
        if suite != SUITE {
            return Err(SdesError::Suite);
        }
        let key = key.strip_prefix("inline:").unwrap_or(key);
        let bytes = STANDARD.decode(key).map_err(|_| SdesError::Key)?;
        let key: [u8; KEY_LEN] = bytes.try_into().map_err(|_| SdesError::Key)?;
        Ok(Self(key))
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }
}

/// Both directions' SRTP contexts of one participant.
pub struct Srtp {
    /// Keyed with the participant's key: what it sends.
    inbound: Context,
    /// Keyed with Chorus's key: what Chorus sends.
    outbound: Context,
}

impl Srtp {
    pub fn new(remote: &SdesKey, local: &SdesKey) -> Result<Self, SdesError> {
        let provider =
            rtc::crypto::default_provider().map_err(|e| SdesError::Context(e.to_string()))?;
        let context = |key: &SdesKey| {
            let (k, s) = key.0.split_at(MASTER_KEY_LEN);
            Context::new(
                k,
                s,
                ProtectionProfile::Aes128CmHmacSha1_80,
                Some(srtp_replay_protection(REPLAY_WINDOW)),
                None,
                provider.crypto(),
            )
            .map_err(|e| SdesError::Context(e.to_string()))
        };
        Ok(Self {
            inbound: context(remote)?,
            outbound: context(local)?,
        })
    }

    /// The RTP packet in `data`, authenticated and decrypted; `None` when it does not
    /// authenticate (forged, damaged, a replay, another key).
    pub fn unprotect(&mut self, data: &[u8]) -> Option<Vec<u8>> {
        self.inbound.decrypt_rtp(data).ok().map(|b| b.to_vec())
    }

    /// `packet` encrypted and tagged in place.
    pub fn protect(&mut self, packet: &mut Vec<u8>) -> bool {
        match self.outbound.encrypt_rtp(packet) {
            Ok(protected) => {
                packet.clear();
                packet.extend_from_slice(&protected);
                true
            }
            Err(_) => false,
        }
    }
}
