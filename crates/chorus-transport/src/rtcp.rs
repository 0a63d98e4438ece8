//! Delivery of inbound RTCP to the application.

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{
    Attribute, Interceptor, Packet as ChainPacket, Registry, Slot, StreamInfo, TaggedPacket,
};
use rtc::sansio::Protocol;

/// Application-most: after every interceptor, before the chain's terminus.
const RTCP_TO_APPLICATION_SLOT: usize = 13_500;

/// Marks every inbound RTCP packet for delivery to the application. Without this the
/// chain's terminus (`NoopInterceptor`) drops all inbound RTCP once the interceptors
/// have seen it, and PLI, FIR, NACK, SR and RR never reach `poll_read`.
#[derive(Default)]
struct RtcpToApplication {
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for RtcpToApplication {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut packet: TaggedPacket) -> Result<(), Self::Error> {
        if matches!(packet.message.packet, ChainPacket::Rtcp(_)) {
            packet.message.add(Attribute::DeliverToApplication);
        }
        self.reads.push_back(packet);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.reads.pop_front()
    }

    fn handle_write(&mut self, packet: TaggedPacket) -> Result<(), Self::Error> {
        self.writes.push_back(packet);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.writes.pop_front()
    }
}

impl Interceptor for RtcpToApplication {
    fn bind_local_stream(&mut self, _: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _: &StreamInfo) {}
}

/// Adds [`RtcpToApplication`] to an interceptor registry.
pub fn with_rtcp_to_application(registry: Registry) -> Registry {
    registry.with(
        Slot::from(RTCP_TO_APPLICATION_SLOT),
        RtcpToApplication::default(),
    )
}
