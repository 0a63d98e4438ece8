//! The live progress line on stderr while a run lasts.

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Progress shown on stderr while the run lasts.
#[derive(Default)]
pub(crate) struct Progress {
    phase: AtomicU8,
    pub(crate) joined: AtomicUsize,
    pub(crate) failed: AtomicUsize,
    pub(crate) complete: AtomicUsize,
    pub(crate) done: AtomicBool,
}

pub(crate) const PHASES: [&str; 4] = ["joining", "waiting for media", "measuring", "done"];

impl Progress {
    pub(crate) fn set_phase(&self, phase: u8) {
        self.phase.store(phase, Ordering::Relaxed);
    }

    /// Prints one line, rewritten in place on a terminal, every 5 s otherwise.
    pub(crate) fn spawn(
        self: &Arc<Self>,
        total: usize,
        receivers: usize,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        let started = Instant::now();
        let tty = std::io::stderr().is_terminal();
        tokio::spawn(async move {
            let mut tick = 0u64;
            loop {
                let done = me.done.load(Ordering::Relaxed);
                let line = format!(
                    "[{:5.1} s] {:<17} joined {}/{} ({} failed), complete media {}/{}",
                    started.elapsed().as_secs_f64(),
                    PHASES[me.phase.load(Ordering::Relaxed) as usize % PHASES.len()],
                    me.joined.load(Ordering::Relaxed),
                    total,
                    me.failed.load(Ordering::Relaxed),
                    me.complete.load(Ordering::Relaxed),
                    receivers,
                );
                if tty {
                    eprint!("\r{line}\x1b[K");
                    if done {
                        eprintln!();
                    }
                } else if done || tick == 0 {
                    eprintln!("{line}");
                }
                if done {
                    return;
                }
                tick = (tick + 1) % 10;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    }
}
