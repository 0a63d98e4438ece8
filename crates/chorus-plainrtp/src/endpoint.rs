//! One plain-RTP participant without I/O: datagrams and the room's mix go in with the
//! time; 20 ms frames of 48 kHz samples for the mixer, RTP packets to send and the
//! decision that its RTP stopped come out.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chorus_core::{SeqUnwrapper, TimestampUnwrapper};

use crate::codec::PlainCodec;
use crate::resample::{Downsampler, FACTOR, Upsampler};
use crate::rtp::{self, RtpHeader};
use crate::sdes::{SdesKey, Srtp};

/// Samples in one 20 ms frame at the mixer's 48 kHz.
pub const FRAME_SAMPLES: usize = 960;
/// Longest audio one packet may carry, or a gap may be filled with (1 s).
const MAX_SPAN_MS: u64 = 1_000;
/// Frames waiting for the room at most (a burst beyond is dropped, oldest first).
const MAX_READY: usize = 50;

/// What a plain-RTP participant is set up with.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    pub codec: PlainCodec,
    /// The payload type it sends and is sent (G.711's static one, or Opus's dynamic one).
    pub payload_type: u8,
    /// Where the room's audio goes. Its RTP must come from the same IP address (any port:
    /// gateways often send from another port than they receive on).
    pub remote: SocketAddr,
    /// The SSRC of what Chorus sends, and the first RTP timestamp.
    pub ssrc: u32,
    pub initial_timestamp: u32,
    /// No RTP this long (from creation, or since the last good packet): it leaves.
    pub timeout: Duration,
    /// SRTP both ways: the participant's key (what it sends), then Chorus's.
    pub srtp: Option<(SdesKey, SdesKey)>,
}

/// Why an endpoint cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("creating the Opus decoder failed")]
    Opus(#[source] opus::Error),
    #[error(transparent)]
    Srtp(#[from] crate::sdes::SdesError),
}

/// A packet not taken, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Not RTP, or RTCP (not read).
    BadPacket,
    /// From another IP address than the participant's.
    WrongSource,
    /// Another payload type than the negotiated one (comfort noise, DTMF, …).
    WrongPayloadType,
    /// Older than what was already played out, or a duplicate.
    Late,
    /// More than a second of audio in one packet.
    TooLong,
    /// Opus that does not decode.
    DecodeError,
    /// SRTP that does not authenticate (another key, forged, damaged, a replay), or
    /// plain RTP where SRTP is expected.
    SrtpAuth,
    /// A decoded frame the room had no room for (its command channel was full: the
    /// room is overloaded). Counted by the room's driver, not the endpoint.
    RoomBusy,
    /// A frame of the room's mix for it that its task had not taken in time (it fell
    /// behind). Counted by the room's driver, not the endpoint.
    MixBehind,
}

impl DropReason {
    pub const ALL: [DropReason; 9] = [
        Self::BadPacket,
        Self::WrongSource,
        Self::WrongPayloadType,
        Self::Late,
        Self::TooLong,
        Self::DecodeError,
        Self::SrtpAuth,
        Self::RoomBusy,
        Self::MixBehind,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadPacket => "bad_packet",
            Self::WrongSource => "wrong_source",
            Self::WrongPayloadType => "wrong_payload_type",
            Self::Late => "late",
            Self::TooLong => "too_long",
            Self::DecodeError => "decode_error",
            Self::SrtpAuth => "srtp_auth",
            Self::RoomBusy => "room_busy",
            Self::MixBehind => "mix_behind",
        }
    }
}

/// What happened to its packets so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointStats {
    pub received: u64,
    pub frames_in: u64,
    pub packets_out: u64,
    /// By [`DropReason`], in the order of [`DropReason::ALL`].
    pub dropped: [u64; DropReason::ALL.len()],
    /// Frames the room had not taken when more came (a burst over 1 s).
    pub frames_overflowed: u64,
}

impl EndpointStats {
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason as usize]
    }
}

/// 20 ms of the participant's voice at 48 kHz, numbered for the mixer's jitter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundFrame {
    pub seq: u64,
    pub pcm: Vec<i16>,
}

/// One frame of the room's mix for this participant.
#[derive(Debug, Clone, Copy)]
pub enum MixAudio<'a> {
    /// 960 samples at 48 kHz, its mix-minus-self (G.711 participants).
    Pcm(&'a [i16]),
    /// The mixer's Opus packet for it (Opus participants).
    Opus(&'a [u8]),
}

/// Why a participant is let go by its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gone {
    /// No RTP for [`EndpointConfig::timeout`].
    RtpTimeout,
}

