//! The client's data channels on its publisher connection, as the room uses them: the
//! one labelled `_reliable` and the one labelled `_lossy` (chorus_protocol::data), both
//! ways. Messages on any other channel are passed up unnamed, to be counted.

use std::time::Instant;

use chorus_protocol::data::DataMode;
use chorus_transport::webrtc::{ChannelEvent, ChannelId, DataError, ServerConnection};

use super::super::PeerEvent;
use crate::data::LOSSY_BUFFERED;

/// Why a message did not go out to a receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataDrop {
    /// The receiver has no open channel of that mode.
    NoChannel,
    /// Too much waits toward the receiver already (it does not keep up).
    ReceiverFull,
    /// Over the receiver's own `a=max-message-size`, or the transport refused it.
    WriteFailed,
}

#[derive(Debug, Default)]
pub struct Channels {
    reliable: Option<ChannelId>,
    lossy: Option<ChannelId>,
}

impl Channels {
    fn slot(&mut self, mode: DataMode) -> &mut Option<ChannelId> {
        match mode {
            DataMode::Reliable => &mut self.reliable,
            DataMode::Lossy => &mut self.lossy,
        }
    }

    fn mode_of(&self, id: ChannelId) -> Option<DataMode> {
        DataMode::ALL.into_iter().find(|m| {
            let slot = match m {
                DataMode::Reliable => self.reliable,
                DataMode::Lossy => self.lossy,
            };
            slot == Some(id)
        })
    }

    /// A channel event of the connection, in the room's terms (a channel opening or
    /// closing only changes what is known here).
    pub fn on_event(&mut self, ev: ChannelEvent) -> Option<PeerEvent> {
        match ev {
            ChannelEvent::Opened { id, label, .. } => {
                // A second channel of a label replaces the first.
                if let Some(mode) = DataMode::from_label(&label) {
                    *self.slot(mode) = Some(id);
                }
                None
            }
            ChannelEvent::Closed { id } => {
                if let Some(mode) = self.mode_of(id) {
                    *self.slot(mode) = None;
                }
                None
            }
            ChannelEvent::Message { id, binary, data } => Some(PeerEvent::Data {
                mode: self.mode_of(id),
                binary,
                data,
            }),
        }
    }

    /// Sends one message (text, or `binary`) on the channel of `mode`. An unreliable
    /// message is dropped once [`LOSSY_BUFFERED`] bytes wait toward the client; a
    /// reliable one once the transport's buffer is full.
    pub fn send(
        &mut self,
        conn: &mut ServerConnection,
        mode: DataMode,
        binary: bool,
        message: &[u8],
        now: Instant,
    ) -> Result<(), DataDrop> {
        let id = (*self.slot(mode)).ok_or(DataDrop::NoChannel)?;
        if mode == DataMode::Lossy && conn.data_buffered() + message.len() > LOSSY_BUFFERED {
            return Err(DataDrop::ReceiverFull);
        }
        match conn.send_data(id, binary, message, now) {
            Ok(()) => Ok(()),
            Err(DataError::BufferFull { .. }) => Err(DataDrop::ReceiverFull),
            Err(DataError::UnknownChannel(_) | DataError::NotConnected) => Err(DataDrop::NoChannel),
            Err(_) => Err(DataDrop::WriteFailed),
        }
    }
}
