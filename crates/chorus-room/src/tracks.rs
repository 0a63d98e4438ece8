//! Published tracks and who receives them. A track is announced by its publisher
//! (`publish`), bound once the publisher's SDP carries it, and then forwarded to its
//! subscribers: the subscriber connections of everyone else (video), or the listeners
//! whose room audio relays it (a microphone in a 1:1 call). Each track also keeps what
//! reading its stream needs (sequence and timestamp unwrapping) and its keyframe
//! request throttle.

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;
use chorus_core::Codec;
use chorus_core::{
    ConnId, KeyframeThrottle, PacketHistory, ParticipantId, SeqUnwrapper, TimestampUnwrapper,
    TrackId,
};
use chorus_protocol::control::SimulcastStats;
use chorus_protocol::{Grants, MediaKind, TrackInfo, TrackSource};
use rtc::rtp::header::Header;

use crate::io::ParticipantKey;
use crate::signal_error::SignalError;
use layer_stats::LayerStats;
pub use simulcast::{LayerIndex, Simulcast};
pub use svc::SvcUpstream;

pub mod layer_stats;
pub mod simulcast;
pub mod svc;

/// Longest client-chosen track id (`cid`) we keep.
pub const MAX_CID_LEN: usize = 128;

/// How many of a video track's last packets are kept to answer NACKs (about 1 s at
/// 2.5 Mbit/s), and how many sequence numbers each subscriber remembers.
pub const HISTORY_LEN: usize = 512;

/// The history of a simulcast track, which keeps every layer's packets (three layers
/// send about 1.3 to 1.8 times what the top one does).
pub const SIMULCAST_HISTORY_LEN: usize = 2 * HISTORY_LEN;

/// The last packets of a published video, as they arrived (extensions stripped), shared
/// by all its subscribers.
pub type History = PacketHistory<(Header, Bytes)>;

/// The layers a publisher is told about (dynacast): how many, and of a VP9 SVC track
/// the top one's size (its subscribers' views are judged against it).
pub type PublisherLayers = (usize, Option<(u32, u32)>);

/// Where a publisher's track arrives.
#[derive(Debug, Clone)]
pub struct UpstreamBinding {
    /// Learned from the first RTP packet.
    pub media_ssrc: Option<u32>,
    /// Negotiated id of the RFC 6464 audio level header extension (audio only).
    pub audio_level_ext: Option<u8>,
    /// What the publisher sends it in (and its subscribers receive).
    pub codec: Codec,
    /// A simulcast video: its layers, and which one is forwarded (whose SSRC is then
    /// `media_ssrc`).
    pub simulcast: Option<Simulcast>,
    /// A VP9 video in one stream, or an AV1 one with dependency descriptors (spatial and
    /// temporal layers told by each packet, possibly only one of each): what is known
    /// of its layers.
    pub svc: Option<SvcUpstream>,
}

#[derive(Debug)]
pub struct PublishedTrack {
    pub id: TrackId,
    pub owner: ParticipantKey,
    pub owner_id: ParticipantId,
    pub cid: String,
    pub source: TrackSource,
    pub muted: bool,
    /// Muted through the control API: the client cannot unmute it.
    pub muted_by_server: bool,
    /// Its owner is on hold: nothing of it is forwarded. A copy of the participant's
    /// `held` kept here so that each packet reads the track it already has; the room
    /// sets it with [`Tracks::set_held`] whenever the owner's hold changes or the
    /// owner publishes.
    pub held: bool,
    /// Set once the publisher's SDP carries the track; then others are told and subscribed.
    pub upstream: Option<UpstreamBinding>,
    pub seq: SeqUnwrapper,
    pub ts: TimestampUnwrapper,
    pub keyframes: KeyframeThrottle,
    /// Subscriber connections that receive this track.
    pub subscribers: Vec<ConnId>,
    /// Video only: what NACKs are answered from.
    pub history: Option<History>,
    /// What arrives of a video without simulcast layers (its bitrate, for the
    /// bandwidth allocation); a simulcast track keeps one per layer.
    pub rate: LayerStats,
    /// The `layers` everyone was last told (`track_published`, `track_updated`).
    pub told_layers: Vec<String>,
}

