//! Chorus's own server side of one WebRTC connection (issue 9), sans-I/O: the SDP it
//! writes itself ([`sdp`], negotiated in `negotiation.rs`), ICE-lite ([`IceLite`]: checks
//! authenticated and answered here), DTLS-SRTP ([`DtlsSrtp`]), RTP/RTCP unprotected on
//! the way in and protected on the way out. On a publisher connection the server answers
//! and is the DTLS server; on a subscriber connection it offers and takes the role the
//! client's answer leaves it. Datagrams are told apart by their first byte (RFC 7983).
//! Data channels ([`datachannel`]: SCTP in DTLS application data, DCEP) run when the
//! descriptions carry an `m=application` section.
//! What the owner must act on comes out of one queue, [`ServerConnection::poll_event`].
//!
//! Every room connection runs on it. Its tests run it against `rtc`'s full
//! `RTCPeerConnection` as the client.

pub mod datachannel;
mod negotiation;
pub mod sdp;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use rtc::crypto::RTCCryptoProvider;
use thiserror::Error;

use crate::dtls_srtp::{DtlsError, DtlsEvent, DtlsRole, DtlsSrtp, DtlsSrtpConfig, SrtpProfile};
use crate::ice::{IceCredentials, IceEvent, IceLite, LivenessConfig, StunCheck};
use crate::ingress::{IngressKey, is_rtcp};
pub use datachannel::{
    ChannelEvent, ChannelId, DataChannels, DataCounters, DataError, Reliability,
};
use sdp::{Remote, SdpError};

#[derive(Debug, Error)]
pub enum ConnectionError {
    #[error(transparent)]
    Sdp(#[from] SdpError),
    #[error("the answer's a=setup is {0:?}: the client must take a DTLS role")]
    Setup(Option<String>),
    #[error("no offer of the server is waiting for this answer")]
    NotNegotiated,
    #[error("the client's certificate changed: a new connection is needed")]
    FingerprintChanged,
    #[error("no path to the client yet")]
    NoPath,
    #[error(transparent)]
    Dtls(#[from] DtlsError),
}

/// What the server side of a connection is made with.
pub struct Accept<'a> {
    pub dtls: &'a DtlsSrtpConfig,
    pub liveness: LivenessConfig,
    pub crypto: Arc<dyn RTCCryptoProvider>,
    /// The media port, as announced in the candidate.
    pub candidate: SocketAddr,
    /// The server's ICE credentials for this connection (drawn by the caller).
    pub credentials: IceCredentials,
    pub session_id: u64,
    /// The connection's ingress key (see [`ServerConnection::ingress_key`]); the caller may
    /// hand it to the demultiplexer before the connection exists.
    pub ingress: IngressKey,
}

/// Media that arrived and decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    Rtp(BytesMut),
    Rtcp(BytesMut),
}

/// Why a datagram went no further.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A binding request that did not authenticate, or for other credentials.
    Stun(StunCheck),
    /// SRTP or SRTCP before the keys, or that did not authenticate (or a replay).
    Srtp,
    /// A DTLS record the association refused.
    Dtls,
    /// Not STUN, DTLS, RTP or RTCP.
    Unknown,
}

/// What the connection's owner must act on, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionEvent {
    /// DTLS completed: keys in place, media can flow.
    Connected(SrtpProfile),
    /// The DTLS handshake failed for good (wrong certificate, fatal alert), or the client
    /// closed the association: the connection is dead.
    Failed(String),
    /// A decision of the connection's IceLite (routes, path switch, liveness), passed through.
    Ice(IceEvent),
    /// A data channel opened, carried a message, or closed.
    Channel(ChannelEvent),
}

