//! The server's half of ICE-lite for one connection: which of the client's addresses
//! media goes to, and whether the client is still there. Sans-I/O: time comes in as an
//! argument, decisions go out as [`IceEvent`]s.
//!
//! - A *path* is a client address that sent an authenticated binding request
//!   (USERNAME and MESSAGE-INTEGRITY with our credentials). Media goes to the path the
//!   client nominated last (USE-CANDIDATE); older paths stay routable until nothing
//!   authenticated has come from them for [`LivenessConfig::route_expiry`] (consent
//!   freshness, RFC 7675), so packets in flight on the old path are not lost.
//! - Liveness counts every authenticated packet: verified STUN requests here, and
//!   SRTP, SRTCP and DTLS that the connection accepted ([`IceLite::heard`]).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::crypto::RTCCryptoProvider;
use rtc::stun::attributes::{ATTR_USE_CANDIDATE, ATTR_USERNAME};
use rtc::stun::fingerprint::FINGERPRINT;
use rtc::stun::integrity::MessageIntegrity;
use rtc::stun::message::{BINDING_REQUEST, BINDING_SUCCESS, Message, Setter};
use rtc::stun::textattrs::TextAttribute;
use rtc::stun::xoraddr::XorMappedAddress;

pub use chorus_rtc_profile::IceCredentials;

/// How long silence may last; documented in docs/signaling.md and docs/configuration.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LivenessConfig {
    /// Nothing authenticated for this long: `disconnected`.
    pub disconnected_after: Duration,
    /// Nothing authenticated for this long: lost, the participant is removed.
    pub lost_after: Duration,
    /// Not up this long after it was created (or restarted): reported unreachable.
    pub connect_timeout: Duration,
    /// A path that sent nothing authenticated for this long is forgotten.
    pub route_expiry: Duration,
}

impl Default for LivenessConfig {
    fn default() -> Self {
        Self {
            disconnected_after: Duration::from_secs(10),
            lost_after: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            route_expiry: Duration::from_secs(30),
        }
    }
}

/// Whether the client is there, as the server sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Not up yet (ICE and DTLS).
    Connecting,
    Connected,
    /// Up once, silent for [`LivenessConfig::disconnected_after`].
    Disconnected,
    /// Silent for [`LivenessConfig::lost_after`]; final.
    Lost,
}

/// A decision for the connection's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IceEvent {
    /// Route datagrams from this address to the connection.
    RouteConfirmed(SocketAddr),
    /// Stop routing datagrams from this address to the connection.
    RouteExpired(SocketAddr),
    /// Media now goes to `to` (the client nominated it).
    Switched {
        from: Option<SocketAddr>,
        to: SocketAddr,
    },
    State(LinkState),
    /// Not up within [`LivenessConfig::connect_timeout`] of its start or restart.
    Unreachable {
        after: Duration,
    },
}

/// What a STUN datagram turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StunCheck {
    /// An authenticated binding request; `nominated` if it carried USE-CANDIDATE.
    Request { nominated: bool },
    /// Not a binding request (a response or an indication): not ours to judge.
    NotRequest,
    /// A binding request for other credentials (an old ufrag after a restart).
    WrongUfrag,
    /// A binding request whose MESSAGE-INTEGRITY does not match our password.
    BadIntegrity,
    /// Not a well-formed STUN message.
    Malformed,
}

/// Paths kept per connection; a client with more addresses loses its stalest.
const MAX_PATHS: usize = 8;

#[derive(Debug, Clone)]
struct Path {
    addr: SocketAddr,
    heard: Instant,
}

/// One connection's paths and liveness.
pub struct IceLite {
    config: LivenessConfig,
    crypto: Arc<dyn RTCCryptoProvider>,
    credentials: Option<IceCredentials>,
    paths: Vec<Path>,
    active: Option<SocketAddr>,
    /// Creation, or the last ICE restart: the connect timeout counts from here.
    started: Instant,
    /// ICE and DTLS came up once.
    up: bool,
    /// Waiting to come up since `started`: DTLS at first, a nomination after a restart.
    awaiting: bool,
    unreachable_reported: bool,
    heard: Option<Instant>,
    state: LinkState,
    events: VecDeque<IceEvent>,
}

