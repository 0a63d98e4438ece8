//! `chorus-loadtest`: real WebRTC participants (ICE, DTLS-SRTP, synthetic Opus and
//! VP8) join a Chorus room, publish and receive, and the harness reports join times,
//! time to first media, tracks received, loss, egress rate and the server's CPU and
//! memory (read from `/proc/<pid>/stat` and `/proc/<pid>/status`).
//!
//! One process drives every participant. A run has four phases, each bounded:
//!
//! 1. **join**: participants join at `--join-rate` per second (token minted through
//!    the control API, `connect`, then `publish` of their tracks). Joins still
//!    running `--join-timeout` seconds after the last one started are abandoned.
//! 2. **media**: wait until every receiving participant gets packets on every track
//!    the others published, or `--media-timeout` seconds.
//! 3. **window**: `--seconds` of steady state; counters are read at both ends.
//! 4. **report**: figures computed from the two snapshots and the join timings.
//!
//! Loss is counted by sequence numbers over the window: for every (receiver, track)
//! pair the receiver should get, the numbers above the highest it had at the start of
//! the window up to the highest at the end are expected, and the distinct ones of them
//! that arrived are received, so duplicates and retransmissions count once and loss is
//! never negative. A published track of which the receiver got no new number in the
//! window counts everything its publisher sent in it as lost (see [`measure`]).
//! `loss = 1 - received / expected`, summed over all pairs.
//!
//! Media content: the talkers (`--talkers`) send real Opus talk, the others Opus
//! silence; every video packet carries its send time, so receivers measure the latency
//! the server adds (plus the harness's own scheduling). See `README.md`.

use std::collections::HashSet;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use base64::Engine as _;
use chorus_client::{
    AudioContent, Client, ClientConfig, ClientStats, MediaProfile, PeerConnectionState,
    TalkPattern, TrackSource, VideoCodec, connect,
};
use chorus_protocol::Grants;
use serde::Serialize;
use tokio::task::JoinSet;

pub mod janus;
pub mod measure;
pub mod plot;

/// Video payload format of the cameras (`--codec`).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodecArg {
    Vp8,
    /// RFC 6184; Chorus forwards VP8 only today, so no camera video arrives.
    H264,
}

/// How the talkers talk (`--talk-pattern`).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TalkArg {
    /// Turns of 1–4 s, pauses of 0.5–3 s.
    Conversational,
    /// Turns of 3–8 s, short breaths.
    Monologue,
    /// Interjections of 0.5–1.5 s every 5–15 s.
    Occasional,
}

/// Which SFU the participants join.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Chorus,
    Janus,
}

/// What kind of room the run builds.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// `--publishers` participants publish microphone and camera, `--subscribers`
    /// subscribe-only participants receive them (1 + 20 by default).
    Fanout,
    /// 25 participants, all publish microphone and camera, all receive all.
    #[value(name = "meeting-25")]
    Meeting25,
    /// 350 participants, all publish a microphone, 6 also a camera; everyone
    /// receives the 6 videos and all audio.
    #[value(name = "large-350")]
    Large350,
    /// 350 participants, all publish a microphone and receive all others.
    #[value(name = "audio-350")]
    Audio350,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Fanout => "fanout",
            Scenario::Meeting25 => "meeting-25",
            Scenario::Large350 => "large-350",
            Scenario::Audio350 => "audio-350",
        }
    }
}