pub struct ServerConnection {
    ice: IceLite,
    /// Set once the roles are known: at once when answering, on the answer when offering.
    dtls: Option<DtlsSrtp>,
    /// Offering side, before the first answer: what its DTLS association needs.
    pending: Option<DtlsSrtpConfig>,
    /// DTLS failed or was closed: nothing more goes to it.
    dead: bool,
    /// What the server's descriptions carry.
    fingerprint: String,
    candidate: SocketAddr,
    session_id: u64,
    version: u64,
    /// The client's latest description; its certificate may not change on this connection.
    remote: Option<Remote>,
    /// An offer of the server is out.
    offered: bool,
    /// The server's `a=setup` in its answers.
    setup: &'static str,
    /// The server's DTLS role, once known; the DTLS client is the SCTP client too.
    role: Option<DtlsRole>,
    /// The data channels, once a description both sides agreed on carries them.
    data: Option<DataChannels>,
    /// A subscriber connection whose offers carry a data channel m-section.
    offers_data: bool,
    transmits: VecDeque<(SocketAddr, BytesMut)>,
    /// Unprotects SRTP/SRTCP from the client, here or on the I/O threads (keyed when
    /// DTLS completes).
    ingress: IngressKey,
    received: VecDeque<Received>,
    events: VecDeque<ConnectionEvent>,
}

impl ServerConnection {
    fn new(params: &Accept<'_>, now: Instant) -> Result<Self, ConnectionError> {
        let mut ice = IceLite::new(params.liveness, params.crypto.clone(), now);
        ice.set_credentials(params.credentials.clone(), now);
        let mut conn = Self {
            ice,
            dtls: None,
            pending: None,
            dead: false,
            fingerprint: params.dtls.fingerprint()?,
            candidate: params.candidate,
            session_id: params.session_id,
            version: 1,
            remote: None,
            offered: false,
            setup: "passive",
            role: None,
            data: None,
            offers_data: false,
            transmits: VecDeque::new(),
            ingress: params.ingress.clone(),
            received: VecDeque::new(),
            events: VecDeque::new(),
        };
        conn.pull_ice();
        Ok(conn)
    }

    /// Protects one RTCP compound (reports, feedback) and queues it for the client's path.
    pub fn send_rtcp(&mut self, compound: &[u8]) -> Result<(), ConnectionError> {
        let to = self.ice.destination().ok_or(ConnectionError::NoPath)?;
        let dtls = self.dtls.as_mut().ok_or(ConnectionError::NotNegotiated)?;
        let protected = dtls.protect_rtcp(compound)?;
        self.transmits.push_back((to, protected));
        Ok(())
    }

    /// Protects one RTP packet and queues it for the client's path.
    pub fn send_rtp(&mut self, packet: &[u8]) -> Result<(), ConnectionError> {
        let to = self.ice.destination().ok_or(ConnectionError::NoPath)?;
        let dtls = self.dtls.as_mut().ok_or(ConnectionError::NotNegotiated)?;
        let protected = dtls.protect_rtp(packet)?;
        self.transmits.push_back((to, protected));
        Ok(())
    }

    /// Protects the RTP packet `buf` in place and queues that very buffer: no copy. Its
    /// header is `header_len` bytes with `ssrc` and `seq`; room for
    /// [`MAX_RTP_OVERHEAD`](crate::dtls_srtp::protect::MAX_RTP_OVERHEAD) more bytes
    /// spares a reallocation.
    pub fn send_rtp_in_place(
        &mut self,
        mut buf: BytesMut,
        header_len: usize,
        ssrc: u32,
        seq: u16,
    ) -> Result<(), ConnectionError> {
        let to = self.ice.destination().ok_or(ConnectionError::NoPath)?;
        let dtls = self.dtls.as_mut().ok_or(ConnectionError::NotNegotiated)?;
        dtls.protect_rtp_in_place(&mut buf, header_len, ssrc, seq)?;
        self.transmits.push_back((to, buf));
        Ok(())
    }

    /// Feeds one datagram from `from`.
    pub fn handle_datagram(
        &mut self,
        from: SocketAddr,
        data: BytesMut,
        now: Instant,
    ) -> Result<(), Refused> {
        let outcome = self.route(from, data, now);
        self.pull_ice();
        outcome
    }

