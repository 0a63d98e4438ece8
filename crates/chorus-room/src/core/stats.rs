//! What the room reports of itself: `RoomInfo`, subscribers' estimates, forwarding.

use std::time::Instant;

use chorus_protocol::control::{ForwardingStats, RoomInfo, SubscriberStats};

use super::RoomCore;

impl RoomCore {
    pub(super) fn info(&self, now: Instant) -> RoomInfo {
        RoomInfo {
            name: self.name.clone(),
            max_participants: self.participants.max(),
            num_participants: self.participants.len() as u32,
            num_tracks: self.tracks.published_count() as u32,
            created_at_ms: self.created_at_ms,
            lobby: self.lobby,
            num_waiting: self.participants.waiting().len() as u32,
            invitations: self.invitations.iter().map(|i| i.info.clone()).collect(),
            recently_left: self.recently_left.iter().cloned().collect(),
            refused_invitations: self.refused_invitations,
            refused_state_changes: self.refused_transitions,
            forwarding: self.forwarding(),
            simulcast: self.tracks.simulcast_stats(now),
            subscribers: self.subscriber_stats(),
        }
    }

    /// The bandwidth estimate toward each participant's subscriber connection, where
    /// its client reports transport-wide feedback.
    pub(super) fn subscriber_stats(&self) -> Vec<SubscriberStats> {
        let mut stats: Vec<SubscriberStats> = self
            .participants
            .keys()
            .into_iter()
            .filter_map(|key| {
                let p = self.participants.get(key)?;
                let conn = p.subscriber?;
                let bwe = self.conns.get(conn)?.bandwidth()?;
                let steps = self
                    .allocators
                    .get(&conn)
                    .map(|a| a.step_probes())
                    .unwrap_or_default();
                Some(SubscriberStats {
                    identity: p.identity.clone(),
                    estimated_bitrate_bps: bwe.estimate.bps(),
                    acknowledged_bitrate_bps: bwe.acked.map(|a| a.bps()),
                    loss_percent: (bwe.loss_fraction * 1000.0).round() / 10.0,
                    rtt_ms: bwe.rtt.as_millis() as u64,
                    probes_sent: bwe.probes.sent,
                    probes_delivered: bwe.probes.delivered,
                    probes_raised: bwe.probes.raised,
                    step_probes_asked: steps.asked,
                    step_probes_succeeded: steps.succeeded,
                    step_probes_failed: steps.failed,
                })
            })
            .collect();
        stats.sort_by(|a, b| a.identity.cmp(&b.identity));
        stats
    }

    /// What the room forwarded and skipped since it was created.
    pub fn forwarding(&self) -> ForwardingStats {
        ForwardingStats {
            forwarded: self.skips.total_forwarded(),
            resent: self.skips.total_resent(),
            skipped: self
                .skips
                .iter()
                .map(|(skip, n)| (skip.as_str().to_owned(), n))
                .collect(),
            srtp_profiles: self.srtp_profiles.clone(),
            feedback: self.feedback,
            mix_frames: self.mix_frames,
            data_received: self.data.received,
            data_delivered: self.data.delivered,
            plain_rtp_dropped: self
                .plain_rtp_drops
                .reading()
                .map(|(reason, n)| (reason.as_str().to_owned(), n))
                .collect(),
        }
    }
}
