//! Forwarding: one packet from a publisher (or the mixer) to every subscriber
//! connection of a track, rewritten for each (its SSRC, payload type, and the sequence
//! numbers and timestamps of its forwarder), straight into the connection. A copy that
//! does not go out is counted under its [`Skip`] reason.

use std::time::Instant;

use bytes::Bytes;
use chorus_core::forward::DropReason;
use chorus_core::{ConnId, ExtSeq, ExtTimestamp, TrackId, Translation};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::rtp::header::Header;
use rtc::sansio::Protocol;

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
        if !peer.ice.is_up() {
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
                let out = rtc::rtp::Packet {
                    header,
                    payload: payload_for(peer.owner),
                };
                // Straight into the connection: `RTCRtpSender::write_rtp` would rebuild
                // the sender's parameters to validate what we just set ourselves.
                let msg = TaggedRTCMessage {
                    now,
                    message: RTCMessage::RtpPacket(down.as_str().to_owned(), out),
                };
                if peer.pc.handle_write(msg).is_ok() {
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
