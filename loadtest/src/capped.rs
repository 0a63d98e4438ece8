//! `--cap-subscribers K --cap-kbps R`: K receivers behind a capped downlink, to check
//! that the server adapts to them (a lower simulcast layer) while the others keep
//! theirs, and what each capped one then received.
//!
//! The cap is the client's own ([`chorus_client::DownlinkCap`]: a FIFO link of R kbit/s
//! with a 400 ms queue in front of its subscriber connection, like `tc tbf` on a
//! router), not a network namespace and veth per member: the harness's participants
//! are tasks of one process, and a socket cannot be moved into another namespace once
//! made, so a namespace per member would mean a process per member. The namespace
//! test with the kernel's shaper is `crates/chorus-server/tests/adapt.rs`.

use chorus_client::{ClientStats, MediaKind};
use serde::Serialize;

/// What one capped receiver got in the window.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CappedMember {
    /// The participant (`p{index:03}`).
    pub index: usize,
    pub cap_kbps: u64,
    /// RTP payload bits per second of all its video tracks.
    pub video_bitrate_bps: f64,
    /// Per video track it receives, the size of the last keyframe (the simulcast layer
    /// the server sends it: 320x180, 640x360 or 1280x720), `?` before one.
    pub layers: Vec<String>,
    /// Video frames complete and decodable a second, all its video tracks.
    pub frames_per_sec: f64,
}

/// The members (by join index) behind a cap: the last `count` receivers.
pub(crate) fn capped_indices(
    receivers: impl DoubleEndedIterator<Item = usize>,
    count: usize,
) -> Vec<usize> {
    let mut capped: Vec<usize> = receivers.rev().take(count).collect();
    capped.sort_unstable();
    capped
}

/// One capped member's figures from its counters at the start (`a`) and end (`b`) of
/// a window of `secs`.
pub(crate) fn measure(
    index: usize,
    cap_kbps: u64,
    a: &ClientStats,
    b: &ClientStats,
    secs: f64,
) -> CappedMember {
    let mut member = CappedMember {
        index,
        cap_kbps,
        ..CappedMember::default()
    };
    let mut tracks: Vec<&String> = b.inbound.keys().collect();
    tracks.sort();
    let (mut bytes, mut frames) = (0u64, 0u64);
    for track in tracks {
        let now = &b.inbound[track];
        if now.kind != MediaKind::Video {
            continue;
        }
        let before = a.inbound.get(track);
        bytes += now.bytes - before.map_or(0, |i| i.bytes.min(now.bytes));
        frames +=
            now.frames.decoded - before.map_or(0, |i| i.frames.decoded.min(now.frames.decoded));
        member.layers.push(
            now.frame_size
                .map_or_else(|| "?".to_owned(), |(w, h)| format!("{w}x{h}")),
        );
    }
    let secs = secs.max(1e-9);
    member.video_bitrate_bps = bytes as f64 * 8.0 / secs;
    member.frames_per_sec = frames as f64 / secs;
    member
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_receivers_are_capped() {
        let cases: [(&[usize], usize, &[usize]); 3] = [
            (&[1, 2, 3, 4], 2, &[3, 4]),
            (&[0, 5, 9], 0, &[]),
            (&[0, 5, 9], 5, &[0, 5, 9]),
        ];
        for (receivers, count, want) in cases {
            assert_eq!(capped_indices(receivers.iter().copied(), count), want);
        }
    }
}
