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
use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "Measure Chorus: N subscribers receive P publishers' audio and video")]
struct Args {
    /// HTTP base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:7880")]
    url: String,
    #[arg(long, default_value = "devkey")]
    api_key: String,
    #[arg(long, default_value = "devsecret-change-me-0123456789abcdef")]
    api_secret: String,
    /// Process id of the server, for its CPU time.
    #[arg(long)]
    server_pid: u32,
    #[arg(long, default_value_t = 1)]
    publishers: usize,
    #[arg(long, default_value_t = 20)]
    subscribers: usize,
    /// Measurement window after everyone receives media.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, default_value = "loadtest")]
    room: String,
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
    // SAFETY-free: the clock tick is 100 Hz on every Linux we target.
    Ok(ticks * 10_000)
}

fn received(clients: &[Client]) -> u64 {
    clients
        .iter()
        .map(|c| c.stats().inbound.values().map(|t| t.packets).sum::<u64>())
        .sum()
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
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
    println!(
        "{} subscribers joined in {:.1} s",
        args.subscribers,
        started.elapsed().as_secs_f64()
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
    let secs = (t1 - t0).as_secs_f64();
    let packets = rx1 - rx0;
    let cpu = (cpu1 - cpu0) as f64;
    println!("window            {secs:.1} s");
    println!(
        "egress packets    {packets} ({:.0}/s)",
        packets as f64 / secs
    );
    println!("server CPU        {:.1}% of one core", cpu / secs / 1e4);
    println!("CPU per egress pkt {:.2} µs", cpu / packets.max(1) as f64);
    Ok(())
}
