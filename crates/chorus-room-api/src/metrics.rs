//! The server-wide figures behind `/metrics`, summed over rooms: no per-room labels
//! (per-room detail is in the control API's room stats).

use chorus_protocol::control::{ForwardingStats, MediaStats};

/// A reading for one scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerMetrics {
    pub rooms: u64,
    pub participants: u64,
    pub tracks: u64,
    /// Every room's forwarding since the server started: the open rooms' own counts plus
    /// what closed rooms had counted when they closed.
    pub forwarding: ForwardingStats,
    pub media: MediaStats,
    /// How long the rooms' turns took (a batch of input, timers, and the sending).
    pub room_turns: Histogram,
    pub webhooks: WebhookStats,
    /// Participants that left since the server started, by reason (`client_left`, …).
    pub departures: Vec<(&'static str, u64)>,
    /// The server's removal records, which outlive the rooms.
    pub removals: RemovalStats,
}

/// Removals the server remembers (`DELETE …/participants/{identity}`), all rooms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemovalStats {
    /// Records kept now.
    pub records: u64,
    /// Dropped at the cap (`rooms.max_removal_records`) before they expired.
    pub evicted: u64,
    /// Dropped once they could refuse nothing any more.
    pub expired: u64,
}

/// Webhook deliveries, summed over URLs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebhookStats {
    pub delivered: u64,
    /// Given up after every retry.
    pub failed: u64,
    /// Dropped at a full queue.
    pub dropped: u64,
}

/// A histogram's reading: per-bucket counts (not cumulative), each with its upper bound
/// in seconds, the last one `f64::INFINITY`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    pub buckets: Vec<(f64, u64)>,
    pub sum: f64,
    pub count: u64,
}
