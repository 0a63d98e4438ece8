//! A simulated client and its signaling: what it does by itself with the server's
//! frames (answer its offers, offer its tracks after `publish_accepted`, hold answers
//! when a scenario asks). Its parts: its two peer connections (`client/pc.rs`), its
//! media in and out (`client/media.rs`), its data channels (`client/data.rs`).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use chorus_protocol::signal::{ClientFrame, ClientMessage, PeerTarget, ServerMessage};
use chorus_protocol::{MediaKind, TrackSource};
use chorus_transport::{AUDIO_LEVEL_URI, sending_track, sending_track_with_codec};
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_AV1, MIME_TYPE_OPUS, MIME_TYPE_VP8, MIME_TYPE_VP9,
};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp_transceiver::RTCRtpReceiverId;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;

mod data;
mod media;
mod pc;

pub use data::DataIn;
pub(super) use data::SimData;
pub use media::RtpIn;
pub(super) use pc::Pc;

use super::media::Publication;
use super::net::{Dir, Link, Loss};
use super::simulcast::{SimulcastSend, simulcast_mid};
use super::stream::Stream;
use crate::io::ParticipantKey;
use chorus_transport::webrtc::sdp::{MID_URI, RID_URI};

/// A remote track on the subscriber connection, by rtc's track id.
struct Remote {
    /// The server's track id (the msid stream id).
    track: String,
    receiver: RTCRtpReceiverId,
    ssrc: u32,
    kind: MediaKind,
}

pub(super) struct SimClient {
    index: usize,
    pub identity: String,
    pub key: ParticipantKey,
    pub participant_id: String,
    pub publisher: Pc,
    pub subscriber: Pc,
    /// Every frame the server sent it, in order.
    pub frames: Vec<ServerMessage>,
    /// Frames for the server.
    pub outbox: VecDeque<ClientFrame>,
    pub hold_answers: bool,
    /// Applies `publisher_layers` to its simulcast layers, as a browser's
    /// `setParameters` would (off: records them only).
    pub applies_layers: bool,
    held: VecDeque<String>,
    /// Publishing: announced (cid, source) waiting for `publish_accepted`.
    announced: Vec<(String, TrackSource)>,
    /// Tracks announced so far (numbers cids and SSRCs).
    tracks_made: u32,
    /// Cameras announced to be sent in simulcast layers, by cid.
    pub(super) simulcast_cids: Vec<String>,
    /// Cameras announced to be sent in VP9 SVC layers, by cid (`svc.rs`).
    pub(super) svc_cids: Vec<String>,
    /// Its cameras are sent in AV1 (`av1.rs`).
    pub(super) av1: bool,
    pub publications: Vec<Publication>,
    needs_offer: bool,
    offer_in_flight: bool,
    remotes: HashMap<String, Remote>,
    pub rtp: HashMap<String, Vec<RtpIn>>,
    /// Padding-only packets (bandwidth probes) by track, kept apart from the media: a
    /// receiver takes them as padding (they fill their numbers, and carry nothing).
    pub padding: HashMap<String, Vec<RtpIn>>,
    /// Per track, padding-only packets since its last media packet.
    padded_since: HashMap<String, u16>,
    /// Keyframe requests (PLI, FIR) that reached the publisher connection.
    pub plis: Vec<Instant>,
    /// Cut off the network: nothing goes out, nothing comes in.
    pub offline: bool,
    /// The server closed its session.
    pub departed: bool,
    /// Waits in the lobby: frames to the room skip it.
    pub waiting: bool,
    pub up: Loss,
    pub down: Loss,
    /// Its data channels, once opened (`client/data.rs`).
    pub data: SimData,
    /// Its downlink's capacity and delay (after `down`'s losses).
    pub downlink: Link,
}

impl SimClient {
    pub fn new(identity: &str, index: usize, seed: u64, now: Instant) -> Self {
        Self {
            index,
            identity: identity.to_owned(),
            key: ParticipantKey(u64::MAX),
            participant_id: String::new(),
            publisher: Pc::new(super::net::client_addr(index, 0), now),
            subscriber: Pc::new(super::net::client_addr(index, 1), now),
            frames: Vec::new(),
            outbox: VecDeque::new(),
            hold_answers: false,
            applies_layers: false,
            held: VecDeque::new(),
            announced: Vec::new(),
            tracks_made: 0,
            simulcast_cids: Vec::new(),
            svc_cids: Vec::new(),
            av1: false,
            publications: Vec::new(),
            needs_offer: false,
            offer_in_flight: false,
            remotes: HashMap::new(),
            rtp: HashMap::new(),
            padding: HashMap::new(),
            padded_since: HashMap::new(),
            plis: Vec::new(),
            offline: false,
            departed: false,
            waiting: false,
            up: Loss::new(seed, index, Dir::Up),
            down: Loss::new(seed, index, Dir::Down),
            data: SimData::default(),
            downlink: Link::default(),
        }
    }

