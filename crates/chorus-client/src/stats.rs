//! Counters a test reads through [`crate::Client::stats`] or [`crate::Engine::stats`].

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use chorus_protocol::MediaKind;
use rtc::rtp;

use crate::frames::VideoFrames;
use crate::h264;
use crate::latency::{LatencyHistogram, read_stamp};
use crate::pauses::ToldPauses;
use crate::seq_set::SeqSet;
use crate::talk::{SAMPLE_RATE, level_dbov};
use crate::vp8::parse_vp8_frame_start;
use crate::vp9::Vp9Reception;
pub use rtc::peer_connection::state::RTCPeerConnectionState as PeerConnectionState;

/// Snapshot of everything the client counted.
#[derive(Debug, Clone, Default)]
pub struct ClientStats {
    pub publisher: PeerStats,
    pub subscriber: PeerStats,
    /// Remote tracks received on the subscriber connection, by server track id
    /// (the media stream id of the track).
    pub inbound: HashMap<String, InboundTrackStats>,
    /// Own published tracks, by server track id.
    pub outbound: HashMap<String, OutboundTrackStats>,
    /// Server events dropped because nobody read them (the queue is bounded).
    pub events_dropped: u64,
    /// Data messages delivered that the handle's queue had no room for.
    pub data_dropped: u64,
    /// Data messages this client sent (on either channel).
    pub data_sent: u64,
    /// Data messages delivered to this client (on either channel).
    pub data_received: u64,
    /// Offers or answers from the server that the WebRTC core rejected.
    pub negotiation_failures: u64,
    /// Videos the server said it paused for this client (`video_paused`), by server
    /// track id: when, and for how long.
    pub told_paused: HashMap<String, ToldPauses>,
}

/// One peer connection.
#[derive(Debug, Clone, Default)]
pub struct PeerStats {
    /// Latest connection state; `None` before the first change.
    pub state: Option<PeerConnectionState>,
    /// RTCP sender reports received.
    pub sender_reports: u64,
    /// RTCP receiver reports received.
    pub receiver_reports: u64,
    /// PLIs received (publisher: for our tracks).
    pub plis: u64,
    /// FIR entries received.
    pub firs: u64,
    /// Generic NACKs received.
    pub nacks: u64,
    /// The SRTP protection profile DTLS negotiated, as rtc names it
    /// (`SRTP_AEAD_AES_128_GCM`, `SRTP_AES128_CM_HMAC_SHA1_80`); `None` before the
    /// connection is first up.
    pub srtp_profile: Option<String>,
    /// Datagrams whose arrival time, as the connection took it (transport-wide CC
    /// feedback, latency), is the kernel's receive time (`SO_TIMESTAMPNS`).
    pub arrivals_stamped: u64,
    /// Datagrams that came without a kernel receive time: their arrival time is when
    /// the client read them.
    pub arrivals_unstamped: u64,
    /// Of the stamped, those dated later than their stamp: the connection had been
    /// driven past it before they were read (its clock does not run backwards).
    pub arrivals_clamped: u64,
    /// How much later than their stamps those were dated, in all (µs).
    pub arrivals_clamped_micros: u64,
    /// Datagrams the kernel dropped on the connection's sockets, their receive buffers
    /// full (`SO_RXQ_OVFL`): loss the client caused by not reading in time.
    pub socket_drops: u64,
}

#[derive(Debug, Clone)]
pub struct InboundTrackStats {
    pub kind: MediaKind,
    pub ssrc: u32,
    pub packets: u64,
    /// RTP payload bytes.
    pub bytes: u64,
    pub first_packet_at: Option<Instant>,
    pub last_packet_at: Option<Instant>,
    /// Keyframes seen: the first packet of a VP8 or VP9 keyframe, or an H.264 packet
    /// (payload type 102) that starts with an SPS (encoders send one before each IDR
    /// picture).
    pub keyframes: u64,
    /// Width and height the last VP8 keyframe's header gives: which simulcast layer
    /// the server forwards. Of VP9 (payload type 98): the size the last scalability
    /// structure gives the highest spatial layer of the last picture received, which
    /// SVC layers the server forwards.
    pub frame_size: Option<(u16, u16)>,
    /// What VP9 descriptors told so far (VP9 only).
    vp9: Option<Vp9Reception>,
    /// PLIs this client sent for the track.
    pub plis_sent: u64,
    /// Lowest and highest extended (64-bit) sequence number received; `None` before the
    /// first packet. See [`InboundTrackStats::expected_packets`].
    pub seq_range: Option<(u64, u64)>,
    /// Every extended sequence number received, once: `received.len()` is `packets`
    /// without duplicates (retransmissions, replays).
    pub received: SeqSet,
    /// Receive time minus the send time stamped in the payload, per stamped packet
    /// (synthetic video sent by a client of the same process).
    pub latency: LatencyHistogram,
    /// What Opus decoding found (audio tracks, when `MediaProfile::decode_audio`).
    pub decoded: Option<DecodedAudio>,
    /// Which video frames a decoder could show (video tracks).
    pub frames: VideoFrames,
}

