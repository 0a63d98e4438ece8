//! One connection's DTLS-SRTP association, sans-I/O (RFC 5764): the DTLS handshake, the
//! peer's certificate checked against the fingerprint its SDP announced, and, once the
//! handshake completes, the SRTP and SRTCP contexts keyed from the exported material.
//!
//! The DTLS state machine is `rtc-dtls`'s `Endpoint`, one per connection. An endpoint
//! keys its associations by remote address, but a client's address changes when it
//! switches paths or restarts ICE: each association is therefore fed under one fixed
//! key, [`ASSOCIATION`], whatever address a datagram came from; where records go is the
//! caller's business (the path the client nominated last).

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use dtls::endpoint::{Endpoint, EndpointEvent};
use dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc::crypto::RTCCryptoProvider;
use rtc::shared::TransportProtocol;
use srtp::context::Context;
use srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use thiserror::Error;

mod config;
mod hello;
pub mod protect;

pub use config::{DtlsSrtpConfig, SrtpProfile};
use config::{handshake, parse_fingerprint};
/// Public for the fuzz targets (`crates/chorus-fuzz`): the reading of a client's
/// ClientHello fragments, the one part of DTLS that Chorus parses itself.
pub use hello::{Hello, HelloAssembly};
use protect::{ProtectError, SrtpSender};
#[cfg(test)]
mod tests;

/// The key every association's datagrams are fed under (TEST-NET-1, never a real peer).
pub const ASSOCIATION: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 9);
/// RFC 5764 §4.2.
const EXPORTER_LABEL: &str = "EXTRACTOR-dtls_srtp";
/// Packets an SRTP context accepts out of order before it calls them replays.
const REPLAY_WINDOW: usize = 1024;

/// Which side of the handshake this end takes (from the SDP's `a=setup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtlsRole {
    Client,
    Server,
}

#[derive(Debug, Error)]
pub enum DtlsError {
    #[error("DTLS configuration: {0}")]
    Config(String),
    #[error("DTLS handshake: {0}")]
    Handshake(String),
    #[error("the handshake negotiated a profile Chorus does not offer: {0:?}")]
    UnexpectedProfile(SrtpProtectionProfile),
    #[error("keying material: {0}")]
    Keys(String),
    #[error("SRTP is not keyed yet: the handshake has not completed")]
    NotEstablished,
    #[error("the DTLS association is closed")]
    Closed,
    #[error("SRTP: {0}")]
    Srtp(String),
    #[error("SRTP protect: {0}")]
    Protect(#[from] ProtectError),
}

struct Keyed {
    profile: SrtpProfile,
    /// Protects the RTP this end sends, in place.
    sender: SrtpSender,
    /// Protects the RTCP this end sends.
    local: Context,
    /// Unprotects what the peer sends, until its owner takes it ([`DtlsSrtp::take_remote`]).
    remote: Option<Context>,
}

/// What a datagram did to the association.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtlsEvent {
    /// The handshake completed: SRTP is keyed with this profile.
    Established(SrtpProfile),
    /// The peer closed the association (`close_notify`).
    Closed,
}

/// Most datagrams held while the client's hello is incomplete.
const MAX_HELD: usize = 8;

/// A server association before the client's hello is whole.
struct PendingServer {
    config: DtlsSrtpConfig,
    /// The client certificate's fingerprint.
    expected: String,
    hello: HelloAssembly,
    held: Vec<BytesMut>,
}

pub struct DtlsSrtp {
    endpoint: Endpoint,
    crypto: Arc<dyn RTCCryptoProvider>,
    /// Server side, until the client's hello is whole.
    server: Option<PendingServer>,
    keyed: Option<Keyed>,
    closed: bool,
    transmits: VecDeque<BytesMut>,
    /// Application data the peer sent (SCTP packets of its data channels), decrypted.
    received: VecDeque<BytesMut>,
}

impl DtlsSrtp {
    /// An association with a peer whose certificate must hash to `remote_fingerprint`
    /// (`sha-256 AB:CD:…`, case-insensitive). A client starts its handshake now; a server
    /// waits for the client's hello to pick the profile (see [`Self::handle_datagram`]).
    pub fn new(
        role: DtlsRole,
        config: &DtlsSrtpConfig,
        remote_fingerprint: &str,
        now: Instant,
    ) -> Result<Self, DtlsError> {
        let expected = parse_fingerprint(remote_fingerprint)?;
        let local = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
        let mut endpoint = Endpoint::new(local, TransportProtocol::UDP, None);
        let server = match role {
            DtlsRole::Client => {
                let handshake = handshake(config, &config.profiles, &expected, true)?;
                endpoint
                    .connect(now, ASSOCIATION, handshake, None)
                    .map_err(|e| DtlsError::Handshake(e.to_string()))?;
                None
            }
            DtlsRole::Server => Some(PendingServer {
                config: config.clone(),
                expected,
                hello: HelloAssembly::default(),
                held: Vec::new(),
            }),
        };
        let mut this = Self {
            endpoint,
            crypto: config.crypto.clone(),
            server,
            keyed: None,
            closed: false,
            transmits: VecDeque::new(),
            received: VecDeque::new(),
        };
        this.collect();
        Ok(this)
    }