enum Decoding {
    G711(crate::g711::Law, Box<Upsampler>),
    Opus(opus::Decoder),
}

pub struct Endpoint {
    config: EndpointConfig,
    srtp: Option<Srtp>,
    decoding: Decoding,
    down: Downsampler,
    ssrc_in: Option<u32>,
    seq_in: SeqUnwrapper,
    ts_in: TimestampUnwrapper,
    /// The RTP timestamp the next packet should start at.
    expected_ts: Option<u64>,
    /// Decoded 48 kHz samples not yet a whole frame.
    pending: Vec<i16>,
    ready: VecDeque<InboundFrame>,
    next_frame: u64,
    /// The mix frame the first packet sent carried, and its RTP timestamp.
    out_base: Option<(u64, u32)>,
    out_seq: u16,
    last_heard: Instant,
    stats: EndpointStats,
    scratch: Vec<i16>,
    payload: Vec<u8>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("config", &self.config)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    pub fn new(config: EndpointConfig, now: Instant) -> Result<Self, EndpointError> {
        let decoding = match config.codec.law() {
            Some(law) => Decoding::G711(law, Box::default()),
            None => Decoding::Opus(
                opus::Decoder::new(48_000, opus::Channels::Mono).map_err(EndpointError::Opus)?,
            ),
        };
        let srtp = match &config.srtp {
            Some((remote, local)) => Some(Srtp::new(remote, local)?),
            None => None,
        };
        Ok(Self {
            srtp,
            decoding,
            down: Downsampler::default(),
            ssrc_in: None,
            seq_in: SeqUnwrapper::default(),
            ts_in: TimestampUnwrapper::default(),
            expected_ts: None,
            pending: Vec::with_capacity(2 * FRAME_SAMPLES),
            ready: VecDeque::new(),
            next_frame: 0,
            out_base: None,
            out_seq: (config.ssrc >> 16) as u16,
            last_heard: now,
            stats: EndpointStats::default(),
            scratch: vec![0; 5_760],
            payload: Vec::with_capacity(1_500),
            config,
        })
    }

    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }

    pub fn stats(&self) -> EndpointStats {
        self.stats
    }

    /// A datagram that arrived from `from`. Its audio comes out of [`Self::poll_frame`].
    pub fn handle_datagram(
        &mut self,
        from: SocketAddr,
        data: &[u8],
        now: Instant,
    ) -> Result<(), DropReason> {
        self.stats.received += 1;
        let result = self.take(from, data, now);
        if let Err(reason) = result {
            self.stats.dropped[reason as usize] += 1;
        }
        result
    }

    fn take(&mut self, from: SocketAddr, data: &[u8], now: Instant) -> Result<(), DropReason> {
        if from.ip() != self.config.remote.ip() {
            return Err(DropReason::WrongSource);
        }
        let plain;
        let data = match self.srtp.as_mut() {
            Some(srtp) => {
                // RTCP (SRTCP) is told by its clear header, before any key is tried.
                if let Err(rtp::RtpError::Rtcp | rtp::RtpError::TooShort | rtp::RtpError::Version) =
                    rtp::parse(data)
                {
                    return Err(DropReason::BadPacket);
                }
                plain = srtp.unprotect(data).ok_or(DropReason::SrtpAuth)?;
                &plain[..]
            }
            None => data,
        };
        let (header, payload) = rtp::parse(data).map_err(|_| DropReason::BadPacket)?;
        if header.payload_type != self.config.payload_type {
            return Err(DropReason::WrongPayloadType);
        }
        if self.ssrc_in != Some(header.ssrc) {
            // A new stream (a gateway's call transfer): numbering starts over.
            self.ssrc_in = Some(header.ssrc);
            self.seq_in = SeqUnwrapper::default();
            self.ts_in = TimestampUnwrapper::default();
            self.expected_ts = None;
        }
        let _seq = self.seq_in.unwrap(header.seq);
        let ts = self.ts_in.unwrap(header.timestamp).0;
        let clock = u64::from(self.config.codec.clock_rate());
        let max_span = clock * MAX_SPAN_MS / 1_000;
        let expected = *self.expected_ts.get_or_insert(ts);
        if ts < expected {
            return Err(DropReason::Late);
        }
        let samples = match &mut self.decoding {
            Decoding::G711(..) => payload.len() as u64,
            Decoding::Opus(decoder) => {
                let n = decoder
                    .decode(payload, &mut self.scratch, false)
                    .map_err(|_| DropReason::DecodeError)?;
                n as u64
            }
        };
        if samples > max_span {
            return Err(DropReason::TooLong);
        }
        self.last_heard = now;
        let gap = ts - expected;
        if gap > max_span {
            // A long silence (or a jump): start again from here.
            self.pending.clear();
        } else if gap > 0 {
            self.fill_silence(gap as usize);
        }
        match &mut self.decoding {
            Decoding::G711(law, up) => {
                let law = *law;
                self.scratch.clear();
                self.scratch.extend(payload.iter().map(|&b| law.decode(b)));
                up.process(&self.scratch, &mut self.pending);
                self.scratch.resize(5_760, 0);
            }
            Decoding::Opus(_) => {
                self.pending
                    .extend_from_slice(&self.scratch[..samples as usize]);
            }
        }
        self.expected_ts = Some(ts + samples);
        self.cut_frames();
        Ok(())
    }

    /// Silence for a gap of `ticks` in the codec's clock: the room hears time pass.
    fn fill_silence(&mut self, ticks: usize) {
        match &mut self.decoding {
            Decoding::G711(_, up) => {
                let zeros = vec![0i16; ticks];
                up.process(&zeros, &mut self.pending);
            }
            Decoding::Opus(_) => self.pending.resize(self.pending.len() + ticks, 0),
        }
    }

    fn cut_frames(&mut self) {
        let mut at = 0;
        while self.pending.len() - at >= FRAME_SAMPLES {
            if self.ready.len() >= MAX_READY {
                self.ready.pop_front();
                self.stats.frames_overflowed += 1;
            }
            self.ready.push_back(InboundFrame {
                seq: self.next_frame,
                pcm: self.pending[at..at + FRAME_SAMPLES].to_vec(),
            });
            self.next_frame += 1;
            self.stats.frames_in += 1;
            at += FRAME_SAMPLES;
        }
        self.pending.drain(..at);
    }

    /// The next 20 ms of its voice for the mixer.
    pub fn poll_frame(&mut self) -> Option<InboundFrame> {
        self.ready.pop_front()
    }

    /// Makes the RTP packet carrying mix frame `mix_seq` into `out`; `false` when the
    /// audio does not fit the codec (PCM for Opus, Opus for G.711, not 20 ms).
    pub fn send_mix(&mut self, mix_seq: u64, audio: MixAudio<'_>, out: &mut Vec<u8>) -> bool {
        self.payload.clear();
        match (audio, self.config.codec.law()) {
            (MixAudio::Pcm(pcm), Some(law)) if pcm.len() == FRAME_SAMPLES => {
                self.scratch.clear();
                self.down.process(pcm, &mut self.scratch);
                self.payload
                    .extend(self.scratch.iter().map(|&s| law.encode(s)));
                self.scratch.resize(5_760, 0);
                debug_assert_eq!(self.payload.len(), FRAME_SAMPLES / FACTOR);
            }
            (MixAudio::Opus(packet), None) if !packet.is_empty() => {
                self.payload.extend_from_slice(packet);
            }
            _ => return false,
        }
        // The timestamp follows the mix's frame numbers: a frame the mixer skipped
        // leaves its 20 ms in the timestamps, as it would on a phone line.
        let ticks = u64::from(self.config.codec.frame_ticks());
        let (base_seq, base_ts) = *self
            .out_base
            .get_or_insert((mix_seq, self.config.initial_timestamp));
        let frames = mix_seq.wrapping_sub(base_seq);
        let timestamp = base_ts.wrapping_add(frames.wrapping_mul(ticks) as u32);
        let header = RtpHeader {
            marker: self.stats.packets_out == 0,
            payload_type: self.config.payload_type,
            seq: self.out_seq,
            timestamp,
            ssrc: self.config.ssrc,
        };
        self.out_seq = self.out_seq.wrapping_add(1);
        self.stats.packets_out += 1;
        rtp::write(&header, &self.payload, out);
        match self.srtp.as_mut() {
            Some(srtp) => srtp.protect(out),
            None => true,
        }
    }

    /// When it leaves unless RTP comes.
    pub fn poll_timeout(&self) -> Instant {
        self.last_heard + self.config.timeout
    }

    pub fn handle_timeout(&mut self, now: Instant) -> Option<Gone> {
        (now >= self.poll_timeout()).then_some(Gone::RtpTimeout)
    }
}

#[cfg(test)]
mod tests;
