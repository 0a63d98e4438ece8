//! Chorus's own server side of one WebRTC connection (issue 9), sans-I/O: the SDP it
//! writes itself ([`sdp`]), ICE-lite ([`IceLite`]: checks authenticated and answered
//! here), DTLS-SRTP ([`DtlsSrtp`]), RTP/RTCP unprotected on the way in and protected on
//! the way out. On a publisher connection the server answers and is the DTLS server; on
//! a subscriber connection it offers and takes the role the client's answer leaves it.
//! Datagrams are told apart by their first byte (RFC 7983).
//!
//! Rooms do not use it yet: it is the base the media path will be moved onto, tested
//! against `rtc`'s full `RTCPeerConnection` as the client.

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
use crate::ice::{IceCredentials, IceLite, LivenessConfig, StunCheck};
use sdp::{Local, OutTrack, Remote, SdpError};

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

pub struct ServerConnection {
    ice: IceLite,
    /// Set once the roles are known: at once when answering, on the answer when offering.
    dtls: Option<DtlsSrtp>,
    /// Offering side, before the first answer: what its DTLS association needs.
    pending: Option<DtlsSrtpConfig>,
    /// What the server's descriptions carry.
    fingerprint: String,
    candidate: SocketAddr,
    session_id: u64,
    version: u64,
    /// The certificate the client announced first; it may not change on this connection.
    remote_fingerprint: Option<String>,
    /// An offer of the server is out.
    offered: bool,
    /// The server's `a=setup` in its answers.
    setup: &'static str,
    transmits: VecDeque<(SocketAddr, BytesMut)>,
    received: VecDeque<Received>,
}

impl ServerConnection {
    /// Answers a client's offer (a publisher connection): the connection, and the SDP
    /// answer to send back.
    pub fn accept(
        offer: &str,
        params: Accept<'_>,
        now: Instant,
    ) -> Result<(Self, String), ConnectionError> {
        let parsed = Remote::parse(offer)?;
        let mut conn = Self::new(&params, now)?;
        // The server takes the DTLS server role where it can (`a=setup:passive`): there
        // it chooses the SRTP profile, GCM first. A client that offers `passive` makes it
        // the client, which starts the handshake once it knows where to.
        let role = match parsed.setup.as_deref() {
            Some("passive") => DtlsRole::Client,
            _ => DtlsRole::Server,
        };
        conn.setup = match role {
            DtlsRole::Client => "active",
            DtlsRole::Server => "passive",
        };
        let dtls = DtlsSrtp::new(role, params.dtls, &parsed.fingerprint, now)?;
        conn.dtls = Some(dtls);
        conn.remote_fingerprint = Some(parsed.fingerprint.clone());
        let answer = conn.describe(|local| parsed.answer(local));
        Ok((conn, answer))
    }

    /// Offers `tracks` to a client (a subscriber connection): the connection, and the
    /// SDP offer. DTLS starts when [`Self::apply_answer`] has the client's answer.
    pub fn offer(
        tracks: &[OutTrack],
        params: Accept<'_>,
        now: Instant,
    ) -> Result<(Self, String), ConnectionError> {
        let mut conn = Self::new(&params, now)?;
        conn.pending = Some(params.dtls.clone());
        conn.offered = true;
        let offer = conn.describe(|local| sdp::offer(tracks, local));
        Ok((conn, offer))
    }

    /// The client's answer to the server's offer. The first one gives its certificate and
    /// the DTLS role it took; later ones keep both.
    pub fn apply_answer(&mut self, answer: &str, now: Instant) -> Result<(), ConnectionError> {
        if !self.offered {
            return Err(ConnectionError::NotNegotiated);
        }
        let answer = Remote::parse(answer)?;
        self.check_fingerprint(&answer.fingerprint)?;
        self.offered = false;
        if let Some(config) = self.pending.take() {
            let role = match answer.setup.as_deref() {
                Some("active") => DtlsRole::Server,
                Some("passive") => DtlsRole::Client,
                other => return Err(ConnectionError::Setup(other.map(str::to_owned))),
            };
            self.dtls = Some(DtlsSrtp::new(role, &config, &answer.fingerprint, now)?);
            self.flush_dtls();
        }
        Ok(())
    }

    /// A new offer on a subscriber connection (tracks added or stopped), on the same
    /// DTLS association; with `restart`, under new ICE credentials.
    pub fn reoffer(
        &mut self,
        tracks: &[OutTrack],
        restart: Option<IceCredentials>,
        now: Instant,
    ) -> String {
        if let Some(credentials) = restart {
            self.ice.set_credentials(credentials, now);
        }
        self.offered = true;
        self.describe(|local| sdp::offer(tracks, local))
    }

