//! The run itself: joining participants, waiting for media to reach them,
//! measuring the window and filling in the [`Report`].

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use base64::Engine as _;
use chorus_client::{
    AudioContent, ClientConfig, ClientStats, DownlinkCap, PeerConnectionState, TrackSource, connect,
};
use chorus_protocol::Grants;
use tokio::task::JoinSet;

use crate::args::{Args, Role, Scenario, Target, ViewArg};
use crate::ctx::{Ctx, participant_media, token};
use crate::member::{JoinOutcome, Member, Snapshot};
use crate::probe::{cpu_micros, open_files_limit, rss_kib};
use crate::progress::{PHASES, Progress};
use crate::report::{Percentiles, Report, ServerSkipped, per_packet_micros};
use crate::view::Tiles;
use crate::{capped, churn, janus, measure, plot, told};

async fn join_one(ctx: Arc<Ctx>, index: usize, role: Role) -> Result<JoinOutcome> {
    let mut grants = if role.mic || role.camera {
        Grants::default()
    } else {
        Grants::subscribe_only()
    };
    let data = ctx.media.synthetic_data.is_some();
    grants.can_publish_data |= data;
    let token = token(&ctx, &ctx.room, &format!("p{index:03}"), &grants)
        .await
        .context("token")?;
    let mut cfg = ClientConfig::new(ctx.url.replacen("http", "ws", 1), token);
    cfg.media = participant_media(&ctx.media, ctx.talkers, index);
    if ctx.capped.contains(&index) {
        cfg.media.downlink_cap = Some(DownlinkCap::new(ctx.cap_kbps * 1000));
    }
    let started = Instant::now();
    let client = connect(cfg).await.context("connect")?;
    let joined_at = Instant::now();
    if role.subscribe {
        // The harness measures fan-out: every receiver takes every camera, not the
        // server's last-N (6 by default), or the paused ones would count as lost.
        client
            .set_last_n(chorus_protocol::signal::MAX_LAST_N)
            .await
            .context("set_last_n")?;
    }
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
    if data && let Err(err) = client.open_data().await {
        publish_error = Some(format!("data channels: {err}"));
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

/// With `--view tiles`: how long layer switches get before the window.
const TILES_SETTLE: Duration = Duration::from_secs(3);

/// Joins everyone, waits until media reaches everyone, measures a window and reports.
pub async fn run(args: &Args) -> Result<Report> {
    if args.scenario == Scenario::Churn && args.target != Target::Chorus {
        anyhow::bail!("--scenario churn: against Chorus only");
    }
    if args.scenario == Scenario::Churn {
        if !(0.0..=1.0).contains(&args.vanish_share) {
            anyhow::bail!("--vanish-share is a share from 0 to 1");
        }
        if !(0.0 <= args.stay_min && args.stay_min <= args.stay_max) {
            anyhow::bail!("--stay-min must be from 0 to --stay-max");
        }
    }
    if args.data_rate > 0 && args.target != Target::Chorus {
        anyhow::bail!("--data-rate: against Chorus only");
    }
    if args.simulcast && args.target != Target::Chorus {
        anyhow::bail!("--simulcast: against Chorus only (the Janus adapter does not offer it)");
    }
    if args.svc && args.target != Target::Chorus {
        anyhow::bail!("--svc: against Chorus only (the Janus adapter offers VP8 only)");
    }
    if args.view == ViewArg::Tiles && args.target != Target::Chorus {
        anyhow::bail!("--view tiles: against Chorus only (Janus takes no track_settings)");
    }
    if let Some(path) = &args.plot {
        plot::check_path(path)?;
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
        capped: args.capped(),
        cap_kbps: args.cap_kbps,
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
        video_codec: match args.svc {
            true => "vp9".to_owned(),
            false => format!("{:?}", args.codec).to_lowercase(),
        },
        simulcast: args.simulcast,
        svc: args.svc,
        view: match args.view {
            ViewArg::Tiles => format!(
                "tiles (speaker {}x{})",
                args.speaker_size.0, args.speaker_size.1
            ),
            ViewArg::Any => args.view.name().to_owned(),
        },
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
    let mut tiles = (args.view == ViewArg::Tiles).then(|| Tiles::new(roles, args.speaker_size));
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
            if let Some(tiles) = &mut tiles {
                tiles.update(&st.members, false).await;
            }
        }
        match &janus {
            Some(janus) => set.spawn(janus.clone().join_one(i, *role)),
            None => set.spawn(join_one(ctx.clone(), i, *role)),
        };
    }
    let deadline = Instant::now() + Duration::from_secs(args.join_timeout);
    while !set.is_empty() {
        timeline.tick(&st.members, PHASES[0]);
        if let Some(tiles) = &mut tiles {
            tiles.update(&st.members, false).await;
        }
        // Wake at least four times a second for the timeline and the tiles.
        let wake = deadline.min(Instant::now() + Duration::from_millis(250));
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
        if let Some(tiles) = &mut tiles {
            tiles.update(&members, false).await;
        }
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
    if let Some(tiles) = &mut tiles {
        // Cameras that arrived last get their tile size too, and the switches to the
        // layers asked for (each at a keyframe of the new layer) settle.
        tiles.update(&members, true).await;
        tokio::time::sleep(TILES_SETTLE).await;
        report.track_settings_sent = tiles.sent();
        if tiles.failed > 0 {
            report
                .errors
                .push(format!("{} track_settings not sent", tiles.failed));
        }
    }

    // Window.
    progress.set_phase(2);
    report.rss_after_kib = rss_kib(pid).context("server RSS")?;
    let own0 = cpu_micros(std::process::id()).unwrap_or(0);
    let skipped0 = server_skipped(args, &ctx).await;
    let (cpu0, s0, t0) = (
        cpu_micros(pid).context("server CPU")?,
        Snapshot::take(&members),
        Instant::now(),
    );
    if args.scenario == Scenario::Churn {
        // The window is the storms: the steady room's loss is measured across them.
        report.churn = Some(churn::storms(&ctx, args, pid, &members, &mut timeline).await?);
    } else {
        let window_end = t0 + Duration::from_secs(args.seconds);
        while Instant::now() < window_end {
            let wake = window_end.min(Instant::now() + Duration::from_millis(250));
            tokio::time::sleep_until(wake.into()).await;
            timeline.tick(&members, PHASES[2]);
        }
    }
    let (cpu1, s1, t1) = (
        cpu_micros(pid).context("server CPU")?,
        Snapshot::take(&members),
        Instant::now(),
    );
    let own1 = cpu_micros(std::process::id()).unwrap_or(0);
    report.server_skipped = skipped0
        .zip(server_skipped(args, &ctx).await)
        .map(|(a, b)| a.since(b));
    progress.set_phase(3);
    let indices: Vec<usize> = members.iter().map(|m| m.index).collect();
    timeline.finish(&indices, &s1.stats);
    for (m, s) in members.iter().zip(&s1.stats) {
        for inbound in s.inbound.values().filter(|_| m.subscribe) {
            if let Some((w, h)) = inbound.frame_size {
                *report.received_sizes.entry(format!("{w}x{h}")).or_default() += 1;
            }
        }
    }
    let secs = (t1 - t0).as_secs_f64();
    report.view_bitrates = tiles.map(|t| t.bitrates(&members, &s0.stats, &s1.stats, secs));
    let joined_at: Vec<Instant> = members.iter().map(|m| m.joined_at).collect();
    let tracks_of: Vec<usize> = members.iter().map(|m| m.tracks.len()).collect();
    // Dropping a client closes its signaling connection; the server removes it.
    drop(members);

    report.window_secs = secs;
    report.server_cpu_micros = cpu1.saturating_sub(cpu0) as f64;
    report.server_cpu_percent = report.server_cpu_micros / secs / 1e4;
    report.harness_cpu_micros = own1.saturating_sub(own0) as f64;
    report.harness_cpu_percent = report.harness_cpu_micros / secs / 1e4;
    let inbound =
        |s: &ClientStats, t: &str| s.inbound.get(t).map_or((0, 0), |i| (i.packets, i.bytes));
    let outbound = |s: &ClientStats, t: &str| s.outbound.get(t).map_or(0, |o| o.packets);
    // Data messages: each one sent should reach every other member.
    let others = s1.stats.len().saturating_sub(1) as u64;
    for (a, b) in s0.stats.iter().zip(&s1.stats) {
        let sent = b.data_sent.saturating_sub(a.data_sent);
        report.data_sent += sent;
        report.data_expected += sent * others;
        report.data_delivered += b.data_received.saturating_sub(a.data_received);
    }
    report.data_lost = report.data_expected.saturating_sub(report.data_delivered);
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
    for (pos, &index) in indices.iter().enumerate() {
        if ctx.capped.contains(&index) {
            let (a, b) = (&s0.stats[pos], &s1.stats[pos]);
            report
                .capped
                .push(capped::measure(index, ctx.cap_kbps, a, b, secs));
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
    let mut outside_pauses = told::OutsidePauses::default();
    for (pos, want) in expected.iter().enumerate() {
        let (a, b) = (&s0.stats[pos], &s1.stats[pos]);
        for track in want {
            report.tracks_expected += 1;
            // The mix has no owner: its sequence numbers say what was sent.
            let owner = track_owner
                .get(track.as_str())
                .map(|&o| (&s0.stats[o], &s1.stats[o]));
            let count = measure::pair_count(track, owner, (a, b));
            if count.video {
                let paused = told::paused_in(track, (a, t0), (b, t1));
                outside_pauses.add(&count, paused, t1 - t0);
            }
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
    report.video_expected_packets = by_kind[1].0;
    report.video_expected_outside_pauses = outside_pauses.expected;
    report.video_loss_outside_pauses_ratio = outside_pauses.loss();
    for (a, b) in s0.stats.iter().zip(&s1.stats) {
        for (p0, p1) in [(&a.publisher, &b.publisher), (&a.subscriber, &b.subscriber)] {
            report.arrivals_stamped += p1.arrivals_stamped.saturating_sub(p0.arrivals_stamped);
            report.arrivals_unstamped +=
                p1.arrivals_unstamped.saturating_sub(p0.arrivals_unstamped);
            report.arrivals_clamped += p1.arrivals_clamped.saturating_sub(p0.arrivals_clamped);
            report.arrivals_clamped_micros += p1
                .arrivals_clamped_micros
                .saturating_sub(p0.arrivals_clamped_micros);
            report.harness_socket_drops += p1.socket_drops.saturating_sub(p0.socket_drops);
        }
    }
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

/// The room's skip counters now (Chorus only; `None` if they cannot be read).
async fn server_skipped(args: &Args, ctx: &Ctx) -> Option<ServerSkipped> {
    if args.target != Target::Chorus {
        return None;
    }
    let answer = ctx
        .http
        .get(format!("{}/v1/rooms/{}", ctx.url, ctx.room))
        .header("authorization", format!("Basic {}", ctx.auth))
        .send()
        .await
        .ok()?
        .error_for_status()
        .ok()?;
    ServerSkipped::from_room(&answer.json().await.ok()?)
}
