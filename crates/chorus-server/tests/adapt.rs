//! Adaptation on a real capped link: a subscriber behind a veth whose server side is
//! shaped with `tc` (tbf for the cap; an HTB class that drops what a classic-BPF
//! filter picks with the kernel's random number for loss, since this kernel has no
//! netem) receives a simulcast camera.
//!
//! The test re-runs itself under `unshare -n` (a private network namespace, so its
//! addresses and links collide with nothing), makes a named namespace for the
//! subscriber with `ip netns add` and a veth pair 10.77.0.1 (server, publisher) —
//! 10.77.0.2 (subscriber), and runs the subscriber as a child process of this same
//! test binary in it (`subscriber_behind_the_link`, which does nothing unless started
//! so). The child prints what it receives every 100 ms; the parent shapes the link and
//! reads the layer (the VP8 keyframe size) and the decodable frames from it.
//!
//! Needs root (CI has it); where namespaces cannot be made it says so and passes.
//! `CHORUS_ADAPT_DEBUG=1` prints the server's estimate and forwarding counters every
//! 250 ms and the qdisc counters.

mod common;
#[path = "adapt/netns.rs"]
mod netns;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chorus_client::{ClientConfig, MediaProfile, TrackSource};
use chorus_server::config::DEV_API_KEY;
use common::{Participant, TestServer, contains, test_config, track_published};
use netns::{Netns, rerun_in_private_netns};