    fn route(&mut self, from: SocketAddr, data: BytesMut, now: Instant) -> Result<(), Refused> {
        match data.first().copied() {
            Some(0..=3) => match self.ice.check_stun(from, &data, now) {
                StunCheck::Request { .. } => {
                    if let Some(response) = self.ice.binding_success(&data, from) {
                        self.transmits
                            .push_back((from, BytesMut::from(&response[..])));
                    }
                    self.flush_dtls();
                    Ok(())
                }
                StunCheck::NotRequest => Ok(()),
                other => Err(Refused::Stun(other)),
            },
            Some(20..=63) => self.handle_dtls(from, data, now),
            Some(128..=191) => {
                if self.dead {
                    return Err(Refused::Srtp);
                }
                let plain = self.ingress.unprotect(&data).map_err(|_| Refused::Srtp)?;
                self.accept_plain(from, plain, now);
                Ok(())
            }
            _ => Err(Refused::Unknown),
        }
    }

    /// Feeds RTP or RTCP that the I/O thread already unprotected with this connection's
    /// [`Self::ingress_key`]: it authenticated, so it counts as the client being there.
    pub fn handle_unprotected(
        &mut self,
        from: SocketAddr,
        plain: BytesMut,
        now: Instant,
    ) -> Result<(), Refused> {
        if self.dead || !matches!(plain.first(), Some(128..=191)) {
            return Err(Refused::Srtp);
        }
        self.accept_plain(from, plain, now);
        self.pull_ice();
        Ok(())
    }

    fn accept_plain(&mut self, from: SocketAddr, plain: BytesMut, now: Instant) {
        self.ice.heard(from, now);
        self.received.push_back(if is_rtcp(&plain) {
            Received::Rtcp(plain)
        } else {
            Received::Rtp(plain)
        });
    }

    /// The key the demultiplexer unprotects this connection's SRTP with on the I/O
    /// threads, once DTLS has set it.
    pub fn ingress_key(&self) -> &IngressKey {
        &self.ingress
    }

    fn handle_dtls(
        &mut self,
        from: SocketAddr,
        data: BytesMut,
        now: Instant,
    ) -> Result<(), Refused> {
        if self.dead {
            return Err(Refused::Dtls);
        }
        let dtls = self.dtls.as_mut().ok_or(Refused::Dtls)?;
        let outcome = dtls.handle_datagram(data, now);
        // Alerts the association queued (a reply to a close_notify, a fatal alert) go out
        // whatever the outcome.
        self.flush_dtls();
        match outcome {
            Ok(Some(DtlsEvent::Established(profile))) => {
                if let Some(remote) = self.dtls.as_mut().and_then(DtlsSrtp::take_remote) {
                    self.ingress.set(remote);
                }
                self.pull_ice();
                self.events.push_back(ConnectionEvent::Connected(profile));
                self.ice.connected(now);
                if let Some(data) = self.data.as_mut() {
                    data.start(now);
                }
            }
            Ok(Some(DtlsEvent::Closed)) => {
                self.fail("the client closed the DTLS association".to_owned());
            }
            Ok(None) => {}
            Err(e) => {
                if fatal(&e, self.profile().is_some()) {
                    self.fail(e.to_string());
                }
                return Err(Refused::Dtls);
            }
        }
        self.ice.heard(from, now);
        self.pump_data(now);
        Ok(())
    }

    fn fail(&mut self, why: String) {
        if !self.dead {
            self.dead = true;
            self.pull_ice();
            self.events.push_back(ConnectionEvent::Failed(why));
            if let Some(data) = self.data.as_mut() {
                data.lost();
            }
            self.pump_data_events();
        }
    }

    /// DTLS records go to the path the client nominated; before it nominated one, they wait.
    fn flush_dtls(&mut self) {
        let (Some(to), Some(dtls)) = (self.ice.destination(), self.dtls.as_mut()) else {
            return;
        };
        while let Some(record) = dtls.poll_transmit() {
            self.transmits.push_back((to, record));
        }
    }

