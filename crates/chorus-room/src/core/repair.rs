//! Loss repair toward subscribers: a NACK is answered from the published track's one
//! history, each lost packet rebuilt exactly as the subscriber's forwarder first sent it
//! (same bytes under the same SSRC and sequence number: with AES-GCM anything else would
//! reuse a nonce). A simulcast track's history holds every layer's packets as they
//! arrived; the subscriber's layer selection remembers the VP8 numbering each of its
//! sequence numbers went out with, written again into the resent copy. The room decides
//! each resend; the subscriber's egress shard protects and sends it (`forward::Resend`).

use std::time::Instant;

use chorus_core::{ConnId, Repair};

use super::RoomCore;
use crate::forward::Resend;
use crate::skips::Skip;

/// RTP header and SRTP tag of a resend, roughly: what it costs on the link besides its
/// payload.
const RTP_HEADER: usize = 40;

impl RoomCore {
    /// `conn`'s client lost `lost` of what it receives as `ssrc`.
    pub(super) fn repair(&mut self, conn: ConnId, ssrc: u32, lost: &[u16], now: Instant) {
        let Some(peer) = self.conns.get_mut(conn) else {
            return;
        };
        let Some((id, dt)) = peer.downtracks.iter_mut().find(|(_, dt)| dt.ssrc == ssrc) else {
            return;
        };
        let (Some(sent), Some(history)) = (
            dt.sent.as_mut(),
            self.tracks.get(id).and_then(|t| t.history.as_ref()),
        ) else {
            return;
        };
        let mut resends = Vec::new();
        for &seq in lost {
            match sent.repair(seq, history, now) {
                Repair::Resend { seq, sent } => {
                    let Some((header, payload)) = history.get(sent.source) else {
                        continue;
                    };
                    let vp8 = match dt.layers.as_ref().map(|l| l.sent_as(seq)) {
                        None => None,
                        Some(Some(vp8)) => vp8,
                        // Without the numbering it went out with, no resend: other
                        // bytes under the same number must never be sent.
                        Some(None) => {
                            self.skips.count(Skip::NotInHistory);
                            continue;
                        }
                    };
                    let mut header = header.clone();
                    header.ssrc = dt.ssrc;
                    header.payload_type = dt.payload_type;
                    header.sequence_number = seq;
                    header.timestamp = sent.timestamp;
                    header.marker = sent.marker;
                    resends.push((header, payload.clone(), vp8));
                }
                Repair::TooSoon => self.skips.count(Skip::ResendTooSoon),
                Repair::Unknown | Repair::Expired => self.skips.count(Skip::NotInHistory),
            }
        }
        let estimate = peer.bandwidth().map(|bwe| bwe.estimate);
        for (header, payload, vp8) in resends {
            if let Some(estimate) = estimate
                && !peer
                    .resend_budget
                    .take(RTP_HEADER + payload.len(), estimate, now)
            {
                self.skips.count(Skip::ResendOverBudget);
                continue;
            }
            // Protected and sent by the subscriber's egress shard with the turn's copies.
            self.queue.resend(Resend {
                conn,
                header,
                payload,
                vp8,
            });
        }
    }
}
