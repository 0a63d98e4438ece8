//! The SDP side of a [`ServerConnection`]: answering a publisher's offers, offering a
//! subscriber's tracks, and the DTLS roles and ICE credentials those settle.

use std::time::Instant;

use super::sdp::{self, Local, OutTrack, Remote};
use super::{Accept, ConnectionError, DataChannels, ServerConnection};
use crate::dtls_srtp::{DtlsRole, DtlsSrtp};
use crate::ice::IceCredentials;

/// The mid of the data channel m-section in the server's offers.
pub const DATA_MID: &str = "data";

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
        conn.dtls = Some(DtlsSrtp::new(role, params.dtls, &parsed.fingerprint, now)?);
        conn.role = Some(role);
        conn.agree_data(&parsed, now);
        let answer = conn.describe(|local| parsed.answer(local));
        conn.remote = Some(parsed);
        Ok((conn, answer))
    }

    /// A subscriber connection that has not offered yet: its first offer comes from
    /// [`Self::reoffer`]. DTLS starts when [`Self::apply_answer`] has the client's answer.
    pub fn offering(params: Accept<'_>, now: Instant) -> Result<Self, ConnectionError> {
        let mut conn = Self::new(&params, now)?;
        conn.pending = Some(params.dtls.clone());
        Ok(conn)
    }

    /// [`Self::offering`] and its first offer of `tracks`.
    pub fn offer(
        tracks: &[OutTrack],
        params: Accept<'_>,
        now: Instant,
    ) -> Result<(Self, String), ConnectionError> {
        let mut conn = Self::offering(params, now)?;
        let offer = conn.reoffer(tracks, None, now);
        Ok((conn, offer))
    }

    /// The client's answer to the server's offer. The first one gives its certificate and
    /// the DTLS role it took; later ones keep both.
    pub fn apply_answer(&mut self, answer: &str, now: Instant) -> Result<(), ConnectionError> {
        if !self.offered {
            return Err(ConnectionError::NotNegotiated);
        }
        let answer = Remote::parse_description(answer)?;
        self.check_fingerprint(&answer.fingerprint)?;
        if let Some(config) = &self.pending {
            let role = match answer.setup.as_deref() {
                Some("active") => DtlsRole::Server,
                Some("passive") => DtlsRole::Client,
                other => return Err(ConnectionError::Setup(other.map(str::to_owned))),
            };
            self.dtls = Some(DtlsSrtp::new(role, config, &answer.fingerprint, now)?);
            self.role = Some(role);
            self.pending = None;
            self.flush_dtls();
        }
        if self.offers_data {
            self.agree_data(&answer, now);
        }
        self.offered = false;
        self.remote = Some(answer);
        Ok(())
    }

    /// A new offer on a subscriber connection (its first, or tracks added or stopped),
    /// on the same DTLS association; with `restart`, under new ICE credentials.
    pub fn reoffer(
        &mut self,
        tracks: &[OutTrack],
        restart: Option<IceCredentials>,
        now: Instant,
    ) -> String {
        if let Some(credentials) = restart {
            self.ice.set_credentials(credentials, now);
            self.pull_ice();
        }
        self.offered = true;
        let data = self.offers_data.then_some(DATA_MID);
        self.describe(|local| sdp::offer_with(tracks, data, local))
    }

    /// Makes this subscriber connection's offers carry a data channel m-section (mid
    /// `data`), for channels from the server to the client; call it before the first
    /// offer. Channels work once the client's answer accepted it.
    pub fn offer_data_channels(&mut self) {
        self.offers_data = true;
    }

    /// Data channels start when a description of the client's first carries them; a
    /// later one cannot take them away (an m-section is only ever rejected by a new
    /// session), and a second association is never made.
    fn agree_data(&mut self, remote: &Remote, now: Instant) {
        let (Some(app), None, Some(role)) = (&remote.application, &self.data, self.role) else {
            return;
        };
        let mut data = DataChannels::new(role, app.max_message_size);
        if self.profile().is_some() {
            data.start(now);
        }
        self.data = Some(data);
    }

    /// A new offer from the client on a publisher connection (tracks added or removed, or
    /// an ICE restart): the answer. A client that restarts ICE puts a new ufrag in its
    /// offer; then, and only then, the server answers under `fresh()` credentials (JSEP:
    /// both sides change theirs on a restart). Unlike a first offer, it may send nothing
    /// any more (every track unpublished): every m-section is then rejected.
    pub fn reanswer(
        &mut self,
        offer: &str,
        fresh: impl FnOnce() -> IceCredentials,
        now: Instant,
    ) -> Result<String, ConnectionError> {
        let parsed = Remote::parse_description(offer)?;
        self.check_fingerprint(&parsed.fingerprint)?;
        let restart = self
            .remote
            .as_ref()
            .is_some_and(|r| r.ice_ufrag != parsed.ice_ufrag);
        if restart {
            self.ice.set_credentials(fresh(), now);
            self.pull_ice();
        }
        self.agree_data(&parsed, now);
        let answer = self.describe(|local| parsed.answer(local));
        self.remote = Some(parsed);
        if self.data.is_some() {
            // Added to an association that is already up: the SCTP client's INIT.
            self.pump_data(now);
        }
        Ok(answer)
    }

    /// The certificate the client announced first may not change on this connection.
    fn check_fingerprint(&self, fingerprint: &str) -> Result<(), ConnectionError> {
        let known = self.remote.as_ref().map(|r| r.fingerprint.as_str());
        match known {
            Some(known) if !known.eq_ignore_ascii_case(fingerprint) => {
                Err(ConnectionError::FingerprintChanged)
            }
            _ => Ok(()),
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
}
