//! Bodies of the control API (`/v1/...`, HTTP/JSON).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Grants, ParticipantInfo};

/// Hard ceiling on participants in one room.
pub const MAX_PARTICIPANTS_CEILING: u32 = 350;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateRoomRequest {
    pub name: String,
    /// At most [`MAX_PARTICIPANTS_CEILING`]; defaults to it.
    #[serde(default)]
    pub max_participants: Option<u32>,
    /// Joiners without `can_admit` wait in a lobby until admitted.
    #[serde(default)]
    pub lobby: bool,
}

/// Most invitations ringing in one room at once.
pub const MAX_INVITATIONS_PER_ROOM: usize = 16;
/// How long an invitation rings unless told otherwise, and the most it may.
pub const DEFAULT_INVITATION_TIMEOUT_SECS: u64 = 30;
pub const MAX_INVITATION_TIMEOUT_SECS: u64 = 300;
/// Participants who left that a room remembers (`RoomInfo.recently_left`), newest last.
pub const RECENTLY_LEFT: usize = 32;

/// `POST /v1/rooms/{room}/invitations`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateInvitationRequest {
    /// Who is invited: the identity its token will carry.
    pub identity: String,
    /// Shown in the roster while it rings; the identity if absent.
    #[serde(default)]
    pub name: Option<String>,
    /// How long it rings before it ends with `no_answer`: 1 to
    /// [`MAX_INVITATION_TIMEOUT_SECS`], default [`DEFAULT_INVITATION_TIMEOUT_SECS`].
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

/// An invitation ringing in a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationInfo {
    /// `IN_…`, unique in the room.
    pub invitation_id: String,
    pub identity: String,
    pub name: String,
    /// The roster entry's id while it rings, and the participant's id once it joins.
    pub participant_id: String,
    /// Unix ms.
    pub created_at_ms: u64,
    pub expires_at_ms: u64,
}

/// How an invitation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvitationEnd {
    /// The invitee joined with its token.
    Accepted,
    Declined,
    NoAnswer,
    Cancelled,
}

/// A participant who left the room (or an invitation that ended unanswered), kept in
/// `RoomInfo.recently_left`: its final `disconnected` state and the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepartedParticipant {
    pub participant_id: String,
    pub identity: String,
    pub name: String,
    pub state: crate::ParticipantState,
    pub reason: crate::LeaveReason,
    /// Unix ms.
    pub left_at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomInfo {
    pub name: String,
    pub max_participants: u32,
    pub num_participants: u32,
    pub num_tracks: u32,
    /// Unix time of creation, in milliseconds.
    pub created_at_ms: u64,
    /// Joiners without `can_admit` wait in a lobby (absent from older servers: false).
    #[serde(default)]
    pub lobby: bool,
    /// Participants waiting in the lobby.
    #[serde(default)]
    pub num_waiting: u32,
    /// Invitations ringing (absent when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invitations: Vec<InvitationInfo>,
    /// The last [`RECENTLY_LEFT`] participants who left, and invitations that ended
    /// without a join, oldest first (absent when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recently_left: Vec<DepartedParticipant>,
    /// Invitations refused since the room was created (bad, duplicate, over the limit).
    #[serde(default)]
    pub refused_invitations: u64,
    /// State changes the room's state table refused (a bug in Chorus if not 0).
    #[serde(default)]
    pub refused_state_changes: u64,
    /// What the room did with media since it was created.
    #[serde(default)]
    pub forwarding: ForwardingStats,
    /// The published simulcast tracks, as their layers arrive (absent when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub simulcast: Vec<SimulcastStats>,
    /// The bandwidth estimated toward each subscriber whose client reports transport-wide
    /// congestion control feedback (absent when none does).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscribers: Vec<SubscriberStats>,
}

/// The downstream bandwidth estimate of one participant's subscriber connection,
/// from the transport-wide feedback its client sends (GCC-style: delay and loss).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriberStats {
    pub identity: String,
    /// What the server estimates it can send the participant, in bits per second.
    pub estimated_bitrate_bps: u64,
    /// What the participant acknowledged receiving over the last half second, once
    /// measured.
    pub acknowledged_bitrate_bps: Option<u64>,
    /// Packets reported lost in the last loss window, in percent.
    pub loss_percent: f64,
    /// The round trip measured from send to feedback (the feedback interval included).
    pub rtt_ms: u64,
    /// Bandwidth probe clusters sent to the participant (padding above the estimate).
    #[serde(default)]
    pub probes_sent: u64,
    /// Probe clusters that got through (enough arrived to measure a rate).
    #[serde(default)]
    pub probes_delivered: u64,
    /// Delivered probe clusters that raised the estimate.
    #[serde(default)]
    pub probes_raised: u64,
    /// Steps up of the allocation that did not fit in the estimate and waited for a
    /// probe.
    #[serde(default)]
    pub step_probes_asked: u64,
    /// Of those, steps taken once a probe got through at the rate they need.
    #[serde(default)]
    pub step_probes_succeeded: u64,
    /// Of those, steps held back (no probe showed the room in time, or congestion).
    #[serde(default)]
    pub step_probes_failed: u64,
}

