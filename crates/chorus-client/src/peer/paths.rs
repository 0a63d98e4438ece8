//! The connection's network paths, as a client moving between networks has them: the
//! socket in use, a spare one checked with the server before a switch, and the one used
//! before the last switch (still receiving); reading whatever waits on any of them.

use std::io;
use std::net::SocketAddr;

use rtc::peer_connection::sdp::RTCSessionDescription;

use super::{Peer, bind_stamped};
use crate::error::ClientError;

impl Peer {
    /// Reads the datagrams already waiting on one of the connection's sockets (unless
    /// some of the last burst are still to be handed over), without waiting; `None`
    /// when none is. Lets [`crate::Engine::step`] take in a burst before it drives the
    /// connection once.
    pub(crate) fn try_recv(&mut self) -> Option<io::Result<()>> {
        if self.batch.pending() {
            return Some(Ok(()));
        }
        let sockets = [
            Some(&self.socket),
            self.previous.as_ref(),
            self.spare.as_ref(),
        ];
        for socket in sockets.into_iter().flatten() {
            match self.batch.try_fill(socket) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Some(Err(e)),
                Ok(_) if self.batch.pending() => return Some(Ok(())),
                Ok(_) => {}
            }
        }
        None
    }

    /// Opens a second path: a new socket on the same address, checked with the server
    /// (an authenticated binding request without USE-CANDIDATE), not used yet. Returns
    /// its address.
    pub(crate) async fn add_path(&mut self) -> Result<SocketAddr, ClientError> {
        let socket = bind_stamped(SocketAddr::new(self.local_addr.ip(), 0)).await?;
        let (request, server) = self.check(false)?;
        socket.send_to(&request, server).await?;
        let addr = socket.local_addr()?;
        self.spare = Some(socket);
        Ok(addr)
    }

    /// Nominates the path [`Peer::add_path`] opened and sends everything through it from
    /// now on; the old path keeps receiving.
    pub(crate) async fn switch_path(&mut self) -> Result<SocketAddr, ClientError> {
        let spare = self
            .spare
            .take()
            .ok_or_else(|| ClientError::Protocol("no second path to switch to".into()))?;
        let (request, server) = self.check(true)?;
        spare.send_to(&request, server).await?;
        let addr = spare.local_addr()?;
        self.previous = Some(std::mem::replace(&mut self.socket, spare));
        Ok(addr)
    }

    /// Closes the path used before the last switch (its interface went away).
    pub(crate) fn drop_previous_path(&mut self) -> Result<SocketAddr, ClientError> {
        self.previous = None;
        Ok(self.socket.local_addr()?)
    }

    /// Moves to a new socket and closes the old one, as when the client's network
    /// changes; an ICE restart must follow for the server to accept the new address.
    pub(crate) async fn change_address(&mut self) -> Result<SocketAddr, ClientError> {
        let socket = bind_stamped(SocketAddr::new(self.local_addr.ip(), 0)).await?;
        let addr = socket.local_addr()?;
        self.socket = socket;
        self.previous = None;
        self.spare = None;
        Ok(addr)
    }

    /// A binding request to the server with the current credentials of both sides, as
    /// a controlling agent checks (and nominates) a pair, and where it goes.
    fn check(&self, nominate: bool) -> Result<(Vec<u8>, SocketAddr), ClientError> {
        let credentials = |d: Option<&RTCSessionDescription>| {
            d.and_then(|d| chorus_rtc_profile::IceCredentials::from_sdp(&d.sdp))
        };
        let (Some(local), Some(remote), Some(server)) = (
            credentials(self.pc.local_description().as_ref()),
            credentials(self.pc.remote_description()),
            self.server,
        ) else {
            return Err(ClientError::Protocol(
                "the connection is not negotiated and up yet".into(),
            ));
        };
        let crypto = rtc::crypto::default_provider()
            .map_err(|e| ClientError::Protocol(format!("no crypto provider: {e}")))?;
        let request = chorus_rtc_profile::ice::binding_request(
            &remote.ufrag,
            &local.ufrag,
            &remote.pwd,
            nominate,
            crypto.crypto(),
        );
        Ok((request, server))
    }
}
