//! Data messages between participants: a message on a client's `_reliable` or `_lossy`
//! channel is checked (the `can_publish_data` grant, the size and rate limits, the
//! envelope: JSON for text, a framed header for binary), stamped with its sender as the
//! room knows it, and sent in the same form on the channel of the same label of every
//! receiver: the whole room but the sender, or those named.
//! A refusal is counted and told to the sender in an `error` frame (at most one a
//! second per code); a receiver that does not keep up loses copies, counted, and is
//! told (`data_dropped`).

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;
use chorus_core::ConnId;
use chorus_protocol::data::{
    BinaryDelivery, BinarySend, DataDelivery, DataMode, DataSend, DataSender, read_binary,
    write_binary,
};
use chorus_protocol::signal::ServerMessage;

use super::RoomCore;
use crate::data::{DataLimits, DataRate, ErrorThrottle, RateRefusal};
use crate::io::{ParticipantKey, Recipients};
use crate::peer::DataDrop;
use crate::skips::Skip;

/// The room's data state: each sender's allowance and each participant's told errors.
#[derive(Debug, Default)]
pub struct DataRoom {
    limits: DataLimits,
    senders: HashMap<ParticipantKey, (DataRate, ErrorThrottle)>,
    pub received: u64,
    pub delivered: u64,
}

impl DataRoom {
    pub fn new(limits: DataLimits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    fn of(&mut self, key: ParticipantKey) -> &mut (DataRate, ErrorThrottle) {
        let limits = self.limits;
        self.senders
            .entry(key)
            .or_insert_with(|| (DataRate::new(limits), ErrorThrottle::default()))
    }

    pub fn left(&mut self, key: ParticipantKey) {
        self.senders.remove(&key);
    }
}

/// Why a sender's message went to no one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    NotAllowed,
    TooLarge,
    RateLimited,
    Invalid,
}

impl Refusal {
    fn code(self) -> &'static str {
        match self {
            Refusal::NotAllowed => "data_not_allowed",
            Refusal::TooLarge => "data_too_large",
            Refusal::RateLimited => "data_rate_limited",
            Refusal::Invalid => "bad_data_message",
        }
    }

    fn skip(self) -> Skip {
        match self {
            Refusal::NotAllowed => Skip::DataNotAllowed,
            Refusal::TooLarge => Skip::DataTooLarge,
            Refusal::RateLimited => Skip::DataRateLimited,
            Refusal::Invalid => Skip::DataInvalid,
        }
    }
}

/// A message the room took, in the form it came in.
enum Taken {
    Text(DataSend),
    /// The header, and the payload (the message past its header).
    Binary(BinarySend, Bytes),
}

impl Taken {
    /// Identities and participant ids it names (both empty: the room).
    fn named(&self) -> (&[String], &[String]) {
        match self {
            Taken::Text(m) => (&m.to, &m.to_participants),
            Taken::Binary(h, _) => (&h.to, &h.to_participants),
        }
    }

    /// What each receiver gets: whether it is binary, and its bytes.
    fn delivery(self, from: DataSender, private: bool) -> Option<(bool, Vec<u8>)> {
        match self {
            Taken::Text(m) => {
                let delivery = DataDelivery {
                    from,
                    topic: m.topic,
                    data: m.data,
                    private,
                };
                serde_json::to_vec(&delivery).ok().map(|text| (false, text))
            }
            Taken::Binary(h, payload) => {
                let header = BinaryDelivery {
                    from,
                    topic: h.topic,
                    private,
                };
                write_binary(&header, &payload).ok().map(|m| (true, m))
            }
        }
    }
}

impl RoomCore {
    /// A message on one of `owner`'s data channels (`mode`: which of ours, if any).
    pub(super) fn on_data(
        &mut self,
        owner: ParticipantKey,
        mode: Option<DataMode>,
        binary: bool,
        data: Bytes,
        now: Instant,
    ) {
        match self.take_data(owner, mode, binary, data, now) {
            Ok((mode, sent)) => {
                self.data.received += 1;
                self.deliver(owner, mode, sent, now);
            }
            Err((refusal, message)) => {
                self.skips.count(refusal.skip());
                self.tell_data_error(owner, refusal.code(), message, now);
            }
        }
    }

