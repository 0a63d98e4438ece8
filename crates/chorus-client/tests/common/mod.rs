//! Shared by the client's tests.

use chorus_client::{ClientMessage, PeerTarget, ServerMessage};

/// What one engine sent, as the other receives it: A's publisher offer is an offer on
/// B's subscriber connection, B's answer an answer on A's publisher connection.
pub fn relay(message: ClientMessage) -> Option<ServerMessage> {
    let flip = |target| match target {
        PeerTarget::Publisher => PeerTarget::Subscriber,
        PeerTarget::Subscriber => PeerTarget::Publisher,
    };
    Some(match message {
        ClientMessage::Offer { target, sdp } => ServerMessage::Offer {
            target: flip(target),
            sdp,
        },
        ClientMessage::Answer { target, sdp } => ServerMessage::Answer {
            target: flip(target),
            sdp,
        },
        ClientMessage::Candidate { target, candidate } => ServerMessage::Candidate {
            target: flip(target),
            candidate,
        },
        _ => return None,
    })
}
