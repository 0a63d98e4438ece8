//! What the user asks for: the command line (`Args`), its value types, the
//! scenarios and the plan of participant roles they expand to.

use std::path::PathBuf;

use chorus_client::{AudioContent, DataMode, MediaProfile, SyntheticData, TalkPattern, VideoCodec};

/// Video payload format of the cameras (`--codec`).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodecArg {
    Vp8,
    /// RFC 6184, packetization mode 1.
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

/// How receivers show the cameras (`--view`).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewArg {
    /// No `track_settings`: the server sends each receiver the highest simulcast layer
    /// arriving.
    Any,
    /// A meeting's tile view: every camera in a 320x180 tile, the first camera (its
    /// publisher is the first talker) as the speaker's view at 1280x720; each receiver
    /// sends `track_settings` for a camera once its packets arrive. Chorus only.
    Tiles,
}

impl ViewArg {
    pub fn name(self) -> &'static str {
        match self {
            ViewArg::Any => "any",
            ViewArg::Tiles => "tiles",
        }
    }
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
    /// A steady room of `--steady` (25, as `meeting-25`) measured while storms of
    /// `--participants` (350) join and leave a second room for `--duration` seconds
    /// (`churn.rs`).
    Churn,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Fanout => "fanout",
            Scenario::Meeting25 => "meeting-25",
            Scenario::Large350 => "large-350",
            Scenario::Audio350 => "audio-350",
            Scenario::Churn => "churn",
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
    /// Cameras send three simulcast layers (rids q/h/f: 320x180, 640x360, 1280x720 at
    /// 150, 500, 1500 kbit/s, at --video-fps) instead of one stream; receivers ask for
    /// no layer, so the server forwards each the highest arriving. Chorus only.
    #[arg(long)]
    pub simulcast: bool,
    /// Cameras send VP9 (whatever `--codec` says) with three spatial and three temporal
    /// layers in one stream, as Chromium's `L3T3_KEY`: 320x180, 640x360, 1280x720 at
    /// about 150, 450, 1200 kbit/s, temporal layers 0-2-1-2 at --video-fps. The server
    /// forwards each receiver the spatial layers up to the one that fits its view.
    /// Chorus only.
    #[arg(long, conflicts_with = "simulcast")]
    pub svc: bool,
    /// Receivers answer without transport-wide congestion control: the server then has no
    /// bandwidth estimate for them and allocates nothing. The harness's clients share
    /// this process's CPU, so their feedback's delays measure that CPU, not a link, and
    /// on a loaded machine read as congestion. Chorus only.
    #[arg(long)]
    pub no_transport_cc: bool,
    /// Every participant opens the data channels and sends this many data messages a
    /// second to the room (reliable ones; unreliable with `--data-lossy`); the report
    /// counts those sent, delivered and lost in the window. The server refuses more than
    /// `rooms.data_messages_per_second` (50 by default). Chorus only.
    #[arg(long, default_value_t = 0)]
    pub data_rate: u32,
    /// With `--data-rate`: on the unreliable channel (`_lossy`).
    #[arg(long)]
    pub data_lossy: bool,
    /// How receivers show the cameras: `tiles` asks for small tiles and one large
    /// speaker view (with `--simulcast` or `--svc`, the server then forwards the low
    /// layer of every camera but the speaker's).
    #[arg(long, value_enum, default_value_t = ViewArg::Any)]
    pub view: ViewArg,
    /// With `--view tiles`: the size of the speaker's view, `WIDTHxHEIGHT` (the top
    /// layer fits 1280x720, the middle one 640x360).
    #[arg(long, default_value = "1280x720", value_parser = parse_size)]
    pub speaker_size: (u32, u32),
    /// Write a chart of the run (SVG) to this file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// `churn`: participants of the steady room (microphone and camera, as `meeting-25`).
    #[arg(long, default_value_t = 25)]
    pub steady: usize,
    /// `churn`: how long storms keep starting, in seconds (the last one runs to its end).
    #[arg(long, default_value_t = 60)]
    pub duration: u64,
    /// `churn`: every participant of a storm joins within this many seconds.
    #[arg(long, default_value_t = 10.0)]
    pub storm_seconds: f64,
    /// `churn`: a participant stays between `--stay-min` and `--stay-max` seconds.
    #[arg(long, default_value_t = 2.0)]
    pub stay_min: f64,
    #[arg(long, default_value_t = 10.0)]
    pub stay_max: f64,
    /// `churn`: the share of participants that vanish without a goodbye (media and ICE
    /// stop, the socket stays silent); half of the rest `leave`, half close the socket.
    #[arg(long, default_value_t = 0.3)]
    pub vanish_share: f64,
    /// `churn`: seeds the join offsets, stays and goodbyes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Puts the last K receivers behind a downlink capped at `--cap-kbps` (inside the
    /// client, see `capped.rs`); the report gives each one's received video bitrate,
    /// layer and frame rate. With `--simulcast`, they should get a lower layer.
    #[arg(long, default_value_t = 0)]
    pub cap_subscribers: usize,
    /// The cap of `--cap-subscribers`, kbit/s.
    #[arg(long, default_value_t = 300)]
    pub cap_kbps: u64,
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
            Scenario::Churn => (0..self.steady).map(|_| publisher).collect(),
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

    /// The members (by join index) behind `--cap-subscribers`.
    pub fn capped(&self) -> Vec<usize> {
        let plan = self.plan();
        let receivers = (0..plan.len()).filter(|&i| plan[i].subscribe);
        crate::capped::capped_indices(receivers, self.cap_subscribers)
    }

    pub(crate) fn media_profile(&self) -> MediaProfile {
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
            simulcast: self.simulcast,
            svc: self.svc,
            transport_cc: !self.no_transport_cc,
            audio: AudioContent::Talk(pattern),
            decode_audio: self.decode_audio,
            synthetic_data: (self.data_rate > 0).then_some(SyntheticData {
                per_second: self.data_rate,
                mode: if self.data_lossy {
                    DataMode::Lossy
                } else {
                    DataMode::Reliable
                },
            }),
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

/// `WIDTHxHEIGHT`, both above zero.
fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once('x')
        .ok_or_else(|| format!("{s:?}: expected WIDTHxHEIGHT, e.g. 640x360"))?;
    let dim = |d: &str| match d.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{s:?}: {d:?} is not a size above zero")),
    };
    Ok((dim(w)?, dim(h)?))
}

#[cfg(test)]
mod size_tests {
    use super::parse_size;

    #[test]
    fn sizes_parse_and_bad_ones_say_why() {
        assert_eq!(parse_size("640x360"), Ok((640, 360)));
        for bad in ["640", "0x360", "640x", "ax360", "640x-1"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
