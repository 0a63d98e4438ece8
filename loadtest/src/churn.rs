//! The `churn` scenario's storms: beside the steady room (the run's members, measured
//! as any scenario's window), a churn room where `--participants` (350) join within
//! `--storm-seconds` (10), stay a random `--stay-min`..`--stay-max` seconds and go —
//! a `--vanish-share` of them without a goodbye (media and ICE stop, the socket stays
//! silent: the server has to time them out), half of the rest with `leave`, half by
//! closing the socket — then the next storm, until `--duration` has passed. Meanwhile
//! the control API is timed (`GET /v1/rooms` every 200 ms) and the server's RSS and
//! task count (`chorus_tasks` on `/metrics`) are sampled after every storm. At the end
//! the churn room is given time to empty (vanished participants leave by ICE timeout)
//! before the last sample.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chorus_client::{ClientConfig, TrackSource, connect};
use chorus_protocol::Grants;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::task::JoinSet;

use crate::args::Args;
use crate::ctx::{Ctx, participant_media, token};
use crate::measure;
use crate::member::Member;
use crate::probe::rss_kib;
use crate::progress::PHASES;
use crate::report::{ChurnReport, ChurnSample, Percentiles};

/// How often the control API is timed during the storms.
const API_PERIOD: Duration = Duration::from_millis(200);
/// Longest wait after the last storm for the churn room to empty (vanished
/// participants go after the server's ICE timeout, 30 s by default).
const DRAIN_WAIT: Duration = Duration::from_secs(60);
/// After the churn room emptied, before the last sample.
const SETTLE: Duration = Duration::from_secs(5);
/// A churner that has not finished this long after its planned end is given up.
const CHURNER_SLACK: Duration = Duration::from_secs(30);

/// How a churner goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Goodbye {
    /// `leave`, then `left`.
    Leave,
    /// The signaling socket closes without `leave` (a closed tab).
    Close,
    /// Media and ICE stop, the socket stays open and silent (a lost network): the
    /// server notices by ICE timeout.
    Vanish,
}

enum Outcome {
    Done { join_time: Duration, how: Goodbye },
    Failed(String),
}

/// Runs storms for `args.duration` seconds beside `members` (the steady room), ticking
/// the timeline; bounded: every churner has a deadline, and so does the final drain.
pub(crate) async fn storms(
    ctx: &Arc<Ctx>,
    args: &Args,
    pid: u32,
    members: &[Member],
    timeline: &mut measure::Timeline,
) -> Result<ChurnReport> {
    let room = format!("{}-churn", ctx.room);
    let per_storm = args.participants.unwrap_or(350);
    let mut report = ChurnReport {
        room: room.clone(),
        per_storm,
        storm_secs: args.storm_seconds,
        vanish_share: args.vanish_share,
        ..ChurnReport::default()
    };
    let t0 = Instant::now();
    let first = sample(ctx, pid, &room, t0).await?;
    (report.rss_start_kib, report.tasks_start) = (first.rss_kib, first.tasks);
    let stop = Arc::new(AtomicBool::new(false));
    let poller = tokio::spawn(poll_api(ctx.clone(), stop.clone()));
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut join_times = Vec::new();
    let end = t0 + Duration::from_secs(args.duration);
    while Instant::now() < end {
        let storm = report.storms;
        report.storms += 1;
        let mut set = JoinSet::new();
        for i in 0..per_storm {
            let offset = Duration::from_secs_f64(rng.random::<f64>() * args.storm_seconds);
            let stay = Duration::from_secs_f64(rng.random_range(args.stay_min..=args.stay_max));
            let how = if rng.random::<f64>() < args.vanish_share {
                Goodbye::Vanish
            } else if rng.random::<bool>() {
                Goodbye::Leave
            } else {
                Goodbye::Close
            };
            let limit = offset + stay + CHURNER_SLACK;
            let job = churner(ctx.clone(), room.clone(), storm, i, offset, stay, how);
            set.spawn(async move {
                tokio::time::timeout(limit, job)
                    .await
                    .unwrap_or_else(|_| Outcome::Failed("churner did not finish in time".into()))
            });
        }
        report.joins_started += per_storm;
        while !set.is_empty() {
            let wake = Instant::now() + Duration::from_millis(500);
            if let Ok(Some(done)) = tokio::time::timeout_at(wake.into(), set.join_next()).await {
                match done {
                    Ok(Outcome::Done { join_time, how }) => {
                        report.joins_completed += 1;
                        join_times.push(join_time);
                        match how {
                            Goodbye::Leave => report.left_with_leave += 1,
                            Goodbye::Close => report.closed_socket += 1,
                            Goodbye::Vanish => report.vanished += 1,
                        }
                    }
                    Ok(Outcome::Failed(e)) => {
                        report.joins_failed += 1;
                        note(&mut report.errors, e);
                    }
                    Err(e) => {
                        report.joins_failed += 1;
                        note(&mut report.errors, format!("churner task: {e}"));
                    }
                }
            }
            timeline.tick(members, PHASES[2]);
        }
        report.samples.push(sample(ctx, pid, &room, t0).await?);
    }
    // The last storm's vanished participants go by ICE timeout.
    let drain = Instant::now();
    let mut left = room_participants(ctx, &room).await;
    while left > 0 && drain.elapsed() < DRAIN_WAIT {
        tokio::time::sleep(Duration::from_millis(500)).await;
        timeline.tick(members, PHASES[2]);
        left = room_participants(ctx, &room).await;
    }
    report.drain_secs = drain.elapsed().as_secs_f64();
    // The sessions removed last are still closing (the server's close handshake).
    let settled = Instant::now() + SETTLE;
    while Instant::now() < settled {
        tokio::time::sleep(Duration::from_millis(500)).await;
        timeline.tick(members, PHASES[2]);
    }
    stop.store(true, Ordering::Relaxed);
    let (latencies, failures) = poller.await.context("control API poller")?;
    report.api_latency = Percentiles::of(latencies);
    report.api_failures = failures;
    report.join_time = Percentiles::of(join_times);
    let last = sample(ctx, pid, &room, t0).await?;
    (report.rss_end_kib, report.tasks_end, report.churn_room_left) =
        (last.rss_kib, last.tasks, last.churn_participants);
    report.samples.push(last);
    Ok(report)
}

