//! The m-sections of the server's offers on a subscriber connection. JSEP never removes
//! an m-section: a removed track's is rejected (port 0) in the next offer, and once the
//! client's answer confirmed that, a new track of the same kind may take it over under a
//! fresh mid. A track added and removed before any offer carried it leaves no trace.

use chorus_core::TrackId;
use chorus_protocol::MediaKind;
use chorus_transport::webrtc::sdp::OutTrack;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not in any offer yet.
    New,
    /// In an offer (answered or not), carrying its track.
    Offered,
    /// Its track was removed; the next offer rejects it.
    Stopped,
    /// Rejected in the offer that is out.
    Rejecting,
    /// Rejected, and the client answered: free for a new track of its kind.
    Free,
}

#[derive(Debug)]
struct Section {
    out: OutTrack,
    track: Option<TrackId>,
    state: State,
}

#[derive(Debug, Default)]
pub struct Sections {
    sections: Vec<Section>,
    /// How many sections the last offer had: those past it are unknown to the client.
    offered: usize,
    next_mid: u32,
    /// What the next offer describes (rebuilt at each offer).
    scratch: Vec<OutTrack>,
}

impl Sections {
    pub fn add(&mut self, id: &TrackId, kind: MediaKind, ssrc: u32) {
        let kind = match kind {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
        };
        let out = OutTrack {
            mid: self.next_mid.to_string(),
            kind: kind.to_owned(),
            ssrc,
            // The stream id is the track id: that is how the client maps what arrives.
            stream_id: id.to_string(),
            track_id: id.to_string(),
            stopped: false,
        };
        self.next_mid += 1;
        let section = Section {
            out,
            track: Some(id.clone()),
            state: State::New,
        };
        let free = self
            .sections
            .iter()
            .position(|s| s.state == State::Free && s.out.kind == kind);
        match free {
            Some(i) => self.sections[i] = section,
            None => self.sections.push(section),
        }
    }

    /// Removes `id`'s track; the SSRC it was sent under.
    pub fn remove(&mut self, id: &TrackId) -> Option<u32> {
        let i = self
            .sections
            .iter()
            .position(|s| s.track.as_ref() == Some(id))?;
        let s = &mut self.sections[i];
        let ssrc = s.out.ssrc;
        s.track = None;
        s.out.stopped = true;
        s.state = match s.state {
            // Never offered: a section past the last offer goes; a recycled one is free again.
            State::New if i >= self.offered => {
                self.sections.remove(i);
                return Some(ssrc);
            }
            State::New => State::Free,
            _ => State::Stopped,
        };
        Some(ssrc)
    }

    /// The m-sections of the next offer, which is going out now.
    pub fn offer(&mut self) -> &[OutTrack] {
        self.scratch.clear();
        for s in &mut self.sections {
            s.state = match s.state {
                State::New => State::Offered,
                State::Stopped => State::Rejecting,
                other => other,
            };
            self.scratch.push(s.out.clone());
        }
        self.offered = self.sections.len();
        &self.scratch
    }

    /// The client answered the offer that was out.
    pub fn answered(&mut self) {
        for s in &mut self.sections {
            if s.state == State::Rejecting {
                s.state = State::Free;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mids(s: &mut Sections) -> Vec<(String, bool)> {
        s.offer()
            .iter()
            .map(|t| (t.mid.clone(), t.stopped))
            .collect()
    }

    fn id(n: &str) -> TrackId {
        TrackId::named(n)
    }

    #[test]
    fn sections_are_rejected_then_recycled_only_after_the_answer() {
        let mut s = Sections::default();
        s.add(&id("a"), MediaKind::Video, 1);
        s.add(&id("b"), MediaKind::Video, 2);
        assert_eq!(mids(&mut s), [("0".into(), false), ("1".into(), false)]);
        s.answered();
        s.remove(&id("a"));
        // Not yet rejected in an answered offer: a new track gets a section of its own.
        s.add(&id("c"), MediaKind::Video, 3);
        assert_eq!(
            mids(&mut s),
            [("0".into(), true), ("1".into(), false), ("2".into(), false)]
        );
        // Still in flight: not free yet.
        s.add(&id("d"), MediaKind::Video, 4);
        s.answered();
        s.add(&id("e"), MediaKind::Audio, 5);
        s.add(&id("f"), MediaKind::Video, 6);
        let offer = s.offer().to_vec();
        let got: Vec<_> = offer
            .iter()
            .map(|t| (t.mid.as_str(), t.ssrc, t.stopped))
            .collect();
        // "f" took over the free video section 0 under a fresh mid; audio never takes a
        // video section.
        assert_eq!(
            got,
            [
                ("5", 6, false),
                ("1", 2, false),
                ("2", 3, false),
                ("3", 4, false),
                ("4", 5, false)
            ]
        );
    }

    #[test]
    fn a_track_removed_before_any_offer_leaves_no_section() {
        let mut s = Sections::default();
        s.add(&id("a"), MediaKind::Video, 1);
        s.remove(&id("a"));
        assert!(mids(&mut s).is_empty());
        s.add(&id("b"), MediaKind::Audio, 2);
        assert_eq!(mids(&mut s), [("1".into(), false)]);
        s.answered();
        s.remove(&id("b"));
        s.remove(&id("b"));
        assert_eq!(mids(&mut s), [("1".into(), true)]);
    }
}
