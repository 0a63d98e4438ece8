//! The unprotecting half of a connection's SRTP, shared between the connection and the
//! media I/O threads: once DTLS has keyed it, SRTP and SRTCP are unprotected on the I/O
//! thread the datagram arrived on, and the room gets plain RTP/RTCP. A room's task does
//! not pay for the decryption of what its publishers send, and the I/O threads run on
//! every core.
//!
//! One context per connection, behind a mutex: its replay window must see every packet
//! of the connection, whichever thread it arrived on (a client's new path may hash to
//! another socket). The lock is uncontended in practice: one client's datagrams arrive
//! on one socket.

use std::sync::{Arc, Mutex, OnceLock};

use bytes::BytesMut;
use srtp::context::Context;

/// Cheap to clone: every clone is the same key.
#[derive(Clone, Default)]
pub struct IngressKey(Arc<OnceLock<Mutex<Context>>>);

impl std::fmt::Debug for IngressKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngressKey")
            .field("keyed", &self.is_keyed())
            .finish()
    }
}

/// The same key, not equal contents.
impl PartialEq for IngressKey {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for IngressKey {}

/// Why a datagram could not be unprotected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngressError {
    /// DTLS has not keyed the connection yet.
    NotKeyed,
    /// Not authentic, a replay, or malformed.
    Refused,
}

impl IngressKey {
    /// Keys it, once; false if it was keyed already (the context is dropped).
    pub fn set(&self, remote: Context) -> bool {
        self.0.set(Mutex::new(remote)).is_ok()
    }

    pub fn is_keyed(&self) -> bool {
        self.0.get().is_some()
    }

    /// Unprotects an SRTP or SRTCP datagram (RFC 5761: RTCP packet types 192–223 sit
    /// where RTP has its marker and payload type).
    pub fn unprotect(&self, data: &[u8]) -> Result<BytesMut, IngressError> {
        let context = self.0.get().ok_or(IngressError::NotKeyed)?;
        // A thread that panicked holding it left a context that is still whole: the
        // panic came from outside the lock's short critical sections.
        let mut context = context.lock().unwrap_or_else(|p| p.into_inner());
        let plain = if is_rtcp(data) {
            context.decrypt_rtcp(data)
        } else {
            context.decrypt_rtp(data)
        };
        plain.map_err(|_| IngressError::Refused)
    }
}

/// Whether an RTP-range datagram (first byte 128–191) is RTCP (RFC 5761).
pub fn is_rtcp(data: &[u8]) -> bool {
    data.get(1).is_some_and(|b| (192..=223).contains(b))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::dtls_srtp::SrtpProfile;
    use srtp::option::{srtcp_replay_protection, srtp_replay_protection};

    /// A sender's context and an ingress key with the same keys (AES-GCM).
    pub(crate) fn pair() -> (Context, IngressKey) {
        let provider = rtc::crypto::default_provider().unwrap();
        let context = || {
            let profile = SrtpProfile::AeadAes128Gcm.srtp();
            let (rtp, rtcp) = (srtp_replay_protection(64), srtcp_replay_protection(64));
            Context::new(
                &[7; 16],
                &[9; 12],
                profile,
                Some(rtp),
                Some(rtcp),
                provider.crypto(),
            )
            .unwrap()
        };
        let key = IngressKey::default();
        assert!(key.set(context()));
        (context(), key)
    }

    pub(crate) fn rtp(seq: u16) -> Vec<u8> {
        let [hi, lo] = seq.to_be_bytes();
        let mut p = vec![0x80, 96, hi, lo, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef];
        p.extend_from_slice(b"payload");
        p
    }

    const PLI: [u8; 12] = [0x81, 206, 0, 2, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef];

    #[test]
    fn unprotects_rtp_and_rtcp_and_refuses_the_rest() {
        let (mut sender, key) = pair();
        let srtp = sender.encrypt_rtp(&rtp(1)).unwrap();
        let srtcp = sender.encrypt_rtcp(&PLI).unwrap();
        let mut tampered = sender.encrypt_rtp(&rtp(2)).unwrap();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        // (case, datagram, what comes out)
        type Case<'a> = (&'a str, &'a [u8], Result<&'a [u8], IngressError>);
        let cases: [Case<'_>; 5] = [
            ("SRTP", &srtp, Ok(&rtp(1))),
            ("SRTCP", &srtcp, Ok(&PLI)),
            ("replayed SRTP", &srtp, Err(IngressError::Refused)),
            ("tampered tag", &tampered, Err(IngressError::Refused)),
            ("plain RTP", &rtp(3), Err(IngressError::Refused)),
        ];
        for (case, datagram, want) in cases {
            let got = key.unprotect(datagram);
            assert_eq!(got.as_deref().map_err(|e| *e), want, "{case}");
        }
        let unkeyed = IngressKey::default();
        assert_eq!(unkeyed.unprotect(&srtp), Err(IngressError::NotKeyed));
        assert!(!unkeyed.set(pair().0) || unkeyed.is_keyed());
        assert!(!unkeyed.set(pair().0), "keyed once");
        assert_ne!(unkeyed, key);
        assert_eq!(key.clone(), key);
    }
}
