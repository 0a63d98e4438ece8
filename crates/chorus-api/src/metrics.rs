//! Prometheus metrics (`GET /metrics`, OpenMetrics text): what the HTTP side counts
//! itself (requests, signaling sessions, join latency), and on each scrape a reading of
//! the rooms and the media plane ([`Rooms::server_metrics`]), summed over rooms. Names and
//! labels are in docs/control-api.md; per-room detail is in the room stats of the
//! control API, never in labels.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chorus_room_api::{Histogram as HistogramReading, ServerMetrics};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
    NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::ApiState;

/// The metrics of one server. Cheap to share (`Arc` inside `ApiState`).
pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    signaling_sessions: Gauge,
    signaling_errors: Family<CodeLabels, Counter>,
    /// Read at each scrape: the runtime's live tasks and the process's resident memory.
    tasks: Gauge,
    resident_bytes: Gauge,
    join_seconds: Histogram,
    tls_handshake_failures: Family<TlsLabels, Counter>,
    /// The rooms' reading for the scrape under way (the latest one).
    reading: Arc<Mutex<Option<ServerMetrics>>>,
}

/// Why a client's TLS handshake (built-in HTTPS) did not finish.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum TlsHandshakeFailure {
    /// Not finished within the time limit (a stalled or slow client).
    Timeout,
    /// Broken off: not TLS (plain HTTP on the HTTPS port), the client refused the
    /// certificate, or no protocol version or cipher in common.
    Refused,
}

impl EncodeLabelValue for TlsHandshakeFailure {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        use std::fmt::Write;
        encoder.write_str(match self {
            Self::Timeout => "timeout",
            Self::Refused => "refused",
        })
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TlsLabels {
    reason: TlsHandshakeFailure,
}

/// An error code of the signaling protocol (docs/signaling.md, *Errors*): a fixed set.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    /// The route's template (`/v1/rooms/{room}`), never the path itself.
    route: String,
    method: String,
    status: u16,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("chorus");
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            http_requests.clone(),
        );
        let signaling_sessions = Gauge::default();
        registry.register(
            "signaling_sessions",
            "Open signaling WebSockets",
            signaling_sessions.clone(),
        );
        let signaling_errors = Family::<CodeLabels, Counter>::default();
        registry.register(
            "signaling_errors",
            "Error frames sent to joined signaling sessions, by code",
            signaling_errors.clone(),
        );
        let tasks = Gauge::default();
        registry.register(
            "tasks",
            "Live tasks of the server's tokio runtime (sessions, rooms, deliveries, ...)",
            tasks.clone(),
        );
        let resident_bytes = Gauge::default();
        registry.register(
            "resident_memory_bytes",
            "Resident memory of the server process (Linux: /proc/self/statm)",
            resident_bytes.clone(),
        );
        // 1 ms to about 8 s.
        let join_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 14));
        registry.register(
            "join_duration_seconds",
            "From a client's join message to its admission by the room",
            join_seconds.clone(),
        );
        let tls_handshake_failures = Family::<TlsLabels, Counter>::default();
        registry.register(
            "tls_handshake_failures",
            "TLS handshakes of the built-in HTTPS that did not finish, by reason",
            tls_handshake_failures.clone(),
        );
        let reading = Arc::new(Mutex::new(None));
        registry.register_collector(Box::new(RoomsCollector(reading.clone())));
        Self {
            registry,
            http_requests,
            signaling_sessions,
            signaling_errors,
            tasks,
            resident_bytes,
            join_seconds,
            tls_handshake_failures,
            reading,
        }
    }
}

impl Metrics {
    pub(crate) fn session_opened(&self) -> SessionGuard {
        self.signaling_sessions.inc();
        SessionGuard(self.signaling_sessions.clone())
    }

    /// An `error` frame with `code` went to a joined session.
    pub(crate) fn signaling_error(&self, code: &str) {
        let labels = CodeLabels {
            code: code.to_owned(),
        };
        self.signaling_errors.get_or_create(&labels).inc();
    }