    /// Feeds one DTLS datagram (first byte 20–63), from whichever address it came. As
    /// server, the datagrams of the client's hello are held until it is whole; then the
    /// handshake is configured to offer only the profile Chorus prefers among those the
    /// hello lists (`rtc-dtls`'s server would take the client's order, and browsers list
    /// AES-CM before GCM), and everything held is read.
    pub fn handle_datagram(
        &mut self,
        data: BytesMut,
        now: Instant,
    ) -> Result<Option<DtlsEvent>, DtlsError> {
        if self.closed {
            return Ok(None);
        }
        let Some(pending) = self.server.as_mut() else {
            return self.read(data, now);
        };
        let hello = pending.hello.add(&data);
        pending.held.push(data);
        let offered = match hello {
            Hello::Offers(offered) => offered,
            // A client that never completes its hello gets the client's order, not a
            // server that holds datagrams forever.
            Hello::Incomplete if pending.held.len() < MAX_HELD => return Ok(None),
            Hello::Incomplete => Vec::new(),
        };
        let pending = self.server.take().expect("checked above");
        let config = &pending.config;
        let chosen: Vec<SrtpProfile> = config
            .profiles
            .iter()
            .copied()
            .find(|p| offered.contains(&p.dtls()))
            .map_or_else(|| config.profiles.clone(), |p| vec![p]);
        let handshake = handshake(config, &chosen, &pending.expected, false)?;
        self.endpoint.set_server_config(Some(handshake));
        let mut outcome = None;
        for data in pending.held {
            outcome = self.read(data, now)?.or(outcome);
        }
        Ok(outcome)
    }

    fn read(&mut self, data: BytesMut, now: Instant) -> Result<Option<DtlsEvent>, DtlsError> {
        let events = self.endpoint.read(now, ASSOCIATION, None, data);
        self.collect();
        let mut outcome = None;
        for event in events.map_err(|e| DtlsError::Handshake(e.to_string()))? {
            match event {
                EndpointEvent::HandshakeComplete if self.keyed.is_none() => {
                    let keyed = self.export_keys()?;
                    outcome = Some(DtlsEvent::Established(keyed.profile));
                    self.keyed = Some(keyed);
                }
                EndpointEvent::PeerClosed => {
                    self.closed = true;
                    outcome = Some(DtlsEvent::Closed);
                }
                // rtc-dtls only gives it once the handshake is done, authenticated.
                EndpointEvent::ApplicationData(data) => self.received.push_back(data),
                _ => {}
            }
        }
        Ok(outcome)
    }

    /// Derives the SRTP contexts from the completed handshake (RFC 5764 §4.2: client key,
    /// server key, client salt, server salt).
    fn export_keys(&self) -> Result<Keyed, DtlsError> {
        let state = self
            .endpoint
            .get_connection_state(ASSOCIATION)
            .ok_or(DtlsError::NotEstablished)?;
        let negotiated = state.srtp_protection_profile();
        let profile =
            SrtpProfile::from_dtls(negotiated).ok_or(DtlsError::UnexpectedProfile(negotiated))?;
        let p = profile.srtp();
        let (k, s) = (p.key_len(), p.salt_len());
        let material = state
            .export_keying_material(EXPORTER_LABEL, &[], 2 * (k + s))
            .map_err(|e| DtlsError::Keys(e.to_string()))?;
        let m = material.as_ref();
        let (client_key, server_key) = (&m[..k], &m[k..2 * k]);
        let (client_salt, server_salt) = (&m[2 * k..2 * k + s], &m[2 * k + s..]);
        let (local, remote) = if state.is_client() {
            ((client_key, client_salt), (server_key, server_salt))
        } else {
            ((server_key, server_salt), (client_key, client_salt))
        };
        let context = |(key, salt): (&[u8], &[u8])| {
            Context::new(
                key,
                salt,
                p,
                Some(srtp_replay_protection(REPLAY_WINDOW)),
                Some(srtcp_replay_protection(REPLAY_WINDOW)),
                self.crypto.crypto(),
            )
            .map_err(|e| DtlsError::Keys(e.to_string()))
        };
        let crypto = self.crypto.crypto();
        Ok(Keyed {
            profile,
            sender: SrtpSender::new(profile, local.0, local.1, crypto)
                .map_err(|e| DtlsError::Keys(e.to_string()))?,
            local: context(local)?,
            remote: Some(context(remote)?),
        })
    }

