use std::sync::Mutex;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

use super::*;

const SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";

/// A receiver on loopback: what it got (signature header, body), and how many POSTs it
/// fails before answering 200.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(String, String)>>>,
    fail_first: Arc<AtomicU64>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    if r.fail_first
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok()
    {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    r.got.lock().unwrap().push((signature, body));
    StatusCode::OK
}

async fn listen(receiver: Receiver) -> String {
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(receiver);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/hook")
}

fn event(n: usize) -> WebhookEvent {
    WebhookEvent::RoomStarted {
        room: format!("room-{n}"),
    }
}

fn start(urls: Vec<String>, queue: usize) -> (Webhooks, CancellationToken) {
    let shutdown = CancellationToken::new();
    let config = WebhookConfig {
        urls,
        secret: SECRET.into(),
        queue,
    };
    let hooks = Webhooks::start(config, &TaskTracker::new(), shutdown.clone());
    (hooks, shutdown)
}

/// Polls `done` for up to 20 s.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Every event arrives once, in order, signed under the secret; a changed body or
/// another secret does not verify.
#[tokio::test]
async fn events_arrive_signed_and_in_order() {
    let receiver = Receiver::default();
    let url = listen(receiver.clone()).await;
    let (hooks, shutdown) = start(vec![url], 64);
    for n in 0..20 {
        hooks.send(event(n));
    }
    until("20 events", || receiver.got.lock().unwrap().len() == 20).await;
    let got = receiver.got.lock().unwrap().clone();
    for (n, (signature, body)) in got.iter().enumerate() {
        assert!(verify(SECRET, signature, body), "event {n}: {signature}");
        assert!(!verify("another-secret", signature, body));
        assert!(!verify(SECRET, signature, &body.replace("room-", "r00m-")));
        let body: WebhookBody = serde_json::from_str(body).unwrap();
        assert_eq!(body.event, event(n), "in order");
        assert!(body.id.starts_with("EV_"));
    }
    // Counted once the receiver's answer is back, a moment after it stored the body.
    let delivered = || hooks.counters().delivered.load(Ordering::Relaxed);
    until("20 counted as delivered", || delivered() == 20).await;
    shutdown.cancel();
}

/// A receiver that fails twice gets the event on the third try, and what came after it
/// still comes after it.
#[tokio::test]
async fn a_failed_post_is_retried_before_the_next_event() {
    let receiver = Receiver::default();
    receiver.fail_first.store(2, Ordering::Relaxed);
    let url = listen(receiver.clone()).await;
    let (hooks, shutdown) = start(vec![url], 64);
    hooks.send(event(1));
    hooks.send(event(2));
    until("both events", || receiver.got.lock().unwrap().len() == 2).await;
    let rooms: Vec<WebhookEvent> = receiver
        .got
        .lock()
        .unwrap()
        .iter()
        .map(|(_, b)| serde_json::from_str::<WebhookBody>(b).unwrap().event)
        .collect();
    assert_eq!(rooms, [event(1), event(2)]);
    assert_eq!(hooks.counters().failed.load(Ordering::Relaxed), 0);
    shutdown.cancel();
}

/// A dead receiver costs the sender nothing: its queue fills and the rest is dropped
/// and counted, at once.
#[tokio::test]
async fn a_dead_receiver_drops_what_its_queue_cannot_hold() {
    // A port nobody listens on: every POST fails, and the first event is retried.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    let (hooks, shutdown) = start(vec![url], 2);
    // Were `send` to wait for room in the queue, this would hang, not count.
    for n in 0..10 {
        hooks.send(event(n));
    }
    let dropped = hooks.counters().dropped.load(Ordering::Relaxed);
    assert!(
        (7..=8).contains(&dropped),
        "{dropped} dropped of 10 with a queue of 2"
    );
    shutdown.cancel();
}
