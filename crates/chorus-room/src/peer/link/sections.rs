//! The m-sections of the server's offers on a subscriber connection. JSEP never removes
//! an m-section. A removed track's goes idle (`inactive`, still bundled: rejecting it
//! would take it out of the BUNDLE, and Firefox closes the transport when that was the
//! first one); once the client's answer confirmed that, a new track of the same kind
//! takes it over, under the same mid. A track added and removed before any offer carried
//! it leaves no trace.

use chorus_core::{Codec, TrackId};
use chorus_transport::webrtc::sdp::OutTrack;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not in any offer yet.
    New,
    /// In an offer (answered or not), carrying its track.
    Offered,
    /// Its track was removed; the next offer says it is idle.
    Stopped,
    /// Idle in the offer that is out.
    Idling,
    /// Idle, and the client answered: free for a new track of its kind.
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
    pub fn add(&mut self, id: &TrackId, codec: Codec, ssrc: u32) {
        let kind = if codec.is_video() { "video" } else { "audio" };
        let free = self
            .sections
            .iter()
            .position(|s| s.state == State::Free && s.out.kind == kind);
        let mid = match free {
            Some(i) => self.sections[i].out.mid.clone(),
            None => {
                self.next_mid += 1;
                (self.next_mid - 1).to_string()
            }
        };
        let section = Section {
            out: OutTrack {
                mid,
                kind: kind.to_owned(),
                codec,
                ssrc,
                // The stream id is the track id: that is how the client maps what arrives.
                stream_id: id.to_string(),
                track_id: id.to_string(),
                idle: false,
            },
            track: Some(id.clone()),
            state: State::New,
        };
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
        s.out.idle = true;
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
                State::Stopped => State::Idling,
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
            if s.state == State::Idling {
                s.state = State::Free;
            }
        }
    }

    /// The tracks of the offer that was out whose m-section the answer took without the
    /// codec they are sent in (`takes(mid, codec)`: whether the answer's section lists
    /// it; false where it rejected the section): a client without H.264 answers an H.264
    /// track's section with VP8 only, and could not decode what came.
    pub fn refused(&self, takes: impl Fn(&str, Codec) -> bool) -> Vec<TrackId> {
        self.sections
            .iter()
            .filter(|s| s.state == State::Offered && !takes(&s.out.mid, s.out.codec))
            .filter_map(|s| s.track.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (mid, ssrc, idle) of each m-section of the next offer.
    fn offer(s: &mut Sections) -> Vec<(String, u32, bool)> {
        s.offer()
            .iter()
            .map(|t| (t.mid.clone(), t.ssrc, t.idle))
            .collect()
    }

    fn id(n: &str) -> TrackId {
        TrackId::named(n)
    }

    fn m(mid: &str, ssrc: u32, idle: bool) -> (String, u32, bool) {
        (mid.to_owned(), ssrc, idle)
    }

    #[test]
    fn sections_idle_then_are_taken_over_only_after_the_answer() {
        let mut s = Sections::default();
        s.add(&id("a"), Codec::Vp8, 1);
        s.add(&id("b"), Codec::Vp8, 2);
        assert_eq!(offer(&mut s), [m("0", 1, false), m("1", 2, false)]);
        s.answered();
        assert_eq!(s.remove(&id("a")), Some(1));
        // Not yet idle in an answered offer: a new track gets a section of its own.
        s.add(&id("c"), Codec::Vp8, 3);
        assert_eq!(
            offer(&mut s),
            [m("0", 1, true), m("1", 2, false), m("2", 3, false)]
        );
        // Still in flight: not free yet.
        s.add(&id("d"), Codec::Vp8, 4);
        s.answered();
        s.add(&id("e"), Codec::Opus, 5);
        s.add(&id("f"), Codec::Vp8, 6);
        // "f" took over the free video section 0 under its mid; audio never takes a
        // video section.
        assert_eq!(
            offer(&mut s),
            [
                m("0", 6, false),
                m("1", 2, false),
                m("2", 3, false),
                m("3", 4, false),
                m("4", 5, false)
            ]
        );
    }

    #[test]
    fn a_track_removed_before_any_offer_leaves_no_section() {
        let mut s = Sections::default();
        s.add(&id("a"), Codec::Vp8, 1);
        s.remove(&id("a"));
        assert!(offer(&mut s).is_empty());
        s.add(&id("b"), Codec::Opus, 2);
        assert_eq!(offer(&mut s), [m("1", 2, false)]);
        s.answered();
        s.remove(&id("b"));
        assert_eq!(s.remove(&id("b")), None);
        assert_eq!(offer(&mut s), [m("1", 2, true)]);
    }

    #[test]
    fn tracks_answered_without_their_codec_are_refused() {
        let mut s = Sections::default();
        s.add(&id("h264"), Codec::H264, 1);
        s.add(&id("vp8"), Codec::Vp8, 2);
        s.add(&id("mix"), Codec::Opus, 3);
        s.add(&id("rejected"), Codec::Vp8, 4);
        offer(&mut s);
        s.answered();
        s.add(&id("later"), Codec::H264, 5);
        // A client without H.264: VP8 in every video section, one section rejected;
        // "later" was not in the offer it answered.
        let answered = |mid: &str, c: Codec| match mid {
            "0" | "1" => c == Codec::Vp8,
            "2" => c == Codec::Opus,
            _ => false,
        };
        assert_eq!(s.refused(answered), [id("h264"), id("rejected")]);
        // Both video codecs in every video section, in any order: nothing refused.
        let all_taken = |mid: &str, c: Codec| match mid {
            "0" | "1" | "3" => c != Codec::Opus,
            "2" => c == Codec::Opus,
            _ => false,
        };
        assert!(s.refused(all_taken).is_empty());
    }
}