    fn collect(&mut self) {
        while let Some(t) = self.endpoint.poll_transmit() {
            self.transmits.push_back(t.message);
        }
    }

    /// Ends the association: a `close_notify` is queued (if it was up) and nothing more
    /// is read or protected.
    pub fn close(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        self.endpoint.stop(now, ASSOCIATION);
        self.collect();
        self.closed = true;
    }

    /// The next DTLS record to send.
    pub fn poll_transmit(&mut self) -> Option<BytesMut> {
        self.transmits.pop_front()
    }

    /// The next application data the peer sent, once established.
    pub fn poll_application_data(&mut self) -> Option<BytesMut> {
        self.received.pop_front()
    }

    /// Encrypts `data` as one application data record, queued for [`Self::poll_transmit`].
    pub fn send_application_data(&mut self, data: &[u8], now: Instant) -> Result<(), DtlsError> {
        self.keys()?;
        let res = self.endpoint.write(now, ASSOCIATION, data);
        self.collect();
        res.map_err(|e| DtlsError::Handshake(e.to_string()))
    }

    /// Retransmits a handshake flight when its timer is due.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), DtlsError> {
        if self.poll_timeout().is_some_and(|t| t <= now) {
            let res = self.endpoint.handle_timeout(ASSOCIATION, now);
            self.collect();
            res.map_err(|e| DtlsError::Handshake(e.to_string()))?;
        }
        Ok(())
    }

    /// When a handshake flight is due again. None once keyed (or closed): a completed
    /// DTLS 1.2 handshake has no timers (a lost last flight is answered when the peer
    /// sends its own again, RFC 6347 §4.2.4), and this is asked after every send.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.keyed.is_some() || self.closed {
            return None;
        }
        self.endpoint.poll_timeout(&ASSOCIATION)
    }

    /// The negotiated profile, once established.
    pub fn profile(&self) -> Option<SrtpProfile> {
        self.keyed.as_ref().map(|k| k.profile)
    }

    /// The SRTP contexts, while the association is up (not before, not after a close).
    fn keys(&mut self) -> Result<&mut Keyed, DtlsError> {
        if self.closed {
            return Err(DtlsError::Closed);
        }
        self.keyed.as_mut().ok_or(DtlsError::NotEstablished)
    }

    /// Protects a copy of `packet`; [`Self::protect_rtp_in_place`] spares the copy.
    pub fn protect_rtp(&mut self, packet: &[u8]) -> Result<BytesMut, DtlsError> {
        let (header_len, ssrc, seq) = protect::rtp_header(packet)?;
        let mut buf = BytesMut::with_capacity(packet.len() + protect::MAX_RTP_OVERHEAD);
        buf.extend_from_slice(packet);
        self.protect_rtp_in_place(&mut buf, header_len, ssrc, seq)?;
        Ok(buf)
    }

    /// Protects the RTP packet `buf[..]` where it lies and appends the tag (see
    /// [`SrtpSender::protect_rtp`]); `header_len`, `ssrc` and `seq` are its header's.
    pub fn protect_rtp_in_place(
        &mut self,
        buf: &mut BytesMut,
        header_len: usize,
        ssrc: u32,
        seq: u16,
    ) -> Result<(), DtlsError> {
        let k = self.keys()?;
        Ok(k.sender.protect_rtp(buf, header_len, ssrc, seq)?)
    }

    /// Bytes an RTP packet grows by when protected, once established.
    pub fn rtp_overhead(&self) -> Option<usize> {
        self.keyed.as_ref().map(|k| k.sender.rtp_overhead())
    }

    /// The context that unprotects what the peer sends, for its owner to use elsewhere
    /// (on the I/O threads); the association's own `unprotect_*` refuse from then on.
    pub fn take_remote(&mut self) -> Option<Context> {
        self.keyed.as_mut()?.remote.take()
    }

    fn remote(&mut self) -> Result<&mut Context, DtlsError> {
        self.keys()?
            .remote
            .as_mut()
            .ok_or(DtlsError::NotEstablished)
    }

    pub fn unprotect_rtp(&mut self, packet: &[u8]) -> Result<BytesMut, DtlsError> {
        self.remote()?
            .decrypt_rtp(packet)
            .map_err(|e| DtlsError::Srtp(e.to_string()))
    }

    pub fn protect_rtcp(&mut self, packet: &[u8]) -> Result<BytesMut, DtlsError> {
        let k = self.keys()?;
        k.local
            .encrypt_rtcp(packet)
            .map_err(|e| DtlsError::Srtp(e.to_string()))
    }

    pub fn unprotect_rtcp(&mut self, packet: &[u8]) -> Result<BytesMut, DtlsError> {
        self.remote()?
            .decrypt_rtcp(packet)
            .map_err(|e| DtlsError::Srtp(e.to_string()))
    }
}
