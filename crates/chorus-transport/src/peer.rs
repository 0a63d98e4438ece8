//! The factory of server connections: ICE-lite with one host candidate on the shared
//! media port, one DTLS certificate for all, and the wall clock sender reports carry.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rtc::crypto::{self, RTCCryptoProvider};
use thiserror::Error;

use crate::dtls_srtp::{DtlsError, DtlsSrtpConfig};
use crate::ice::{IceCredentials, IceLite, LivenessConfig};
use crate::rtcp::RtcpTotals;
use crate::webrtc::Accept;

#[derive(Debug, Error)]
pub enum PeerError {
    #[error("cannot load the crypto provider: {0}")]
    Crypto(String),
    #[error(transparent)]
    Dtls(#[from] DtlsError),
}

/// Makes what server connections are built with. One certificate serves all of them:
/// a fresh ECDSA key per connection would cost a millisecond of CPU per join.
#[derive(Clone)]
pub struct PeerFactory {
    announce: SocketAddr,
    liveness: LivenessConfig,
    /// For checking the MESSAGE-INTEGRITY of binding requests.
    crypto: Arc<dyn RTCCryptoProvider>,
    /// Inbound RTCP delivered and dropped, over every connection built here.
    rtcp_totals: Arc<RtcpTotals>,
    /// The certificate and SRTP profiles of every connection.
    dtls: Arc<DtlsSrtpConfig>,
    /// The wall clock at one instant, read once: sender reports carry NTP time.
    clock: (Instant, SystemTime),
}

impl PeerFactory {
    /// `announce` is the address put in the host candidate (the media port).
    pub fn new(announce: SocketAddr) -> Result<Self, PeerError> {
        let crypto = crypto::default_provider().map_err(|e| PeerError::Crypto(e.to_string()))?;
        Ok(Self {
            announce,
            liveness: LivenessConfig::default(),
            crypto,
            rtcp_totals: Arc::default(),
            dtls: Arc::new(DtlsSrtpConfig::generate()?),
            clock: (Instant::now(), SystemTime::now()),
        })
    }

    /// How long silence may last before a connection is disconnected, lost, unreachable.
    pub fn with_liveness(mut self, liveness: LivenessConfig) -> Self {
        self.liveness = liveness;
        self
    }

    /// What a connection is made with, under the server's `credentials` (drawn by its
    /// owner).
    pub fn accept_params(&self, credentials: IceCredentials, session_id: u64) -> Accept<'_> {
        Accept {
            dtls: &self.dtls,
            liveness: self.liveness,
            crypto: self.crypto.clone(),
            candidate: self.announce,
            credentials,
            session_id,
            ingress: crate::IngressKey::default(),
        }
    }

    /// `at` as NTP time (RFC 3550: seconds since 1900 in 32.32 fixed point).
    pub fn ntp(&self, at: Instant) -> u64 {
        const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
        let (origin, wall) = self.clock;
        let wall = match at.checked_duration_since(origin) {
            Some(after) => wall + after,
            None => wall - origin.duration_since(at),
        };
        let unix = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = unix.as_secs() + NTP_UNIX_OFFSET;
        let frac = (u64::from(unix.subsec_nanos()) << 32) / 1_000_000_000;
        (secs << 32) | frac
    }

    /// Paths and liveness of a connection that has none yet.
    pub fn idle_ice(&self, now: Instant) -> IceLite {
        IceLite::new(self.liveness, self.crypto.clone(), now)
    }

    pub fn announce(&self) -> SocketAddr {
        self.announce
    }

    /// What the connections built here read of inbound RTCP.
    pub fn rtcp_totals(&self) -> &Arc<RtcpTotals> {
        &self.rtcp_totals
    }
}