/// One published video in layers (simulcast, or VP9 SVC): its layers as they arrive,
/// and the highest arriving.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimulcastStats {
    pub track_id: String,
    /// The rid of the highest layer arriving (what subscribers that sent no
    /// `track_settings` get), if any.
    pub forwarded: Option<String>,
    /// Lowest quality first.
    pub layers: Vec<LayerStats>,
    /// A VP9 SVC track: its layers are the spatial layers of one stream (`s0`, `s1`,
    /// …, all on one SSRC). Absent (false) for simulcast.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub svc: bool,
}

/// One simulcast layer (or VP9 SVC spatial layer) as it arrives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerStats {
    /// The simulcast rid; of a VP9 SVC spatial layer, `s` and its SID.
    pub rid: String,
    /// Its place in `TrackInfo.layers`: 0 is the lowest quality.
    pub index: u8,
    /// Learned from its first packet.
    pub ssrc: Option<u32>,
    /// RTP packets and payload bytes received since it started.
    pub packets: u64,
    pub bytes: u64,
    /// Payload bits per second, and frames per second, over the last second.
    pub bitrate_bps: u64,
    pub fps: u32,
    /// How long ago its last keyframe arrived; absent before the first.
    pub keyframe_age_ms: Option<u64>,
}

/// Media a room forwarded, and what it did not forward, by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardingStats {
    /// Packets sent to subscribers (one per subscriber a packet reached).
    pub forwarded: u64,
    /// Packets sent again to subscribers that NACKed them.
    #[serde(default)]
    pub resent: u64,
    /// Packets (or copies for one subscriber) not sent, by reason; every reason is
    /// listed, zeros included.
    pub skipped: BTreeMap<String, u64>,
    /// Media connections whose DTLS handshake completed, by the SRTP protection
    /// profile it negotiated (`SRTP_AEAD_AES_128_GCM`, `SRTP_AEAD_AES_256_GCM`,
    /// `SRTP_AES128_CM_HMAC_SHA1_80`, `SRTP_AES128_CM_HMAC_SHA1_32`); only the
    /// profiles seen are listed.
    #[serde(default)]
    pub srtp_profiles: BTreeMap<String, u64>,
    /// Feedback from subscribers and what the room asked of publishers.
    #[serde(default)]
    pub feedback: FeedbackStats,
    /// Room-audio frames the mixer made (50 a second while someone talks).
    #[serde(default)]
    pub mix_frames: u64,
    /// Data messages participants sent that the room took (refusals are in `skipped`,
    /// `data_*`).
    #[serde(default)]
    pub data_received: u64,
    /// Copies of data messages sent to receivers.
    #[serde(default)]
    pub data_delivered: u64,
    /// Datagrams plain-RTP participants' ports did not take, by reason (`bad_packet`,
    /// `wrong_source`, `wrong_payload_type`, `late`, `too_long`, `decode_error`,
    /// `srtp_auth`), and audio frames lost between them and the room (`room_busy`,
    /// `mix_behind`); every reason is listed, zeros included.
    #[serde(default)]
    pub plain_rtp_dropped: BTreeMap<String, u64>,
}

/// RTCP feedback that went through a room.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedbackStats {
    /// Packets subscribers reported lost in NACKs.
    pub nacked_packets: u64,
    /// Keyframe requests (PLI or FIR) from subscribers.
    pub keyframe_requests_received: u64,
    /// PLIs sent to publishers (requests from many subscribers are merged, throttled).
    pub plis_sent: u64,
}

impl ForwardingStats {
    /// Adds `other`'s counts (rooms summed for the whole server).
    pub fn absorb(&mut self, other: &ForwardingStats) {
        self.forwarded += other.forwarded;
        self.resent += other.resent;
        for (reason, n) in &other.skipped {
            *self.skipped.entry(reason.clone()).or_default() += n;
        }
        for (profile, n) in &other.srtp_profiles {
            *self.srtp_profiles.entry(profile.clone()).or_default() += n;
        }
        self.feedback.nacked_packets += other.feedback.nacked_packets;
        self.feedback.keyframe_requests_received += other.feedback.keyframe_requests_received;
        self.feedback.plis_sent += other.feedback.plis_sent;
        self.mix_frames += other.mix_frames;
        self.data_received += other.data_received;
        self.data_delivered += other.data_delivered;
        for (reason, n) in &other.plain_rtp_dropped {
            *self.plain_rtp_dropped.entry(reason.clone()).or_default() += n;
        }
    }
}

/// A phone or bot that joins a room over plain RTP (`POST
/// /v1/rooms/{room}/rtp_participants`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRtpParticipantRequest {
    pub identity: String,
    /// Display name; the identity when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// `opus`, `pcmu` or `pcma`.
    pub codec: String,
    /// Where Chorus sends the room's audio (`ip:port`); its RTP must come from the
    /// same IP address.
    pub remote_address: String,
    /// Opus only: the dynamic payload type, 96 to 127 (111 when absent).
    #[serde(default)]
    pub payload_type: Option<u8>,
    /// SRTP both ways, keyed by SDES: the participant's key (what it sends with).
    #[serde(default)]
    pub srtp: Option<SdesParams>,
    /// The call is not answered yet (a gateway playing ringback or an announcement):
    /// the participant is `early_media`, heard in the room, sent nothing, until
    /// `POST …/rtp_participants/{identity}/answer`.
    #[serde(default)]
    pub early_media: bool,
}