    pub(crate) fn joined(&self, took: Duration) {
        self.join_seconds.observe(took.as_secs_f64());
    }

    /// Counts a TLS handshake of the built-in HTTPS that did not finish.
    pub fn tls_handshake_failed(&self, reason: TlsHandshakeFailure) {
        self.tls_handshake_failures
            .get_or_create(&TlsLabels { reason })
            .inc();
    }
}

/// Counts a signaling session as open until dropped.
pub(crate) struct SessionGuard(Gauge);

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

pub fn router() -> Router<ApiState> {
    Router::new().route("/metrics", get(scrape))
}

async fn scrape(State(state): State<ApiState>) -> Response {
    let reading = state.rooms().server_metrics().await;
    let metrics = state.metrics();
    let tasks = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    metrics.tasks.set(tasks as i64);
    metrics
        .resident_bytes
        .set(resident_bytes().unwrap_or(0) as i64);
    // The collector encodes the latest reading (two scrapes at once: either one's, both
    // fresh).
    *metrics.reading.lock().unwrap_or_else(|p| p.into_inner()) = Some(reading);
    let mut text = String::new();
    let encoded = prometheus_client::encoding::text::encode(&mut text, &metrics.registry);
    if encoded.is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// The process's resident memory: the second field of `/proc/self/statm`, in pages
/// (4 KiB on the platforms Chorus runs on). `None` elsewhere.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Counts every answered request by route template, method and status.
pub(crate) async fn count_requests(
    State(state): State<ApiState>,
    req: Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = req.method().as_str().to_owned();
    let response = next.run(req).await;
    let labels = HttpLabels {
        route,
        method,
        status: response.status().as_u16(),
    };
    state.metrics().http_requests.get_or_create(&labels).inc();
    response
}

/// Encodes the rooms' reading of the scrape under way.
#[derive(Debug)]
struct RoomsCollector(Arc<Mutex<Option<ServerMetrics>>>);

impl Collector for RoomsCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let Some(m) = slot.as_ref() else {
            return Ok(());
        };
        gauge(&mut e, "rooms", "Open rooms", m.rooms)?;
        gauge(
            &mut e,
            "participants",
            "Participants in all rooms",
            m.participants,
        )?;
        gauge(&mut e, "tracks", "Published tracks in all rooms", m.tracks)?;

        let f = &m.forwarding;
        counter(
            &mut e,
            "packets_forwarded",
            "Packets sent to subscribers (one per subscriber reached)",
            f.forwarded,
        )?;
        counter(
            &mut e,
            "packets_resent",
            "Packets sent again to subscribers that NACKed them",
            f.resent,
        )?;
        counter(
            &mut e,
            "data_messages_received",
            "Data messages participants sent that rooms took (refusals: packets_skipped, data_*)",
            f.data_received,
        )?;
        counter(
            &mut e,
            "data_messages_delivered",
            "Copies of data messages sent to receivers",
            f.data_delivered,
        )?;
        let skipped = f
            .skipped
            .iter()
            .map(|(reason, n)| ([("reason", reason.as_str())], *n));
        counters(
            &mut e,
            "packets_skipped",
            "Packets or copies not forwarded, by reason",
            skipped,
        )?;
        let profiles = f
            .srtp_profiles
            .iter()
            .map(|(p, n)| ([("srtp_profile", p.as_str())], *n));
        counters(
            &mut e,
            "connections_secured",
            "Media connections whose DTLS completed, by SRTP profile",
            profiles,
        )?;
        counter(
            &mut e,
            "nacked_packets",
            "Packets subscribers reported lost in NACKs",
            f.feedback.nacked_packets,
        )?;
        counter(
            &mut e,
            "keyframe_requests_received",
            "PLI and FIR from subscribers",
            f.feedback.keyframe_requests_received,
        )?;
        counter(
            &mut e,
            "plis_sent",
            "PLIs sent to publishers",
            f.feedback.plis_sent,
        )?;
        counter(
            &mut e,
            "mix_frames",
            "Room-audio frames mixed",
            f.mix_frames,
        )?;
        let plain_dropped = f
            .plain_rtp_dropped
            .iter()
            .map(|(reason, n)| ([("reason", reason.as_str())], *n));
        counters(
            &mut e,
            "plain_rtp_dropped_packets",
            "Datagrams plain-RTP participants' ports did not take, by reason",
            plain_dropped,
        )?;

        let media = &m.media;
        counter(
            &mut e,
            "media_received_datagrams",
            "Datagrams read from the media port",
            media.received,
        )?;
        counter(
            &mut e,
            "media_received_bytes",
            "UDP payload bytes read from the media port",
            media.received_bytes,
        )?;
        counter(
            &mut e,
            "media_receive_syscalls",
            "Receive system calls on the media port",
            media.receive_syscalls,
        )?;
        counter(
            &mut e,
            "media_sent_datagrams",
            "Datagrams handed to the kernel",
            media.sent,
        )?;
        counter(
            &mut e,
            "media_sent_bytes",
            "UDP payload bytes handed to the kernel",
            media.sent_bytes,
        )?;
        counter(
            &mut e,
            "media_send_syscalls",
            "Send system calls on the media port",
            media.send_syscalls,
        )?;
        counter(
            &mut e,
            "media_gso_datagrams",
            "Datagrams sent inside a UDP GSO message",
            media.gso_datagrams,
        )?;
        let u = &media.unroutable;
        let dropped = [
            ("unknown_address", u.unknown_addr),
            ("unknown_ufrag", u.unknown_ufrag),
            ("bad_integrity", u.bad_integrity),
            ("inbox_full", media.inbox_full),
            ("srtp_refused", media.srtp_refused),
            ("rate_limited", media.rate_limited),
            ("send_buffer_full", media.send_dropped),
            ("send_error", media.send_errors),
        ];
        let dropped = dropped
            .into_iter()
            .map(|(reason, n)| ([("reason", reason)], n));
        counters(
            &mut e,
            "media_dropped_datagrams",
            "Datagrams dropped by the media plane, by reason",
            dropped,
        )?;
        counter(
            &mut e,
            "rtcp_delivered",
            "Inbound RTCP packets read",
            media.rtcp.delivered,
        )?;
        let rtcp = media
            .rtcp
            .dropped
            .iter()
            .map(|(reason, n)| ([("reason", reason.as_str())], *n));
        counters(
            &mut e,
            "rtcp_dropped",
            "Inbound RTCP packets skipped, by reason",
            rtcp,
        )?;

        let hooks = [
            ("delivered", m.webhooks.delivered),
            ("failed", m.webhooks.failed),
            ("dropped", m.webhooks.dropped),
        ];
        let hooks = hooks
            .into_iter()
            .map(|(outcome, n)| ([("outcome", outcome)], n));
        let help = "Webhook events by outcome (failed: after every retry; dropped: queue full)";
        counters(&mut e, "webhook_events", help, hooks)?;

        let left = m
            .departures
            .iter()
            .map(|(reason, n)| ([("reason", *reason)], *n));
        let help = "Participants that left rooms, by reason (media_timeout, connection_lost, ...)";
        counters(&mut e, "participants_left", help, left)?;

        let removals = &m.removals;
        let help = "Removals remembered, all rooms (they outlive the rooms)";
        gauge(&mut e, "removal_records", help, removals.records)?;
        let dropped = [("evicted", removals.evicted), ("expired", removals.expired)];
        let dropped = dropped
            .into_iter()
            .map(|(reason, n)| ([("reason", reason)], n));
        let help = "Removal records dropped: evicted at the cap, or expired";
        counters(&mut e, "removal_records_dropped", help, dropped)?;

        histogram(
            &mut e,
            "room_turn_seconds",
            "How long a room's turn took (input, timers, sending)",
            &m.room_turns,
        )
    }
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(v as i64);
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

