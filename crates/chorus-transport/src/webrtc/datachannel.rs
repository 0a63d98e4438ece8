//! Data channels (RFC 8831) of one connection, sans-I/O: one SCTP association
//! (`rtc-sctp`) whose packets travel as DTLS application data, and the channel
//! establishment protocol (DCEP, RFC 8832: `DATA_CHANNEL_OPEN` answered by
//! `DATA_CHANNEL_ACK`, messages from `rtc-datachannel`) on top.
//!
//! [`DataChannels`] knows nothing of DTLS: the connection feeds it what DTLS decrypted
//! ([`DataChannels::handle_data`]) and encrypts what it gives back
//! ([`DataChannels::poll_transmit`]). Time is passed in; timers come out of
//! [`DataChannels::poll_timeout`].
//!
//! Limits: a message is at most [`MAX_MESSAGE_SIZE`] either way (what the SDP advertises),
//! what waits to be sent or acknowledged is at most [`MAX_BUFFERED`] per connection (a
//! client that stops reading cannot grow the server's memory: further sends are refused
//! and counted), and what the client may have in flight toward the server is bounded by
//! SCTP's receive window, [`RECEIVE_WINDOW`].

mod connection;
mod dcep;
mod guard;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use datachannel::message::Message as Dcep;
use datachannel::message::message_channel_open::{CHANNEL_PRIORITY_NORMAL, DataChannelOpen};
use rtc::shared::TransportProtocol;
use rtc::shared::marshal::Marshal;
use sctp::{
    Association, AssociationHandle, ClientConfig, DatagramEvent, Endpoint, EndpointConfig, Event,
    Payload, PayloadProtocolIdentifier as Ppi, ServerConfig, StreamEvent, TransportConfig,
};
use thiserror::Error;

use crate::dtls_srtp::DtlsRole;
use dcep::{channel_type, configure};
use guard::TsnGuard;

/// The SCTP port both sides use (`a=sctp-port`); WebRTC stacks all say 5000.
pub const SCTP_PORT: u16 = 5000;
/// The largest message either way, advertised as `a=max-message-size` (RFC 8841).
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024;
/// Bytes sent but not yet acknowledged (or not yet sent) across a connection's channels.
pub const MAX_BUFFERED: usize = 1024 * 1024;
/// SCTP's advertised receive window: what the client may have unacknowledged toward us.
pub const RECEIVE_WINDOW: u32 = 256 * 1024;
/// Streams each way; also bounds how many channels a client can open.
const MAX_STREAMS: u16 = 1024;
/// The association's remote address as rtc-sctp wants one: only a label here (the packets
/// go wherever DTLS sends them), but it must not have port 0.
const PEER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), SCTP_PORT);

/// A channel: its SCTP stream id (even when the DTLS client opened it, odd otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChannelId(pub u16);

/// How hard a channel tries to deliver (RFC 8832 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reliability {
    Reliable,
    /// Retransmitted at most this many times, then abandoned (0: sent once).
    MaxRetransmits(u32),
    /// Abandoned after this many milliseconds.
    MaxLifetimeMs(u32),
}

/// What happened on a connection's data channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelEvent {
    /// A channel can carry messages: the client opened it, or acknowledged the server's.
    Opened {
        id: ChannelId,
        label: String,
        protocol: String,
        ordered: bool,
        reliability: Reliability,
    },
    Message {
        id: ChannelId,
        /// Binary (`false`: UTF-8 text, as the client declared it; not checked here).
        binary: bool,
        data: Bytes,
    },
    /// The channel is gone: closed by the client (stream reset) or with the association.
    Closed { id: ChannelId },
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DataError {
    #[error("no open data channel {0:?}")]
    UnknownChannel(ChannelId),
    #[error("message of {size} bytes is over the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("{buffered} bytes already wait to be sent or acknowledged")]
    BufferFull { buffered: usize },
    #[error("the data channel transport is not connected")]
    NotConnected,
    #[error("no stream id left for a new channel")]
    NoStreamId,
    #[error("SCTP: {0}")]
    Sctp(String),
}

