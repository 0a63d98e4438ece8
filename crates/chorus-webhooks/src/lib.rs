//! Room events to the signaling service: each configured URL gets every event as a signed
//! JSON POST, in the order the events happened, retried with backoff.
//!
//! Rooms hand events over with [`Webhooks::send`], which never waits: each URL has a
//! bounded queue, and an event that finds it full is dropped and counted, so a slow or
//! dead receiver costs the rooms nothing. One task per URL delivers its queue one event at
//! a time (order), retrying a failed POST up to [`MAX_ATTEMPTS`] times before giving up on
//! that event (counted) and going on.
//!
//! Signature (docs/webhooks.md): header `Chorus-Signature: t=<unix s>,v1=<hex>`, where
//! `<hex>` is HMAC-SHA256 under the API secret of `"<t>.<body>"`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chorus_protocol::webhook::{WebhookBody, WebhookEvent};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Tries per event and URL before it is given up.
pub const MAX_ATTEMPTS: u32 = 5;
/// Wait before the first retry; doubled each time, at most [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(4);
/// One POST, answer included.
const POST_TIMEOUT: Duration = Duration::from_secs(5);
pub const SIGNATURE_HEADER: &str = "chorus-signature";
pub const EVENT_HEADER: &str = "chorus-event";

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub urls: Vec<String>,
    /// Signs the bodies (the API secret).
    pub secret: String,
    /// Events queued per URL before new ones are dropped.
    pub queue: usize,
}

/// What delivery did, for operators.
#[derive(Debug, Default)]
pub struct WebhookCounters {
    pub delivered: AtomicU64,
    /// Given up after [`MAX_ATTEMPTS`].
    pub failed: AtomicU64,
    /// Dropped at a full queue.
    pub dropped: AtomicU64,
}

/// The rooms' handle. Cheap to clone.
#[derive(Clone)]
pub struct Webhooks {
    queues: Arc<[mpsc::Sender<Arc<String>>]>,
    counters: Arc<WebhookCounters>,
}

impl Webhooks {
    /// Starts one delivery task per URL on `tasks`; they end at `shutdown` (what is
    /// still queued then is not sent).
    pub fn start(config: WebhookConfig, tasks: &TaskTracker, shutdown: CancellationToken) -> Self {
        let counters = Arc::new(WebhookCounters::default());
        let client = reqwest::Client::builder()
            .timeout(POST_TIMEOUT)
            .build()
            .expect("a client with a timeout always builds");
        let queues = config
            .urls
            .iter()
            .map(|url| {
                let (tx, rx) = mpsc::channel(config.queue.max(1));
                let delivery = Delivery {
                    url: url.clone(),
                    secret: config.secret.clone(),
                    client: client.clone(),
                    counters: counters.clone(),
                };
                tasks.spawn(delivery.run(rx, shutdown.clone()));
                tx
            })
            .collect();
        Self { queues, counters }
    }

    /// No URLs: events go nowhere.
    pub fn none() -> Self {
        Self {
            queues: Arc::new([]),
            counters: Arc::default(),
        }
    }

    /// Queues `event` for every URL; never waits.
    pub fn send(&self, event: WebhookEvent) {
        if self.queues.is_empty() {
            return;
        }
        let body = WebhookBody {
            id: format!("EV_{:016x}", rand::random::<u64>()),
            created_at_ms: unix_ms(),
            event,
        };
        let Ok(json) = serde_json::to_string(&body) else {
            return;
        };
        let json = Arc::new(json);
        for queue in self.queues.iter() {
            if queue.try_send(json.clone()).is_err() {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn counters(&self) -> &WebhookCounters {
        &self.counters
    }
}

struct Delivery {
    url: String,
    secret: String,
    client: reqwest::Client,
    counters: Arc<WebhookCounters>,
}

impl Delivery {
    async fn run(self, mut queue: mpsc::Receiver<Arc<String>>, shutdown: CancellationToken) {
        loop {
            let body = tokio::select! {
                _ = shutdown.cancelled() => return,
                body = queue.recv() => match body {
                    Some(body) => body,
                    None => return,
                },
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                () = self.deliver(&body) => {}
            }
        }
    }

    /// Tries until the receiver answers 2xx or the attempts run out.
    async fn deliver(&self, body: &str) {
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=MAX_ATTEMPTS {
            match self.post(body).await {
                Ok(()) => {
                    self.counters.delivered.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(why) if attempt < MAX_ATTEMPTS => {
                    tracing::debug!(url = %self.url, attempt, %why, "webhook not taken; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(why) => {
                    tracing::warn!(url = %self.url, %why, "webhook given up after {MAX_ATTEMPTS} attempts");
                    self.counters.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    async fn post(&self, body: &str) -> Result<(), String> {
        let t = unix_ms() / 1000;
        let event = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["event"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let response = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, signature(&self.secret, t, body))
            .header(EVENT_HEADER, event)
            .body(body.to_owned())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("status {}", response.status()))
        }
    }
}

/// `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &str, t: u64, body: &str) -> String {
    format!("t={t},v1={}", hex::encode(mac(secret, t, body)))
}

/// Whether `header` signs `body` under `secret` (what a receiver checks; also a test aid).
pub fn verify(secret: &str, header: &str, body: &str) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<u64>().ok(),
            Some(("v1", v)) => v1 = hex::decode(v).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let mut check = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    check.update(format!("{t}.{body}").as_bytes());
    check.verify_slice(&v1).is_ok()
}

fn mac(secret: &str, t: u64, body: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{t}.{body}").as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests;