const ROOM: &str = "adapt";
/// Set in the re-run under `unshare -n`.
const IN_PRIVATE_NETNS: &str = "CHORUS_ADAPT_IN_NETNS";
/// Set for the subscriber child: the signaling URL, its token, the track it watches.
const CHILD_URL: &str = "CHORUS_ADAPT_URL";
const CHILD_TOKEN: &str = "CHORUS_ADAPT_TOKEN";
const CHILD_TRACK: &str = "CHORUS_ADAPT_TRACK";
/// Lines the child prints start with this.
const REPORT: &str = "adapt-report ";
/// Off loopback the server refuses the public development secret.
const API_SECRET: &str = "adapt-test-secret-of-at-least-32-bytes";
const SERVER_IP: &str = "10.77.0.1";
const SUBSCRIBER_IP: &str = "10.77.0.2";
/// The server side of the veth: its egress is the subscriber's downlink.
const LINK: &str = "adapt0";
const LOW: (u16, u16) = (320, 180);
const TOP: (u16, u16) = (1280, 720);
/// The targets. Under the cap too: a step up that does not fit is tried with a
/// padding probe first, not a real switch (before the probes, 0.7–1.2 s gaps).
const DOWN_WITHIN: Duration = Duration::from_secs(3);
const UP_WITHIN: Duration = Duration::from_secs(10);
const LONGEST_FREEZE: Duration = Duration::from_secs(1);
/// Random loss of the third scenario, percent.
const LOSS_PERCENT: u64 = 7;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_adapts_to_a_capped_and_lossy_link() {
    if std::env::var_os(CHILD_URL).is_some() {
        return;
    }
    if std::env::var_os(IN_PRIVATE_NETNS).is_none() {
        rerun_in_private_netns();
        return;
    }
    let Some(netns) = Netns::create() else {
        return;
    };
    let mut config = test_config();
    config.http.bind = format!("{SERVER_IP}:0").parse().unwrap();
    config.media.bind = format!("{SERVER_IP}:0").parse().unwrap();
    config.api.secret = API_SECRET.to_owned();
    let server = TestServer::start_without_gso(config).await;

    let mut publisher = ClientConfig::new(&server.ws_url, server.token(ROOM, "alice"));
    publisher.bind_ip = SERVER_IP.parse().unwrap();
    publisher.media = MediaProfile {
        simulcast: true,
        ..MediaProfile::default()
    };
    let mut alice = Participant::new(
        "alice",
        chorus_client::connect(publisher)
            .await
            .expect("alice joins"),
    );
    let cam = alice.publish_ok(TrackSource::Camera).await;
    let id = cam.track_id.clone();
    alice
        .until("her own track_published", |log| {
            contains(log, track_published(&id))
        })
        .await;

    let mut bob = Subscriber::start(&netns, &server, &id);
    let t0 = Instant::now();

    // Uncapped: the top layer, decoding.
    let top = bob
        .until("the top layer at first", Duration::from_secs(30), |r| {
            r.size == Some(TOP) && r.decoded > 30
        })
        .await;
    let start_estimate = estimate(&server).await;
    eprintln!(
        "top layer after {:?}; estimate {start_estimate:?}",
        top - t0
    );

    if std::env::var_os("CHORUS_ADAPT_DEBUG").is_some() {
        let url = server.http_url.clone();
        tokio::spawn(async move {
            let t0 = Instant::now();
            loop {
                if let Ok(r) = reqwest::Client::new()
                    .get(format!("{url}/v1/rooms/{ROOM}"))
                    .basic_auth(DEV_API_KEY, Some(API_SECRET))
                    .send()
                    .await
                {
                    let v: serde_json::Value = r.json().await.unwrap_or_default();
                    eprintln!(
                        "{:?} {} fwd {} resent {} nih {} soon {} budget {}",
                        t0.elapsed(),
                        v["subscribers"],
                        v["forwarding"]["forwarded"],
                        v["forwarding"]["resent"],
                        v["forwarding"]["skipped"]["not_in_history"],
                        v["forwarding"]["skipped"]["resend_too_soon"],
                        v["forwarding"]["skipped"]["resend_over_budget"]
                    );
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
    }
    // a. Capped to 300 kbit/s: the low layer within 3 s, no freeze after those 3 s.
    netns.shape(&[
        "tbf", "rate", "300kbit", "burst", "32kbit", "latency", "400ms",
    ]);
    let capped = Instant::now();
    let low = bob
        .until(
            "the low layer under the cap",
            Duration::from_secs(20),
            |r| r.size == Some(LOW),
        )
        .await;
    let down = low - capped;
    let watched = bob
        .watch(capped + DOWN_WITHIN, capped + Duration::from_secs(12))
        .await;
    let capped_estimate = estimate(&server).await;
    eprintln!(
        "capped: low layer after {down:?}; then {} frames, longest gap {:?}, estimate {capped_estimate:?}",
        watched.frames, watched.longest_gap
    );

    // b. Lifted: the top layer again within 10 s.
    netns.unshape();
    let lifted = Instant::now();
    let back = bob
        .until("the top layer once lifted", Duration::from_secs(30), |r| {
            r.size == Some(TOP)
        })
        .await;
    let up = back - lifted;
    eprintln!("lifted: top layer after {up:?}");

    // c. Random loss: retransmissions keep the video decoding.
    netns.random_loss(LOSS_PERCENT);
    let lossy = Instant::now();
    let before = bob.latest.clone();
    let asked_before = keyframe_requests(&alice);
    let lossy_watch = bob.watch(lossy, lossy + Duration::from_secs(12)).await;
    let after = bob.latest.clone();
    let asked = keyframe_requests(&alice) - asked_before;
    let lost = after.lost() - before.lost();
    let expected = after.expected - before.expected;
    let lossy_estimate = estimate(&server).await;
    let (passed, dropped) = netns.counted();
    netns.unshape();
    eprintln!(
        "{LOSS_PERCENT} % loss ({dropped} of {} packets dropped by the link): {} frames in 12 s ({} given up), longest gap {:?}; {lost} of {expected} packets never arrived; \
         {asked} keyframe requests reached the publisher ({} PLIs from the subscriber); estimate {lossy_estimate:?}, layer {:?}",
        passed + dropped,
        lossy_watch.frames,
        after.skipped - before.skipped,
        lossy_watch.longest_gap,
        after.plis - before.plis,
        after.size
    );
    bob.stop().await;

    assert!(
        down <= DOWN_WITHIN,
        "the low layer took {down:?} under a 300 kbit/s cap"
    );
    assert!(
        watched.longest_gap <= LONGEST_FREEZE && watched.frames > 0,
        "under the cap, decoded frames stopped for {:?}",
        watched.longest_gap
    );
    assert!(
        up <= UP_WITHIN,
        "the top layer took {up:?} once the cap was lifted"
    );
    assert!(
        lossy_watch.longest_gap <= LONGEST_FREEZE && lossy_watch.frames >= 12 * 8,
        "at {LOSS_PERCENT} % loss: {} frames in 12 s, longest gap {:?}",
        lossy_watch.frames,
        lossy_watch.longest_gap
    );
    // Repair, not keyframes: a lost packet is resent, so few keyframe requests.
    assert!(
        asked <= 12,
        "{asked} keyframe requests in 12 s at {LOSS_PERCENT} % loss"
    );
    assert!(
        lost * 100 < expected * 5,
        "{lost} of {expected} packets never repaired at {LOSS_PERCENT} % loss"
    );
}

/// The subscriber child: joins, watches the track, prints what it receives every 100 ms
/// until its stdin closes (or two minutes, whichever first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_behind_the_link() {
    let (Ok(url), Ok(token), Ok(track)) = (
        std::env::var(CHILD_URL),
        std::env::var(CHILD_TOKEN),
        std::env::var(CHILD_TRACK),
    ) else {
        return;
    };
    let mut config = ClientConfig::new(url, token);
    config.bind_ip = SUBSCRIBER_IP.parse().unwrap();
    let client = chorus_client::connect(config).await.expect("bob joins");
    let (closed_tx, mut closed) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        let _ = closed_tx.send(());
    });
    let mut asked_size = false;
    let epoch = Instant::now();
    let until = epoch + Duration::from_secs(120);
    while Instant::now() < until {
        let stats = client.stats();
        if let Some(inbound) = stats.inbound.get(&track) {
            if !asked_size {
                client
                    .track_settings(&track, Some((1280, 720)), true, None)
                    .await
                    .expect("track_settings");
                asked_size = true;
            }
            let size = inbound
                .frame_size
                .map_or(String::from("null"), |(w, h)| format!("[{w},{h}]"));
            println!(
                "{REPORT}{{\"size\":{size},\"decoded\":{},\"skipped\":{},\"plis\":{},\"bytes\":{},\"expected\":{},\"received\":{},\"last_decoded_us\":{}}}",
                inbound.frames.decoded,
                inbound.frames.skipped,
                inbound.plis_sent,
                inbound.bytes,
                inbound.expected_packets(),
                inbound.received.len(),
                // Exact times between frames, whatever the report interval.
                inbound.frames.last_decoded_at.map_or(0, |at| {
                    at.saturating_duration_since(epoch).as_micros() as u64
                }),
            );
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = &mut closed => break,
        }
    }
}

/// One line of the child's.
#[derive(Debug, Clone, Default)]
struct Report {
    at: Option<Instant>,
    size: Option<(u16, u16)>,
    decoded: u64,
    skipped: u64,
    plis: u64,
    expected: u64,
    received: u64,
    /// When the last frame was decoded, on the child's clock.
    last_decoded_us: u64,
}

impl Report {
    fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.received)
    }
}

