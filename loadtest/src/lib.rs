//! `chorus-loadtest`: real WebRTC participants (ICE, DTLS-SRTP, synthetic Opus and
//! VP8) join a Chorus room, publish and receive, and the harness reports join times,
//! time to first media, tracks received, loss, egress rate and the server's CPU and
//! memory (read from `/proc/<pid>/stat` and `/proc/<pid>/status`).
//!
//! One process drives every participant. A run has four phases, each bounded:
//!
//! 1. **join**: participants join at `--join-rate` per second (token minted through
//!    the control API, `connect`, then `publish` of their tracks). Joins still
//!    running `--join-timeout` seconds after the last one started are abandoned.
//! 2. **media**: wait until every receiving participant gets packets on every track
//!    the others published, or `--media-timeout` seconds.
//! 3. **window**: `--seconds` of steady state; counters are read at both ends.
//! 4. **report**: figures computed from the two snapshots and the join timings.
//!
//! Loss is counted by sequence numbers over the window: for every (receiver, track)
//! pair the receiver should get, the numbers above the highest it had at the start of
//! the window up to the highest at the end are expected, and the distinct ones of them
//! that arrived are received, so duplicates and retransmissions count once and loss is
//! never negative. A published track of which the receiver got no new number in the
//! window counts everything its publisher sent in it as lost (see [`measure`]).
//! `loss = 1 - received / expected`, summed over all pairs.
//!
//! Media content: the talkers (`--talkers`) send real Opus talk, the others Opus
//! silence; every video packet carries its send time, so receivers measure the latency
//! the server adds (to the kernel's receive time: the receiving task's scheduling is
//! not in it). See `README.md`.

mod args;
mod capped;
mod churn;
mod ctx;
mod member;
mod probe;
mod progress;
mod report;
mod run;
mod told;
mod view;

pub mod janus;
pub mod measure;
pub mod plot;

pub use args::{Args, CodecArg, Role, Scenario, TalkArg, Target, ViewArg};
pub use capped::CappedMember;
pub use probe::rss_kib;
pub use report::{ChurnReport, ChurnSample};
pub use report::{Percentiles, Report};
pub use run::run;
pub use view::{SPEAKER_SIZE, TILE_SIZE, ViewBitrates};