    /// The checks, in order: the channel, the grant, the size and rate, the envelope.
    fn take_data(
        &mut self,
        owner: ParticipantKey,
        mode: Option<DataMode>,
        binary: bool,
        data: Bytes,
        now: Instant,
    ) -> Result<(DataMode, Taken), (Refusal, String)> {
        let Some(mode) = mode else {
            let why = "data messages go on the channels labelled _reliable and _lossy";
            return Err((Refusal::Invalid, why.into()));
        };
        let allowed = self
            .participants
            .get(owner)
            .is_some_and(|p| p.grants.can_publish_data);
        if !allowed {
            let why = "you may not send data messages in this room (no can_publish_data grant)";
            return Err((Refusal::NotAllowed, why.into()));
        }
        let max = self.data.limits.max_message_bytes;
        let limits = self.data.limits;
        match self.data.of(owner).0.allow(data.len(), now) {
            Ok(()) => {}
            Err(RateRefusal::TooLarge) => {
                let why = format!(
                    "a data message is at most {max} bytes; this one was {}",
                    data.len()
                );
                return Err((Refusal::TooLarge, why));
            }
            Err(RateRefusal::Messages | RateRefusal::Bytes) => {
                let why = format!(
                    "data messages over the limit of {} a second and {} bytes a second",
                    limits.messages_per_second, limits.bytes_per_second
                );
                return Err((Refusal::RateLimited, why));
            }
        }
        if binary {
            return read_binary::<BinarySend>(&data)
                .map(|(header, at)| (mode, Taken::Binary(header, data.slice(at..))))
                .map_err(|e| (Refusal::Invalid, format!("not a binary data message: {e}")));
        }
        serde_json::from_slice::<DataSend>(&data)
            .map(|sent| (mode, Taken::Text(sent)))
            .map_err(|e| (Refusal::Invalid, format!("not a data message: {e}")))
    }

    /// Stamps the message with its sender and sends it to its receivers.
    fn deliver(&mut self, owner: ParticipantKey, mode: DataMode, sent: Taken, now: Instant) {
        let Some(sender) = self.participants.get(owner) else {
            return;
        };
        let from = DataSender {
            identity: sender.identity.clone(),
            participant_id: sender.id.to_string(),
        };
        let (to, to_participants) = sent.named();
        let private = !(to.is_empty() && to_participants.is_empty());
        let receivers: Vec<(ParticipantKey, Option<ConnId>)> = self
            .participants
            .keys()
            .into_iter()
            .filter(|k| *k != owner)
            .filter_map(|k| self.participants.get(k).map(|p| (k, p)))
            .filter(|(_, p)| {
                !private
                    || to.contains(&p.identity)
                    || to_participants.iter().any(|id| *id == p.id.to_string())
            })
            .map(|(k, p)| (k, p.publisher))
            .collect();
        let Some((binary, message)) = sent.delivery(from, private) else {
            return;
        };
        for (key, conn) in receivers {
            let peer = conn.and_then(|c| self.conns.get_mut(c));
            let sent = match peer {
                Some(peer) => peer.send_data(mode, binary, &message, now),
                None => Err(DataDrop::NoChannel),
            };
            match sent {
                Ok(()) => {
                    self.data.delivered += 1;
                    if let Some(conn) = conn {
                        self.conns.mark_dirty(conn);
                    }
                }
                Err(DataDrop::NoChannel) => self.skips.count(Skip::DataNoChannel),
                Err(DataDrop::ReceiverFull) => {
                    self.skips.count(Skip::DataReceiverFull);
                    if mode == DataMode::Reliable {
                        let why = "reliable data messages to you were dropped: you did not \
                                   keep up with them";
                        self.tell_data_error(key, "data_dropped", why.into(), now);
                    }
                }
                Err(DataDrop::WriteFailed) => self.skips.count(Skip::WriteFailed),
            }
        }
    }

    fn tell_data_error(
        &mut self,
        key: ParticipantKey,
        code: &'static str,
        message: String,
        now: Instant,
    ) {
        if self.data.of(key).1.tell(code, now) {
            let msg = ServerMessage::Error {
                code: code.to_owned(),
                message,
                request_id: None,
            };
            self.send(Recipients::One(key), msg);
        }
    }
}