#[derive(clap::Parser, Debug, Clone)]
#[command(about = "Load Chorus with real WebRTC participants and measure it")]
pub struct Args {
    /// HTTP base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:7880")]
    pub url: String,
    #[arg(long, default_value = "devkey")]
    pub api_key: String,
    #[arg(long, default_value = "devsecret-change-me-0123456789abcdef")]
    pub api_secret: String,
    /// Process id of the server (Chorus, or Janus with `--target janus`), for its CPU
    /// time and memory.
    #[arg(long, visible_alias = "janus-pid")]
    pub server_pid: u32,
    /// The SFU under load: Chorus at `--url`, or Janus's VideoRoom at `--janus-url`
    /// (fanout only; see `janus.rs`).
    #[arg(long, value_enum, default_value_t = Target::Chorus)]
    pub target: Target,
    /// Janus HTTP API, for `--target janus`.
    #[arg(long, default_value = "http://127.0.0.1:8088/janus")]
    pub janus_url: String,
    #[arg(long, value_enum, default_value_t = Scenario::Fanout)]
    pub scenario: Scenario,
    /// Participants in the room (overrides the scenario's count; for `fanout`
    /// the subscribers are the participants beyond the publishers).
    #[arg(long)]
    pub participants: Option<usize>,
    /// Participants that also publish a camera (for `fanout`: the publishers).
    #[arg(long)]
    pub video_publishers: Option<usize>,
    /// `fanout`: publishers (microphone + camera).
    #[arg(long, default_value_t = 1)]
    pub publishers: usize,
    /// `fanout`: subscribe-only participants.
    #[arg(long, default_value_t = 20)]
    pub subscribers: usize,
    /// Measurement window once media flows, in seconds.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Joins started per second.
    #[arg(long, default_value_t = 20.0)]
    pub join_rate: f64,
    /// Joins still running this long after the last one started are given up.
    #[arg(long, default_value_t = 30)]
    pub join_timeout: u64,
    /// Longest wait for every receiver to get every track before measuring anyway.
    #[arg(long, default_value_t = 30)]
    pub media_timeout: u64,
    /// Video frames per second (default: 30 for `fanout`, 15 otherwise).
    #[arg(long)]
    pub video_fps: Option<u32>,
    /// RTP packets per video delta frame (default: 4 × 1100 B for `fanout`, 2 × 1000 B otherwise).
    #[arg(long)]
    pub video_packets_per_frame: Option<usize>,
    /// Room name (default: a fresh `loadtest-<scenario>-<time>`).
    #[arg(long)]
    pub room: Option<String>,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Participants (the first N with a microphone) that talk: real Opus speech-like
    /// audio; the others send Opus silence with level 127.
    #[arg(long, default_value_t = 3)]
    pub talkers: usize,
    #[arg(long, value_enum, default_value_t = TalkArg::Conversational)]
    pub talk_pattern: TalkArg,
    /// Decode the received audio with Opus (about 20 µs per 20 ms per receiver) and
    /// report how much of it was sound.
    #[arg(long)]
    pub decode_audio: bool,
    /// Video payload format of the cameras.
    #[arg(long, value_enum, default_value_t = CodecArg::Vp8)]
    pub codec: CodecArg,
    /// Cameras send three simulcast layers (q/h/f). Not negotiated by the server yet:
    /// the run stops with an error.
    #[arg(long)]
    pub simulcast: bool,
    /// Write a chart of the run (SVG) to this file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

impl Args {
    /// The defaults of the command line, for `url` and `server_pid`.
    pub fn new(url: impl Into<String>, server_pid: u32, scenario: Scenario) -> Self {
        use clap::Parser as _;
        let mut args =
            Self::parse_from(["chorus-loadtest", "--server-pid", &server_pid.to_string()]);
        args.url = url.into();
        args.scenario = scenario;
        args
    }

    /// What every participant does, in join order.
    pub fn plan(&self) -> Vec<Role> {
        let publisher = Role {
            mic: true,
            camera: true,
            subscribe: true,
        };
        match self.scenario {
            Scenario::Fanout => {
                let pubs = self.video_publishers.unwrap_or(self.publishers);
                let subs = self
                    .participants
                    .map_or(self.subscribers, |n| n.saturating_sub(pubs));
                let mut roles = vec![publisher; pubs];
                roles.extend(std::iter::repeat_n(
                    Role {
                        mic: false,
                        camera: false,
                        subscribe: true,
                    },
                    subs,
                ));
                roles
            }
            Scenario::Meeting25 | Scenario::Large350 | Scenario::Audio350 => {
                let (n, v) = match self.scenario {
                    Scenario::Meeting25 => (25, None),
                    Scenario::Large350 => (350, Some(6)),
                    _ => (350, Some(0)),
                };
                let n = self.participants.unwrap_or(n);
                let v = self.video_publishers.or(v).unwrap_or(n);
                (0..n)
                    .map(|i| Role {
                        mic: true,
                        camera: i < v,
                        subscribe: true,
                    })
                    .collect()
            }
        }
    }

    fn media_profile(&self) -> MediaProfile {
        let (fps, per_frame, size) = match self.scenario {
            // About 1 Mbit/s of video: 4 packets of 1100 bytes per frame at 30 fps.
            Scenario::Fanout => (30, 4, 1100),
            // About 240 kbit/s: a small simulcast layer, as in a large meeting.
            _ => (15, 2, 1000),
        };
        let pattern = match self.talk_pattern {
            TalkArg::Conversational => TalkPattern::Conversational,
            TalkArg::Monologue => TalkPattern::Monologue,
            TalkArg::Occasional => TalkPattern::Occasional,
        };
        MediaProfile {
            video_fps: self.video_fps.unwrap_or(fps),
            video_packets_per_frame: self.video_packets_per_frame.unwrap_or(per_frame),
            video_packet_size: size,
            video_codec: match self.codec {
                CodecArg::Vp8 => VideoCodec::Vp8,
                CodecArg::H264 => VideoCodec::H264,
            },
            audio: AudioContent::Talk(pattern),
            decode_audio: self.decode_audio,
            ..MediaProfile::default()
        }
    }
}

/// What one participant does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Role {
    pub mic: bool,
    pub camera: bool,
    /// Receives the tracks of the others (always true today; publish-less
    /// participants get subscribe-only grants).
    pub subscribe: bool,
}

