//! Named reasons for every packet the room does not forward, and their counts.
//! A reason is counted once per packet per subscriber it did not reach (or once per
//! packet when the packet reached no one).

use std::time::{Duration, Instant};

use chorus_core::LayerDrop;
use chorus_transport::{is_control, is_rtcp};

/// Longest a media datagram may wait in the inbox before it is dropped unprocessed: a
/// room that far behind sheds load rather than let latency grow without bound.
/// Handshakes and keepalives are never dropped for it. Not shorter: a packet dropped
/// here cannot be repaired (it was unprotected, so its resend is refused as a replay)
/// and a lost video packet costs its subscribers a keyframe; a late one is only late.
/// With 200 ms, a loaded machine's short stalls became 5–6 % loss in `large-350` tiles
/// (keyframe requests and lowered estimates feeding the stall); with 1 s, none.
pub const MAX_MEDIA_QUEUEING: Duration = Duration::from_secs(1);

/// Whether a datagram that waited `waited` in the inbox is dropped unprocessed: RTP
/// that waited over [`MAX_MEDIA_QUEUEING`]. RTCP is not: it costs the room little
/// (nothing is fanned out) and what it says is still true late, while without it
/// NACKs go unanswered and the bandwidth estimates read missing feedback (a room that
/// fell behind for want of a core would then lower every subscriber's video).
pub fn is_stale(data: &[u8], waited: Duration) -> bool {
    waited > MAX_MEDIA_QUEUEING && !is_control(data) && !is_rtcp(data)
}

/// Why a packet (or a copy for one subscriber) was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Skip {
    /// A media datagram waited in the room's inbox too long: the room is behind.
    Stale,
    /// A datagram for a connection the room no longer has.
    UnknownConnection,
    /// A binding request whose MESSAGE-INTEGRITY did not verify.
    StunBadIntegrity,
    /// A binding request with an old or wrong ufrag, or not STUN at all.
    StunRejected,
    /// RTP of a track the publisher did not announce (or that was unpublished).
    UnknownTrack,
    /// The track is muted: nothing of it goes out.
    Muted,
    /// The subscriber's connection is not up yet (ICE and DTLS), or it went silent.
    NotConnected,
    /// The subscriber's SDP does not carry the track yet (offer pending or in flight).
    NegotiationNotLive,
    /// The subscriber's forwarder waits for a keyframe to start or switch.
    AwaitingKeyframe,
    /// Older than the point where the subscriber's forwarder switched source.
    BeforeSwitch,
    /// The connection refused the packet (closed, or no sender for it).
    WriteFailed,
    /// A NACKed packet was resent a moment ago: another copy would likely cross it.
    ResendTooSoon,
    /// A NACKed packet is no longer in the track's history (or was never sent).
    NotInHistory,
    /// A packet of a simulcast layer other than the one this subscriber receives (or
    /// switches to); or of a layer past the third, which none receives; or of a VP9
    /// SVC spatial layer above those it receives (its number leaves no hole).
    LayerNotForwarded,
    /// The subscriber paused the video (`track_settings` with `visible: false`).
    LayerPaused,
    /// Above the temporal layer this subscriber receives (its number leaves no hole).
    TemporalLayerAbove,
    /// Its sequence number or picture id was given up when a packet was dropped; sending
    /// it now would repeat a number.
    LayerNumberReused,
    /// Older than what the subscriber's layer forwarder remembers of its numbering.
    LayerTooOld,
    /// The subscriber's answer took the track's m-section without the track's codec
    /// (a client without H.264): it could not decode it.
    CodecNotAccepted,
    /// The publisher is not among the subscriber's last-N (pins and latest speakers):
    /// its camera is paused for it.
    LastNPaused,
    /// The bandwidth estimate toward the subscriber leaves no room for this video: the
    /// allocation paused it (after lowering every video to its lowest layer).
    BandwidthPaused,
    /// A data message from a participant without the `can_publish_data` grant.
    DataNotAllowed,
    /// A data message over the size limit (`rooms.data_max_message_bytes`).
    DataTooLarge,
    /// A data message over its sender's rate (messages or bytes a second).
    DataRateLimited,
    /// A data message that is not a JSON text message as docs/signaling.md says, or
    /// came on a channel of another label.
    DataInvalid,
    /// A copy of a data message for a receiver without an open channel of its mode.
    DataNoChannel,
    /// A copy of a data message for a receiver that does not keep up: too much waits
    /// toward it already (unreliable: 64 KiB; reliable: 1 MiB).
    DataReceiverFull,
    /// The publisher is on hold: nothing of its media goes to anyone (nor to the mixer).
    PublisherOnHold,
    /// The subscriber is on hold: nothing goes to it.
    SubscriberOnHold,
    /// The echo room's delay line was full: its oldest packet went.
    EchoOverflow,
    /// A NACKed packet would go over the share of the subscriber's bandwidth estimate
    /// that resends may take (a quarter): on a congested link, repairs must not add
    /// to the congestion.
    ResendOverBudget,
    /// A packet of a VP9 SVC track without a readable payload descriptor (e.g. padding
    /// from the publisher), or of an AV1 SVC track without a readable dependency
    /// descriptor: no layer to judge it by (its number leaves no hole).
    SvcUnreadable,
}

