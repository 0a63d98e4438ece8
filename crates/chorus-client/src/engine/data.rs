//! Data messages (docs/signaling.md, "Data messages"): the two channels we open on the
//! publisher connection, `_reliable` and `_lossy`, what we send on them and what the
//! server delivers on them.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use chorus_protocol::data::{BinaryDelivery, DataDelivery, DataMode, read_binary};
use rtc::data_channel::{RTCDataChannelId, RTCDataChannelInit};
use tracing::warn;

use super::Engine;
use crate::error::ClientError;

/// A message the server delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct DataReceived {
    pub mode: DataMode,
    /// Who sent it, its topic, whether it was private; for a text message its `data`
    /// too (null for a binary one).
    pub delivery: DataDelivery,
    /// A binary message's payload, past the server's header.
    pub binary: Option<Bytes>,
}

/// Our two channels and what arrived on them.
#[derive(Default)]
pub(super) struct DataChannels {
    /// Reliable, then lossy, once created.
    channels: Option<[RTCDataChannelId; 2]>,
    open: Vec<RTCDataChannelId>,
    received: VecDeque<DataReceived>,
    /// The synthetic messages' next number and when it is due.
    next_seq: u64,
    next_at: Option<Instant>,
}

impl DataChannels {
    fn mode_of(&self, id: RTCDataChannelId) -> Option<DataMode> {
        let [reliable, lossy] = self.channels?;
        match id {
            _ if id == reliable => Some(DataMode::Reliable),
            _ if id == lossy => Some(DataMode::Lossy),
            _ => None,
        }
    }
}

impl Engine {
    /// Creates the `_reliable` and `_lossy` channels on the publisher connection and
    /// offers them (with whatever else is published). Once both are open
    /// ([`Engine::data_open`]) messages go both ways.
    pub fn open_data(&mut self, now: Instant) -> Result<(), ClientError> {
        if self.data.channels.is_some() {
            return Ok(());
        }
        let reliable = self
            .publisher
            .create_data_channel(DataMode::Reliable.label(), RTCDataChannelInit::default())?;
        let lossy = RTCDataChannelInit {
            ordered: false,
            max_retransmits: Some(0),
            ..Default::default()
        };
        let lossy = self
            .publisher
            .create_data_channel(DataMode::Lossy.label(), lossy)?;
        self.data.channels = Some([reliable, lossy]);
        self.negotiation.needs_offer = true;
        self.offer_if_needed(now);
        Ok(())
    }

    /// Both channels are open.
    pub fn data_open(&self) -> bool {
        self.data
            .channels
            .is_some_and(|ids| ids.iter().all(|id| self.data.open.contains(id)))
    }

    /// Sends one text message on the channel of `mode` as it is (a JSON
    /// [`chorus_protocol::data::DataSend`], or anything else to see it refused).
    pub fn send_data(
        &mut self,
        now: Instant,
        mode: DataMode,
        text: String,
    ) -> Result<(), ClientError> {
        let id = self.open_channel(mode)?;
        self.publisher.send_text(now, id, text)?;
        self.stats.lock().data_sent += 1;
        self.drive(now);
        Ok(())
    }

    /// Sends one binary message on the channel of `mode` as it is (framed by
    /// [`chorus_protocol::data::write_binary`], or anything else to see it refused).
    pub fn send_data_binary(
        &mut self,
        now: Instant,
        mode: DataMode,
        message: &[u8],
    ) -> Result<(), ClientError> {
        let id = self.open_channel(mode)?;
        self.publisher.send_binary(now, id, message)?;
        self.stats.lock().data_sent += 1;
        self.drive(now);
        Ok(())
    }

    fn open_channel(&self, mode: DataMode) -> Result<RTCDataChannelId, ClientError> {
        self.data
            .channels
            .filter(|_| self.data_open())
            .map(|[reliable, lossy]| match mode {
                DataMode::Reliable => reliable,
                DataMode::Lossy => lossy,
            })
            .ok_or_else(|| ClientError::Protocol("the data channels are not open".to_owned()))
    }

    /// Sends the synthetic messages due by `now` (`MediaProfile::synthetic_data`).
    pub(super) fn send_synthetic_data(&mut self, now: Instant) {
        let Some(synthetic) = self.profile.synthetic_data.filter(|s| s.per_second > 0) else {
            return;
        };
        if !self.data_open() {
            return;
        }
        let every = Duration::from_secs_f64(1.0 / f64::from(synthetic.per_second));
        let mut due = *self.data.next_at.get_or_insert(now);
        while due <= now {
            let seq = self.data.next_seq;
            self.data.next_seq += 1;
            let text = format!(r#"{{"data":{{"seq":{seq}}}}}"#);
            let id = self
                .data
                .channels
                .map(|[reliable, lossy]| match synthetic.mode {
                    DataMode::Reliable => reliable,
                    DataMode::Lossy => lossy,
                });
            match id.map(|id| self.publisher.send_text(now, id, text)) {
                Some(Ok(())) => self.stats.lock().data_sent += 1,
                other => warn!(?other, "synthetic data message not sent"),
            }
            due += every;
        }
        self.data.next_at = Some(due);
    }

    /// When the next synthetic message is due.
    pub(super) fn data_timeout(&self) -> Option<Instant> {
        self.data.next_at.filter(|_| self.data_open())
    }

    /// The next message the server delivered.
    pub fn poll_data(&mut self) -> Option<DataReceived> {
        self.data.received.pop_front()
    }

    pub(super) fn on_data_open(&mut self, id: RTCDataChannelId) {
        self.data.open.push(id);
    }

    pub(super) fn on_data(&mut self, id: RTCDataChannelId, text: bool, data: BytesMut) {
        let Some(mode) = self.data.mode_of(id) else {
            return;
        };
        let parsed = match text {
            true => serde_json::from_slice::<DataDelivery>(&data)
                .map(|delivery| (delivery, None))
                .map_err(|e| e.to_string()),
            false => read_binary::<Option<BinaryDelivery>>(&data)
                .map_err(|e| e.to_string())
                .and_then(|(header, at)| {
                    let header = header.ok_or("a binary message without a header")?;
                    let delivery = DataDelivery {
                        from: header.from,
                        topic: header.topic,
                        data: serde_json::Value::Null,
                        private: header.private,
                    };
                    Ok((delivery, Some(data.freeze().slice(at..))))
                }),
        };
        match parsed {
            Ok((delivery, binary)) => {
                self.stats.lock().data_received += 1;
                if self.profile.synthetic_data.is_none() {
                    self.data.received.push_back(DataReceived {
                        mode,
                        delivery,
                        binary,
                    });
                }
            }
            Err(err) => warn!(%err, "data message not understood"),
        }
    }
}
