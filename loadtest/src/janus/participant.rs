//! One participant: its session and handle while it joins, and then its task that
//! carries signaling between the engine and Janus and drives the media.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use chorus_client::{ClientMessage, ClientStats, Engine, PeerTarget, StatsHandle};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::api::{Api, REQUEST_TIMEOUT};
use super::protocol::{
    Event, EventKind, HandleId, Request, RequestError, SessionId, engine_message,
};
use crate::Role;
use crate::member::{Member, Participant};

/// Below Janus's default `session_timeout` of 60 s.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(25);
/// Events queued for a participant's task.
const EVENT_QUEUE: usize = 256;

/// What a publisher's join waits for from its task.
pub(super) struct PublishProgress {
    pub(super) negotiated: mpsc::UnboundedSender<chorus_client::NegotiationOutcome>,
    /// Fired at the first `webrtcup`.
    pub(super) up: Option<oneshot::Sender<()>>,
}

/// A participant's session and handle while it joins, before its task takes over.
pub(super) struct Joining {
    api: Api,
    target: PeerTarget,
    session: SessionId,
    handle: HandleId,
    events: mpsc::Receiver<Event>,
    poller: JoinHandle<()>,
    /// Events that came while waiting for a reply, for the task.
    early: VecDeque<Event>,
}

impl Joining {
    pub(super) async fn open(api: &Api, target: PeerTarget) -> Result<Self, RequestError> {
        let session = api.create_session().await?;
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        let poller = api.spawn_poller(session, events_tx);
        let handle = match api.attach_videoroom(session).await {
            Ok(handle) => handle,
            Err(err) => {
                poller.abort();
                let _ = api.destroy(session).await;
                return Err(err);
            }
        };
        Ok(Self {
            api: api.clone(),
            target,
            session,
            handle,
            events,
            poller,
            early: VecDeque::new(),
        })
    }

    /// Sends `request` and waits for the event that answers it.
    pub(super) async fn ask(&mut self, request: Request) -> Result<Event, RequestError> {
        let transaction = self.api.send(self.session, self.handle, &request).await?;
        let deadline = tokio::time::Instant::now() + REQUEST_TIMEOUT;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .map_err(|_| RequestError::Timeout("janus event"))?
                .ok_or(RequestError::Closed)?;
            if event.transaction.as_deref() != Some(transaction.as_str()) {
                self.early.push_back(event);
                continue;
            }
            if let EventKind::PluginError { code, reason } = event.kind {
                return Err(RequestError::Janus { code, reason });
            }
            return Ok(event);
        }
    }

    /// Hands the engine and the session to a task of their own.
    pub(super) fn spawn(
        self,
        engine: Engine,
        publishing: Option<PublishProgress>,
        index: usize,
        joined_at: Instant,
        tracks: &[String],
        role: Role,
    ) -> Member {
        let stats = engine.stats_handle();
        let (end, end_rx) = oneshot::channel();
        let task = tokio::spawn(
            Driver {
                api: self.api,
                target: self.target,
                session: self.session,
                handle: self.handle,
                engine,
                publishing,
                published: false,
                poller: self.poller,
            }
            .run(self.events, self.early, end_rx),
        );
        Member {
            index,
            client: Box::new(JanusParticipant {
                stats,
                end: Some(end),
                task,
            }),
            joined_at,
            tracks: tracks.to_vec(),
            subscribe: role.subscribe,
        }
    }
}

/// A joined participant as the harness sees it: counters, and an end when dropped.
struct JanusParticipant {
    stats: StatsHandle,
    end: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Participant for JanusParticipant {
    fn stats(&self) -> ClientStats {
        self.stats.snapshot()
    }
}

impl Drop for JanusParticipant {
    /// Asks the task to destroy the session; if the runtime is going away first, the
    /// task is aborted and Janus times the session out.
    fn drop(&mut self) {
        if let Some(end) = self.end.take()
            && end.send(()).is_err()
        {
            self.task.abort();
        }
    }
}

/// One participant's task: carries the engine's signaling to Janus and Janus's events
/// to the engine, and drives the engine's media and timers.
struct Driver {
    api: Api,
    target: PeerTarget,
    session: SessionId,
    handle: HandleId,
    engine: Engine,
    publishing: Option<PublishProgress>,
    /// The publisher connection was offered once; the next offer is a `configure`.
    published: bool,
    poller: JoinHandle<()>,
}

impl Driver {
    async fn run(
        mut self,
        mut events: mpsc::Receiver<Event>,
        early: VecDeque<Event>,
        mut end: oneshot::Receiver<()>,
    ) {
        // Requests go out in order from a task of their own, so a slow POST never holds
        // up the media; a failed one is reported back as a plugin error event.
        let (requests, requests_rx) = mpsc::unbounded_channel();
        let poster = tokio::spawn(post_in_order(
            self.api.clone(),
            self.session,
            self.handle,
            requests_rx,
        ));
        for event in early {
            self.on_event(&event);
        }
        let mut keepalive = tokio::time::interval(KEEPALIVE_INTERVAL);
        keepalive.tick().await;
        loop {
            while let Some(message) = self.engine.poll_signal() {
                if let Some(request) = Request::for_engine(&message, self.published) {
                    self.published |= matches!(message, ClientMessage::Offer { .. });
                    let _ = requests.send(Outgoing::Request(request));
                }
            }
            while let Some(outcome) = self.engine.poll_negotiated() {
                if let Some(publishing) = &self.publishing {
                    let _ = publishing.negotiated.send(outcome);
                }
            }
            tokio::select! {
                biased;
                _ = &mut end => break,
                event = events.recv() => match event {
                    Some(event) => self.on_event(&event),
                    // The session is gone: nothing will reach the engine any more.
                    None => break,
                },
                _ = keepalive.tick() => {
                    let _ = requests.send(Outgoing::Keepalive);
                }
                () = self.engine.step() => {}
            }
        }
        drop(requests);
        let _ = poster.await;
        self.poller.abort();
        let _ = tokio::time::timeout(REQUEST_TIMEOUT, self.api.destroy(self.session)).await;
    }

    fn on_event(&mut self, event: &Event) {
        if event.kind == EventKind::WebrtcUp
            && let Some(up) = self.publishing.as_mut().and_then(|p| p.up.take())
        {
            let _ = up.send(());
        }
        if let Some(message) = engine_message(self.target, event) {
            // A refused SDP shows in the engine's `negotiation_failures`.
            let _ = self.engine.handle_signal(Instant::now(), &message);
        }
    }
}

enum Outgoing {
    Request(Request),
    Keepalive,
}

async fn post_in_order(
    api: Api,
    session: SessionId,
    handle: HandleId,
    mut requests: mpsc::UnboundedReceiver<Outgoing>,
) {
    while let Some(outgoing) = requests.recv().await {
        // Failures are not fatal here: a lost trickle or keepalive is what a browser
        // would also survive, and a lost SDP shows as missing media in the report.
        let _ = match outgoing {
            Outgoing::Request(request) => api.send(session, handle, &request).await.map(drop),
            Outgoing::Keepalive => api.keepalive(session).await,
        };
    }
}