impl PublishedTrack {
    pub fn kind(&self) -> MediaKind {
        self.source.kind()
    }

    pub fn published(&self) -> bool {
        self.upstream.is_some()
    }

    pub fn info(&self) -> TrackInfo {
        TrackInfo {
            track_id: self.id.to_string(),
            participant_id: self.owner_id.to_string(),
            source: self.source,
            kind: self.kind(),
            muted: self.muted,
            layers: self.layers(),
        }
    }

    /// The layers its publisher is told about (dynacast): how many simulcast layers,
    /// or the most spatial layers a VP9 SVC track's stream announced, with the top
    /// one's size then; `None` for other tracks, and for an SVC track before its
    /// first scalability structure.
    pub fn publisher_layers(&self) -> Option<PublisherLayers> {
        let binding = self.upstream.as_ref()?;
        match (&binding.simulcast, &binding.svc) {
            (Some(s), _) => Some((s.layers().len(), None)),
            (None, Some(svc)) => svc.most_layers().map(|(n, top)| (n, Some(top))),
            (None, None) => None,
        }
    }

    /// The names of [`PublishedTrack::publisher_layers`]: the simulcast rids, or `s0`,
    /// `s1`, … of an SVC track (its `layers` may list fewer while it sends fewer).
    pub fn publisher_layer_names(&self) -> Vec<String> {
        match self.publisher_layers() {
            Some((n, Some(_))) => (0..n).map(|i| format!("s{i}")).collect(),
            _ => self.layers(),
        }
    }

    /// The rids of the simulcast layers it arrives in, lowest quality first; for a
    /// VP9 SVC track its spatial layers (`s0`, `s1`, …); none for other tracks.
    pub fn layers(&self) -> Vec<String> {
        let Some(binding) = self.upstream.as_ref() else {
            return Vec::new();
        };
        match (&binding.simulcast, &binding.svc) {
            (Some(s), _) => s.layers().iter().map(|l| l.rid.clone()).collect(),
            (None, Some(svc)) => svc.names(),
            (None, None) => Vec::new(),
        }
    }

    /// How many spatial layers a subscriber may choose from (simulcast or SVC), with
    /// the top one's size if known; `None` for a video of one layer.
    pub fn spatial_layers(&self) -> Option<(usize, Option<(u32, u32)>)> {
        let binding = self.upstream.as_ref()?;
        match (&binding.simulcast, &binding.svc) {
            (Some(s), _) => Some((s.layers().len(), None)),
            (None, Some(svc)) => Some((svc.layer_count(), Some(svc.top_size()))),
            (None, None) => None,
        }
    }
}

/// What a mute request changed.
#[derive(Debug, Clone, PartialEq)]
pub struct MuteChange {
    pub info: TrackInfo,
    pub owner: ParticipantKey,
    /// Others know the track: tell them.
    pub announce: bool,
}

#[derive(Debug, Default)]
pub struct Tracks {
    by_id: HashMap<TrackId, PublishedTrack>,
}

impl Tracks {
    /// Accepts `owner`'s announcement of a track (not forwarded until bound).
    #[allow(clippy::too_many_arguments)]
    pub fn publish(
        &mut self,
        owner: ParticipantKey,
        owner_id: &ParticipantId,
        grants: &Grants,
        cid: String,
        source: TrackSource,
        muted: bool,
        id: TrackId,
    ) -> Result<TrackInfo, SignalError> {
        if !grants.may_publish(source) {
            return Err(SignalError::PermissionDenied(format!(
                "publish {}",
                source.as_str()
            )));
        }
        if cid.is_empty() || cid.len() > MAX_CID_LEN {
            return Err(SignalError::BadCid { max: MAX_CID_LEN });
        }
        if self
            .by_id
            .values()
            .any(|t| t.owner == owner && t.source == source)
        {
            return Err(SignalError::SourceAlreadyPublished(source));
        }
        let track = PublishedTrack {
            id: id.clone(),
            owner,
            owner_id: owner_id.clone(),
            cid,
            source,
            muted,
            muted_by_server: false,
            held: false,
            upstream: None,
            seq: SeqUnwrapper::default(),
            ts: TimestampUnwrapper::default(),
            keyframes: KeyframeThrottle::default(),
            subscribers: Vec::new(),
            history: (source.kind() == MediaKind::Video).then(|| History::new(HISTORY_LEN)),
            rate: LayerStats::default(),
            told_layers: Vec::new(),
        };
        let info = track.info();
        self.by_id.insert(id, track);
        Ok(info)
    }

