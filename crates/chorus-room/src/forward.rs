//! Forwarding: one packet from a publisher (or the mixer) to every subscriber
//! connection of a track, rewritten for each (its SSRC, payload type, and the sequence
//! numbers and timestamps of its forwarder), straight into the connection. A copy that
//! does not go out is counted under its [`Skip`] reason.

use std::time::Instant;

use bytes::Bytes;
use chorus_core::forward::DropReason;
use chorus_core::{ConnId, ExtSeq, ExtTimestamp, Sent, TrackId, Translation};
use rtc::rtp::header::Header;

use crate::connections::Connections;
use crate::io::ParticipantKey;
use crate::negotiation::TrackPhase;
use crate::skips::{Skip, Skips};

/// One packet as read from its source, in the source's (unwrapped) numbering.
pub struct Packet<'a> {
    pub header: &'a Header,
    pub seq: ExtSeq,
    pub ts: ExtTimestamp,
    pub keyframe: bool,
}

/// Sends `packet` on the `down` track of each of `subscribers`; `payload_for` gives the
/// payload for a subscriber's owner (the mix differs per talker). Returns whether any
/// of them waits for a keyframe.
pub fn fan_out(
    conns: &mut Connections,
    skips: &mut Skips,
    subscribers: &[ConnId],
    down: &TrackId,
    packet: &Packet<'_>,
    now: Instant,
    payload_for: impl Fn(ParticipantKey) -> Bytes,
) -> bool {
    let mut wants_keyframe = false;
    for &conn in subscribers {
        let Some(peer) = conns.get_mut(conn) else {
            skips.count(Skip::UnknownConnection);
            continue;
        };
        if !peer.ice().is_up() {
            skips.count(Skip::NotConnected);
            continue;
        }
        let Some(dt) = peer.downtracks.get_mut(down) else {
            skips.count(Skip::NegotiationNotLive);
            continue;
        };
        if dt.phase != TrackPhase::Live {
            skips.count(Skip::NegotiationNotLive);
            continue;
        }
        let header = packet.header;
        match dt
            .forwarder
            .translate(packet.seq, packet.ts, header.marker, packet.keyframe)
        {
            Translation::Forward {
                seq,
                timestamp,
                marker,
            } => {
                let mut header = header.clone();
                header.ssrc = dt.ssrc;
                header.payload_type = dt.payload_type;
                header.sequence_number = seq;
                header.timestamp = timestamp;
                header.marker = marker;
                if let Some(sent) = dt.sent.as_mut() {
                    let source = packet.seq;
                    sent.record(
                        seq,
                        Sent {
                            source,
                            timestamp,
                            marker,
                        },
                    );
                }
                let payload = payload_for(peer.owner);
                if peer.send_rtp(down, header, payload, now) {
                    skips.forwarded();
                    if peer.mark_dirty() {
                        conns.list_dirty(conn);
                    }
                } else {
                    skips.count(Skip::WriteFailed);
                }
            }
            Translation::Drop(DropReason::AwaitingKeyframe) => {
                skips.count(Skip::AwaitingKeyframe);
                wants_keyframe = true;
            }
            Translation::Drop(DropReason::BeforeSwitch) => skips.count(Skip::BeforeSwitch),
        }
    }
    wants_keyframe
}