impl IceLite {
    pub fn new(config: LivenessConfig, crypto: Arc<dyn RTCCryptoProvider>, now: Instant) -> Self {
        Self {
            config,
            crypto,
            credentials: None,
            paths: Vec::new(),
            active: None,
            started: now,
            up: false,
            awaiting: true,
            unreachable_reported: false,
            heard: None,
            state: LinkState::Connecting,
            events: VecDeque::new(),
        }
    }

    pub fn credentials(&self) -> Option<&IceCredentials> {
        self.credentials.as_ref()
    }

    /// Installs the credentials of the latest local description. Returns the previous
    /// ones if they changed (an ICE restart): the owner re-routes the new ufrag. Paths
    /// stay until they expire; the connect timeout starts again.
    pub fn set_credentials(
        &mut self,
        credentials: IceCredentials,
        now: Instant,
    ) -> Option<IceCredentials> {
        if self.credentials.as_ref() == Some(&credentials) {
            return None;
        }
        let old = self.credentials.replace(credentials)?;
        self.started = now;
        self.awaiting = true;
        self.unreachable_reported = false;
        Some(old)
    }

    /// Where media goes: the path nominated last; `None` before any nomination.
    pub fn destination(&self) -> Option<SocketAddr> {
        self.active
    }

    pub fn state(&self) -> LinkState {
        self.state
    }

    /// ICE and DTLS came up once (they stay up across a restart).
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Addresses currently routed to this connection.
    pub fn routes(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.paths.iter().map(|p| p.addr)
    }

    /// The success response an ICE-lite agent sends to a binding request from `from`
    /// (RFC 8445 §7.3): the request's transaction, the address it came from
    /// (XOR-MAPPED-ADDRESS), signed with our password, with a FINGERPRINT. `None` unless
    /// `request` is a binding request and the connection has credentials; authenticate it
    /// first with [`Self::check_stun`].
    pub fn binding_success(&self, request: &[u8], from: SocketAddr) -> Option<Vec<u8>> {
        let credentials = self.credentials.as_ref()?;
        let mut req = Message {
            raw: request.to_vec(),
            ..Message::default()
        };
        req.decode().ok()?;
        if req.typ != BINDING_REQUEST {
            return None;
        }
        let setters: [Box<dyn Setter>; 5] = [
            Box::new(req),
            Box::new(BINDING_SUCCESS),
            Box::new(XorMappedAddress {
                ip: from.ip(),
                port: from.port(),
            }),
            Box::new(MessageIntegrity::new_short_term_integrity_with_provider(
                credentials.pwd.clone(),
                self.crypto.crypto(),
            )),
            Box::new(FINGERPRINT),
        ];
        let mut m = Message::new();
        m.build(&setters).ok()?;
        Some(m.raw)
    }

    /// Verifies a STUN datagram from `from`; an authenticated binding request confirms
    /// (or refreshes) its path, and a nomination moves media there.
    pub fn check_stun(&mut self, from: SocketAddr, data: &[u8], now: Instant) -> StunCheck {
        let mut m = Message {
            raw: data.to_vec(),
            ..Message::default()
        };
        if m.decode().is_err() {
            return StunCheck::Malformed;
        }
        if m.typ != BINDING_REQUEST {
            return StunCheck::NotRequest;
        }
        let Some(credentials) = &self.credentials else {
            return StunCheck::WrongUfrag;
        };
        let username = TextAttribute::get_from_as(&m, ATTR_USERNAME);
        let ours = username.as_ref().is_ok_and(|u| {
            u.text
                .split_once(':')
                .is_some_and(|(local, _)| local == credentials.ufrag)
        });
        if !ours {
            return StunCheck::WrongUfrag;
        }
        let key = credentials.pwd.as_bytes();
        if MessageIntegrity::check(&mut m, key, self.crypto.crypto()).is_err() {
            return StunCheck::BadIntegrity;
        }
        let nominated = m.contains(ATTR_USE_CANDIDATE);
        self.confirm_path(from, now);
        if nominated && self.up {
            self.awaiting = false;
        }
        if nominated && self.active != Some(from) {
            let previous = self.active.replace(from);
            self.events.push_back(IceEvent::Switched {
                from: previous,
                to: from,
            });
        }
        self.refresh(now);
        StunCheck::Request { nominated }
    }