/// p50 / p99 / max of a set of durations, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    fn of(mut values: Vec<Duration>) -> Self {
        values.sort();
        let at = |q: f64| {
            let i = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1;
            values[i].as_secs_f64() * 1e3
        };
        if values.is_empty() {
            return Self::default();
        }
        Self {
            count: values.len(),
            p50_ms: at(0.5),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        }
    }
}

/// What one run measured. Packet and byte counts are RTP packets and RTP payload
/// bytes as the clients count them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub scenario: String,
    pub room: String,
    /// Participants planned.
    pub participants: usize,
    /// Of them, publishing anything.
    pub publishers: usize,
    /// Of them, publishing a camera.
    pub video_publishers: usize,
    /// Of them, receiving.
    pub receivers: usize,
    /// `connect` returned `joined`.
    pub joined: usize,
    pub join_failures: usize,
    /// Joined, but at least one `publish` failed.
    pub publish_failures: usize,
    /// The first distinct error messages.
    pub errors: Vec<String>,
    /// From the first join started to the last one finished.
    pub join_phase_secs: f64,
    /// From starting `connect` to receiving `joined`.
    pub join_time: Percentiles,
    /// Per receiver, from `joined` to its first inbound RTP packet.
    pub first_media: Percentiles,
    /// Per receiver with every expected track, from `joined` to the first packet of
    /// the last of them to arrive.
    pub all_media: Percentiles,
    /// Receivers that got no packet at all.
    pub receivers_without_media: usize,
    /// (receiver, track) pairs: every receiver × every track the others published.
    pub tracks_expected: u64,
    /// Of those pairs, the ones with at least one packet by the end of the window.
    pub tracks_received: u64,
    /// Receivers with every expected track when the window began.
    pub receivers_complete: usize,
    /// Publishers whose publisher connection was connected at the end of the window.
    pub publisher_connections_up: usize,
    /// Receivers whose subscriber connection was connected at the end of the window.
    pub subscriber_connections_up: usize,
    /// Waited after the join phase for media to reach everyone.
    pub media_wait_secs: f64,
    pub window_secs: f64,
    /// Packets the publishers sent in the window (server ingress).
    pub ingress_packets: u64,
    /// Packets the receivers got in the window (server egress).
    pub egress_packets: u64,
    pub egress_bytes: u64,
    pub egress_packets_per_sec: f64,
    /// RTP payload bits per second received by all receivers.
    pub egress_bitrate_bps: f64,
    /// Sum over expected (receiver, track) pairs of the sequence numbers the receiver
    /// saw numbered in the window (or, for a published track of which it saw none, the
    /// packets the publisher sent); see [`measure::pair_count`].
    pub expected_packets: u64,
    /// Of those, the distinct sequence numbers that arrived: duplicates count once.
    pub received_packets: u64,
    /// `1 - received / expected`; see the crate documentation.
    pub loss_ratio: f64,
    /// The same, audio tracks only.
    pub audio_loss_ratio: f64,
    /// The same, video tracks only.
    pub video_loss_ratio: f64,
    /// Server user+system CPU time in the window.
    pub server_cpu_micros: f64,
    pub server_cpu_percent: f64,
    pub cpu_per_egress_packet_micros: f64,
    /// Server CPU time over the packets it received (RTP from publishers) in the window.
    pub cpu_per_ingress_packet_micros: f64,
    /// User + system CPU time of this process (all the clients) in the window.
    pub harness_cpu_micros: f64,
    /// The same in % of one core.
    pub harness_cpu_percent: f64,
    /// Harness CPU time in the window over the RTP packets all its clients received in
    /// it (`egress_packets`): what receiving a packet costs the harness, sending and
    /// everything else included.
    pub harness_cpu_per_received_packet_micros: f64,
    /// Server VmRSS before the first join.
    pub rss_before_kib: u64,
    /// Server VmRSS once everyone joined and media flows (start of the window).
    pub rss_after_kib: u64,
    /// (after - before) / joined.
    pub rss_per_participant_kib: f64,
    /// Participants sending real Opus talk (the others send silence).
    pub talkers: usize,
    /// Video payload format of the cameras.
    pub video_codec: String,
    /// Send-to-receive time of video packets in the window, from the stamps in their
    /// payloads: what the server adds, plus the harness's own scheduling.
    pub video_latency: Percentiles,
    /// The same as a histogram: buckets about 3 % wide, empty ones left out.
    pub latency_histogram: Vec<measure::LatencyBucket>,
    /// With `--decode-audio`: mix frames decoded by all receivers in the window, of them
    /// at -50 dBov or louder (sound, not silence), and packets the decoder refused.
    pub audio_frames_decoded: u64,
    pub audio_frames_loud: u64,
    pub audio_decode_errors: u64,
    /// About once a second over the whole run.
    pub timeline: Vec<measure::TimelinePoint>,
    /// Start of the window on the timeline's clock (seconds since the run started).
    pub window_at_secs: f64,
}

