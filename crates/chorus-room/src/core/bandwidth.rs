//! The bandwidth allocation applied: every [`ALLOCATION_INTERVAL`], each subscriber
//! connection with an estimate has it spent across the videos it receives
//! ([`crate::allocation`]): the result caps each simulcast video's `LayerSelection`
//! (below what `track_settings` allows) or pauses its down track, and the subscriber is
//! told of a pause (`video_paused`, reason `bandwidth`) and a resume (`video_resumed`).
//! A video without simulcast counts as one layer: it passes whole or is paused, and
//! resumes from a keyframe. A step up that does not fit in the estimate waits for a
//! bandwidth probe the allocator asks for (`core/probe.rs` sends it).
//!
//! Dynacast still counts what subscribers asked for, not what the allocation lets
//! through, so the higher layers keep arriving for when the estimate recovers.

use std::time::Instant;

use chorus_core::bwe::{LOW_LOSS, Usage};
use chorus_core::{ConnId, SpatialLayer, TrackId};
use chorus_protocol::signal::PauseReason;
use chorus_protocol::{MediaKind, TrackSource};

use super::RoomCore;
use crate::allocation::{ALLOCATION_INTERVAL, Allocation, LinkState, Priority, VideoDemand};
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
        let link = LinkState {
            estimate: bwe.estimate,
            lossy: bwe.loss_fraction > LOW_LOSS,
            overuse: bwe.usage == Usage::Over,
            overuses: bwe.overuses,
            probes_delivered: bwe.probes.delivered,
            probe_rate: bwe.probes.last_rate,
        };
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
            if track.kind() != MediaKind::Video || track.upstream.is_none() {
                continue;
            }
            let simulcast = track.upstream.as_ref().and_then(|b| b.simulcast.as_ref());
            let svc = track.upstream.as_ref().and_then(|b| b.svc.as_ref());
            let layered = simulcast.is_some() || svc.is_some();
            // A video without layers is one layer: it passes whole or is paused.
            let mut layer_bitrates = [None; SpatialLayer::COUNT];
            let top = match (simulcast, svc) {
                (Some(simulcast), _) => {
                    for (slot, layer) in layer_bitrates.iter_mut().zip(simulcast.layers()) {
                        *slot = Some(layer.stats.bitrate_bps(now));
                    }
                    simulcast.layers().len()
                }
                // Measured per spatial layer; a layer costs itself and those below.
                (None, Some(svc)) => {
                    layer_bitrates = svc.cumulative_bitrates(now);
                    svc.layer_count()
                }
                (None, None) => {
                    layer_bitrates[0] = Some(track.rate.bitrate_bps(now));
                    1
                }
            };
            for slot in &mut layer_bitrates {
                *slot = slot.filter(|&bps| bps > 0);
            }
            let top = SpatialLayer::new(top.clamp(1, SpatialLayer::COUNT) as u8 - 1);
            let max = match (&dt.layers, dt.paused) {
                (_, true) => None,
                (Some(s), false) if layered => s.may_receive(),
                _ => top,
            };
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
            // Uncapped is at its max (and gets a bigger max at once).
            let cap = dt.layers.as_ref().and_then(|s| s.bandwidth_cap());
            current.push(dt.allocated.then(|| match (dt.bandwidth_paused, cap, max) {
                (true, _, _) => Allocation::Paused,
                (false, Some(cap), _) => Allocation::Layer(cap),
                (false, None, max) => max.map_or(Allocation::Paused, Allocation::Layer),
            }));
            tracks.push(Allocated {
                id: id.clone(),
                owner: track.owner,
                max,
                layered,
            });
        }
        let allocator = self.allocators.entry(conn).or_default();
        let decided = allocator.decide(link, &videos, &current, now);
        for (video, allocation) in tracks.into_iter().zip(decided.allocations) {
            self.apply_allocation(viewer, conn, video, allocation);
        }
        // The next step up waits for a probe at the rate it needs.
        if let Some(rate) = decided.probe {
            self.probe_for(conn, rate, bwe.estimate, now);
        }
    }

    fn apply_allocation(
        &mut self,
        viewer: ParticipantKey,
        conn: ConnId,
        video: Allocated,
        allocation: Allocation,
    ) {
        let Allocated {
            id,
            owner,
            max,
            layered,
        } = video;
        let Some(dt) = self
            .conns
            .get_mut(conn)
            .and_then(|p| p.downtracks.get_mut(&id))
        else {
            return;
        };
        dt.allocated = true;
        // Paused because not shown (or last-N) is not a bandwidth pause.
        let shown = max.is_some();
        let pause = shown && allocation == Allocation::Paused;
        if let (Allocation::Layer(cap), true) = (allocation, layered) {
            // At its max it is not held by bandwidth: when the subscriber asks for more
            // (a bigger tile), it gets it at once, and only a shortfall lowers it again.
            let selection = dt.layers.get_or_insert_with(Box::default);
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
        if layered {
            if pause {
                // The next packet after the resume restarts it at a keyframe.
                dt.layers.get_or_insert_with(Box::default).pause();
            }
        } else if !pause {
            // Numbered on from the last packet sent, from the next keyframe (which the
            // forwarder asks for while it waits).
            dt.forwarder.switch_source(true);
        }
        tracing::debug!(%id, ?conn, pause, "bandwidth allocation");
        self.tell_pause(viewer, &id, owner, pause.then_some(PauseReason::Bandwidth));
    }
}

/// One video of a subscriber's allocation, as it is applied.
struct Allocated {
    id: TrackId,
    owner: ParticipantKey,
    /// The most the subscriber may receive of it; `None`: not shown.
    max: Option<SpatialLayer>,
    /// Simulcast or VP9 SVC: capped per layer; otherwise passed whole or paused.
    layered: bool,
}