    pub fn send(&mut self, msg: ClientMessage) {
        self.outbox.push_back(msg.into());
    }

    /// Announces a track; it is added and offered once the server accepts it.
    /// Announces a track; it is added and offered once the server accepts it. Returns
    /// its `cid`.
    pub fn announce(&mut self, source: TrackSource) -> String {
        self.tracks_made += 1;
        let cid = format!("{}-{}-{}", self.identity, source.as_str(), self.tracks_made);
        self.announced.push((cid.clone(), source));
        self.send(ClientMessage::Publish {
            cid: cid.clone(),
            source,
            muted: false,
        });
        cid
    }

    /// Stops sending a track, removes it from the publisher connection and offers
    /// without it, as `chorus-client` unpublishes.
    pub fn unpublish(&mut self, track_id: &str, now: Instant) {
        let at = self
            .publications
            .iter()
            .position(|p| p.track_id == track_id);
        let publication = self
            .publications
            .remove(at.expect("a track of this client"));
        self.send(ClientMessage::Unpublish {
            track_id: track_id.to_owned(),
        });
        let _ = self.publisher.pc.remove_track(publication.sender);
        self.needs_offer = true;
        self.offer(now);
    }

    /// A frame from the server: recorded, and acted on as a client would.
    pub fn on_frame(&mut self, msg: ServerMessage, now: Instant) {
        match &msg {
            ServerMessage::Offer {
                target: PeerTarget::Subscriber,
                sdp,
            } => {
                self.held.push_back(sdp.clone());
                if !self.hold_answers {
                    self.answer_held(now);
                }
            }
            ServerMessage::Answer {
                target: PeerTarget::Publisher,
                sdp,
            } => self.apply_answer(sdp, now),
            ServerMessage::PublishAccepted { cid, track } => {
                if let Some(at) = self.announced.iter().position(|(c, _)| c == cid) {
                    let (cid, source) = self.announced.remove(at);
                    self.add_publication(cid, track.track_id.clone(), source);
                    self.offer(now);
                }
            }
            ServerMessage::PublisherLayers { track_id, layers } if self.applies_layers => {
                let sending = self
                    .publications
                    .iter_mut()
                    .find(|p| &p.track_id == track_id);
                if let Some(s) = sending.and_then(|p| p.simulcast.as_mut()) {
                    for l in &mut s.layers {
                        if let Some(told) = layers.iter().find(|t| t.rid == l.rid) {
                            l.paused = !told.active;
                        }
                    }
                }
            }
            _ => {}
        }
        self.frames.push(msg);
    }

    /// Answers the offers it holds, in order.
    pub fn answer_held(&mut self, now: Instant) {
        while let Some(sdp) = self.held.pop_front() {
            let pc = &mut self.subscriber.pc;
            let offer = RTCSessionDescription::offer(sdp).expect("server offer parses");
            pc.set_remote_description(now, offer)
                .expect("server offer applies");
            let answer = pc.create_answer(None).expect("answer");
            pc.set_local_description(now, answer)
                .expect("answer applies");
            let sdp = self.subscriber.sdp();
            self.send(ClientMessage::Answer {
                target: PeerTarget::Subscriber,
                sdp,
            });
        }
    }

    fn add_publication(&mut self, cid: String, track_id: String, source: TrackSource) {
        let kind = match source.kind() {
            MediaKind::Audio => RtpCodecKind::Audio,
            MediaKind::Video => RtpCodecKind::Video,
        };
        let simulcast = self.simulcast_cids.contains(&cid);
        let svc = self.svc_cids.contains(&cid);
        let av1 = self.av1 && kind == RtpCodecKind::Video;
        let (ssrc, track) = if av1 {
            let ssrc = 0x5400_0000 + (self.index as u32) * 256 + self.tracks_made;
            let codec = chorus_transport::av1_codec().rtp_codec;
            let label = source.as_str().to_owned();
            let track =
                sending_track_with_codec(track_id.clone(), cid.clone(), label, kind, ssrc, codec);
            (ssrc, track)
        } else if svc {
            let ssrc = 0x5300_0000 + (self.index as u32) * 256 + self.tracks_made;
            let codec = chorus_transport::vp9_codec().rtp_codec;
            let label = source.as_str().to_owned();
            let track =
                sending_track_with_codec(track_id.clone(), cid.clone(), label, kind, ssrc, codec);
            (ssrc, track)
        } else if simulcast {
            // Three SSRCs from here, apart from any other track's.
            let ssrc = 0x5200_0000 + (self.index as u32) * 256 + self.tracks_made * 4;
            let track = super::simulcast::sending_track(track_id.clone(), cid.clone(), ssrc);
            (ssrc, track)
        } else {
            let ssrc = 0x5100_0000 + (self.index as u32) * 256 + self.tracks_made;
            let track = sending_track(
                track_id.clone(),
                cid.clone(),
                source.as_str().to_owned(),
                kind,
                ssrc,
            );
            (ssrc, track)
        };
        let sender = self.publisher.pc.add_track(track).expect("add track");
        self.publications.push(Publication {
            track_id,
            cid,
            source,
            sender,
            ssrc,
            stream: None,
            keyframe_due: true,
            keyframes_sent: 0,
            simulcast: None,
            svc,
            av1,
        });
        self.needs_offer = true;
    }