impl InboundTrackStats {
    /// Nothing received yet.
    pub fn new(kind: MediaKind, ssrc: u32) -> Self {
        Self {
            kind,
            ssrc,
            packets: 0,
            bytes: 0,
            first_packet_at: None,
            last_packet_at: None,
            keyframes: 0,
            frame_size: None,
            vp9: None,
            plis_sent: 0,
            seq_range: None,
            received: SeqSet::default(),
            latency: LatencyHistogram::default(),
            decoded: None,
            frames: VideoFrames::default(),
        }
    }

    /// Counts one received packet: totals, sequence range, keyframes, frames, latency
    /// stamp. True when the receiver should ask for a keyframe: its video is stuck on a
    /// packet that does not come ([`VideoFrames`]).
    pub(crate) fn on_rtp(&mut self, now: Instant, packet: &rtp::Packet) -> bool {
        self.packets += 1;
        self.bytes += packet.payload.len() as u64;
        self.first_packet_at.get_or_insert(now);
        self.last_packet_at = Some(now);
        let seq = packet.header.sequence_number;
        let extended = match self.seq_range {
            // Start one cycle up, so a packet reordered before the first stays positive.
            None => 1 << 16 | u64::from(seq),
            Some((_, high)) => {
                let step = i64::from(seq.wrapping_sub(high as u16) as i16);
                (high as i64 + step).max(0) as u64
            }
        };
        self.seq_range = Some(self.seq_range.map_or((extended, extended), |(low, high)| {
            (low.min(extended), high.max(extended))
        }));
        self.received.insert(extended);
        if self.kind != MediaKind::Video {
            return false;
        }
        let keyframe = if packet.header.payload_type == chorus_rtc_profile::H264_PT {
            let nal = h264::parse_h264_payload(&packet.payload);
            nal.is_some_and(|p| p.nal_type == h264::NAL_SPS)
        } else if packet.header.payload_type == chorus_rtc_profile::VP9_PT {
            let vp9 = self.vp9.get_or_insert_with(Default::default);
            let (keyframe, size) = vp9.on_payload(&packet.payload, packet.header.marker);
            self.frame_size = size.or(self.frame_size);
            keyframe
        } else if let Some(frame) =
            parse_vp8_frame_start(&packet.payload).filter(|frame| frame.keyframe)
        {
            self.frame_size = Some((frame.width, frame.height));
            true
        } else {
            false
        };
        self.keyframes += u64::from(keyframe);
        if let Some(sent) = read_stamp(&packet.payload) {
            self.latency.record(now.saturating_duration_since(sent));
        }
        self.frames.on_packet(
            now,
            extended,
            packet.header.marker,
            keyframe,
            &self.received,
        )
    }

    /// Packets the sender numbered from the lowest to the highest sequence number
    /// received: what should have arrived, whoever sent it (the server's mix has no
    /// publisher to ask). `expected_packets - received.len()` is the loss
    /// (`packets` also counts duplicates).
    pub fn expected_packets(&self) -> u64 {
        self.seq_range.map_or(0, |(low, high)| high - low + 1)
    }
}

/// Decoded audio of one inbound track.
#[derive(Clone, Default)]
pub struct DecodedAudio {
    /// Frames decoded.
    pub frames: u64,
    /// Packets the decoder refused.
    pub errors: u64,
    /// Frames at -50 dBov or louder: speech, not silence or comfort noise.
    pub loud_frames: u64,
    /// Sum of squared samples, full scale 1.0, and the number of samples.
    pub energy: f64,
    pub samples: u64,
    /// The last second of decoded samples (48 kHz mono), oldest first.
    pub recent: VecDeque<i16>,
}

/// Frames this loud or louder (in -dBov) count as [`DecodedAudio::loud_frames`].
const LOUD_DBOV: u8 = 50;

impl DecodedAudio {
    pub(crate) fn push(&mut self, pcm: &[i16]) {
        self.frames += 1;
        if level_dbov(pcm) <= LOUD_DBOV {
            self.loud_frames += 1;
        }
        self.energy += pcm
            .iter()
            .map(|s| (f64::from(*s) / 32768.0).powi(2))
            .sum::<f64>();
        self.samples += pcm.len() as u64;
        let keep = SAMPLE_RATE as usize;
        self.recent.extend(pcm.iter().rev().take(keep).rev());
        let excess = self.recent.len().saturating_sub(keep);
        self.recent.drain(..excess);
    }

