//! A simulated client's data channels: `_reliable` and `_lossy` on its publisher
//! connection, created and offered as `chorus-client` does (docs/signaling.md, "Data
//! messages"), what it writes on them and what the room delivers on them.

use std::time::Instant;

use bytes::Bytes;
use chorus_protocol::data::DataMode;
use rtc::data_channel::{RTCDataChannelId, RTCDataChannelInit, RTCDataChannelMessage};

use super::SimClient;

/// One message the room delivered to a client, as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataIn {
    pub at: Instant,
    pub mode: DataMode,
    pub binary: bool,
    pub data: Bytes,
}

/// The client's two channels and what arrived on them.
#[derive(Debug, Default)]
pub(in crate::sim) struct SimData {
    /// Reliable, then lossy, once created.
    channels: Option<[RTCDataChannelId; 2]>,
    open: Vec<RTCDataChannelId>,
    pub received: Vec<DataIn>,
}

impl SimData {
    fn mode_of(&self, id: RTCDataChannelId) -> Option<DataMode> {
        let [reliable, lossy] = self.channels?;
        match id {
            _ if id == reliable => Some(DataMode::Reliable),
            _ if id == lossy => Some(DataMode::Lossy),
            _ => None,
        }
    }

    pub fn is_open(&self) -> bool {
        self.channels
            .is_some_and(|ids| ids.iter().all(|id| self.open.contains(id)))
    }

    pub(super) fn opened(&mut self, id: RTCDataChannelId) {
        self.open.push(id);
    }

    pub(super) fn on_message(
        &mut self,
        id: RTCDataChannelId,
        m: RTCDataChannelMessage,
        at: Instant,
    ) {
        if let Some(mode) = self.mode_of(id) {
            self.received.push(DataIn {
                at,
                mode,
                binary: !m.is_string,
                data: m.data.freeze(),
            });
        }
    }
}

impl SimClient {
    /// Creates both channels and offers them (with whatever else it publishes).
    pub fn open_data(&mut self, now: Instant) {
        if self.data.channels.is_some() {
            return;
        }
        let pc = &mut self.publisher.pc;
        let reliable = pc
            .create_data_channel(
                DataMode::Reliable.label(),
                Some(RTCDataChannelInit::default()),
            )
            .expect("reliable channel")
            .id();
        let lossy = RTCDataChannelInit {
            ordered: false,
            max_retransmits: Some(0),
            ..Default::default()
        };
        let lossy = pc
            .create_data_channel(DataMode::Lossy.label(), Some(lossy))
            .expect("lossy channel")
            .id();
        self.data.channels = Some([reliable, lossy]);
        self.needs_offer = true;
        self.offer(now);
    }

    /// Writes one message on its channel of `mode`: text, or `binary`. Panics if the
    /// channels are not open or the connection refuses it (over its
    /// `a=max-message-size`).
    pub fn send_data(&mut self, mode: DataMode, binary: bool, message: &[u8], now: Instant) {
        let [reliable, lossy] = self
            .data
            .channels
            .filter(|_| self.data.is_open())
            .unwrap_or_else(|| panic!("{}: the data channels are not open", self.identity));
        let id = match mode {
            DataMode::Reliable => reliable,
            DataMode::Lossy => lossy,
        };
        let mut dc = self.publisher.pc.data_channel(id).expect("our channel");
        let sent = if binary {
            dc.send(now, message.into())
        } else {
            let text = std::str::from_utf8(message).expect("a text message is UTF-8");
            dc.send_text(now, text)
        };
        sent.unwrap_or_else(|e| panic!("{}: message not sent: {e}", self.identity));
    }
}