/// What [`Subscriber::watch`] saw.
struct Watched {
    frames: u64,
    longest_gap: Duration,
}

/// The child process in the subscriber's namespace and its reports.
struct Subscriber {
    child: Child,
    reports: tokio::sync::mpsc::UnboundedReceiver<(Instant, Report)>,
    latest: Report,
}

impl Subscriber {
    fn start(netns: &Netns, server: &TestServer, track: &str) -> Self {
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new("ip")
            .args(["netns", "exec", &netns.name])
            .arg(exe)
            .args(["--exact", "subscriber_behind_the_link", "--nocapture"])
            .env(CHILD_URL, &server.ws_url)
            .env(CHILD_TOKEN, server.token(ROOM, "bob"))
            .env(CHILD_TRACK, track)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the subscriber child starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, reports) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let Some(json) = line.strip_prefix(REPORT) else {
                    eprintln!("subscriber: {line}");
                    continue;
                };
                let v: serde_json::Value = serde_json::from_str(json).unwrap();
                let n = |key: &str| v[key].as_u64().unwrap_or(0);
                let size = v["size"].as_array().map(|wh| {
                    (
                        wh[0].as_u64().unwrap() as u16,
                        wh[1].as_u64().unwrap() as u16,
                    )
                });
                let report = Report {
                    at: None,
                    size,
                    decoded: n("decoded"),
                    skipped: n("skipped"),
                    plis: n("plis"),
                    expected: n("expected"),
                    received: n("received"),
                    last_decoded_us: n("last_decoded_us"),
                };
                if tx.send((Instant::now(), report)).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            reports,
            latest: Report::default(),
        }
    }

    /// The time of the next report, or `None` once `deadline` passed.
    async fn next(&mut self, deadline: Instant) -> Option<Instant> {
        let wait = deadline.checked_duration_since(Instant::now())?;
        let (at, mut report) = tokio::time::timeout(wait, self.reports.recv())
            .await
            .ok()??;
        report.at = Some(at);
        self.latest = report;
        Some(at)
    }

    /// Waits up to `limit` for a report that `done` accepts.
    async fn until(
        &mut self,
        what: &str,
        limit: Duration,
        done: impl Fn(&Report) -> bool,
    ) -> Instant {
        let deadline = Instant::now() + limit;
        while let Some(at) = self.next(deadline).await {
            if done(&self.latest) {
                return at;
            }
        }
        panic!("no {what} within {limit:?}: last report {:?}", self.latest);
    }

    /// Reads reports until `to`; counts the frames decoded from `from` on and the
    /// longest time between two of them (from `from` on), on the child's clock.
    async fn watch(&mut self, from: Instant, to: Instant) -> Watched {
        let mut start = None;
        let mut longest_gap = Duration::ZERO;
        let mut last = self.latest.last_decoded_us;
        let mut last_seen_at = from;
        while let Some(at) = self.next(to).await {
            let now = self.latest.last_decoded_us;
            if at >= from {
                start.get_or_insert(self.latest.decoded);
                if now != last {
                    let gap = Duration::from_micros(now.saturating_sub(last));
                    longest_gap = longest_gap.max(gap.min(at - from));
                    last_seen_at = at;
                }
            }
            last = now;
        }
        longest_gap = longest_gap.max(to.saturating_duration_since(last_seen_at));
        Watched {
            frames: self.latest.decoded - start.unwrap_or(self.latest.decoded),
            longest_gap,
        }
    }

    async fn stop(mut self) {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The server's downstream estimate for bob, bit/s.
async fn estimate(server: &TestServer) -> Option<u64> {
    let room: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/v1/rooms/{ROOM}", server.http_url))
        .basic_auth(DEV_API_KEY, Some(API_SECRET))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    room["subscribers"]
        .as_array()?
        .iter()
        .find(|s| s["identity"] == "bob")?["estimated_bitrate_bps"]
        .as_u64()
}

/// Keyframe requests the server passed on to alice's camera, every layer.
fn keyframe_requests(alice: &Participant) -> u64 {
    alice
        .stats()
        .outbound
        .values()
        .flat_map(|t| &t.layers)
        .map(|l| l.keyframe_requests)
        .sum()
}
