//! The Janus HTTP API client: sessions, handles, requests and the long-poll for events.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::protocol::{Event, EventKind, HandleId, Request, RequestError, SessionId, plugin_event};

/// Longest wait for a reply to a request (and for Janus to connect a handle).
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Janus holds a long-poll for up to 30 s and then answers with a keepalive.
const LONG_POLL_TIMEOUT: Duration = Duration::from_secs(40);
/// Events taken per long-poll answer.
const MAX_EVENTS: u32 = 16;
/// Pause after a failed long-poll so a broken server cannot spin the poller.
const POLL_ERROR_BACKOFF: Duration = Duration::from_millis(200);
/// Janus's error for a session it no longer knows (destroyed or timed out).
const NO_SUCH_SESSION: i64 = 458;
/// The Janus HTTP API at one base URL (`http://127.0.0.1:8088/janus`).
#[derive(Clone)]
pub struct Api {
    base: Arc<str>,
    http: reqwest::Client,
    transactions: Arc<AtomicU64>,
}

impl Api {
    pub fn new(base: &str) -> Result<Self, RequestError> {
        Ok(Self {
            base: base.trim_end_matches('/').into(),
            // No client-wide timeout: long-polls last up to 30 s; each request sets its own.
            http: reqwest::Client::builder().build()?,
            transactions: Arc::new(AtomicU64::new(1)),
        })
    }

    fn transaction(&self) -> String {
        format!("t{}", self.transactions.fetch_add(1, Ordering::Relaxed))
    }

    /// POSTs `body` to `path` and returns the reply, or the error Janus answered with.
    async fn post(&self, path: &str, body: &Value) -> Result<Value, RequestError> {
        let reply: Value = self
            .http
            .post(format!("{}{path}", self.base))
            .timeout(REQUEST_TIMEOUT)
            .json(body)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        if reply.get("janus").and_then(Value::as_str) == Some("error") {
            return Err(janus_error(&reply));
        }
        Ok(reply)
    }

    /// `create` (session) or `attach` (handle): both answer `success` with `data.id`.
    async fn create(&self, path: &str, body: Value) -> Result<u64, RequestError> {
        let reply = self.post(path, &body).await?;
        reply
            .pointer("/data/id")
            .and_then(Value::as_u64)
            .ok_or_else(|| RequestError::Malformed(reply.to_string()))
    }

    pub async fn create_session(&self) -> Result<SessionId, RequestError> {
        let body = json!({ "janus": "create", "transaction": self.transaction() });
        self.create("", body).await.map(SessionId)
    }

    pub async fn attach_videoroom(&self, session: SessionId) -> Result<HandleId, RequestError> {
        let body = json!({
            "janus": "attach",
            "plugin": "janus.plugin.videoroom",
            "transaction": self.transaction(),
        });
        self.create(&format!("/{}", session.0), body)
            .await
            .map(HandleId)
    }

    /// Sends a request on a handle; returns its transaction. Asynchronous VideoRoom
    /// requests answer `ack` here and their result comes as an event.
    pub async fn send(
        &self,
        session: SessionId,
        handle: HandleId,
        request: &Request,
    ) -> Result<String, RequestError> {
        let transaction = self.transaction();
        let path = format!("/{}/{}", session.0, handle.0);
        self.post(&path, &request.to_json(&transaction)).await?;
        Ok(transaction)
    }

    /// A synchronous VideoRoom request (`create`, `exists`, ...): the result is in the reply.
    pub async fn request(
        &self,
        session: SessionId,
        handle: HandleId,
        body: Value,
    ) -> Result<Value, RequestError> {
        let request = Request::Message { body, jsep: None };
        let path = format!("/{}/{}", session.0, handle.0);
        let reply = self
            .post(&path, &request.to_json(&self.transaction()))
            .await?;
        let data = reply
            .pointer("/plugindata/data")
            .cloned()
            .ok_or_else(|| RequestError::Malformed(reply.to_string()))?;
        match plugin_event(&data) {
            EventKind::PluginError { code, reason } => Err(RequestError::Janus { code, reason }),
            _ => Ok(data),
        }
    }

    pub(super) async fn keepalive(&self, session: SessionId) -> Result<(), RequestError> {
        let body = json!({ "janus": "keepalive", "transaction": self.transaction() });
        self.post(&format!("/{}", session.0), &body).await.map(drop)
    }

    pub(super) async fn destroy(&self, session: SessionId) -> Result<(), RequestError> {
        let body = json!({ "janus": "destroy", "transaction": self.transaction() });
        self.post(&format!("/{}", session.0), &body).await.map(drop)
    }

    /// One long-poll: up to [`MAX_EVENTS`] events, or a keepalive after 30 s idle.
    async fn poll(&self, session: SessionId) -> Result<Vec<Value>, RequestError> {
        let reply: Value = self
            .http
            .get(format!("{}/{}?maxev={MAX_EVENTS}", self.base, session.0))
            .timeout(LONG_POLL_TIMEOUT)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        match reply {
            Value::Array(events) => Ok(events),
            one if one.get("janus").and_then(Value::as_str) == Some("error") => {
                Err(janus_error(&one))
            }
            one => Ok(vec![one]),
        }
    }

    /// Polls `session` until it is gone or nobody reads `events` any more.
    pub(super) fn spawn_poller(
        &self,
        session: SessionId,
        events: mpsc::Sender<Event>,
    ) -> JoinHandle<()> {
        let api = self.clone();
        tokio::spawn(async move {
            while !events.is_closed() {
                match api.poll(session).await {
                    Ok(batch) => {
                        for value in batch {
                            if events.send(Event::parse(&value)).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(RequestError::Janus {
                        code: NO_SUCH_SESSION,
                        ..
                    }) => return,
                    Err(_) => tokio::time::sleep(POLL_ERROR_BACKOFF).await,
                }
            }
        })
    }
}

fn janus_error(reply: &Value) -> RequestError {
    RequestError::Janus {
        code: reply
            .pointer("/error/code")
            .and_then(Value::as_i64)
            .unwrap_or(0),
        reason: reply
            .pointer("/error/reason")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
    }
}