impl Report {
    pub fn cpu_per_packet_micros(&self) -> f64 {
        per_packet_micros(self.server_cpu_micros, self.egress_packets)
    }
}

/// CPU time per packet, in µs; 0 without packets.
fn per_packet_micros(cpu_micros: f64, packets: u64) -> f64 {
    if packets == 0 {
        0.0
    } else {
        cpu_micros / packets as f64
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.window_secs.max(1e-9);
        let ms = |p: &Percentiles| {
            format!(
                "p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  (n={})",
                p.p50_ms, p.p99_ms, p.max_ms, p.count
            )
        };
        writeln!(
            f,
            "scenario             {} in room {} ({} participants, {} with camera, {} receiving)",
            self.scenario, self.room, self.participants, self.video_publishers, self.receivers
        )?;
        writeln!(
            f,
            "joined               {}/{} ({} failed, {} publish failures) in {:.1} s",
            self.joined,
            self.participants,
            self.join_failures,
            self.publish_failures,
            self.join_phase_secs
        )?;
        writeln!(f, "join time            {}", ms(&self.join_time))?;
        writeln!(
            f,
            "first media          {}, {} receivers without media",
            ms(&self.first_media),
            self.receivers_without_media
        )?;
        writeln!(f, "all tracks           {}", ms(&self.all_media))?;
        writeln!(
            f,
            "tracks received      {}/{} pairs; {}/{} receivers complete after {:.1} s",
            self.tracks_received,
            self.tracks_expected,
            self.receivers_complete,
            self.receivers,
            self.media_wait_secs
        )?;
        writeln!(
            f,
            "connections up       {}/{} publisher, {}/{} subscriber (end of window)",
            self.publisher_connections_up,
            self.publishers,
            self.subscriber_connections_up,
            self.receivers
        )?;
        writeln!(f, "window               {:.1} s", self.window_secs)?;
        writeln!(
            f,
            "ingress packets      {} ({:.0}/s)",
            self.ingress_packets,
            self.ingress_packets as f64 / secs
        )?;
        writeln!(
            f,
            "egress packets       {} ({:.0}/s)",
            self.egress_packets, self.egress_packets_per_sec
        )?;
        writeln!(
            f,
            "egress bitrate       {:.2} Mbit/s (RTP payload)",
            self.egress_bitrate_bps / 1e6
        )?;
        writeln!(
            f,
            "loss                 {:.3} % ({} of {} expected packets received; audio {:.3} %, video {:.3} %)",
            self.loss_ratio * 100.0,
            self.received_packets,
            self.expected_packets,
            self.audio_loss_ratio * 100.0,
            self.video_loss_ratio * 100.0
        )?;
        writeln!(
            f,
            "server CPU           {:.1}% of one core",
            self.server_cpu_percent
        )?;
        writeln!(
            f,
            "harness CPU          {:.1}% of one core (all clients)",
            self.harness_cpu_percent
        )?;
        writeln!(
            f,
            "CPU per egress pkt   {:.2} µs  (per ingress pkt {:.2} µs; both divide all server CPU)",
            self.cpu_per_egress_packet_micros, self.cpu_per_ingress_packet_micros
        )?;
        writeln!(
            f,
            "harness CPU per pkt  {:.2} µs per received packet (all harness CPU)",
            self.harness_cpu_per_received_packet_micros
        )?;
        write!(
            f,
            "server RSS           {:.1} MiB before, {:.1} MiB after, {:.0} KiB per participant",
            self.rss_before_kib as f64 / 1024.0,
            self.rss_after_kib as f64 / 1024.0,
            self.rss_per_participant_kib
        )?;
        write!(
            f,
            "\nvideo latency        {} ({}; includes harness scheduling)",
            ms(&self.video_latency),
            self.video_codec
        )?;
        write!(f, "\ntalkers              {}", self.talkers)?;
        if self.audio_frames_decoded + self.audio_decode_errors > 0 {
            write!(
                f,
                "\ndecoded audio        {} frames, {} with sound, {} refused",
                self.audio_frames_decoded, self.audio_frames_loud, self.audio_decode_errors
            )?;
        }
        for err in &self.errors {
            write!(f, "\nerror                {err}")?;
        }
        Ok(())
    }
}

/// Shared by the join tasks.
struct Ctx {
    url: String,
    auth: String,
    room: String,
    media: MediaProfile,
    /// Participants below this index talk; the others are silent.
    talkers: usize,
    http: reqwest::Client,
}

/// The media of participant `index`: `base`, silent unless it is one of the talkers.
pub(crate) fn participant_media(base: &MediaProfile, talkers: usize, index: usize) -> MediaProfile {
    let mut media = base.clone();
    if index >= talkers {
        media.audio = AudioContent::Silence;
    }
    media
}