    /// An authenticated packet other than a binding request (SRTP, SRTCP, DTLS) came
    /// from `from`.
    pub fn heard(&mut self, from: SocketAddr, now: Instant) {
        if let Some(p) = self.paths.iter_mut().find(|p| p.addr == from) {
            p.heard = p.heard.max(now);
        }
        self.refresh(now);
    }

    /// ICE and DTLS are up (the connection said so).
    pub fn connected(&mut self, now: Instant) {
        self.up = true;
        self.awaiting = false;
        self.refresh(now);
    }

    /// When [`IceLite::handle_timeout`] next has something to decide.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let c = &self.config;
        let since = self.silent_since();
        let liveness = match self.state {
            LinkState::Lost => return None,
            LinkState::Connected => since + c.disconnected_after,
            LinkState::Connecting | LinkState::Disconnected => since + c.lost_after,
        };
        let unreachable = (self.awaiting && !self.unreachable_reported)
            .then_some(self.started + c.connect_timeout);
        let expiry = self.paths.iter().map(|p| p.heard + c.route_expiry).min();
        [Some(liveness), unreachable, expiry]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == LinkState::Lost {
            return;
        }
        let c = self.config;
        let expired = |p: &Path| now.saturating_duration_since(p.heard) >= c.route_expiry;
        while let Some(i) = self.paths.iter().position(expired) {
            self.drop_path(i);
        }
        if self.awaiting
            && !self.unreachable_reported
            && now.saturating_duration_since(self.started) >= c.connect_timeout
        {
            self.unreachable_reported = true;
            self.events.push_back(IceEvent::Unreachable {
                after: c.connect_timeout,
            });
        }
        let silence = now.saturating_duration_since(self.silent_since());
        if silence >= c.lost_after {
            self.set_state(LinkState::Lost);
        } else if silence >= c.disconnected_after && self.state == LinkState::Connected {
            self.set_state(LinkState::Disconnected);
        }
    }

    pub fn poll_event(&mut self) -> Option<IceEvent> {
        self.events.pop_front()
    }

    /// Liveness counts from here: the last authenticated packet once up; a connection
    /// that never came up is lost `lost_after` its start, whatever it sent.
    fn silent_since(&self) -> Instant {
        match self.heard {
            Some(heard) if self.up => heard,
            _ => self.started,
        }
    }

    fn confirm_path(&mut self, addr: SocketAddr, now: Instant) {
        if let Some(p) = self.paths.iter_mut().find(|p| p.addr == addr) {
            p.heard = p.heard.max(now);
            return;
        }
        if self.paths.len() >= MAX_PATHS {
            let active = self.active;
            let stalest = (0..self.paths.len())
                .filter(|&i| Some(self.paths[i].addr) != active)
                .min_by_key(|&i| self.paths[i].heard);
            if let Some(i) = stalest {
                self.drop_path(i);
            }
        }
        self.paths.push(Path { addr, heard: now });
        self.events.push_back(IceEvent::RouteConfirmed(addr));
    }

    fn drop_path(&mut self, i: usize) {
        let gone = self.paths.swap_remove(i);
        self.events.push_back(IceEvent::RouteExpired(gone.addr));
        if self.active == Some(gone.addr) {
            // The nominated path went quiet: fall back to the freshest one left.
            self.active = self.paths.iter().max_by_key(|p| p.heard).map(|p| p.addr);
            if let Some(to) = self.active {
                self.events.push_back(IceEvent::Switched {
                    from: Some(gone.addr),
                    to,
                });
            }
        }
    }

    fn refresh(&mut self, now: Instant) {
        self.heard = Some(self.heard.map_or(now, |h| h.max(now)));
        if self.up && matches!(self.state, LinkState::Connecting | LinkState::Disconnected) {
            self.set_state(LinkState::Connected);
        }
    }

    fn set_state(&mut self, state: LinkState) {
        if self.state != state {
            self.state = state;
            self.events.push_back(IceEvent::State(state));
        }
    }
}

#[cfg(test)]
mod tests;