    /// Moves the IceLite's decisions into the connection's queue, keeping their order
    /// relative to the connection's own events.
    fn pull_ice(&mut self) {
        while let Some(e) = self.ice.poll_event() {
            self.events.push_back(ConnectionEvent::Ice(e));
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), ConnectionError> {
        self.ice.handle_timeout(now);
        let mut outcome = Ok(());
        if let Some(dtls) = self.dtls.as_mut().filter(|_| !self.dead)
            && let Err(e) = dtls.handle_timeout(now)
        {
            // Only handshake retransmissions run on timers: this one ran out of them.
            self.fail(e.to_string());
            outcome = Err(e.into());
        }
        if let Some(data) = self.data.as_mut().filter(|_| !self.dead) {
            data.handle_timeout(now);
        }
        self.pump_data(now);
        self.flush_dtls();
        self.pull_ice();
        outcome
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let dtls = self
            .dtls
            .as_ref()
            .filter(|_| !self.dead)
            .and_then(DtlsSrtp::poll_timeout);
        let data = self
            .data
            .as_ref()
            .filter(|_| !self.dead)
            .and_then(DataChannels::poll_timeout);
        [self.ice.poll_timeout(), dtls, data]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, BytesMut)> {
        self.transmits.pop_front()
    }

    pub fn poll_received(&mut self) -> Option<Received> {
        self.received.pop_front()
    }

    /// The next thing the owner must act on: DTLS up or dead, and the IceLite's decisions.
    pub fn poll_event(&mut self) -> Option<ConnectionEvent> {
        self.pull_ice();
        self.events.pop_front()
    }

    /// Ends the connection from the server's side: a DTLS `close_notify` goes to the
    /// client's path, so it need not wait for consent freshness (RFC 7675) to notice.
    pub fn close(&mut self, now: Instant) {
        // An SCTP ABORT first, while DTLS still carries it: the client's channels close
        // at once rather than on its SCTP timers.
        if let Some(data) = self.data.as_mut().filter(|_| !self.dead) {
            data.abort();
            self.pump_data(now);
        }
        if let Some(dtls) = self.dtls.as_mut() {
            dtls.close(now);
        }
        self.flush_dtls();
        self.dead = true;
    }

    /// The negotiated SRTP profile, once DTLS completed.
    pub fn profile(&self) -> Option<SrtpProfile> {
        self.dtls.as_ref().and_then(DtlsSrtp::profile)
    }

    pub fn ice(&self) -> &IceLite {
        &self.ice
    }

    /// The client's latest description: its offer on a publisher connection, its answer
    /// on a subscriber connection.
    pub fn remote(&self) -> Option<&Remote> {
        self.remote.as_ref()
    }
}

/// Whether a DTLS error ends the association. [`DtlsSrtp`] passes `rtc-dtls`'s errors on
/// as text, so the handshake's fatal ones are told by it: a fatal alert either way, or a
/// certificate that is missing or not the announced one. Anything else (a malformed or
/// stray record) is dropped and the handshake goes on.
fn fatal(e: &DtlsError, established: bool) -> bool {
    match e {
        DtlsError::Handshake(text) => {
            let text = text.to_ascii_lowercase();
            ["fatal", "certificate", "verify data"]
                .iter()
                .any(|t| text.contains(t))
                // After the handshake, only an authenticated alert can end it (rtc-dtls
                // drops the unauthenticated ones); a bad record is just dropped.
                && (!established || text.contains("fatal"))
        }
        DtlsError::NotEstablished | DtlsError::Srtp(_) | DtlsError::Protect(_) => false,
        // Closed on purpose (by either side): told apart where it happens.
        DtlsError::Closed => false,
        DtlsError::Config(_) | DtlsError::UnexpectedProfile(_) | DtlsError::Keys(_) => true,
    }
}