async fn token(ctx: &Ctx, identity: &str, grants: &Grants) -> Result<String> {
    let body = serde_json::json!({ "room": ctx.room, "identity": identity, "grants": grants });
    let resp: serde_json::Value = ctx
        .http
        .post(format!("{}/v1/tokens", ctx.url))
        .header("authorization", format!("Basic {}", ctx.auth))
        .json(&body)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    resp["token"]
        .as_str()
        .map(str::to_owned)
        .context("no token in response")
}

/// A joined participant's counters: a Chorus [`Client`], or a Janus one (`janus.rs`).
/// Dropping it leaves the room.
trait Participant: Send {
    fn stats(&self) -> ClientStats;
}

impl Participant for Client {
    fn stats(&self) -> ClientStats {
        Client::stats(self)
    }
}

/// A participant that joined.
struct Member {
    index: usize,
    client: Box<dyn Participant>,
    joined_at: Instant,
    /// Own track ids.
    tracks: Vec<String>,
    subscribe: bool,
}

struct JoinOutcome {
    member: Member,
    join_time: Duration,
    publish_error: Option<String>,
}

async fn join_one(ctx: Arc<Ctx>, index: usize, role: Role) -> Result<JoinOutcome> {
    let grants = if role.mic || role.camera {
        Grants::default()
    } else {
        Grants::subscribe_only()
    };
    let token = token(&ctx, &format!("p{index:03}"), &grants)
        .await
        .context("token")?;
    let mut cfg = ClientConfig::new(ctx.url.replacen("http", "ws", 1), token);
    cfg.media = participant_media(&ctx.media, ctx.talkers, index);
    let started = Instant::now();
    let client = connect(cfg).await.context("connect")?;
    let joined_at = Instant::now();
    let mut tracks = Vec::new();
    let mut publish_error = None;
    let sources = [
        (role.mic, TrackSource::Microphone),
        (role.camera, TrackSource::Camera),
    ];
    for (_, source) in sources.into_iter().filter(|(on, _)| *on) {
        match client.publish(source).await {
            Ok(track) => tracks.push(track.track_id),
            Err(err) => publish_error = Some(format!("publish {source:?}: {err}")),
        }
    }
    Ok(JoinOutcome {
        member: Member {
            index,
            client: Box::new(client),
            joined_at,
            tracks,
            subscribe: role.subscribe,
        },
        join_time: joined_at - started,
        publish_error,
    })
}

/// utime + stime of a process, in microseconds.
fn cpu_micros(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after_comm = &stat[stat.rfind(')').context("bad stat")? + 2..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    // USER_HZ is 100 on every Linux we target.
    Ok(ticks * 10_000)
}

/// VmRSS of a process, in KiB.
pub fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("bad VmRSS")?
        .parse()?)
}

/// Soft limit on open files of this process, if readable.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Progress shown on stderr while the run lasts.
#[derive(Default)]
struct Progress {
    phase: AtomicU8,
    joined: AtomicUsize,
    failed: AtomicUsize,
    complete: AtomicUsize,
    done: AtomicBool,
}

const PHASES: [&str; 4] = ["joining", "waiting for media", "measuring", "done"];

impl Progress {
    fn set_phase(&self, phase: u8) {
        self.phase.store(phase, Ordering::Relaxed);
    }

    /// Prints one line, rewritten in place on a terminal, every 5 s otherwise.
    fn spawn(self: &Arc<Self>, total: usize, receivers: usize) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        let started = Instant::now();
        let tty = std::io::stderr().is_terminal();
        tokio::spawn(async move {
            let mut tick = 0u64;
            loop {
                let done = me.done.load(Ordering::Relaxed);
                let line = format!(
                    "[{:5.1} s] {:<17} joined {}/{} ({} failed), complete media {}/{}",
                    started.elapsed().as_secs_f64(),
                    PHASES[me.phase.load(Ordering::Relaxed) as usize % PHASES.len()],
                    me.joined.load(Ordering::Relaxed),
                    total,
                    me.failed.load(Ordering::Relaxed),
                    me.complete.load(Ordering::Relaxed),
                    receivers,
                );
                if tty {
                    eprint!("\r{line}\x1b[K");
                    if done {
                        eprintln!();
                    }
                } else if done || tick == 0 {
                    eprintln!("{line}");
                }
                if done {
                    return;
                }
                tick = (tick + 1) % 10;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    }
}

/// Counters of everyone at one moment.
struct Snapshot {
    stats: Vec<ClientStats>,
}

impl Snapshot {
    fn take(members: &[Member]) -> Self {
        Self {
            stats: members.iter().map(|m| m.client.stats()).collect(),
        }
    }

    /// Receivers (by position in `members`) that have packets on every expected track.
    fn complete(&self, expected: &[Vec<String>]) -> usize {
        self.stats
            .iter()
            .zip(expected)
            .filter(|(s, want)| {
                !want.is_empty()
                    && want
                        .iter()
                        .all(|t| s.inbound.get(t).is_some_and(|i| i.packets > 0))
            })
            .count()
    }
}

struct JoinState<'a> {
    report: &'a mut Report,
    members: Vec<Member>,
    join_times: Vec<Duration>,
    seen: HashSet<String>,
    progress: &'a Progress,
}

impl JoinState<'_> {
    /// Keeps the first ten distinct error messages.
    fn note(&mut self, err: String) {
        if self.report.errors.len() < 10 && self.seen.insert(err.clone()) {
            self.report.errors.push(err);
        }
    }

