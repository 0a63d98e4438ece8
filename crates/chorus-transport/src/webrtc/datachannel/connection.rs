//! A [`ServerConnection`]'s data channels: SCTP carried through its DTLS association
//! (what DTLS decrypted goes in, what SCTP sends goes out as application data on the
//! client's path), their events in the connection's queue, and the owner's face.

use std::time::Instant;

use super::{ChannelId, DataChannels, DataCounters, DataError};
use crate::webrtc::{ConnectionEvent, ServerConnection};

impl ServerConnection {
    /// Moves SCTP both ways through DTLS: what the client sent into the data channels,
    /// what they send out as application data; then their events into the queue.
    pub(in crate::webrtc) fn pump_data(&mut self, now: Instant) {
        let Some(dtls) = self.dtls.as_mut() else {
            return;
        };
        let Some(data) = self.data.as_mut() else {
            // Not negotiated: nothing reads it.
            while dtls.poll_application_data().is_some() {}
            return;
        };
        while let Some(packet) = dtls.poll_application_data() {
            data.handle_data(packet, now);
        }
        if dtls.profile().is_some() && !self.dead {
            while let Some(packets) = data.poll_transmit(now) {
                for packet in packets {
                    // Fails only once DTLS is closed; SCTP retransmits what is lost.
                    let _ = dtls.send_application_data(&packet, now);
                }
            }
        }
        self.pump_data_events();
        self.flush_dtls();
    }

    pub(in crate::webrtc) fn pump_data_events(&mut self) {
        if let Some(data) = self.data.as_mut() {
            while let Some(e) = data.poll_event() {
                self.events.push_back(ConnectionEvent::Channel(e));
            }
        }
    }

    /// Opens a data channel of the server's; [`ChannelEvent::Opened`] follows when the
    /// client acknowledges it. `max_retransmits: Some(0)` makes it unreliable (each
    /// message sent once); pair it with `ordered: false` for unreliable-unordered.
    pub fn open_channel(
        &mut self,
        label: &str,
        ordered: bool,
        max_retransmits: Option<u16>,
        now: Instant,
    ) -> Result<ChannelId, DataError> {
        let data = self.live_data()?;
        let id = data.open(label, ordered, max_retransmits, now)?;
        self.pump_data(now);
        Ok(id)
    }

    /// Sends one message on an open channel: binary, or text (`binary: false`, UTF-8).
    /// Refused, and counted, when over the advertised `a=max-message-size` or when the
    /// connection's send buffer is full.
    pub fn send_data(
        &mut self,
        id: ChannelId,
        binary: bool,
        message: &[u8],
        now: Instant,
    ) -> Result<(), DataError> {
        self.live_data()?.send(id, binary, message, now)?;
        self.pump_data(now);
        Ok(())
    }

    /// Closes a channel (its stream is reset); [`ChannelEvent::Closed`] follows.
    pub fn close_channel(&mut self, id: ChannelId, now: Instant) -> Result<(), DataError> {
        self.live_data()?.close_channel(id, now)?;
        self.pump_data(now);
        Ok(())
    }

    fn live_data(&mut self) -> Result<&mut DataChannels, DataError> {
        match self.data.as_mut() {
            Some(data) if !self.dead => Ok(data),
            _ => Err(DataError::NotConnected),
        }
    }

    /// Bytes waiting to be sent or acknowledged on the data channels (0 without them).
    pub fn data_buffered(&mut self) -> usize {
        self.data.as_mut().map_or(0, DataChannels::buffered)
    }

    /// Whether the descriptions agreed on data channels.
    pub fn has_data_channels(&self) -> bool {
        self.data.is_some()
    }

    /// What the data channels refused or dropped so far.
    pub fn data_counters(&self) -> DataCounters {
        self.data
            .as_ref()
            .map(DataChannels::counters)
            .unwrap_or_default()
    }
}