/// What was refused or dropped, for the owner's statistics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DataCounters {
    /// Sends refused as over [`MAX_MESSAGE_SIZE`].
    pub send_too_large: u64,
    /// Sends refused because [`MAX_BUFFERED`] bytes were waiting.
    pub send_buffer_full: u64,
    /// Messages from the client over [`MAX_MESSAGE_SIZE`], dropped.
    pub received_too_large: u64,
    /// Messages on a stream no channel was opened on, DCEP that did not parse, SCTP
    /// packets claiming TSNs the client cannot (`datachannel/guard.rs`).
    pub received_invalid: u64,
}

struct Channel {
    /// `DATA_CHANNEL_ACK` received (the server opened it) or sent (the client did).
    open: bool,
    label: String,
    protocol: String,
    ordered: bool,
    reliability: Reliability,
}

impl Channel {
    fn opened(&self, id: ChannelId) -> ChannelEvent {
        ChannelEvent::Opened {
            id,
            label: self.label.clone(),
            protocol: self.protocol.clone(),
            ordered: self.ordered,
            reliability: self.reliability,
        }
    }
}

pub struct DataChannels {
    role: DtlsRole,
    endpoint: Endpoint,
    config: TransportConfig,
    association: Option<(AssociationHandle, Association)>,
    /// What the peer's packets may claim, checked before rtc-sctp reads them.
    guard: TsnGuard,
    /// The largest message taken from the client ([`MAX_MESSAGE_SIZE`]; tests change it).
    limit: usize,
    /// The smaller of ours and the client's `a=max-message-size`.
    send_limit: usize,
    channels: BTreeMap<u16, Channel>,
    /// The next stream id the server tries for a channel of its own.
    next_id: u16,
    events: VecDeque<ChannelEvent>,
    counters: DataCounters,
}

impl DataChannels {
    /// The channels of a connection on which this end takes `role` in DTLS (the DTLS client
    /// is the SCTP client, RFC 8841 §10); `remote_max_message_size` is the client's
    /// `a=max-message-size` (absent: 64 KiB; 0: no limit of its own).
    pub fn new(role: DtlsRole, remote_max_message_size: Option<u32>) -> Self {
        Self::with_limit(role, remote_max_message_size, MAX_MESSAGE_SIZE)
    }