impl Skip {
    pub const ALL: [Skip; 32] = [
        Skip::Stale,
        Skip::UnknownConnection,
        Skip::StunBadIntegrity,
        Skip::StunRejected,
        Skip::UnknownTrack,
        Skip::Muted,
        Skip::NotConnected,
        Skip::NegotiationNotLive,
        Skip::AwaitingKeyframe,
        Skip::BeforeSwitch,
        Skip::WriteFailed,
        Skip::ResendTooSoon,
        Skip::NotInHistory,
        Skip::LayerNotForwarded,
        Skip::LayerPaused,
        Skip::TemporalLayerAbove,
        Skip::LayerNumberReused,
        Skip::LayerTooOld,
        Skip::CodecNotAccepted,
        Skip::LastNPaused,
        Skip::BandwidthPaused,
        Skip::DataNotAllowed,
        Skip::DataTooLarge,
        Skip::DataRateLimited,
        Skip::DataInvalid,
        Skip::DataNoChannel,
        Skip::DataReceiverFull,
        Skip::PublisherOnHold,
        Skip::SubscriberOnHold,
        Skip::EchoOverflow,
        Skip::ResendOverBudget,
        Skip::SvcUnreadable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Skip::Stale => "stale",
            Skip::UnknownConnection => "unknown_connection",
            Skip::StunBadIntegrity => "stun_bad_integrity",
            Skip::StunRejected => "stun_rejected",
            Skip::UnknownTrack => "unknown_track",
            Skip::Muted => "muted",
            Skip::NotConnected => "not_connected",
            Skip::NegotiationNotLive => "negotiation_not_live",
            Skip::AwaitingKeyframe => "awaiting_keyframe",
            Skip::BeforeSwitch => "before_switch",
            Skip::WriteFailed => "write_failed",
            Skip::ResendTooSoon => "resend_too_soon",
            Skip::NotInHistory => "not_in_history",
            Skip::LayerNotForwarded => "layer_not_forwarded",
            Skip::LayerPaused => "layer_paused",
            Skip::TemporalLayerAbove => "temporal_layer_above",
            Skip::LayerNumberReused => "layer_number_reused",
            Skip::LayerTooOld => "layer_too_old",
            Skip::CodecNotAccepted => "codec_not_accepted",
            Skip::LastNPaused => "last_n_paused",
            Skip::BandwidthPaused => "bandwidth_paused",
            Skip::DataNotAllowed => "data_not_allowed",
            Skip::DataTooLarge => "data_too_large",
            Skip::DataRateLimited => "data_rate_limited",
            Skip::DataInvalid => "data_invalid",
            Skip::DataNoChannel => "data_no_channel",
            Skip::DataReceiverFull => "data_receiver_full",
            Skip::PublisherOnHold => "publisher_on_hold",
            Skip::SubscriberOnHold => "subscriber_on_hold",
            Skip::EchoOverflow => "echo_overflow",
            Skip::ResendOverBudget => "resend_over_budget",
            Skip::SvcUnreadable => "svc_unreadable",
        }
    }
}

