//! Hooks for drivers that carry an [`Engine`]'s signaling themselves instead of the
//! Chorus WebSocket (the load tester's Janus VideoRoom driver): such a driver owns the
//! engine in its own task and still needs the counters from outside it.

use crate::engine::Engine;
use crate::stats::{ClientStats, SharedStats};

/// A cloneable reader of an engine's counters, usable while the engine is borrowed
/// mutably by the task that drives it.
#[derive(Debug, Clone)]
pub struct StatsHandle(SharedStats);

impl StatsHandle {
    pub fn snapshot(&self) -> ClientStats {
        self.0.snapshot()
    }
}

impl Engine {
    /// The engine's counters, readable from anywhere (the same as [`Engine::stats`]).
    pub fn stats_handle(&self) -> StatsHandle {
        StatsHandle(self.shared_stats())
    }
}
