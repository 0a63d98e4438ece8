//! The receiving side of DCEP (RFC 8832): a whole message on a stream is a channel's
//! data, or a `DATA_CHANNEL_OPEN` from the client (answered with the ACK, the stream set
//! to the channel's reliability), or the client's ACK of a channel of the server's.
//! Anything else is dropped and counted, never trusted.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use datachannel::message::Message as Dcep;
use datachannel::message::message_channel_ack::DataChannelAck;
use datachannel::message::message_channel_open::{ChannelType, DataChannelOpen};
use rtc::shared::marshal::{Marshal, Unmarshal};
use sctp::{PayloadProtocolIdentifier as Ppi, ReliabilityType};

use super::{Channel, ChannelEvent, ChannelId, DataChannels, Reliability};

impl DataChannels {
    /// One whole message on stream `id`.
    pub(super) fn receive(&mut self, id: u16, ppi: Ppi, payload: BytesMut, now: Instant) {
        let binary = match ppi {
            Ppi::Dcep => return self.receive_dcep(id, &payload, now),
            Ppi::Binary | Ppi::BinaryEmpty => true,
            Ppi::String | Ppi::StringEmpty => false,
            _ => {
                self.counters.received_invalid += 1;
                return;
            }
        };
        if !self.channels.get(&id).is_some_and(|c| c.open) {
            self.counters.received_invalid += 1;
            return;
        }
        let empty = matches!(ppi, Ppi::BinaryEmpty | Ppi::StringEmpty);
        let data = if empty {
            Bytes::new()
        } else {
            payload.freeze()
        };
        self.events.push_back(ChannelEvent::Message {
            id: ChannelId(id),
            binary,
            data,
        });
    }

    fn receive_dcep(&mut self, id: u16, mut payload: &[u8], now: Instant) {
        match Dcep::unmarshal(&mut payload) {
            // The client opens a channel on a stream of its parity that is not in use.
            Ok(Dcep::DataChannelOpen(open))
                if !self.channels.contains_key(&id) && !self.ours(id) =>
            {
                self.accept(id, open, now);
            }
            // The client acknowledges a channel of the server's.
            Ok(Dcep::DataChannelAck(_)) => match self.channels.get_mut(&id) {
                Some(channel) if !channel.open => {
                    channel.open = true;
                    let opened = channel.opened(ChannelId(id));
                    self.events.push_back(opened);
                }
                _ => self.counters.received_invalid += 1,
            },
            _ => self.counters.received_invalid += 1,
        }
    }

    /// The client's `DATA_CHANNEL_OPEN`: the stream takes its reliability, the ACK goes back.
    fn accept(&mut self, id: u16, open: DataChannelOpen, now: Instant) {
        let (ordered, reliability) = reliability(open.channel_type, open.reliability_parameter);
        let (Some((_, association)), Ok(label), Ok(protocol)) = (
            self.association.as_mut(),
            String::from_utf8(open.label),
            String::from_utf8(open.protocol),
        ) else {
            self.counters.received_invalid += 1;
            return;
        };
        let Ok(ack) = Dcep::DataChannelAck(DataChannelAck {}).marshal() else {
            return;
        };
        let written = association.stream(id).and_then(|mut stream| {
            configure(&mut stream, ordered, reliability)?;
            // rtc-sctp sends DCEP ordered and reliable whatever the stream's settings.
            stream.write_with_ppi(now, &ack, Ppi::Dcep)
        });
        if written.is_err() {
            self.counters.received_invalid += 1;
            return;
        }
        let channel = Channel {
            open: true,
            label,
            protocol,
            ordered,
            reliability,
        };
        self.events.push_back(channel.opened(ChannelId(id)));
        self.channels.insert(id, channel);
    }
}

/// The stream's send side as the channel asks.
pub(super) fn configure(
    stream: &mut sctp::Stream<'_>,
    ordered: bool,
    reliability: Reliability,
) -> Result<(), rtc::shared::error::Error> {
    let (kind, value) = match reliability {
        Reliability::Reliable => (ReliabilityType::Reliable, 0),
        Reliability::MaxRetransmits(n) => (ReliabilityType::Rexmit, n),
        Reliability::MaxLifetimeMs(ms) => (ReliabilityType::Timed, ms),
    };
    stream.set_reliability_params(!ordered, kind, value)
}

/// DCEP's channel type and reliability parameter, both ways (RFC 8832 §5.1).
pub(super) fn channel_type(ordered: bool, reliability: Reliability) -> (ChannelType, u32) {
    use ChannelType::*;
    match (reliability, ordered) {
        (Reliability::Reliable, true) => (Reliable, 0),
        (Reliability::Reliable, false) => (ReliableUnordered, 0),
        (Reliability::MaxRetransmits(n), true) => (PartialReliableRexmit, n),
        (Reliability::MaxRetransmits(n), false) => (PartialReliableRexmitUnordered, n),
        (Reliability::MaxLifetimeMs(ms), true) => (PartialReliableTimed, ms),
        (Reliability::MaxLifetimeMs(ms), false) => (PartialReliableTimedUnordered, ms),
    }
}

fn reliability(channel_type: ChannelType, parameter: u32) -> (bool, Reliability) {
    use ChannelType::*;
    match channel_type {
        Reliable => (true, Reliability::Reliable),
        ReliableUnordered => (false, Reliability::Reliable),
        PartialReliableRexmit => (true, Reliability::MaxRetransmits(parameter)),
        PartialReliableRexmitUnordered => (false, Reliability::MaxRetransmits(parameter)),
        PartialReliableTimed => (true, Reliability::MaxLifetimeMs(parameter)),
        PartialReliableTimedUnordered => (false, Reliability::MaxLifetimeMs(parameter)),
        // ChannelType is non-exhaustive: anything newer is taken as reliable.
        _ => (true, Reliability::Reliable),
    }
}
