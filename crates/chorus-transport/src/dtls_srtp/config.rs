//! What a DTLS-SRTP association is made with: the SRTP profiles Chorus negotiates, the
//! server's certificate and preferences shared by every association, and the handshake
//! configuration of one association (the peer authenticated by its SDP fingerprint).

use std::sync::Arc;

use dtls::config::{ClientAuthType, ConfigBuilder, ExtendedMasterSecretType, HandshakeConfig};
use dtls::crypto::Certificate;
use dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc::crypto::{HashAlgorithm, RTCCryptoProvider};
use srtp::protection_profile::ProtectionProfile;

use super::DtlsError;

/// The SRTP protection profiles Chorus negotiates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrtpProfile {
    /// AEAD AES-128-GCM (RFC 7714): about a third of the cost of the other to protect.
    AeadAes128Gcm,
    /// AES-128 counter mode with HMAC-SHA1-80: what every WebRTC stack supports.
    Aes128CmHmacSha1_80,
}

impl SrtpProfile {
    /// Chorus's order of preference.
    pub const ALL: [SrtpProfile; 2] =
        [SrtpProfile::AeadAes128Gcm, SrtpProfile::Aes128CmHmacSha1_80];

    pub fn as_str(self) -> &'static str {
        match self {
            SrtpProfile::AeadAes128Gcm => "SRTP_AEAD_AES_128_GCM",
            SrtpProfile::Aes128CmHmacSha1_80 => "SRTP_AES128_CM_HMAC_SHA1_80",
        }
    }

    pub(super) fn dtls(self) -> SrtpProtectionProfile {
        match self {
            SrtpProfile::AeadAes128Gcm => SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
            SrtpProfile::Aes128CmHmacSha1_80 => SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
        }
    }

    pub(super) fn from_dtls(p: SrtpProtectionProfile) -> Option<Self> {
        SrtpProfile::ALL.into_iter().find(|s| s.dtls() == p)
    }

    pub(crate) fn srtp(self) -> ProtectionProfile {
        match self {
            SrtpProfile::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
            SrtpProfile::Aes128CmHmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        }
    }
}

/// What every association of a server shares: its certificate, the profiles it offers,
/// its crypto.
#[derive(Clone)]
pub struct DtlsSrtpConfig {
    pub certificate: Certificate,
    /// In order of preference; at least one.
    pub profiles: Vec<SrtpProfile>,
    pub crypto: Arc<dyn RTCCryptoProvider>,
}

impl DtlsSrtpConfig {
    /// A fresh self-signed certificate, every profile, the default crypto.
    pub fn generate() -> Result<Self, DtlsError> {
        let crypto =
            rtc::crypto::default_provider().map_err(|e| DtlsError::Config(e.to_string()))?;
        let certificate =
            Certificate::generate_self_signed(vec!["chorus".to_owned()], crypto.crypto())
                .map_err(|e| DtlsError::Config(e.to_string()))?;
        Ok(Self {
            certificate,
            profiles: SrtpProfile::ALL.to_vec(),
            crypto,
        })
    }

    /// `sha-256 AB:CD:…`, as `a=fingerprint` carries it.
    pub fn fingerprint(&self) -> Result<String, DtlsError> {
        let der = self
            .certificate
            .certificate
            .first()
            .ok_or_else(|| DtlsError::Config("no certificate".into()))?;
        let hash = sha256_hex(&*self.crypto, der.as_ref())?;
        Ok(format!("sha-256 {}", hash.to_uppercase()))
    }
}

fn sha256_hex(crypto: &dyn RTCCryptoProvider, data: &[u8]) -> Result<String, DtlsError> {
    let digest = crypto
        .crypto()
        .hash(HashAlgorithm::Sha256, data)
        .map_err(|e| DtlsError::Config(e.to_string()))?;
    Ok(digest
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":"))
}

/// The handshake configuration of one association, offering `profiles`.
pub(super) fn handshake(
    config: &DtlsSrtpConfig,
    profiles: &[SrtpProfile],
    expected_fingerprint: &str,
    client: bool,
) -> Result<Arc<HandshakeConfig>, DtlsError> {
    let expected = expected_fingerprint.to_owned();
    let check_crypto = config.crypto.clone();
    let verify = Arc::new(
        move |certs: &[Vec<u8>], _: &[_]| -> rtc::shared::error::Result<()> {
            let cert = certs
                .first()
                .ok_or(rtc::shared::error::Error::ErrNonCertificate)?;
            match sha256_hex(&*check_crypto, cert) {
                Ok(got) if got == expected => Ok(()),
                _ => Err(rtc::shared::error::Error::ErrNoMatchingCertificateFingerprint),
            }
        },
    );
    let handshake = ConfigBuilder::default()
        .with_crypto_provider(config.crypto.clone())
        .with_certificates(vec![config.certificate.clone()])
        .with_srtp_protection_profiles(profiles.iter().map(|p| p.dtls()).collect())
        .with_client_auth(ClientAuthType::RequireAnyClientCert)
        // Self-signed certificates: the fingerprint check above is the authentication.
        .with_insecure_skip_verify(true)
        .with_verify_peer_certificate(Some(verify))
        .with_extended_master_secret(ExtendedMasterSecretType::Require)
        .build(client, None)
        .map_err(|e| DtlsError::Config(e.to_string()))?;
    Ok(Arc::new(handshake))
}

/// `sha-256 AB:CD:…` → `ab:cd:…`; other hash functions are refused.
pub(super) fn parse_fingerprint(s: &str) -> Result<String, DtlsError> {
    let (alg, value) = s
        .trim()
        .split_once(' ')
        .ok_or_else(|| DtlsError::Config(format!("bad fingerprint '{s}'")))?;
    if !alg.eq_ignore_ascii_case("sha-256") {
        return Err(DtlsError::Config(format!(
            "unsupported fingerprint hash '{alg}'"
        )));
    }
    Ok(value.trim().to_lowercase())
}
