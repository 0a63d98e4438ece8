//! The server as a whole, as the registry sees it: draining for a restart, the figures
//! for `/metrics`, and where the rooms' events go.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chorus_protocol::control::DrainStatus;
use chorus_protocol::webhook::WebhookEvent;
use chorus_room_api::{ServerMetrics, WebhookStats};
use chorus_webhooks::Webhooks;

use super::{DRAIN_POLL, RoomRegistry, unix_ms};
use crate::command::RoomCommand;

impl RoomRegistry {
    /// Sends the rooms' events to `webhooks` from now on (set once, before rooms open;
    /// false if it was set already).
    pub fn set_webhooks(&self, webhooks: Webhooks) -> bool {
        self.inner.webhooks.set(webhooks).is_ok()
    }

    pub(super) fn event(&self, event: WebhookEvent) {
        if let Some(hooks) = self.inner.webhooks.get() {
            hooks.send(event);
        }
    }

    /// Starts the drain: no new rooms or participants from now on, every participant is
    /// told (`draining`), and the server stops (the shutdown token fires) when the last
    /// participant has left or `within` has passed (the configured drain timeout when
    /// `None`). A drain under way goes on as it was.
    pub fn drain(&self, within: Option<Duration>) -> DrainStatus {
        let within = within.unwrap_or(self.inner.config.drain_timeout);
        let since = unix_ms();
        let status = DrainStatus {
            since_unix_ms: since,
            deadline_unix_ms: since + within.as_millis() as u64,
        };
        if self.inner.drain.set(status).is_err() {
            return self.drain_status().expect("set");
        }
        tracing::info!(within_s = within.as_secs_f64(), "draining: no new joins");
        for room in self.inner.rooms.iter() {
            // A room too busy to take it now still stops with the server.
            let _ = room.commands.try_send(RoomCommand::Drain { within });
        }
        let registry = self.clone();
        self.inner.tasks.spawn(async move {
            let deadline = tokio::time::Instant::now() + within;
            let shutdown = registry.inner.shutdown.clone();
            let emptied = async {
                while registry.participants().await > 0 {
                    tokio::time::sleep(DRAIN_POLL).await;
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = emptied => tracing::info!("drained: the last participant left"),
                _ = tokio::time::sleep_until(deadline) => {
                    tracing::info!("drain timeout: stopping with participants still in")
                }
            }
            shutdown.cancel();
        });
        status
    }

    pub fn drain_status(&self) -> Option<DrainStatus> {
        self.inner.drain.get().copied()
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.inner.drain.get().is_some()
    }

    /// The server-wide figures for `/metrics`. A room that closes while this runs may
    /// be counted twice in this one reading.
    pub async fn server_metrics(&self) -> ServerMetrics {
        let rooms = self.list_rooms().await;
        let mut forwarding = self.inner.totals.retired();
        for r in &rooms {
            forwarding.absorb(&r.forwarding);
        }
        ServerMetrics {
            rooms: rooms.len() as u64,
            participants: rooms.iter().map(|r| u64::from(r.num_participants)).sum(),
            tracks: rooms.iter().map(|r| u64::from(r.num_tracks)).sum(),
            forwarding,
            media: self.media_stats(),
            room_turns: self.inner.totals.turns(),
            departures: (self.inner.totals.departures().into_iter())
                .map(|(reason, n)| (reason.as_str(), n))
                .collect(),
            removals: self.inner.removals.counts(),
            webhooks: self
                .inner
                .webhooks
                .get()
                .map_or_else(Default::default, |hooks| {
                    let c = hooks.counters();
                    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
                    WebhookStats {
                        delivered: get(&c.delivered),
                        failed: get(&c.failed),
                        dropped: get(&c.dropped),
                    }
                }),
        }
    }

    /// Participants in all rooms (rooms too busy to answer count as empty).
    async fn participants(&self) -> u64 {
        let rooms = self.list_rooms().await;
        rooms.iter().map(|r| u64::from(r.num_participants)).sum()
    }
}