    fn handle(&mut self, outcome: Result<Result<JoinOutcome>, tokio::task::JoinError>) {
        match outcome {
            Ok(Ok(o)) => {
                self.progress.joined.fetch_add(1, Ordering::Relaxed);
                self.join_times.push(o.join_time);
                if let Some(err) = o.publish_error {
                    self.report.publish_failures += 1;
                    self.note(err);
                }
                self.members.push(o.member);
            }
            Ok(Err(err)) => {
                self.progress.failed.fetch_add(1, Ordering::Relaxed);
                self.report.join_failures += 1;
                self.note(format!("{err:#}"));
            }
            Err(err) => {
                self.progress.failed.fetch_add(1, Ordering::Relaxed);
                self.report.join_failures += 1;
                self.note(format!("join task: {err}"));
            }
        }
    }
}

/// Joins everyone, waits until media reaches everyone, measures a window and reports.
pub async fn run(args: &Args) -> Result<Report> {
    if args.simulcast {
        anyhow::bail!(
            "--simulcast: the server does not negotiate simulcast yet (the generator is \
             chorus_client::media::SimulcastSource)"
        );
    }
    if let Some(path) = &args.plot {
        plot::check_path(path)?;
    }
    if args.codec == CodecArg::H264 && args.target == Target::Chorus {
        eprintln!(
            "warning: Chorus forwards VP8 only; with --codec h264 no camera video will arrive"
        );
    }
    let roles = args.plan();
    let total = roles.len();
    let receivers_planned = roles.iter().filter(|r| r.subscribe).count();
    let room = args.room.clone().unwrap_or_else(|| {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        format!("loadtest-{}-{secs}", args.scenario.name())
    });
    if let Some(limit) = open_files_limit() {
        let need = total as u64 * 4 + 64;
        if limit < need {
            eprintln!(
                "warning: open file limit {limit} is below the ~{need} this run needs (ulimit -n)"
            );
        }
    }
    let ctx = Arc::new(Ctx {
        url: args.url.trim_end_matches('/').to_owned(),
        auth: base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", args.api_key, args.api_secret)),
        room: room.clone(),
        media: args.media_profile(),
        talkers: args.talkers,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?,
    });
    // Encode the shared talk loop once, up front, rather than in the first talker's
    // task while the others join.
    if let (AudioContent::Talk(pattern), 1..) = (ctx.media.audio, args.talkers) {
        tokio::task::spawn_blocking(move || chorus_client::talk::talk_loop(pattern))
            .await?
            .context("encoding the talk loop")?;
    }
    let progress = Arc::new(Progress::default());
    let printer = (!args.quiet).then(|| progress.spawn(total, receivers_planned));
    let result = run_phases(args, &roles, &room, ctx, &progress).await;
    progress.set_phase(3);
    progress.done.store(true, Ordering::Relaxed);
    if let Some(printer) = printer {
        let _ = printer.await;
    }
    if let (Ok(report), Some(path)) = (&result, &args.plot) {
        plot::write_svg(report, path)?;
    }
    result
}