/// One side's SDES crypto attribute (RFC 4568), as SDP's `a=crypto` carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SdesParams {
    /// `AES_CM_128_HMAC_SHA1_80`, the one suite taken.
    pub suite: String,
    /// Base64 of the 30-byte master key and salt (`inline:` optional; no lifetime or MKI).
    pub key: String,
}

/// A plain-RTP participant as created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RtpParticipantInfo {
    pub participant: ParticipantInfo,
    pub codec: String,
    pub payload_type: u8,
    /// Where Chorus receives its RTP (`ip:port`).
    pub local_address: String,
    pub remote_address: String,
    /// The SSRC of the audio Chorus sends it.
    pub ssrc: u32,
    /// With SRTP: Chorus's key, what it sends with (absent without SRTP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub srtp: Option<SdesParams>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomList {
    pub rooms: Vec<RoomInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParticipantList {
    pub participants: Vec<ParticipantInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoveParticipantRequest {
    /// Free text shown to the removed client in its `left` frame's log; optional.
    #[serde(default)]
    pub message: Option<String>,
}

/// Longest `message` a removal may carry, in bytes.
pub const MAX_REMOVAL_MESSAGE: usize = 256;

/// The query of a removal: what the removed client reads in its `left` frame.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RemoveParticipantQuery {
    #[serde(default)]
    pub message: Option<String>,
}

/// Holds or resumes a participant (as its own `hold` / `unhold`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldRequest {
    pub held: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MuteTrackRequest {
    pub muted: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdatePermissionsRequest {
    pub grants: Grants,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateTokenRequest {
    pub room: String,
    pub identity: String,
    #[serde(default)]
    pub name: Option<String>,
    /// Lifetime in seconds; default 3600, at most 86400.
    #[serde(default)]
    pub ttl_secs: Option<u64>,
    #[serde(default)]
    pub grants: Option<Grants>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub token: String,
    /// WebSocket URL to open with the token.
    pub url: String,
}

/// The server's drain (`POST /v1/drain`, SIGTERM): it takes no new rooms or participants,
/// has told everyone, and stops when the last participant has left or at the deadline,
/// whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainStatus {
    /// When the drain began, Unix ms.
    pub since_unix_ms: u64,
    /// When the server stops at the latest, Unix ms.
    pub deadline_unix_ms: u64,
}

/// What the media plane did since the server started (`GET /v1/media`). Every count
/// only grows; compare two readings to see a rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaStats {
    /// Datagrams read from the media port.
    pub received: u64,
    /// Receive system calls; `received / receive_syscalls` is the batching. Absent from
    /// servers older than this field: 0.
    #[serde(default)]
    pub receive_syscalls: u64,
    /// UDP payload bytes received (absent from older servers: 0).
    #[serde(default)]
    pub received_bytes: u64,
    /// Received datagrams no connection would take, by cause.
    pub unroutable: UnroutableStats,
    /// Datagrams dropped because their room's inbox was full (the room is overloaded).
    pub inbox_full: u64,
    /// Datagrams handed to the kernel.
    pub sent: u64,
    /// Their UDP payload bytes (absent from older servers: 0).
    #[serde(default)]
    pub sent_bytes: u64,
    /// Datagrams dropped because the socket buffer was full.
    pub send_dropped: u64,
    /// Datagrams the kernel refused for good.
    pub send_errors: u64,
    /// Send system calls; `sent / send_syscalls` is the batching.
    pub send_syscalls: u64,
    /// Datagrams that left inside a UDP GSO message.
    pub gso_datagrams: u64,
    /// SRTP/SRTCP of an established connection that did not authenticate (forged, a
    /// replay, or damaged), dropped on the I/O thread.
    pub srtp_refused: u64,
    /// SRTP/SRTCP beyond a connection's packet rate (a flooding client), dropped on the
    /// I/O thread before decryption (absent from older servers: 0).
    #[serde(default)]
    pub rate_limited: u64,
    pub rtcp: RtcpStats,
}

/// Unroutable datagrams by cause: each points at a different culprit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnroutableStats {
    /// Not a binding request, from an address no connection confirmed.
    pub unknown_addr: u64,
    /// A binding request whose USERNAME names no connection.
    pub unknown_ufrag: u64,
    /// A binding request that failed its connection's MESSAGE-INTEGRITY check.
    pub bad_integrity: u64,
}

/// Inbound RTCP packets (compounds taken apart) read, or skipped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RtcpStats {
    /// Packets read and acted on (or found to need nothing).
    pub delivered: u64,
    /// Skipped packets by reason (`unknown_type`, `malformed`). A map, so that a
    /// reason the server learns later appears without a new field.
    pub dropped: BTreeMap<String, u64>,
}

/// Every error of the control API: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}
