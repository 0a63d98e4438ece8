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
use std::time::Instant;

use bytes::BytesMut;
use chorus_core::TokenBucket;
use srtp::context::Context;

/// SRTP and SRTCP packets a connection may send a second, and at once, before the rest is
/// dropped here (`rate_limited`): about ten times what a publisher of three simulcast
/// layers and a microphone sends, so only a flood meets it, and a flooding client costs
/// the room nothing.
pub const MAX_PACKETS_PER_SECOND: u32 = 2_500;

/// Cheap to clone: every clone is the same key.
#[derive(Clone, Default)]
pub struct IngressKey(Arc<OnceLock<Mutex<Keyed>>>);

struct Keyed {
    context: Context,
    /// Metered under the same lock as the context: no second lock per packet.
    rate: TokenBucket,
}

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
    /// Over [`MAX_PACKETS_PER_SECOND`]: dropped before decryption.
    RateLimited,
}

impl IngressKey {
    /// Keys it, once; false if it was keyed already (the context is dropped).
    pub fn set(&self, remote: Context) -> bool {
        let keyed = Keyed {
            context: remote,
            rate: TokenBucket::new(MAX_PACKETS_PER_SECOND, MAX_PACKETS_PER_SECOND),
        };
        self.0.set(Mutex::new(keyed)).is_ok()
    }

    pub fn is_keyed(&self) -> bool {
        self.0.get().is_some()
    }

    /// Unprotects an SRTP or SRTCP datagram (RFC 5761: RTCP packet types 192–223 sit
    /// where RTP has its marker and payload type).
    pub fn unprotect(&self, data: &[u8]) -> Result<BytesMut, IngressError> {
        self.unprotect_inner(data, None)
    }

    /// [`Self::unprotect`], metered: a datagram arriving at `at` beyond the connection's
    /// rate is dropped without being decrypted.
    pub fn unprotect_metered(&self, data: &[u8], at: Instant) -> Result<BytesMut, IngressError> {
        self.unprotect_inner(data, Some(at))
    }

    fn unprotect_inner(&self, data: &[u8], at: Option<Instant>) -> Result<BytesMut, IngressError> {
        let keyed = self.0.get().ok_or(IngressError::NotKeyed)?;
        // A thread that panicked holding it left a context that is still whole: the
        // panic came from outside the lock's short critical sections.
        let mut keyed = keyed.lock().unwrap_or_else(|p| p.into_inner());
        if at.is_some_and(|at| !keyed.rate.allow(at)) {
            return Err(IngressError::RateLimited);
        }
        let context = &mut keyed.context;
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

    /// A flood is cut at the connection's rate before decryption, whatever it carries;
    /// time refills it; the unmetered path (the room's) is not counted.
    #[test]
    fn a_flood_is_cut_at_the_connection_rate() {
        let (mut sender, key) = pair();
        let t0 = Instant::now();
        let n = MAX_PACKETS_PER_SECOND as usize;
        let packets: Vec<_> = (0..2 * n as u16)
            .map(|seq| sender.encrypt_rtp(&rtp(seq)).unwrap())
            .collect();
        let results: Vec<_> = packets
            .iter()
            .map(|p| key.unprotect_metered(p, t0))
            .collect();
        let taken = results.iter().filter(|r| r.is_ok()).count();
        let limited = results
            .iter()
            .filter(|r| **r == Err(IngressError::RateLimited))
            .count();
        assert_eq!(
            (taken, limited),
            (n, n),
            "a burst of the rate, the rest cut"
        );
        // Cut packets were never decrypted, so not marked in the replay window: their
        // resends go through once the rate allows.
        let later = t0 + std::time::Duration::from_millis(10);
        assert!(key.unprotect_metered(&packets[n], later).is_ok());
        assert!(key.unprotect(&packets[n + 1]).is_ok(), "unmetered");
    }
}