    /// A new offer from the client on a publisher connection (tracks added or removed,
    /// or an ICE restart, for which the caller draws new credentials): the answer.
    pub fn reanswer(
        &mut self,
        offer: &str,
        restart: Option<IceCredentials>,
        now: Instant,
    ) -> Result<String, ConnectionError> {
        let parsed = Remote::parse(offer)?;
        self.check_fingerprint(&parsed.fingerprint)?;
        if let Some(credentials) = restart {
            self.ice.set_credentials(credentials, now);
        }
        Ok(self.describe(|local| parsed.answer(local)))
    }

    fn check_fingerprint(&mut self, fingerprint: &str) -> Result<(), ConnectionError> {
        match &self.remote_fingerprint {
            Some(known) if !known.eq_ignore_ascii_case(fingerprint) => {
                Err(ConnectionError::FingerprintChanged)
            }
            Some(_) => Ok(()),
            None => {
                self.remote_fingerprint = Some(fingerprint.to_owned());
                Ok(())
            }
        }
    }

    /// Writes a description of the server's side, the next version of the session.
    fn describe(&mut self, write: impl FnOnce(&Local<'_>) -> String) -> String {
        self.version += 1;
        let credentials = self.ice.credentials().expect("set at creation");
        write(&Local {
            ice_ufrag: &credentials.ufrag,
            ice_pwd: &credentials.pwd,
            fingerprint: &self.fingerprint,
            candidate: self.candidate,
            session_id: self.session_id,
            version: self.version,
            setup: self.setup,
        })
    }

    fn new(params: &Accept<'_>, now: Instant) -> Result<Self, ConnectionError> {
        let mut ice = IceLite::new(params.liveness, params.crypto.clone(), now);
        ice.set_credentials(params.credentials.clone(), now);
        Ok(Self {
            ice,
            dtls: None,
            pending: None,
            fingerprint: params.dtls.fingerprint()?,
            candidate: params.candidate,
            session_id: params.session_id,
            version: 1,
            remote_fingerprint: None,
            offered: false,
            setup: "passive",
            transmits: VecDeque::new(),
            received: VecDeque::new(),
        })
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

    /// Feeds one datagram from `from`.
    pub fn handle_datagram(
        &mut self,
        from: SocketAddr,
        data: BytesMut,
        now: Instant,
    ) -> Result<(), Refused> {
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
            Some(20..=63) => {
                let dtls = self.dtls.as_mut().ok_or(Refused::Dtls)?;
                let event = dtls.handle_datagram(data, now).map_err(|_| Refused::Dtls)?;
                if let Some(DtlsEvent::Established(_)) = event {
                    self.ice.connected(now);
                }
                self.ice.heard(from, now);
                self.flush_dtls();
                Ok(())
            }
            Some(128..=191) => {
                // RFC 5761: RTCP packet types 192–223 sit where RTP has marker + type.
                let rtcp = data.get(1).is_some_and(|b| (192..=223).contains(b));
                let dtls = self.dtls.as_mut().ok_or(Refused::Srtp)?;
                let plain = if rtcp {
                    dtls.unprotect_rtcp(&data).map(Received::Rtcp)
                } else {
                    dtls.unprotect_rtp(&data).map(Received::Rtp)
                };
                let plain = plain.map_err(|_| Refused::Srtp)?;
                self.ice.heard(from, now);
                self.received.push_back(plain);
                Ok(())
            }
            _ => Err(Refused::Unknown),
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

    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), ConnectionError> {
        self.ice.handle_timeout(now);
        if let Some(dtls) = self.dtls.as_mut() {
            dtls.handle_timeout(now)?;
        }
        self.flush_dtls();
        Ok(())
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let dtls = self.dtls.as_ref().and_then(DtlsSrtp::poll_timeout);
        [self.ice.poll_timeout(), dtls].into_iter().flatten().min()
    }

    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, BytesMut)> {
        self.transmits.pop_front()
    }

    pub fn poll_received(&mut self) -> Option<Received> {
        self.received.pop_front()
    }

    /// The negotiated SRTP profile, once DTLS completed.
    pub fn profile(&self) -> Option<SrtpProfile> {
        self.dtls.as_ref().and_then(DtlsSrtp::profile)
    }

    pub fn ice(&self) -> &IceLite {
        &self.ice
    }
}
