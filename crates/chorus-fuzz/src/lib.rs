//! Each input Chorus takes from the network, as a function of bytes.
//!
//! One function per fuzz target (`fuzz/fuzz_targets/`): it drives the real parser, and
//! where it is cheap the code that consumes what was parsed, and panics only where the
//! server would. The fuzz targets call these functions and nothing else; the replay test
//! (`tests/replay.rs`) runs the kept corpus and every input that once found a bug
//! (`fuzz/corpus/`, `fuzz/regressions/`) through them on stable, in `cargo test`.
//!
//! Inputs that carry several datagrams or messages are split into frames by
//! [`frames`] (a 2-byte big-endian length before each), so that a fuzzer mutates
//! sequences, not just single packets. Nothing here is a dependency of the server.

mod control_api;
mod datachannel;
mod demux;
mod media;
mod sdp;
mod signaling;
mod token;

pub use control_api::control_api;
pub use datachannel::datachannel;
pub use demux::demux;
pub use media::{rtcp, rtp};
pub use sdp::sdp;
pub use signaling::signaling;
pub use token::token;

/// A target: one input, which it must take without a panic.
pub type Target = fn(&[u8]);

/// Every target, by the name of its fuzz target and corpus directory.
pub const TARGETS: &[(&str, Target)] = &[
    ("control_api", control_api),
    ("datachannel", datachannel),
    ("demux", demux),
    ("rtcp", rtcp),
    ("rtp", rtp),
    ("sdp", sdp),
    ("signaling", signaling),
    ("token", token),
];

/// The frames of a sequence input: each is a 2-byte big-endian length and that many
/// bytes; a last frame shorter than its length is taken as it is.
pub fn frames(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let [hi, lo, rest @ ..] = data else {
            return None;
        };
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(rest.len());
        let (frame, tail) = rest.split_at(len);
        data = tail;
        Some(frame)
    })
}

/// The inverse of [`frames`], for writing seeds.
pub fn framed<'a>(packets: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for p in packets {
        let len = u16::try_from(p.len()).expect("a frame fits in 64 KiB");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(p);
    }
    out
}

/// One peer factory (and so one certificate) for every input: making one is slow.
pub(crate) fn peers() -> &'static chorus_transport::PeerFactory {
    static PEERS: std::sync::OnceLock<chorus_transport::PeerFactory> = std::sync::OnceLock::new();
    PEERS.get_or_init(|| {
        chorus_transport::PeerFactory::new(([127, 0, 0, 1], 7882).into()).expect("peer factory")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_truncate() {
        let data = framed([&b"ab"[..], b"", b"xyz"]);
        let got: Vec<&[u8]> = frames(&data).collect();
        assert_eq!(got, vec![&b"ab"[..], b"", b"xyz"]);
        let got: Vec<&[u8]> = frames(&[0, 9, 1, 2]).collect();
        assert_eq!(got, vec![&[1u8, 2][..]]);
        assert_eq!(frames(&[7]).count(), 0);
    }
}