    /// Mean level of everything decoded, in dBov (0 full scale, -inf silence).
    pub fn mean_dbov(&self) -> f64 {
        if self.samples == 0 {
            return f64::NEG_INFINITY;
        }
        10.0 * (self.energy / self.samples as f64).log10()
    }

    /// [`DecodedAudio::recent`] as one slice, for [`crate::tone_energy`].
    pub fn recent_pcm(&self) -> Vec<i16> {
        self.recent.iter().copied().collect()
    }
}

/// Counters and the mean level, not the samples.
impl fmt::Debug for DecodedAudio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecodedAudio")
            .field("frames", &self.frames)
            .field("errors", &self.errors)
            .field("loud_frames", &self.loud_frames)
            .field("mean_dbov", &self.mean_dbov())
            .field("recent_samples", &self.recent.len())
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct OutboundTrackStats {
    pub kind: MediaKind,
    pub ssrc: u32,
    pub packets: u64,
    /// RTP payload bytes.
    pub bytes: u64,
    pub frames: u64,
    pub keyframes: u64,
    pub plis_received: u64,
    pub firs_received: u64,
    pub nacks_received: u64,
    /// A simulcast camera's layers, lowest first (`ssrc` above is the lowest's); empty
    /// for a single stream.
    pub layers: Vec<OutboundLayerStats>,
}

/// What one simulcast layer of an own camera sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundLayerStats {
    pub rid: &'static str,
    pub ssrc: u32,
    pub packets: u64,
    /// RTP payload bytes.
    pub bytes: u64,
    pub frames: u64,
    pub keyframes: u64,
    /// PLIs and FIR entries for this layer's SSRC.
    pub keyframe_requests: u64,
}

impl OutboundLayerStats {
    /// Nothing sent yet.
    pub fn new(rid: &'static str, ssrc: u32) -> Self {
        Self {
            rid,
            ssrc,
            packets: 0,
            bytes: 0,
            frames: 0,
            keyframes: 0,
            keyframe_requests: 0,
        }
    }
}

impl OutboundTrackStats {
    /// Nothing received yet.
    pub fn new(kind: MediaKind, ssrc: u32) -> Self {
        Self {
            kind,
            ssrc,
            packets: 0,
            bytes: 0,
            frames: 0,
            keyframes: 0,
            plis_received: 0,
            firs_received: 0,
            nacks_received: 0,
            layers: Vec::new(),
        }
    }
}

/// Stats shared between the client task (writer) and the handle (reader).
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedStats(Arc<Mutex<ClientStats>>);

impl SharedStats {
    pub(crate) fn lock(&self) -> MutexGuard<'_, ClientStats> {
        // A panic while holding the lock leaves plain counters behind; keep using them.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn snapshot(&self) -> ClientStats {
        self.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn packet(seq: u16) -> rtp::Packet {
        rtp::Packet {
            header: rtp::Header {
                sequence_number: seq,
                ..Default::default()
            },
            payload: Bytes::from_static(&[0xf8, 0xff, 0xfe]),
        }
    }

    #[test]
    fn expected_packets_follow_sequence_numbers_across_wraps_and_reordering() {
        let cases: [(&[u16], u64, u64); 6] = [
            // (arrivals, expected, received)
            (&[], 0, 0),
            (&[7], 1, 1),
            (&[1, 2, 3, 5], 5, 4),
            (&[65534, 65535, 0, 1], 4, 4),
            (&[65535, 2], 4, 2),
            // Reordered before the first packet: still inside the range.
            (&[10, 8, 11, 9], 4, 4),
        ];
        for (arrivals, expected, received) in cases {
            let mut stats = InboundTrackStats::new(MediaKind::Audio, 1);
            for seq in arrivals {
                stats.on_rtp(Instant::now(), &packet(*seq));
            }
            assert_eq!(stats.expected_packets(), expected, "{arrivals:?}");
            assert_eq!(stats.packets, received, "{arrivals:?}");
        }
    }

    #[test]
    fn decoded_audio_keeps_one_second_and_counts_loud_frames() {
        let mut decoded = DecodedAudio::default();
        for i in 0..60 {
            let sample = if i % 2 == 0 { 3277 } else { 0 };
            decoded.push(&[sample; 960]);
        }
        assert_eq!(decoded.frames, 60);
        assert_eq!(decoded.loud_frames, 30);
        assert_eq!(decoded.recent.len(), 48_000);
        // Half the samples at -20 dBov: mean -23 dBov.
        assert!(
            (decoded.mean_dbov() + 23.0).abs() < 0.1,
            "{}",
            decoded.mean_dbov()
        );
        assert_eq!(DecodedAudio::default().mean_dbov(), f64::NEG_INFINITY);
    }
}
