//! Chorus's own server side of one WebRTC connection (issue 9), sans-I/O: the SDP answer
//! it writes itself ([`answer`]), ICE-lite ([`IceLite`]: checks authenticated and answered
//! here), DTLS-SRTP ([`DtlsSrtp`], the server as DTLS client), and RTP/RTCP unprotected
//! on the way in. Datagrams are told apart by their first byte (RFC 7983).
//!
//! Rooms do not use it yet: it is the base the media path will be moved onto, tested
//! against `rtc`'s full `RTCPeerConnection` as the client.

pub mod answer;
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
use answer::{Local, Offer, OfferError};

#[derive(Debug, Error)]
pub enum ConnectionError {
    #[error(transparent)]
    Offer(#[from] OfferError),
    #[error(transparent)]
    Dtls(#[from] DtlsError),
}

/// What the server side of a connection needs to answer an offer.
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
    dtls: DtlsSrtp,
    transmits: VecDeque<(SocketAddr, BytesMut)>,
    received: VecDeque<Received>,
}

impl ServerConnection {
    /// Answers a client's offer: the connection, and the SDP answer to send back.
    pub fn accept(
        offer: &str,
        params: Accept<'_>,
        now: Instant,
    ) -> Result<(Self, String), ConnectionError> {
        let offer = Offer::parse(offer)?;
        let fingerprint = params.dtls.fingerprint()?;
        let answer = offer.answer(&Local {
            ice_ufrag: &params.credentials.ufrag,
            ice_pwd: &params.credentials.pwd,
            fingerprint: &fingerprint,
            candidate: params.candidate,
            session_id: params.session_id,
        });
        let mut ice = IceLite::new(params.liveness, params.crypto, now);
        ice.set_credentials(params.credentials, now);
        // `a=setup:active`: the server starts the handshake once it knows where to.
        let dtls = DtlsSrtp::new(DtlsRole::Client, params.dtls, &offer.fingerprint, now)?;
        let conn = Self {
            ice,
            dtls,
            transmits: VecDeque::new(),
            received: VecDeque::new(),
        };
        Ok((conn, answer))
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
                let event = self
                    .dtls
                    .handle_datagram(data, now)
                    .map_err(|_| Refused::Dtls)?;
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
                let plain = if rtcp {
                    self.dtls.unprotect_rtcp(&data).map(Received::Rtcp)
                } else {
                    self.dtls.unprotect_rtp(&data).map(Received::Rtp)
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
        let Some(to) = self.ice.destination() else {
            return;
        };
        while let Some(record) = self.dtls.poll_transmit() {
            self.transmits.push_back((to, record));
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), ConnectionError> {
        self.ice.handle_timeout(now);
        self.dtls.handle_timeout(now)?;
        self.flush_dtls();
        Ok(())
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.ice.poll_timeout(), self.dtls.poll_timeout()]
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

    /// The negotiated SRTP profile, once DTLS completed.
    pub fn profile(&self) -> Option<SrtpProfile> {
        self.dtls.profile()
    }

    pub fn ice(&self) -> &IceLite {
        &self.ice
    }
}