fn counter(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: u64,
) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(v);
    c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)
}

/// One counter per label set, under one name.
fn counters<'a, const N: usize>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: impl Iterator<Item = ([(&'a str, &'a str); N], u64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in values {
        let c = ConstCounter::new(v);
        c.encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn histogram(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    h: &HistogramReading,
) -> Result<(), std::fmt::Error> {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Histogram)?;
    m.encode_histogram::<NoLabelSet>(h.sum, h.count, &h.buckets, None)
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Method, Request};
    use tower::ServiceExt;

    use crate::testing::{self, FakeRooms};

    async fn get(app: &Router, path: &str, auth: bool) -> (u16, String) {
        let mut req = Request::builder().method(Method::GET).uri(path);
        if auth {
            req = req.header("authorization", testing::basic("devkey", testing::SECRET));
        }
        let response = app
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    use super::*;

    /// The rooms' reading and the HTTP side's own counts, under their documented names;
    /// requests counted by route template and status, not by path.
    #[tokio::test]
    async fn a_scrape_shows_the_rooms_media_and_requests() {
        let app = testing::app(FakeRooms::default());
        assert_eq!(get(&app, "/v1/rooms/standup", true).await.0, 200);
        assert_eq!(get(&app, "/v1/rooms/other", true).await.0, 200);
        assert_eq!(get(&app, "/v1/rooms", false).await.0, 401);
        assert_eq!(get(&app, "/nowhere", false).await.0, 404);
        // A task alive during the scrape, for `chorus_tasks` to count.
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let held = tokio::spawn(async move {
            let _ = stopped.await;
        });
        let (status, text) = get(&app, "/metrics", false).await;
        drop(stop);
        held.await.unwrap();
        assert_eq!(status, 200);
        let want = [
            "chorus_rooms 1",
            "chorus_participants 2",
            "chorus_tracks 3",
            "chorus_packets_forwarded_total 42",
            "chorus_packets_skipped_total{reason=\"muted\"} 3",
            "chorus_plis_sent_total 2",
            "chorus_plain_rtp_dropped_packets_total{reason=\"wrong_payload_type\"} 1",
            "chorus_media_received_datagrams_total 1",
            "chorus_media_received_bytes_total 16",
            "chorus_media_sent_bytes_total 17",
            "chorus_media_dropped_datagrams_total{reason=\"inbox_full\"} 5",
            "chorus_media_dropped_datagrams_total{reason=\"srtp_refused\"} 11",
            "chorus_rtcp_dropped_total{reason=\"malformed\"} 13",
            "chorus_room_turn_seconds_bucket{le=\"0.001\"} 5",
            "chorus_room_turn_seconds_bucket{le=\"+Inf\"} 6",
            "chorus_room_turn_seconds_count 6",
            "chorus_signaling_sessions 0",
            "chorus_webhook_events_total{outcome=\"delivered\"} 7",
            "chorus_webhook_events_total{outcome=\"failed\"} 1",
            "chorus_participants_left_total{reason=\"client_left\"} 4",
            "chorus_participants_left_total{reason=\"media_timeout\"} 1",
            "chorus_removal_records 2",
            "chorus_removal_records_dropped_total{reason=\"evicted\"} 1",
            "chorus_removal_records_dropped_total{reason=\"expired\"} 3",
            "chorus_join_duration_seconds_count 0",
            "chorus_http_requests_total{route=\"/v1/rooms/{room}\",method=\"GET\",status=\"200\"} 2",
            "chorus_http_requests_total{route=\"/v1/rooms\",method=\"GET\",status=\"401\"} 1",
            "chorus_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1",
            "# EOF",
        ];
        for line in want {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        // Read at the scrape: this runtime's tasks, this process's memory.
        let value = |name: &str| {
            let line = text.lines().find(|l| l.starts_with(name)).expect(name);
            line.rsplit(' ').next().unwrap().parse::<u64>().unwrap()
        };
        assert!(value("chorus_tasks ") >= 1, "{text}");
        assert!(value("chorus_resident_memory_bytes ") > 1 << 20, "{text}");
    }
}
