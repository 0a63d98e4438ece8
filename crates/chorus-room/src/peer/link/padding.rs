//! Bandwidth probes on the subscriber connection: padding-only RTP packets numbered
//! for the estimator as one probe cluster (`chorus_core::bwe::probe`); the room
//! decides when, and under which SSRC and sequence number (`core/probe.rs`).

use std::time::Instant;

use bytes::BytesMut;
use chorus_core::bwe::ProbeId;
use rtc::rtp::header::Header;
use rtc::shared::marshal::MarshalSize;

use super::{Link, SRTP_TAG_LEN, TWCC_EXTENSION_LEN, write_packet};

/// A padding-only packet's payload: the most one count byte can say.
pub const PADDING_LEN: usize = 255;

impl Link {
    /// Subscriber side: starts a probe cluster on the estimator; `None` while the
    /// client takes no transport-wide feedback (a probe would tell nothing).
    pub fn start_probe(&mut self, now: Instant) -> Option<ProbeId> {
        self.down_twcc.as_mut().map(|(_, bwe)| bwe.start_probe(now))
    }

    /// Subscriber side: probe cluster `probe` has all its packets sent.
    pub fn end_probe(&mut self, probe: ProbeId) {
        if let Some((_, bwe)) = self.down_twcc.as_mut() {
            bwe.end_probe(probe);
        }
    }

    /// Subscriber side: one padding-only packet of probe cluster `probe`, under
    /// `header`'s SSRC, number and timestamp: the padding bit set and the payload all
    /// padding ([`PADDING_LEN`] bytes, the last one their count), numbered for the
    /// estimator and protected like any packet. Not counted in the sender report
    /// (padding is no payload).
    pub fn send_padding(
        &mut self,
        arena: &mut BytesMut,
        header: &Header,
        probe: ProbeId,
        now: Instant,
    ) -> bool {
        let (Some(conn), Some((id, bwe))) = (self.conn.as_mut(), self.down_twcc.as_mut()) else {
            return false;
        };
        let mut header = header.clone();
        header.padding = true;
        header.marker = false;
        let mut payload = [0u8; PADDING_LEN];
        payload[PADDING_LEN - 1] = PADDING_LEN as u8;
        let len = header.marshal_size() + TWCC_EXTENSION_LEN + PADDING_LEN;
        let twcc = (*id, bwe.on_probe_sent(probe, len + SRTP_TAG_LEN, now).0);
        let Some((packet, header_len)) = write_packet(arena, &header, &payload, Some(twcc)) else {
            return false;
        };
        conn.send_rtp_in_place(packet, header_len, header.ssrc, header.sequence_number)
            .is_ok()
    }
}
