//! What the scenarios of videos in spatial layers (VP9 SVC, AV1) share: how a client
//! shows a video, the pictures and markers it received, and the dynacast hints its
//! publisher heard.

use chorus_protocol::signal::{ClientMessage, ServerMessage};
use chorus_room::sim::{ClientId, RtpIn, Sim};

/// `track_settings`: `track` shown at `width`×`height`, visible.
pub fn settings(track: &str, width: u32, height: u32) -> ClientMessage {
    ClientMessage::TrackSettings {
        track_id: track.to_owned(),
        width: Some(width),
        height: Some(height),
        visible: true,
        max_quality: None,
    }
}

/// The spatial layers of each picture received (by RTP timestamp, in order), each
/// packet's told by `sid_of`.
pub fn pictures<S>(got: &[RtpIn], sid_of: impl Fn(&RtpIn) -> S) -> Vec<Vec<S>> {
    let mut out: Vec<(u32, Vec<S>)> = Vec::new();
    for p in got {
        let sid = sid_of(p);
        match out.last_mut() {
            Some((ts, sids)) if *ts == p.ts => sids.push(sid),
            _ => out.push((p.ts, vec![sid])),
        }
    }
    out.into_iter().map(|(_, s)| s).collect()
}

/// Every picture ends with the marker on its last packet, and only there.
pub fn marked_at_picture_ends(got: &[RtpIn]) -> bool {
    got.windows(2).all(|w| w[0].marker == (w[0].ts != w[1].ts))
}

/// Every `publisher_layers` `c` was sent: (layer, active) each.
pub fn publisher_layers(sim: &Sim, c: ClientId) -> Vec<Vec<(String, bool)>> {
    sim.frames(c)
        .iter()
        .filter_map(|m| match m {
            ServerMessage::PublisherLayers { layers, .. } => {
                Some(layers.iter().map(|l| (l.rid.clone(), l.active)).collect())
            }
            _ => None,
        })
        .collect()
}

/// (`s0`, on), (`s1`, on), … as `publisher_layers` names an SVC track's layers.
pub fn layers_on(on: &[bool]) -> Vec<(String, bool)> {
    on.iter()
        .enumerate()
        .map(|(i, &on)| (format!("s{i}"), on))
        .collect()
}