    pub fn get(&self, id: &TrackId) -> Option<&PublishedTrack> {
        self.by_id.get(id)
    }

    pub fn get_mut(&mut self, id: &TrackId) -> Option<&mut PublishedTrack> {
        self.by_id.get_mut(id)
    }

    pub fn remove(&mut self, id: &TrackId) -> Option<PublishedTrack> {
        self.by_id.remove(id)
    }

    /// The id of `owner`'s track named `track_id`.
    pub fn owned(&self, owner: ParticipantKey, track_id: &str) -> Option<TrackId> {
        self.by_id
            .values()
            .find(|t| t.owner == owner && t.id.as_str() == track_id)
            .map(|t| t.id.clone())
    }

    /// Every track of `owner`, announced or bound, optionally only those `filter` keeps.
    pub fn of_owner(
        &self,
        owner: ParticipantKey,
        filter: impl Fn(&PublishedTrack) -> bool,
    ) -> Vec<TrackId> {
        let mut ids: Vec<TrackId> = self
            .by_id
            .values()
            .filter(|t| t.owner == owner && filter(t))
            .map(|t| t.id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// What others see of `owner`'s tracks: the bound ones, by id.
    pub fn infos_of(&self, owner: ParticipantKey) -> Vec<TrackInfo> {
        let mut infos: Vec<TrackInfo> = self
            .by_id
            .values()
            .filter(|t| t.owner == owner && t.published())
            .map(PublishedTrack::info)
            .collect();
        infos.sort_by(|a, b| a.track_id.cmp(&b.track_id));
        infos
    }

    /// The bound track's description when its layers are not those everyone was last
    /// told (a VP9 SVC track's come with its keyframes), noted as told; `None` when
    /// they are, so a change is told once however often it is looked at.
    pub fn layers_to_tell(&mut self, id: &TrackId) -> Option<TrackInfo> {
        let t = self.by_id.get_mut(id).filter(|t| t.published())?;
        let info = t.info();
        if info.layers == t.told_layers {
            return None;
        }
        t.told_layers.clone_from(&info.layers);
        Some(info)
    }

    /// Every bound track's layers as they arrive at `now` (simulcast, and VP9 SVC once
    /// a packet of it arrived), by track id.
    pub fn simulcast_stats(&self, now: Instant) -> Vec<SimulcastStats> {
        let mut stats: Vec<SimulcastStats> = self
            .by_id
            .values()
            .filter_map(|t| {
                let b = t.upstream.as_ref()?;
                match (&b.simulcast, &b.svc) {
                    (Some(s), _) => Some(s.stats(t.id.to_string(), now)),
                    // A VP9 track is read as SVC before its first packet says whether
                    // it has layers: listed from then on.
                    (None, Some(svc)) => b
                        .media_ssrc
                        .map(|ssrc| svc.stats(t.id.to_string(), Some(ssrc), now)),
                    (None, None) => None,
                }
            })
            .collect();
        stats.sort_by(|a, b| a.track_id.cmp(&b.track_id));
        stats
    }

    pub fn published_count(&self) -> usize {
        self.by_id.values().filter(|t| t.published()).count()
    }

    /// The announced, unbound track of `owner` that a new track in its SDP carries: the
    /// one whose `cid` is the SDP's track id, else the first of the same kind (clients
    /// whose msid differs).
    pub fn match_unbound(
        &self,
        owner: ParticipantKey,
        sdp_track_id: &str,
        kind: MediaKind,
    ) -> Option<TrackId> {
        let mut unbound: Vec<&PublishedTrack> = self
            .by_id
            .values()
            .filter(|t| t.owner == owner && !t.published())
            .collect();
        unbound.sort_by(|a, b| a.id.cmp(&b.id));
        unbound
            .iter()
            .find(|t| t.cid == sdp_track_id)
            .or_else(|| unbound.iter().find(|t| t.kind() == kind))
            .map(|t| t.id.clone())
    }

    /// Bound microphones and their owners, by track id.
    pub fn audio_sources(&self) -> Vec<(ParticipantKey, TrackId)> {
        let mut sources: Vec<_> = self
            .by_id
            .values()
            .filter(|t| t.source == TrackSource::Microphone && t.published())
            .map(|t| (t.owner, t.id.clone()))
            .collect();
        sources.sort_by(|a, b| a.1.cmp(&b.1));
        sources
    }

    /// Bound tracks forwarded one by one (videos, screen share audio: all but the
    /// microphones, which reach listeners in the room audio) that someone other than
    /// `subscriber` publishes, by id.
    pub fn forwarded_for(&self, subscriber: ParticipantKey) -> Vec<TrackId> {
        let mut ids: Vec<_> = self
            .by_id
            .values()
            .filter(|t| {
                t.owner != subscriber && t.published() && t.source != TrackSource::Microphone
            })
            .map(|t| t.id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Bound tracks whose publisher is told which layers anyone needs (simulcast, and
    /// VP9 SVC once a scalability structure came), with
    /// [`PublishedTrack::publisher_layers`], by track id.
    pub fn publisher_layers(&self) -> Vec<(TrackId, PublisherLayers)> {
        let mut found: Vec<_> = self
            .by_id
            .values()
            .filter_map(|t| Some((t.id.clone(), t.publisher_layers()?)))
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found
    }

    /// Bound tracks of `source` and their owners, by track id.
    pub fn published_of(&self, source: TrackSource) -> Vec<(ParticipantKey, TrackId)> {
        let mut found: Vec<_> = self
            .by_id
            .values()
            .filter(|t| t.source == source && t.published())
            .map(|t| (t.owner, t.id.clone()))
            .collect();
        found.sort_by(|a, b| a.1.cmp(&b.1));
        found
    }

    /// Tracks that `conn` receives.
    pub fn subscribed_by(&self, conn: ConnId) -> Vec<TrackId> {
        let mut ids: Vec<_> = self
            .by_id
            .values()
            .filter(|t| t.subscribers.contains(&conn))
            .map(|t| t.id.clone())
            .collect();
        ids.sort();
        ids
    }

    pub fn add_subscriber(&mut self, id: &TrackId, conn: ConnId) {
        if let Some(t) = self.by_id.get_mut(id)
            && !t.subscribers.contains(&conn)
        {
            t.subscribers.push(conn);
        }
    }

    pub fn remove_subscriber(&mut self, id: &TrackId, conn: ConnId) {
        if let Some(t) = self.by_id.get_mut(id) {
            t.subscribers.retain(|c| *c != conn);
        }
    }

    /// `conn` closed: it receives nothing any more.
    pub fn forget_subscriber(&mut self, conn: ConnId) {
        for t in self.by_id.values_mut() {
            t.subscribers.retain(|c| *c != conn);
        }
    }

    /// Every track of `owner` follows its hold.
    pub fn set_held(&mut self, owner: ParticipantKey, held: bool) {
        for t in self.by_id.values_mut().filter(|t| t.owner == owner) {
            t.held = held;
        }
    }

    /// Mutes or unmutes; a client (`by_server` false) cannot unmute what the server muted.
    pub fn set_muted(
        &mut self,
        id: &TrackId,
        muted: bool,
        by_server: bool,
    ) -> Result<MuteChange, SignalError> {
        let track = self
            .by_id
            .get_mut(id)
            .ok_or_else(|| SignalError::TrackNotFound(id.to_string()))?;
        if !by_server && !muted && track.muted_by_server {
            return Err(SignalError::MutedByServer);
        }
        track.muted = muted;
        if by_server {
            track.muted_by_server = muted;
        }
        Ok(MuteChange {
            info: track.info(),
            owner: track.owner,
            announce: track.published(),
        })
    }
}

#[cfg(test)]
mod tests;