/// Keeps the first ten distinct errors.
fn note(errors: &mut Vec<String>, e: String) {
    if errors.len() < 10 && !errors.contains(&e) {
        errors.push(e);
    }
}

/// One participant of a storm: waits `offset`, joins the churn room with a (silent)
/// microphone, receives the room audio for `stay`, and goes `how`.
async fn churner(
    ctx: Arc<Ctx>,
    room: String,
    storm: usize,
    i: usize,
    offset: Duration,
    stay: Duration,
    how: Goodbye,
) -> Outcome {
    tokio::time::sleep(offset).await;
    let identity = format!("s{storm}-c{i:03}");
    let token = match token(&ctx, &room, &identity, &Grants::default()).await {
        Ok(t) => t,
        Err(e) => return Outcome::Failed(format!("token: {e:#}")),
    };
    let mut cfg = ClientConfig::new(ctx.url.replacen("http", "ws", 1), token);
    // Silent: nobody in the churn room talks (index past every talker).
    cfg.media = participant_media(&ctx.media, 0, i);
    let started = Instant::now();
    let client = match connect(cfg).await {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(format!("connect: {e}")),
    };
    let join_time = started.elapsed();
    if let Err(e) = client.publish(TrackSource::Microphone).await {
        return Outcome::Failed(format!("publish: {e}"));
    }
    tokio::time::sleep(stay).await;
    match how {
        Goodbye::Leave => {
            if let Err(e) = client.leave().await {
                return Outcome::Failed(format!("leave: {e}"));
            }
        }
        Goodbye::Close => client.drop_signaling(),
        Goodbye::Vanish => client.kill(),
    }
    Outcome::Done { join_time, how }
}

/// Times `GET /v1/rooms` every [`API_PERIOD`] until `stop`: the latencies of the
/// answered, and how many failed (error status, timeout or no connection).
async fn poll_api(ctx: Arc<Ctx>, stop: Arc<AtomicBool>) -> (Vec<Duration>, usize) {
    let (mut latencies, mut failures) = (Vec::new(), 0);
    while !stop.load(Ordering::Relaxed) {
        let asked = Instant::now();
        let answer = ctx
            .http
            .get(format!("{}/v1/rooms", ctx.url))
            .header("authorization", format!("Basic {}", ctx.auth))
            .send()
            .await
            .and_then(|r| r.error_for_status());
        match answer {
            Ok(_) => latencies.push(asked.elapsed()),
            Err(_) => failures += 1,
        }
        tokio::time::sleep(API_PERIOD.saturating_sub(asked.elapsed())).await;
    }
    (latencies, failures)
}

async fn sample(ctx: &Ctx, pid: u32, room: &str, t0: Instant) -> Result<ChurnSample> {
    Ok(ChurnSample {
        at_secs: t0.elapsed().as_secs_f64(),
        rss_kib: rss_kib(pid).context("server RSS")?,
        tasks: server_tasks(ctx)
            .await
            .context("chorus_tasks from /metrics")?,
        churn_participants: room_participants(ctx, room).await,
    })
}

/// `chorus_tasks` from the server's `/metrics`.
async fn server_tasks(ctx: &Ctx) -> Result<u64> {
    let text = ctx
        .http
        .get(format!("{}/metrics", ctx.url))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    metric(&text, "chorus_tasks").context("no chorus_tasks")
}

/// The value of an unlabelled metric in Prometheus text.
pub(crate) fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Participants in `room` (0 once it is gone or cannot be read).
async fn room_participants(ctx: &Ctx, room: &str) -> u64 {
    let answer = ctx
        .http
        .get(format!("{}/v1/rooms/{room}", ctx.url))
        .header("authorization", format!("Basic {}", ctx.auth))
        .send()
        .await;
    let Ok(answer) = answer.and_then(|r| r.error_for_status()) else {
        return 0;
    };
    let info: serde_json::Value = answer.json().await.unwrap_or_default();
    info["num_participants"].as_u64().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::metric;

    #[test]
    fn reads_an_unlabelled_metric() {
        let text = "# HELP chorus_tasks Live tasks\nchorus_tasks_total 9\nchorus_tasks 42\n";
        assert_eq!(metric(text, "chorus_tasks"), Some(42));
        assert_eq!(metric(text, "chorus_rooms"), None);
    }
}
