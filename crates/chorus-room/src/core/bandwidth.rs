//! The bandwidth allocation applied: every [`ALLOCATION_INTERVAL`], each subscriber
//! connection with an estimate has it spent across the simulcast videos it receives
//! ([`crate::allocation`]): the result caps each video's `LayerSelection` (below what
//! `track_settings` allows) or pauses its down track, and the subscriber is told of a
//! pause (`video_paused`, reason `bandwidth`) and a resume (`video_resumed`).
//!
//! Videos without simulcast are left out (they take what they take); dynacast still
//! counts what subscribers asked for, not what the allocation lets through, so the
//! higher layers keep arriving for when the estimate recovers.

use std::time::Instant;

use chorus_core::bwe::{LOW_LOSS, Usage};
use chorus_core::{ConnId, SpatialLayer, TrackId};
use chorus_protocol::TrackSource;
use chorus_protocol::signal::PauseReason;

use super::RoomCore;
use crate::allocation::{ALLOCATION_INTERVAL, Allocation, Priority, VideoDemand};
use crate::io::ParticipantKey;

impl RoomCore {
    /// Re-spends every subscriber's estimate when due.
    pub(super) fn update_allocation(&mut self, now: Instant) {
        let wake = *self
            .allocation_wake
            .get_or_insert(now + ALLOCATION_INTERVAL);
        if now < wake {
            return;
        }
        self.allocation_wake = Some(now + ALLOCATION_INTERVAL);
        let subscribers: Vec<(ParticipantKey, ConnId)> = self
            .participants
            .keys()
            .into_iter()
            .filter_map(|k| Some((k, self.participants.get(k)?.subscriber?)))
            .collect();
        self.allocators
            .retain(|conn, _| subscribers.iter().any(|(_, c)| c == conn));
        self.probes
            .retain(|conn| subscribers.iter().any(|(_, c)| *c == conn));
        for (viewer, conn) in subscribers {
            self.allocate_for(viewer, conn, now);
        }
    }

    fn allocate_for(&mut self, viewer: ParticipantKey, conn: ConnId, now: Instant) {
        let Some(peer) = self.conns.get(conn) else {
            return;
        };
        let Some(bwe) = peer.bandwidth() else {
            return;
        };
        // Loss the loss controller starts to act on, or a growing queue.
        let congested = bwe.loss_fraction > LOW_LOSS || bwe.usage == Usage::Over;
        let mut ids: Vec<&TrackId> = peer.downtracks.keys().collect();
        ids.sort(); // the caller's order within one priority: stable
        let mut tracks = Vec::new();
        let mut videos = Vec::new();
        let mut current = Vec::new();
        for id in ids {
            let dt = &peer.downtracks[id];
            let Some(track) = self.tracks.get(id) else {
                continue;
            };
            let Some(simulcast) = track.upstream.as_ref().and_then(|b| b.simulcast.as_ref()) else {
                continue;
            };
            let layers = simulcast.layers();
            let top = SpatialLayer::new(layers.len().clamp(1, SpatialLayer::COUNT) as u8 - 1);
            let max = match (&dt.layers, dt.paused) {
                (_, true) => None,
                (None, false) => top,
                (Some(s), false) => s.may_receive(),
            };
            let mut layer_bitrates = [None; SpatialLayer::COUNT];
            for (slot, layer) in layer_bitrates.iter_mut().zip(layers) {
                let bps = layer.stats.bitrate_bps(now);
                *slot = (bps > 0).then_some(bps);
            }
            let priority = if track.source == TrackSource::ScreenShare {
                Priority::ScreenShare
            } else if self.last_n.featured(viewer, track.owner) {
                Priority::Featured
            } else {
                Priority::Other
            };
            videos.push(VideoDemand {
                priority,
                max,
                layer_bitrates,
            });
            current.push(if dt.bandwidth_paused {
                Some(Allocation::Paused)
            } else {
                dt.layers
                    .as_ref()
                    .and_then(|s| s.bandwidth_cap())
                    .map(Allocation::Layer)
            });
            tracks.push((id.clone(), track.owner, max));
        }
        let allocator = self.allocators.entry(conn).or_default();
        let decided = allocator.decide(bwe.estimate, congested, &videos, &current, now);
        for ((id, owner, max), allocation) in tracks.into_iter().zip(decided) {
            self.apply_allocation(viewer, conn, id, owner, max, allocation);
        }
        // More wanted than the estimate shows room for: probe before stepping up.
        if !congested {
            self.probe_for(conn, wanted(&videos), bwe.estimate, now);
        }
    }

    fn apply_allocation(
        &mut self,
        viewer: ParticipantKey,
        conn: ConnId,
        id: TrackId,
        owner: ParticipantKey,
        max: Option<SpatialLayer>,
        allocation: Allocation,
    ) {
        let Some(dt) = self
            .conns
            .get_mut(conn)
            .and_then(|p| p.downtracks.get_mut(&id))
        else {
            return;
        };
        let selection = dt.layers.get_or_insert_with(Box::default);
        // Paused because not shown (or last-N) is not a bandwidth pause.
        let shown = max.is_some();
        let pause = shown && allocation == Allocation::Paused;
        if let Allocation::Layer(cap) = allocation {
            // At its max it is not held by bandwidth: when the subscriber asks for more
            // (a bigger tile), it gets it at once, and only a shortfall lowers it again.
            selection.set_bandwidth_cap(max.is_none_or(|m| cap < m).then_some(cap));
        }
        if pause == dt.bandwidth_paused {
            return;
        }
        if !shown {
            // Hidden or paused by last-N meanwhile: that pause is what it is told of.
            dt.bandwidth_paused = false;
            return;
        }
        dt.bandwidth_paused = pause;
        if pause {
            // The next packet after the resume restarts it at a keyframe.
            selection.pause();
        }
        tracing::debug!(%id, ?conn, pause, "bandwidth allocation");
        self.tell_pause(viewer, &id, owner, pause.then_some(PauseReason::Bandwidth));
    }
}

/// What the videos would take at the most each may receive: the bitrate of its max
/// layer, or of the best layer below it that is arriving.
fn wanted(videos: &[VideoDemand]) -> chorus_core::Bitrate {
    let bps = videos
        .iter()
        .filter_map(|v| {
            let max = v.max?;
            v.layer_bitrates[..=max.index().min(SpatialLayer::COUNT - 1)]
                .iter()
                .rev()
                .find_map(|b| *b)
        })
        .sum();
    chorus_core::Bitrate(bps)
}