async fn run_phases(
    args: &Args,
    roles: &[Role],
    room: &str,
    ctx: Arc<Ctx>,
    progress: &Arc<Progress>,
) -> Result<Report> {
    let pid = args.server_pid;
    let mut report = Report {
        scenario: args.scenario.name().to_owned(),
        room: room.to_owned(),
        participants: roles.len(),
        video_publishers: roles.iter().filter(|r| r.camera).count(),
        publishers: roles.iter().filter(|r| r.mic || r.camera).count(),
        receivers: roles.iter().filter(|r| r.subscribe).count(),
        rss_before_kib: rss_kib(pid).context("server RSS")?,
        talkers: roles.iter().take(args.talkers).filter(|r| r.mic).count(),
        video_codec: format!("{:?}", args.codec).to_lowercase(),
        ..Report::default()
    };
    // The Chorus server mixes audio; an SFU without mixing forwards every track.
    let mixed_audio = args.target == Target::Chorus;
    let mut timeline = measure::Timeline::new(Instant::now(), pid);
    let mut st = JoinState {
        report: &mut report,
        members: Vec::new(),
        join_times: Vec::new(),
        seen: HashSet::new(),
        progress,
    };

    let janus = match args.target {
        Target::Janus => {
            Some(janus::JanusRoom::create(&args.janus_url, room, roles, ctx.media.clone()).await?)
        }
        Target::Chorus => None,
    };

    // Join phase: paced starts, one task per participant, one deadline for all.
    progress.set_phase(0);
    let rate = args.join_rate.max(0.01);
    let started = Instant::now();
    let mut set = JoinSet::new();
    for (i, role) in roles.iter().enumerate() {
        let at = started + Duration::from_secs_f64(i as f64 / rate);
        // Collect finished joins while pacing.
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(at.into()) => break,
                Some(outcome) = set.join_next() => st.handle(outcome),
            }
            timeline.tick(&st.members, PHASES[0]);
        }
        match &janus {
            Some(janus) => set.spawn(janus.clone().join_one(i, *role)),
            None => set.spawn(join_one(ctx.clone(), i, *role)),
        };
    }
    let deadline = Instant::now() + Duration::from_secs(args.join_timeout);
    while !set.is_empty() {
        timeline.tick(&st.members, PHASES[0]);
        // Wake at least once a second for the timeline.
        let wake = deadline.min(Instant::now() + Duration::from_secs(1));
        match tokio::time::timeout_at(wake.into(), set.join_next()).await {
            Ok(Some(outcome)) => st.handle(outcome),
            Ok(None) => break,
            Err(_) if Instant::now() < deadline => {}
            Err(_) => {
                let left = set.len();
                set.abort_all();
                st.report.join_failures += left;
                progress.failed.fetch_add(left, Ordering::Relaxed);
                st.note(format!(
                    "{left} joins unfinished {} s after the last start",
                    args.join_timeout
                ));
                break;
            }
        }
    }
    let JoinState {
        mut members,
        join_times,
        ..
    } = st;
    drop(set);
    report.join_phase_secs = started.elapsed().as_secs_f64();
    report.joined = members.len();
    report.join_time = Percentiles::of(join_times);
    members.sort_by_key(|m| m.index);

    // Who should receive what: every receiver, the video of the others and the room
    // mix if any other publishes audio (see `measure`).
    let (expected, track_owner) =
        measure::expectations(&members, &Snapshot::take(&members).stats, mixed_audio);
    let receivers_expecting = expected.iter().filter(|e| !e.is_empty()).count();

    // Media phase.
    progress.set_phase(1);
    let media_started = Instant::now();
    let media_deadline = media_started + Duration::from_secs(args.media_timeout);
    loop {
        let complete = Snapshot::take(&members).complete(&expected);
        progress.complete.store(complete, Ordering::Relaxed);
        if complete >= receivers_expecting || Instant::now() >= media_deadline {
            report.receivers_complete = complete;
            break;
        }
        timeline.tick(&members, PHASES[1]);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    report.media_wait_secs = media_started.elapsed().as_secs_f64();
    // Let keyframe requests and bandwidth settle before measuring.
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Window.
    progress.set_phase(2);
    report.rss_after_kib = rss_kib(pid).context("server RSS")?;
    let own0 = cpu_micros(std::process::id()).unwrap_or(0);
    let (cpu0, s0, t0) = (
        cpu_micros(pid).context("server CPU")?,
        Snapshot::take(&members),
        Instant::now(),
    );
    let window_end = t0 + Duration::from_secs(args.seconds);
    while Instant::now() < window_end {
        let wake = window_end.min(Instant::now() + Duration::from_millis(250));
        tokio::time::sleep_until(wake.into()).await;
        timeline.tick(&members, PHASES[2]);
    }
    let (cpu1, s1, t1) = (
        cpu_micros(pid).context("server CPU")?,
        Snapshot::take(&members),
        Instant::now(),
    );
    let own1 = cpu_micros(std::process::id()).unwrap_or(0);
    progress.set_phase(3);
    let indices: Vec<usize> = members.iter().map(|m| m.index).collect();
    timeline.finish(&indices, &s1.stats);
    let joined_at: Vec<Instant> = members.iter().map(|m| m.joined_at).collect();
    let tracks_of: Vec<usize> = members.iter().map(|m| m.tracks.len()).collect();
    // Dropping a client closes its signaling connection; the server removes it.
    drop(members);

    let secs = (t1 - t0).as_secs_f64();
    report.window_secs = secs;
    report.server_cpu_micros = cpu1.saturating_sub(cpu0) as f64;
    report.server_cpu_percent = report.server_cpu_micros / secs / 1e4;
    report.harness_cpu_micros = own1.saturating_sub(own0) as f64;
    report.harness_cpu_percent = report.harness_cpu_micros / secs / 1e4;
    let inbound =
        |s: &ClientStats, t: &str| s.inbound.get(t).map_or((0, 0), |i| (i.packets, i.bytes));
    let outbound = |s: &ClientStats, t: &str| s.outbound.get(t).map_or(0, |o| o.packets);
    for (a, b) in s0.stats.iter().zip(&s1.stats) {
        for (track, now) in &b.inbound {
            let (p, by) = inbound(a, track);
            report.egress_packets += now.packets.saturating_sub(p);
            report.egress_bytes += now.bytes.saturating_sub(by);
        }
        for (track, now) in &b.outbound {
            report.ingress_packets += now.packets.saturating_sub(outbound(a, track));
        }
    }
    let up = |p: &chorus_client::PeerStats| p.state == Some(PeerConnectionState::Connected);
    for (pos, stats) in s1.stats.iter().enumerate() {
        if tracks_of[pos] > 0 && up(&stats.publisher) {
            report.publisher_connections_up += 1;
        }
        if !expected[pos].is_empty() && up(&stats.subscriber) {
            report.subscriber_connections_up += 1;
        }
    }
    let mut first_media = Vec::new();
    let mut all_media = Vec::new();
    // (expected, received) for audio, video.
    let mut by_kind = [(0u64, 0u64); 2];
    for (pos, want) in expected.iter().enumerate() {
        let (a, b) = (&s0.stats[pos], &s1.stats[pos]);
        for track in want {
            report.tracks_expected += 1;
            // The mix has no owner: its sequence numbers say what was sent.
            let owner = track_owner
                .get(track.as_str())
                .map(|&o| (&s0.stats[o], &s1.stats[o]));
            let count = measure::pair_count(track, owner, (a, b));
            report.expected_packets += count.sent;
            report.received_packets += count.got;
            let k = usize::from(count.video);
            by_kind[k].0 += count.sent;
            by_kind[k].1 += count.got;
            if inbound(b, track).0 > 0 {
                report.tracks_received += 1;
            }
        }
        if want.is_empty() {
            continue;
        }
        let firsts: Option<Vec<Instant>> = want
            .iter()
            .map(|t| b.inbound.get(t).and_then(|i| i.first_packet_at))
            .collect();
        if let Some(last) = firsts.and_then(|f| f.into_iter().max()) {
            all_media.push(last.saturating_duration_since(joined_at[pos]));
        }
        match b.inbound.values().filter_map(|i| i.first_packet_at).min() {
            Some(first) => first_media.push(first.saturating_duration_since(joined_at[pos])),
            None => report.receivers_without_media += 1,
        }
    }
    report.first_media = Percentiles::of(first_media);
    report.all_media = Percentiles::of(all_media);
    let loss = |(expected, received): (u64, u64)| {
        if expected == 0 {
            0.0
        } else {
            1.0 - received as f64 / expected as f64
        }
    };
    report.loss_ratio = loss((report.expected_packets, report.received_packets));
    report.audio_loss_ratio = loss(by_kind[0]);
    report.video_loss_ratio = loss(by_kind[1]);
    report.egress_packets_per_sec = report.egress_packets as f64 / secs;
    report.egress_bitrate_bps = report.egress_bytes as f64 * 8.0 / secs;
    report.cpu_per_egress_packet_micros = report.cpu_per_packet_micros();
    report.cpu_per_ingress_packet_micros =
        report.server_cpu_micros / report.ingress_packets.max(1) as f64;
    report.harness_cpu_per_received_packet_micros =
        per_packet_micros(report.harness_cpu_micros, report.egress_packets);
    report.rss_per_participant_kib =
        (report.rss_after_kib as f64 - report.rss_before_kib as f64) / report.joined.max(1) as f64;
    let latency = measure::window_latency(&s0.stats, &s1.stats);
    report.video_latency = measure::percentiles(&latency);
    report.latency_histogram = measure::buckets(&latency);
    (
        report.audio_frames_decoded,
        report.audio_frames_loud,
        report.audio_decode_errors,
    ) = measure::decoded_audio(&s0.stats, &s1.stats);
    report.window_at_secs = (t0 - timeline.started).as_secs_f64();
    report.timeline = timeline.points;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harness_cpu_per_received_packet() {
        let report = Report {
            window_secs: 10.0,
            harness_cpu_micros: 3_000_000.0,
            harness_cpu_percent: 30.0,
            harness_cpu_per_received_packet_micros: per_packet_micros(3_000_000.0, 600_000),
            server_cpu_micros: 1_200_000.0,
            egress_packets: 600_000,
            ..Report::default()
        };
        // 3 s of CPU over 600 000 packets: 5 µs each; the server's 1.2 s: 2 µs.
        assert_eq!(report.harness_cpu_per_received_packet_micros, 5.0);
        assert_eq!(report.cpu_per_packet_micros(), 2.0);
        assert_eq!(per_packet_micros(3_000_000.0, 0), 0.0);
        let text = report.to_string();
        assert!(
            text.contains("harness CPU per pkt  5.00 µs per received packet"),
            "{text}"
        );
    }
}
