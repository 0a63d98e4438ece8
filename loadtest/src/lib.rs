//! `chorus-loadtest fanout`: publishers send camera + microphone, subscribers receive
//! everything; reports the server's CPU time per packet it forwarded.
//!
//! This is the first, simple harness: one process, real WebRTC clients (ICE,
//! DTLS-SRTP) on loopback, server CPU read from `/proc/<pid>/stat`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use chorus_client::{Client, ClientConfig, MediaProfile, TrackSource, connect};
use chorus_protocol::Grants;

#[derive(clap::Parser, Debug, Clone)]
#[command(about = "Measure Chorus: N subscribers receive P publishers' audio and video")]
pub struct Args {
    /// HTTP base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:7880")]
    pub url: String,
    #[arg(long, default_value = "devkey")]
    pub api_key: String,
    #[arg(long, default_value = "devsecret-change-me-0123456789abcdef")]
    pub api_secret: String,
    /// Process id of the server, for its CPU time.
    #[arg(long)]
    pub server_pid: u32,
    #[arg(long, default_value_t = 1)]
    pub publishers: usize,
    #[arg(long, default_value_t = 20)]
    pub subscribers: usize,
    /// Measurement window after everyone receives media.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    #[arg(long, default_value = "loadtest")]
    pub room: String,
}

/// What one fan-out run measured.
#[derive(Debug, Clone)]
pub struct Report {
    pub window_secs: f64,
    /// RTP packets the subscribers received in the window.
    pub egress_packets: u64,
    /// Server user+system CPU time in the window.
    pub server_cpu_micros: f64,
}

impl Report {
    pub fn cpu_per_packet_micros(&self) -> f64 {
        self.server_cpu_micros / self.egress_packets.max(1) as f64
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.window_secs;
        writeln!(f, "window             {secs:.1} s")?;
        writeln!(
            f,
            "egress packets     {} ({:.0}/s)",
            self.egress_packets,
            self.egress_packets as f64 / secs
        )?;
        writeln!(
            f,
            "server CPU         {:.1}% of one core",
            self.server_cpu_micros / secs / 1e4
        )?;
        write!(
            f,
            "CPU per egress pkt {:.2} µs",
            self.cpu_per_packet_micros()
        )
    }
}

async fn token(args: &Args, identity: &str, grants: Grants) -> Result<String> {
    let auth = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", args.api_key, args.api_secret));
    let body = serde_json::json!({ "room": args.room, "identity": identity, "grants": grants });
    let resp: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/v1/tokens", args.url))
        .header("authorization", format!("Basic {auth}"))
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

async fn join(args: &Args, identity: &str, grants: Grants) -> Result<Client> {
    let ws = args.url.replacen("http", "ws", 1);
    let mut cfg = ClientConfig::new(ws, token(args, identity, grants).await?);
    // About 1 Mbit/s of video at 30 fps: 4 packets of 1100 bytes per frame.
    cfg.media = MediaProfile {
        video_fps: 30,
        video_packets_per_frame: 4,
        video_packet_size: 1100,
        ..MediaProfile::default()
    };
    Ok(connect(cfg).await?)
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

fn received(clients: &[Client]) -> u64 {
    clients
        .iter()
        .map(|c| c.stats().inbound.values().map(|t| t.packets).sum::<u64>())
        .sum()
}

/// Joins everyone, waits until every subscriber receives every track, then measures.
pub async fn run(args: &Args) -> Result<Report> {
    let args = args.clone();
    let mut publishers = Vec::new();
    for i in 0..args.publishers {
        let c = join(&args, &format!("pub-{i}"), Grants::default()).await?;
        c.publish(TrackSource::Microphone).await?;
        c.publish(TrackSource::Camera).await?;
        publishers.push(c);
    }
    let mut subscribers = Vec::new();
    let started = Instant::now();
    for i in 0..args.subscribers {
        subscribers.push(join(&args, &format!("sub-{i}"), Grants::subscribe_only()).await?);
    }
    let join_secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{} subscribers joined in {join_secs:.1} s",
        args.subscribers
    );
    let expected_tracks = 2 * args.publishers;
    let deadline = Instant::now() + Duration::from_secs(60);
    while subscribers
        .iter()
        .any(|s| s.stats().inbound.values().filter(|t| t.packets > 0).count() < expected_tracks)
    {
        if Instant::now() > deadline {
            bail!("not every subscriber receives every track after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (cpu0, rx0, t0) = (
        cpu_micros(args.server_pid)?,
        received(&subscribers),
        Instant::now(),
    );
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    let (cpu1, rx1, t1) = (
        cpu_micros(args.server_pid)?,
        received(&subscribers),
        Instant::now(),
    );
    Ok(Report {
        window_secs: (t1 - t0).as_secs_f64(),
        egress_packets: rx1 - rx0,
        server_cpu_micros: (cpu1 - cpu0) as f64,
    })
}