    fn with_limit(role: DtlsRole, remote_max_message_size: Option<u32>, limit: usize) -> Self {
        let config = TransportConfig::default()
            .with_sctp_port(SCTP_PORT)
            .with_max_message_size(limit as u32)
            .with_max_receive_buffer_size(RECEIVE_WINDOW)
            .with_max_num_inbound_streams(MAX_STREAMS)
            .with_max_num_outbound_streams(MAX_STREAMS);
        let server =
            (role == DtlsRole::Server).then(|| Arc::new(ServerConfig::new(config.clone())));
        let local = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), SCTP_PORT);
        let endpoint = Endpoint::new(
            local,
            TransportProtocol::UDP,
            Arc::new(EndpointConfig::default()),
            server,
        );
        let remote = match remote_max_message_size {
            None => MAX_MESSAGE_SIZE,
            Some(0) => usize::MAX,
            Some(n) => n as usize,
        };
        Self {
            role,
            endpoint,
            config,
            association: None,
            guard: TsnGuard::default(),
            limit,
            send_limit: remote.min(limit),
            channels: BTreeMap::new(),
            next_id: if role == DtlsRole::Client { 0 } else { 1 },
            events: VecDeque::new(),
            counters: DataCounters::default(),
        }
    }

    /// DTLS is up: as SCTP client, send the INIT. (As server, the client's INIT comes.)
    pub fn start(&mut self, now: Instant) {
        if self.role != DtlsRole::Client || self.association.is_some() {
            return;
        }
        let config = ClientConfig::new(self.config.clone());
        if let Ok(association) = self.endpoint.connect(now, config, PEER) {
            self.endpoint.reject_new_associations();
            self.association = Some(association);
        }
    }

    /// One SCTP packet DTLS decrypted. What claims TSNs it cannot (see `guard.rs`) is
    /// dropped and counted; anything else malformed is dropped by rtc-sctp.
    pub fn handle_data(&mut self, data: BytesMut, now: Instant) {
        if !self.guard.inbound(&data) {
            self.counters.received_invalid += 1;
            return;
        }
        let Some((handle, event)) = self.endpoint.handle(now, PEER, None, data.freeze()) else {
            return;
        };
        match event {
            // One association per connection: the endpoint refuses any INIT after the
            // first (rtc-sctp would keep an association for each).
            DatagramEvent::NewAssociation(association) if self.association.is_none() => {
                self.endpoint.reject_new_associations();
                self.association = Some((handle, association));
            }
            DatagramEvent::AssociationEvent(event) => match &mut self.association {
                Some((h, association)) if *h == handle => association.handle_event(event),
                _ => {}
            },
            _ => {}
        }
        self.process(now);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some((_, association)) = &mut self.association {
            association.handle_timeout(now);
        }
        self.process(now);
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.association
            .as_ref()
            .and_then(|(_, a)| a.poll_timeout())
    }

    /// The next SCTP packets to send as DTLS application data.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<Bytes>> {
        let (_, association) = self.association.as_mut()?;
        match association.poll_transmit(now)?.message {
            Payload::RawEncode(packets) => {
                for packet in &packets {
                    self.guard.outbound(packet);
                }
                Some(packets)
            }
            _ => None,
        }
    }

    pub fn poll_event(&mut self) -> Option<ChannelEvent> {
        self.events.pop_front()
    }

    pub fn counters(&self) -> DataCounters {
        self.counters
    }

    /// Whether the association is established.
    pub fn is_connected(&self) -> bool {
        self.association
            .as_ref()
            .is_some_and(|(_, a)| !a.is_handshaking() && !a.is_closed())
    }

    /// Opens a channel of the server's (`DATA_CHANNEL_OPEN`); [`ChannelEvent::Opened`]
    /// follows when the client acknowledges it, and only then can it carry messages.
    /// `max_retransmits: Some(0)` sends each message once.
    pub fn open(
        &mut self,
        label: &str,
        ordered: bool,
        max_retransmits: Option<u16>,
        now: Instant,
    ) -> Result<ChannelId, DataError> {
        if !self.is_connected() {
            return Err(DataError::NotConnected);
        }
        // DCEP gives the label 16 bits of length.
        let limit = usize::from(u16::MAX);
        if label.len() > limit {
            let size = label.len();
            return Err(DataError::TooLarge { size, limit });
        }
        let id = self.free_id().ok_or(DataError::NoStreamId)?;
        let reliability = max_retransmits.map_or(Reliability::Reliable, |n| {
            Reliability::MaxRetransmits(u32::from(n))
        });
        let (channel_type, parameter) = channel_type(ordered, reliability);
        let open = Dcep::DataChannelOpen(DataChannelOpen {
            channel_type,
            priority: CHANNEL_PRIORITY_NORMAL,
            reliability_parameter: parameter,
            label: label.as_bytes().to_vec(),
            protocol: Vec::new(),
        });
        let open = open.marshal().map_err(|e| DataError::Sctp(e.to_string()))?;
        let (_, association) = self.association.as_mut().ok_or(DataError::NotConnected)?;
        let sctp = |e: rtc::shared::error::Error| DataError::Sctp(e.to_string());
        let mut stream = association.open_stream(id, Ppi::Dcep).map_err(sctp)?;
        configure(&mut stream, ordered, reliability).map_err(sctp)?;
        stream.write_with_ppi(now, &open, Ppi::Dcep).map_err(sctp)?;
        self.channels.insert(
            id,
            Channel {
                open: false,
                label: label.to_owned(),
                protocol: String::new(),
                ordered,
                reliability,
            },
        );
        self.next_id = id.wrapping_add(2);
        Ok(ChannelId(id))
    }

    /// Sends one message on an open channel.
    pub fn send(
        &mut self,
        id: ChannelId,
        binary: bool,
        data: &[u8],
        now: Instant,
    ) -> Result<(), DataError> {
        if data.len() > self.send_limit {
            self.counters.send_too_large += 1;
            return Err(DataError::TooLarge {
                size: data.len(),
                limit: self.send_limit,
            });
        }
        if !self.channels.get(&id.0).is_some_and(|c| c.open) {
            return Err(DataError::UnknownChannel(id));
        }
        let buffered = self.buffered();
        if buffered + data.len() > MAX_BUFFERED {
            self.counters.send_buffer_full += 1;
            return Err(DataError::BufferFull { buffered });
        }
        // SCTP cannot carry an empty message: a one-byte one under the "empty" PPID
        // (RFC 8831 §6.6).
        let (ppi, data) = match (binary, data.is_empty()) {
            (true, false) => (Ppi::Binary, data),
            (false, false) => (Ppi::String, data),
            (true, true) => (Ppi::BinaryEmpty, &[0u8][..]),
            (false, true) => (Ppi::StringEmpty, &[0u8][..]),
        };
        let (_, association) = self.association.as_mut().ok_or(DataError::NotConnected)?;
        let mut stream = association
            .stream(id.0)
            .map_err(|_| DataError::UnknownChannel(id))?;
        stream
            .write_with_ppi(now, data, ppi)
            .map_err(|e| DataError::Sctp(e.to_string()))?;
        Ok(())
    }

    /// Closes a channel: its stream is reset both ways (RFC 8831 §6.7).
    pub fn close_channel(&mut self, id: ChannelId, now: Instant) -> Result<(), DataError> {
        if self.channels.remove(&id.0).is_none() {
            return Err(DataError::UnknownChannel(id));
        }
        if let Some((_, association)) = &mut self.association
            && let Ok(mut stream) = association.stream(id.0)
        {
            let _ = stream.close(now);
        }
        self.events.push_back(ChannelEvent::Closed { id });
        self.process(now);
        Ok(())
    }

    /// Ends the association at once (an SCTP ABORT goes out with the next transmit).
    pub fn abort(&mut self) {
        if let Some((_, association)) = &mut self.association {
            let _ = association.abort();
        }
        self.lost();
    }

    /// The DTLS association under it is gone: every channel with it.
    pub fn lost(&mut self) {
        for id in std::mem::take(&mut self.channels).into_keys() {
            self.events
                .push_back(ChannelEvent::Closed { id: ChannelId(id) });
        }
    }

    /// Bytes waiting to be sent or acknowledged, over every channel.
    pub fn buffered(&mut self) -> usize {
        let Some((_, association)) = &mut self.association else {
            return 0;
        };
        let ids: Vec<u16> = self.channels.keys().copied().collect();
        ids.into_iter()
            .filter_map(|id| association.stream(id).ok()?.buffered_amount().ok())
            .sum()
    }

    /// A stream id of the server's parity that no channel uses, from `next_id` on; nor
    /// a stream still being reset after its channel closed.
    fn free_id(&self) -> Option<u16> {
        let streams = self
            .association
            .as_ref()
            .map(|(_, a)| a.stream_ids())
            .unwrap_or_default();
        let half = MAX_STREAMS / 2;
        let (start, parity) = (self.next_id / 2, self.next_id % 2);
        (0..half)
            .map(|i| (start + i) % half * 2 + parity)
            .find(|id| !self.channels.contains_key(id) && !streams.contains(id))
    }

    /// Whether stream `id` is of the server's parity (RFC 8832 §6: the DTLS client
    /// takes even ids, the server odd), so the client may not open a channel on it.
    fn ours(&self, id: u16) -> bool {
        id % 2 == self.next_id % 2
    }

    /// Takes the association's events: streams opened, readable, reset; the association lost.
    fn process(&mut self, now: Instant) {
        let Some((_, association)) = &mut self.association else {
            return;
        };
        let mut readable = Vec::new();
        let mut gone = Vec::new();
        while let Some(event) = association.poll() {
            match event {
                Event::Stream(StreamEvent::Readable { id }) => readable.push(id),
                // rtc-sctp keeps a queue of streams the peer opened: take them off it.
                Event::Stream(StreamEvent::Opened { .. }) => {
                    while association.accept_stream().is_some() {}
                }
                Event::AssociationLost { id, .. } => gone.push(id),
                _ => {}
            }
        }
        // Read every readable stream: what the client sent is queued as events, and the
        // window opens again (the SCTP receive window bounds what waits in rtc-sctp).
        for id in readable {
            self.read_stream(id, now);
        }
        for id in gone {
            if self.channels.remove(&id).is_some() {
                self.events
                    .push_back(ChannelEvent::Closed { id: ChannelId(id) });
            }
        }
    }

    fn read_stream(&mut self, id: u16, now: Instant) {
        let Some((_, association)) = &mut self.association else {
            return;
        };
        let mut messages = Vec::new();
        if let Ok(mut stream) = association.stream(id) {
            while let Ok(Some(chunks)) = stream.read_sctp() {
                match chunks.to_payload(self.limit) {
                    Ok(payload) => messages.push((chunks.ppi, payload)),
                    Err(_) => self.counters.received_too_large += 1,
                }
            }
        }
        for (ppi, payload) in messages {
            self.receive(id, ppi, payload, now);
        }
    }
}
