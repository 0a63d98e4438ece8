//! How receivers show the cameras (`--view`): as the server likes (no `track_settings`:
//! each receiver gets the highest simulcast layer arriving), or as a meeting's tile
//! view: every camera in a small tile and the speaker's large.

use std::collections::HashSet;

use chorus_client::MediaKind;

use crate::member::{Member, Snapshot};

/// Size of a small tile, in device pixels (the lowest of three simulcast layers fits).
pub const TILE_SIZE: (u32, u32) = (320, 180);
/// Size of the speaker's view (the top layer fits).
pub const SPEAKER_SIZE: (u32, u32) = (1280, 720);

/// The tile view: tells the server, once per (receiver, camera), the size it shows the
/// camera at, as soon as the receiver gets the camera's packets (it is then subscribed;
/// earlier the server may not know the track for it yet).
pub(crate) struct Tiles {
    /// The speaker's camera: that of the first participant that publishes one (also
    /// the first talker, so the room's dominant speaker).
    speaker: Option<String>,
    /// (receiver position in `members`, track id) already told.
    told: HashSet<(usize, String)>,
    /// `track_settings` that could not be sent (the client closed).
    pub(crate) failed: usize,
}

impl Tiles {
    pub(crate) fn new(members: &[Member], snapshot: &Snapshot) -> Self {
        let speaker = members.iter().zip(&snapshot.stats).find_map(|(m, s)| {
            m.tracks
                .iter()
                .find(|t| {
                    s.outbound
                        .get(*t)
                        .is_some_and(|o| o.kind == MediaKind::Video)
                })
                .cloned()
        });
        Self {
            speaker,
            told: HashSet::new(),
            failed: 0,
        }
    }

    /// The size `track` is shown at.
    pub(crate) fn size_of(&self, track: &str) -> (u32, u32) {
        if self.speaker.as_deref() == Some(track) {
            SPEAKER_SIZE
        } else {
            TILE_SIZE
        }
    }

    /// Sends the tile size of every camera a receiver started getting since the last
    /// call. Returns how many were sent.
    pub(crate) async fn update(&mut self, members: &[Member], snapshot: &Snapshot) -> usize {
        let mut sent = 0;
        for (pos, (m, s)) in members.iter().zip(&snapshot.stats).enumerate() {
            if !m.subscribe {
                continue;
            }
            for (track, inbound) in &s.inbound {
                if inbound.kind != MediaKind::Video
                    || inbound.packets == 0
                    || self.told.contains(&(pos, track.clone()))
                {
                    continue;
                }
                self.told.insert((pos, track.clone()));
                let Some(sending) = m.client.show_video(track, self.size_of(track)) else {
                    continue;
                };
                match sending.await {
                    Ok(()) => sent += 1,
                    Err(_) => self.failed += 1,
                }
            }
        }
        sent
    }

    /// (receiver, camera) pairs told so far.
    pub(crate) fn told(&self) -> usize {
        self.told.len()
    }
}
