//! A participant that joined (Chorus or Janus) and snapshots of everyone's
//! counters; shared by the run, `janus` and `measure`.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use chorus_client::{Client, ClientError, ClientStats};

/// A joined participant's counters: a Chorus [`Client`], or a Janus one (`janus.rs`).
/// Dropping it leaves the room.
pub(crate) trait Participant: Send {
    fn stats(&self) -> ClientStats;

    /// Tells the server the size a received video is shown at (`track_settings`, by
    /// track id); `None` where the SFU has no such message (Janus).
    fn show_video(&self, _track_id: &str, _size: (u32, u32)) -> Option<Sending<'_>> {
        None
    }
}

/// A message on its way to the server.
pub(crate) type Sending<'a> = Pin<Box<dyn Future<Output = Result<(), ClientError>> + Send + 'a>>;

impl Participant for Client {
    fn stats(&self) -> ClientStats {
        Client::stats(self)
    }

    fn show_video(&self, track_id: &str, size: (u32, u32)) -> Option<Sending<'_>> {
        let track_id = track_id.to_owned();
        Some(Box::pin(async move {
            self.track_settings(&track_id, Some(size), true, None).await
        }))
    }
}

/// A participant that joined.
pub(crate) struct Member {
    pub(crate) index: usize,
    pub(crate) client: Box<dyn Participant>,
    pub(crate) joined_at: Instant,
    /// Own track ids.
    pub(crate) tracks: Vec<String>,
    pub(crate) subscribe: bool,
}

pub(crate) struct JoinOutcome {
    pub(crate) member: Member,
    pub(crate) join_time: Duration,
    pub(crate) publish_error: Option<String>,
}

/// Counters of everyone at one moment.
pub(crate) struct Snapshot {
    pub(crate) stats: Vec<ClientStats>,
}

impl Snapshot {
    pub(crate) fn take(members: &[Member]) -> Self {
        Self {
            stats: members.iter().map(|m| m.client.stats()).collect(),
        }
    }

    /// Receivers (by position in `members`) that have packets on every expected track.
    pub(crate) fn complete(&self, expected: &[Vec<String>]) -> usize {
        self.stats
            .iter()
            .zip(expected)
            .filter(|(s, want)| {
                !want.is_empty()
                    && want
                        .iter()
                        .all(|t| s.inbound.get(t).is_some_and(|i| i.packets > 0))
            })
            .count()
    }
}
