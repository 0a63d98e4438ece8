//! How receivers show the cameras (`--view`): as the server likes (no `track_settings`:
//! each receiver gets the highest simulcast layer arriving), or as a meeting's tile
//! view: every camera in a small tile and the speaker's large.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::{Duration, Instant};

use chorus_client::{ClientStats, MediaKind};
use serde::Serialize;

use crate::args::Role;
use crate::member::Member;

/// Size of a small tile, in device pixels (the lowest of three simulcast layers fits).
pub const TILE_SIZE: (u32, u32) = (320, 180);
/// Default size of the speaker's view (the top layer fits; `--speaker-size`).
pub const SPEAKER_SIZE: (u32, u32) = (1280, 720);
/// How often receivers look for cameras they have not sized yet.
const PERIOD: Duration = Duration::from_millis(250);

/// The tile view: tells the server, once per (receiver, camera), the size it shows the
/// camera at, as soon as the receiver gets the camera's packets (it is subscribed then;
/// earlier the server may not know the track for it yet), as a page does when a tile
/// appears. Runs from the join phase on, so that no receiver takes every camera's top
/// layer for longer than a moment.
pub(crate) struct Tiles {
    /// The participant (index) whose camera is the speaker's view: the first that
    /// publishes one (also the first talker, so the room's dominant speaker).
    speaker: Option<usize>,
    /// Its camera's track id, once seen.
    speaker_track: Option<String>,
    /// What the receivers show it at.
    speaker_size: (u32, u32),
    /// Cameras planned in the room, and whether each participant (by index) has one.
    cameras: usize,
    camera_of: Vec<bool>,
    /// Per receiver (participant index), the cameras told.
    told: HashMap<usize, HashSet<String>>,
    last: Option<Instant>,
    /// `track_settings` that could not be sent (the client closed).
    pub(crate) failed: usize,
}

impl Tiles {
    pub(crate) fn new(roles: &[Role], speaker_size: (u32, u32)) -> Self {
        Self {
            speaker: roles.iter().position(|r| r.camera),
            speaker_track: None,
            speaker_size,
            cameras: roles.iter().filter(|r| r.camera).count(),
            camera_of: roles.iter().map(|r| r.camera).collect(),
            told: HashMap::new(),
            last: None,
            failed: 0,
        }
    }

    /// Sends the tile size of every camera a receiver started getting since the last
    /// call (at most every [`PERIOD`] unless `now`; receivers told of every camera are
    /// skipped).
    pub(crate) async fn update(&mut self, members: &[Member], at_once: bool) {
        let now = Instant::now();
        if !at_once && self.last.is_some_and(|l| now < l + PERIOD) {
            return;
        }
        self.last = Some(now);
        if self.speaker_track.is_none() {
            self.speaker_track = members
                .iter()
                .find(|m| Some(m.index) == self.speaker)
                .and_then(|m| {
                    let stats = m.client.stats();
                    m.tracks
                        .iter()
                        .find(|t| {
                            stats
                                .outbound
                                .get(*t)
                                .is_some_and(|o| o.kind == MediaKind::Video)
                        })
                        .cloned()
                });
        }
        for m in members.iter().filter(|m| m.subscribe) {
            let own = usize::from(self.camera_of.get(m.index).copied().unwrap_or(false));
            let told = self.told.entry(m.index).or_default();
            if told.len() + own >= self.cameras && self.cameras > 0 {
                continue;
            }
            let stats = m.client.stats();
            for (track, inbound) in &stats.inbound {
                if inbound.kind != MediaKind::Video || inbound.packets == 0 || told.contains(track)
                {
                    continue;
                }
                let size = match &self.speaker_track {
                    Some(t) if t == track => self.speaker_size,
                    Some(_) => TILE_SIZE,
                    // Which camera is the speaker's is not known yet: wait.
                    None => continue,
                };
                let Some(sending) = m.client.show_video(track, size) else {
                    continue;
                };
                told.insert(track.clone());
                if sending.await.is_err() {
                    self.failed += 1;
                }
            }
        }
    }

    /// `track_settings` sent.
    pub(crate) fn sent(&self) -> usize {
        self.told.values().map(HashSet::len).sum::<usize>() - self.failed
    }
}

impl Tiles {
    /// What each view received between two snapshots (`s0`, `s1`, by position in
    /// `members`) `secs` apart: every receiver's cameras, the speaker's apart.
    pub(crate) fn bitrates(
        &self,
        members: &[Member],
        s0: &[ClientStats],
        s1: &[ClientStats],
        secs: f64,
    ) -> ViewBitrates {
        let (mut tiles, mut speakers) = (Mean::default(), Mean::default());
        for ((m, a), b) in members.iter().zip(s0).zip(s1) {
            if !m.subscribe {
                continue;
            }
            for (track, now) in b.inbound.iter().filter(|(_, i)| i.kind == MediaKind::Video) {
                let before = a.inbound.get(track).map_or(0, |i| i.bytes);
                let bps = now.bytes.saturating_sub(before) as f64 * 8.0 / secs.max(1e-3);
                match &self.speaker_track {
                    Some(t) if t == track => speakers.add(bps),
                    _ => tiles.add(bps),
                }
            }
        }
        ViewBitrates {
            tiles: tiles.n,
            tile_bps: tiles.mean(),
            speakers: speakers.n,
            speaker_bps: speakers.mean(),
        }
    }
}

#[derive(Default)]
struct Mean {
    n: usize,
    sum: f64,
}

impl Mean {
    fn add(&mut self, x: f64) {
        self.n += 1;
        self.sum += x;
    }

    fn mean(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.sum / self.n as f64
        }
    }
}

/// Received video per view in the window (`--view tiles`): what a small tile and the
/// speaker's large view cost a receiver, which the layers the server picks for each
/// decide (in the report as `view_bitrates`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ViewBitrates {
    /// (receiver, camera) pairs shown in a tile, and their mean video bitrate (RTP
    /// payload bits per second).
    pub tiles: usize,
    pub tile_bps: f64,
    /// Pairs showing the speaker's camera, and their mean.
    pub speakers: usize,
    pub speaker_bps: f64,
}

impl fmt::Display for ViewBitrates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tile {:.0} kbit/s (mean of {}), speaker view {:.0} kbit/s (mean of {})",
            self.tile_bps / 1e3,
            self.tiles,
            self.speaker_bps / 1e3,
            self.speakers
        )
    }
}
