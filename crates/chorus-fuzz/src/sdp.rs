//! SDP from a client: a publisher's offer (answered, and the answer must be SDP that
//! parses), its re-offer on the same connection, and a subscriber's answer to the
//! server's offer.

use std::time::{Duration, Instant};

use chorus_transport::webrtc::sdp::{OutTrack, Remote};
use chorus_transport::{IceCredentials, ServerConnection};
use rtc::sdp::description::session::SessionDescription;

use crate::peers;

fn credentials(n: u8) -> IceCredentials {
    IceCredentials {
        ufrag: format!("srv{n}"),
        pwd: format!("server-password-{n}-0123456789"),
    }
}

/// The input is text: an offer, then optionally `\0` and a re-offer. The first part is
/// also tried as a subscriber's answer.
pub fn sdp(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (offer, reoffer) = match text.split_once('\0') {
        Some((offer, reoffer)) => (offer, Some(reoffer)),
        None => (text, None),
    };
    let now = Instant::now();
    let _ = Remote::parse_description(offer);
    let peers = peers();
    if let Ok((mut conn, answer)) =
        ServerConnection::accept(offer, peers.accept_params(credentials(1), 1), now)
    {
        let parsed = SessionDescription::unmarshal(&mut std::io::Cursor::new(answer.as_bytes()));
        assert!(parsed.is_ok(), "the server's answer parses: {answer}");
        if let Some(reoffer) = reoffer {
            let later = now + Duration::from_secs(1);
            if let Ok(answer) = conn.reanswer(reoffer, || credentials(2), later) {
                let parsed =
                    SessionDescription::unmarshal(&mut std::io::Cursor::new(answer.as_bytes()));
                assert!(parsed.is_ok(), "the server's answer parses: {answer}");
            }
        }
    }
    let track = |mid: &str, kind: &str, ssrc| OutTrack {
        mid: mid.to_owned(),
        kind: kind.to_owned(),
        codec: if kind == "audio" {
            chorus_core::Codec::Opus
        } else {
            chorus_core::Codec::Vp8
        },
        ssrc,
        stream_id: "alice".to_owned(),
        track_id: format!("TR_{mid}"),
        idle: false,
    };
    let tracks = [track("0", "audio", 11), track("1", "video", 22)];
    if let Ok((mut conn, _offer)) =
        ServerConnection::offer(&tracks, peers.accept_params(credentials(3), 3), now)
    {
        let _ = conn.apply_answer(offer, now);
    }
}