    fn offer(&mut self, now: Instant) {
        if !self.needs_offer || self.offer_in_flight {
            return;
        }
        let pc = &mut self.publisher.pc;
        let offer = pc.create_offer(None).expect("publisher offer");
        pc.set_local_description(now, offer).expect("offer applies");
        let sdp = self.publisher.sdp();
        self.needs_offer = false;
        self.offer_in_flight = true;
        self.send(ClientMessage::Offer {
            target: PeerTarget::Publisher,
            sdp,
        });
    }

    fn apply_answer(&mut self, sdp: &str, now: Instant) {
        self.offer_in_flight = false;
        let answer = RTCSessionDescription::answer(sdp.to_owned()).expect("server answer parses");
        self.publisher
            .pc
            .set_remote_description(now, answer)
            .expect("server answer applies");
        let local = self.publisher.sdp();
        for p in self.publications.iter_mut().filter(|p| p.stream.is_none()) {
            let Some(mut sender) = self.publisher.pc.rtp_sender(p.sender) else {
                continue;
            };
            let params = &sender.get_parameters().rtp_parameters;
            let mime = match p.source.kind() {
                MediaKind::Audio => MIME_TYPE_OPUS,
                MediaKind::Video if p.av1 => MIME_TYPE_AV1,
                MediaKind::Video if p.svc => MIME_TYPE_VP9,
                MediaKind::Video => MIME_TYPE_VP8,
            };
            let Some(pt) = params
                .codecs
                .iter()
                .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(mime))
                .map(|c| c.payload_type)
            else {
                continue;
            };
            let level = params
                .header_extensions
                .iter()
                .find(|e| e.uri == AUDIO_LEVEL_URI && p.source.kind() == MediaKind::Audio)
                .and_then(|e| u8::try_from(e.id).ok());
            if self.simulcast_cids.contains(&p.cid) {
                let ext = |uri: &str| {
                    let e = params.header_extensions.iter().find(|e| e.uri == uri)?;
                    u8::try_from(e.id).ok()
                };
                let (Some(mid_ext), Some(rid_ext)) = (ext(MID_URI), ext(RID_URI)) else {
                    panic!("the answer took no simulcast extensions:\n{sdp}");
                };
                let mid = simulcast_mid(&local).expect("a simulcast m-section");
                p.simulcast = Some(SimulcastSend::new(pt, p.ssrc, (mid_ext, mid), rid_ext, now));
            }
            let mut stream = Stream::new(pt, level, p.ssrc, now);
            if p.av1 {
                let dd = params
                    .header_extensions
                    .iter()
                    .find(|e| e.uri == chorus_transport::webrtc::sdp::DD_URI);
                stream.dd_ext = dd.and_then(|e| u8::try_from(e.id).ok());
            }
            p.stream = Some(stream);
        }
        self.offer(now);
    }

    /// Its connection at `addr` (the publisher's, or else the subscriber's).
    pub fn pc_at(&mut self, addr: SocketAddr) -> &mut Pc {
        if self.publisher.addr == addr {
            &mut self.publisher
        } else {
            &mut self.subscriber
        }
    }
}

/// Simulcast publishing (`simulcast.rs` sends the layers).
impl SimClient {
    /// From now on its publisher connection offers the simulcast extensions; call it
    /// before the first publish.
    pub fn enable_simulcast(&mut self, now: Instant) {
        self.publisher = Pc::with(self.publisher.addr, now, true);
    }

    /// From now on its publisher connection offers VP9 only (`svc.rs` sends the
    /// layers); call it before the first publish.
    pub fn enable_svc(&mut self, now: Instant) {
        self.publisher = Pc::vp9(self.publisher.addr, now);
    }

    /// From now on its publisher connection offers AV1 only, and its cameras send AV1
    /// (`av1.rs`); call it before the first publish.
    pub fn enable_av1(&mut self, now: Instant) {
        self.publisher = Pc::av1(self.publisher.addr, now);
        self.av1 = true;
    }

    /// Announces a camera sent in three simulcast layers; returns its `cid`.
    pub fn announce_simulcast(&mut self) -> String {
        let cid = self.announce(TrackSource::Camera);
        self.simulcast_cids.push(cid.clone());
        cid
    }
}