impl From<LayerDrop> for Skip {
    fn from(d: LayerDrop) -> Self {
        match d {
            LayerDrop::Paused => Skip::LayerPaused,
            LayerDrop::NotCurrentLayer => Skip::LayerNotForwarded,
            LayerDrop::AwaitingKeyframe => Skip::AwaitingKeyframe,
            LayerDrop::TemporalLayerAbove => Skip::TemporalLayerAbove,
            LayerDrop::BeforeSwitch => Skip::BeforeSwitch,
            LayerDrop::DroppedBefore => Skip::LayerNumberReused,
            LayerDrop::TooOld => Skip::LayerTooOld,
            LayerDrop::SpatialLayerAbove => Skip::LayerNotForwarded,
            LayerDrop::Unreadable => Skip::SvcUnreadable,
        }
    }
}

/// Packets forwarded and skipped, by reason.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Skips {
    forwarded: u64,
    resent: u64,
    counts: [u64; Skip::ALL.len()],
}

impl Skips {
    pub fn count(&mut self, skip: Skip) {
        self.counts[skip as usize] += 1;
    }

    pub fn forwarded(&mut self) {
        self.forwarded += 1;
    }

    /// A packet NACKed by a subscriber was sent again.
    pub fn resent(&mut self) {
        self.resent += 1;
    }

    /// Packets sent again to subscribers that lost them.
    /// Adds counts made elsewhere (an egress shard's, for one run).
    pub fn absorb(&mut self, other: &Skips) {
        self.forwarded += other.forwarded;
        self.resent += other.resent;
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts) {
            *mine += theirs;
        }
    }

    pub fn total_resent(&self) -> u64 {
        self.resent
    }

    pub fn get(&self, skip: Skip) -> u64 {
        self.counts[skip as usize]
    }

    /// Copies of packets sent to subscribers.
    pub fn total_forwarded(&self) -> u64 {
        self.forwarded
    }

    /// Every reason with its count, zeros included.
    pub fn iter(&self) -> impl Iterator<Item = (Skip, u64)> + '_ {
        Skip::ALL.into_iter().map(|s| (s, self.get(s)))
    }
}

/// Least time between two warnings of an overloaded room.
const OVERLOAD_REPORT_EVERY: Duration = Duration::from_secs(5);

/// Says now and then that the room fell behind.
#[derive(Debug, Default)]
pub struct Overload {
    reported_at: Option<Instant>,
}

impl Overload {
    pub fn report(&mut self, now: Instant, room: &str, dropped_total: u64) {
        if self
            .reported_at
            .is_none_or(|t| now.saturating_duration_since(t) >= OVERLOAD_REPORT_EVERY)
        {
            self.reported_at = Some(now);
            tracing::warn!(
                room,
                dropped_total,
                "room overloaded: media waited over {} ms and was dropped",
                MAX_MEDIA_QUEUEING.as_millis()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_counter_and_name() {
        let mut skips = Skips::default();
        for (i, s) in Skip::ALL.into_iter().enumerate() {
            assert_eq!(s as usize, i, "ALL is in declaration order");
            for _ in 0..=i {
                skips.count(s);
            }
        }
        for (i, (s, n)) in skips.iter().enumerate() {
            assert_eq!(n, i as u64 + 1, "{}", s.as_str());
        }
        let names: std::collections::HashSet<_> = Skip::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(names.len(), Skip::ALL.len());
    }

    #[test]
    fn only_rtp_that_waited_too_long_is_stale() {
        let rtp = [0x80, 96, 0, 1];
        let rtcp_sr = [0x80, 200, 0, 6];
        let rtcp_feedback = [0x8f, 205, 0, 4];
        let stun = [0x00, 0x01, 0, 0];
        let dtls = [22, 0xfe, 0xfd];
        let late = MAX_MEDIA_QUEUEING + Duration::from_millis(1);
        // (what, datagram, waited, stale)
        let cases: [(&str, &[u8], Duration, bool); 7] = [
            ("rtp late", &rtp, late, true),
            ("rtp just in time", &rtp, MAX_MEDIA_QUEUEING, false),
            ("rtcp sender report late", &rtcp_sr, late, false),
            ("transport-wide feedback late", &rtcp_feedback, late, false),
            ("stun late", &stun, late, false),
            ("dtls late", &dtls, late, false),
            ("empty late", &[], late, true),
        ];
        for (what, data, waited, stale) in cases {
            assert_eq!(is_stale(data, waited), stale, "{what}");
        }
    }
}
