//! The media half of a client: the publisher and subscriber peer connections, the
//! synthetic media sources and the counters, with no signaling transport.
//!
//! [`Engine`] takes signaling messages in ([`Engine::handle_signal`]) and hands the
//! ones to send out ([`Engine::poll_signal`]); whoever owns it carries them. The
//! [`crate::Client`] carries them over the Chorus WebSocket; a test can connect one
//! engine's publisher connection to another engine's subscriber connection directly.
//!
//! The engine's core is here: both connections and all the state they carry (every
//! track's included), driving them ([`Engine::step`], [`Engine::drive`]), network paths
//! and ICE restarts, and the signaling queues. What the engine does with our tracks is
//! in `publish`, with the server's tracks in `subscribe`; both add methods to
//! [`Engine`] and import from here, nothing here imports from them.

mod data;
mod outgoing;
mod publish;
mod subscribe;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use chorus_protocol::signal::{ClientMessage, PeerTarget, ServerMessage};
use chorus_protocol::{MediaKind, TrackSource};
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId};
use tracing::debug;

use crate::decode::AudioDecoder;
use crate::error::ClientError;
use crate::peer::{Peer, PeerOutput};
use crate::profile::MediaProfile;
use crate::stats::{ClientStats, PeerStats, SharedStats};
pub use data::DataReceived;
use outgoing::Outgoing;

/// Longest sleep of [`Engine::step`] when nothing is scheduled.
const IDLE_WAKE: Duration = Duration::from_secs(1);
/// Most datagrams one [`Engine::step`] takes in before it drives the connections: a
/// bound, so that timers and sends still run during a long burst.
const RECV_BATCH: usize = 64;
/// Pause after a socket error so a persistent one cannot spin the task.
const SOCKET_ERROR_BACKOFF: Duration = Duration::from_millis(10);

/// Result of negotiating one publication: its `cid` and whether media can flow.
pub type NegotiationOutcome = (String, Result<(), ClientError>);

/// One of our tracks on the publisher connection.
struct Publication {
    /// Our `MediaStreamTrack` id, the msid track id.
    cid: String,
    /// The server's track id; also the msid stream id and the stats key.
    track_id: String,
    source: TrackSource,
    sender: RTCRtpSenderId,
    /// The stream's SSRC; a simulcast camera's lowest layer's.
    ssrc: u32,
    /// A simulcast camera's SSRCs, lowest layer first.
    layer_ssrcs: Option<[u32; 3]>,
    /// Set once the answer names the payload type.
    media: Option<Outgoing>,
    muted: bool,
}

/// A remote track on the subscriber connection.
struct Subscription {
    /// The server's track id (the media stream id).
    track_id: String,
    receiver: RTCRtpReceiverId,
    ssrc: u32,
    kind: MediaKind,
    /// Audio with `MediaProfile::decode_audio`.
    decoder: Option<AudioDecoder>,
    /// Sequence number of our last FIR for the track (RFC 5104: one more per request).
    fir_seq: u8,
}

/// Offer/answer state of the publisher connection, where we are the only offerer.
#[derive(Default)]
struct PublisherNegotiation {
    needs_offer: bool,
    offer_in_flight: bool,
    /// Publications added since the last offer.
    waiting: Vec<String>,
    /// Publications the offer in flight introduces.
    in_offer: Vec<String>,
    /// The next offer restarts ICE.
    ice_restart: bool,
}

/// Both peer connections of one participant and the media they carry.
pub struct Engine {
    publisher: Peer,
    subscriber: Peer,
    profile: MediaProfile,
    publications: Vec<Publication>,
    /// Remote tracks by the msid track id their RTP packets are tagged with.
    subscriptions: HashMap<String, Subscription>,
    negotiation: PublisherNegotiation,
    signals: VecDeque<ClientMessage>,
    negotiated: VecDeque<NegotiationOutcome>,
    stats: SharedStats,
    data: data::DataChannels,
}

impl Engine {
    /// Binds one UDP socket per peer connection on `bind_ip` (a concrete address, not
    /// a wildcard: it is advertised as the host candidate).
    pub async fn bind(bind_ip: IpAddr, profile: MediaProfile) -> Result<Self, ClientError> {
        Ok(Self {
            publisher: Peer::bind(PeerTarget::Publisher, bind_ip, &profile).await?,
            subscriber: Peer::bind(PeerTarget::Subscriber, bind_ip, &profile).await?,
            profile,
            publications: Vec::new(),
            subscriptions: HashMap::new(),
            negotiation: PublisherNegotiation::default(),
            signals: VecDeque::new(),
            negotiated: VecDeque::new(),
            stats: SharedStats::default(),
            data: data::DataChannels::default(),
        })
    }

    pub fn stats(&self) -> ClientStats {
        self.stats.snapshot()
    }

    pub(crate) fn shared_stats(&self) -> SharedStats {
        self.stats.clone()
    }

    /// Local UDP addresses of the publisher and subscriber connections.
    pub fn local_addrs(&self) -> (SocketAddr, SocketAddr) {
        (self.publisher.local_addr(), self.subscriber.local_addr())
    }

    /// Opens a second path on `target` (a new socket, checked with the server, not
    /// nominated): the client now has two candidate pairs. Returns its address.
    pub async fn add_path(&mut self, target: PeerTarget) -> Result<SocketAddr, ClientError> {
        self.peer_mut(target).add_path().await
    }

    /// Nominates the second path of `target` and sends through it from now on, as a
    /// browser does when it switches pairs mid-call.
    pub async fn switch_path(&mut self, target: PeerTarget) -> Result<SocketAddr, ClientError> {
        let addr = self.peer_mut(target).switch_path().await?;
        self.drive(Instant::now());
        Ok(addr)
    }

    /// Closes the path `target` used before its last switch, as when that interface
    /// goes away: from now on only the nominated path receives.
    pub fn drop_previous_path(&mut self, target: PeerTarget) -> Result<SocketAddr, ClientError> {
        self.peer_mut(target).drop_previous_path()
    }

    /// The client's address changed (a new socket; the old one is closed) and it
    /// restarts ICE on `target` ([`Engine::restart_ice`]).
    pub async fn change_address(&mut self, target: PeerTarget) -> Result<SocketAddr, ClientError> {
        let addr = self.peer_mut(target).change_address().await?;
        self.restart_ice(target);
        Ok(addr)
    }

    /// Restarts ICE on `target`: a new offer with new credentials on the publisher
    /// connection; on the subscriber connection it asks the server to offer one. What a
    /// client does when the server sends `ice_restart`, or when its network changed.
    pub fn restart_ice(&mut self, target: PeerTarget) {
        match target {
            PeerTarget::Publisher => {
                self.negotiation.ice_restart = true;
                self.negotiation.needs_offer = true;
                self.offer_if_needed(Instant::now());
            }
            PeerTarget::Subscriber => self.signals.push_back(ClientMessage::IceRestart { target }),
        }
    }

    /// Cuts `target` off the network (nothing sent, nothing received) or reconnects it,
    /// as an outage does.
    pub fn set_offline(&mut self, target: PeerTarget, offline: bool) {
        self.peer_mut(target).set_offline(offline);
    }

    /// Next signaling message to send (offer, answer, candidate), in order.
    pub fn poll_signal(&mut self) -> Option<ClientMessage> {
        self.signals.pop_front()
    }

    /// Next publication whose negotiation finished.
    pub fn poll_negotiated(&mut self) -> Option<NegotiationOutcome> {
        self.negotiated.pop_front()
    }

    /// Applies an offer, answer or candidate from the server; other messages are ignored.
    pub fn handle_signal(
        &mut self,
        now: Instant,
        message: &ServerMessage,
    ) -> Result<(), ClientError> {
        let result = match message {
            ServerMessage::Offer {
                target: PeerTarget::Subscriber,
                sdp,
            } => self.answer_subscriber_offer(now, sdp),
            ServerMessage::Answer {
                target: PeerTarget::Publisher,
                sdp,
            } => self.apply_publisher_answer(now, sdp),
            ServerMessage::Offer { target, .. } | ServerMessage::Answer { target, .. } => Err(
                ClientError::Protocol(format!("unexpected SDP direction for {target:?}")),
            ),
            ServerMessage::Candidate {
                target,
                candidate: Some(candidate),
            } => self.peer_mut(*target).add_remote_candidate(candidate),
            ServerMessage::PublisherLayers { track_id, layers } => {
                // Dynacast, applied as a browser's setParameters would.
                let layers: Vec<(String, bool)> =
                    layers.iter().map(|l| (l.rid.clone(), l.active)).collect();
                let publication = self
                    .publications
                    .iter_mut()
                    .find(|p| &p.track_id == track_id);
                if let Some(media) = publication.and_then(|p| p.media.as_mut()) {
                    media.set_layers(&layers);
                }
                Ok(())
            }
            _ => Ok(()),
        };
        if result.is_err()
            && matches!(
                message,
                ServerMessage::Offer { .. } | ServerMessage::Answer { .. }
            )
        {
            self.stats.lock().negotiation_failures += 1;
        }
        self.drive(now);
        result
    }

    /// Waits for a datagram or the next timer, handles it and drives both connections.
    /// Cancel-safe: nothing is lost when the future is dropped before it completes.
    pub async fn step(&mut self) {
        let deadline = self.poll_timeout(Instant::now());
        let received = tokio::select! {
            received = self.publisher.recv() => Some((PeerTarget::Publisher, received)),
            received = self.subscriber.recv() => Some((PeerTarget::Subscriber, received)),
            _ = tokio::time::sleep_until(deadline.into()) => None,
        };
        // Whatever woke it, everything waiting is read before the connections are
        // driven, and they are driven at the time it woke: a drive moves a connection's
        // clock, and a datagram that reached the kernel before that time but was read
        // after it could only be dated then, which its transport-wide CC feedback would
        // report as queueing (with the timer first, 41 % of a starved large-350's
        // arrivals were dated 25 ms late on average).
        // With datagrams left behind (a burst over the bound), not even that: they may
        // have come before it, so the drive is at the last one read.
        let woke = Instant::now();
        let drained = match received {
            Some((target, Ok(()))) => {
                self.take_in(target);
                self.take_waiting(1)
            }
            Some((target, Err(err))) => {
                debug!(?target, %err, "socket receive failed");
                tokio::time::sleep(SOCKET_ERROR_BACKOFF).await;
                true
            }
            None => self.take_waiting(0),
        };
        self.count_arrivals();
        let read = self.publisher.clock().max(self.subscriber.clock());
        self.drive(if drained { read.max(woke) } else { read });
    }

    /// Hands the next datagram `target` read to its connection and acts on what that
    /// produced; false when none was left. The outputs are taken at once, not after the
    /// burst: taking the events is what moves the core on (a finished DTLS handshake
    /// keys SRTP for the packets right behind it).
    fn take_in(&mut self, target: PeerTarget) -> bool {
        let now = Instant::now();
        if self.peer_mut(target).handle_next(now).is_none() {
            return false;
        }
        while let Some(output) = self.peer_mut(target).poll_output() {
            self.on_output(target, now, output);
        }
        true
    }

    /// Takes in the datagrams already waiting on both connections, up to
    /// [`RECV_BATCH`], so that a burst costs one wakeup and one [`Engine::drive`]
    /// (timers, media, sends) instead of one per datagram. Each connection reads its
    /// socket a burst at a time (`recvmmsg`); what the bound leaves is taken next time.
    /// `taken`: datagrams this wakeup took in already. False when it stopped at the
    /// bound with datagrams perhaps left.
    fn take_waiting(&mut self, mut taken: usize) -> bool {
        while taken < RECV_BATCH {
            let mut any = false;
            for target in [PeerTarget::Subscriber, PeerTarget::Publisher] {
                // A socket error is left for the next `step`, which backs off on it.
                if let Some(Ok(())) = self.peer_mut(target).try_recv()
                    && self.take_in(target)
                {
                    (any, taken) = (true, taken + 1);
                }
            }
            if !any {
                return true;
            }
        }
        false
    }

    /// Copies the connections' arrival counts into the stats: once per burst, not per
    /// datagram.
    fn count_arrivals(&mut self) {
        let (publisher, subscriber) = (self.publisher.arrivals(), self.subscriber.arrivals());
        let mut stats = self.stats.lock();
        for (target, counts) in [
            (PeerTarget::Publisher, publisher),
            (PeerTarget::Subscriber, subscriber),
        ] {
            let peer = peer_stats(&mut stats, target);
            peer.arrivals_stamped = counts.stamped;
            peer.arrivals_unstamped = counts.unstamped;
            peer.arrivals_clamped = counts.clamped;
            peer.arrivals_clamped_micros = counts.clamped_micros;
            peer.socket_drops = counts.socket_drops;
        }
    }

    /// Runs timers, sends due media, processes everything both connections produced
    /// and sends their datagrams.
    pub fn drive(&mut self, now: Instant) {
        // One at a time, each one's outputs taken, as datagrams off the socket are.
        while self.subscriber.take_shaped(now) {
            while let Some(output) = self.subscriber.poll_output() {
                self.on_output(PeerTarget::Subscriber, now, output);
            }
        }
        self.publisher.handle_timeout(now);
        self.subscriber.handle_timeout(now);
        self.send_media(now);
        self.send_synthetic_data(now);
        while let Some(output) = self.publisher.poll_output() {
            self.on_output(PeerTarget::Publisher, now, output);
        }
        while let Some(output) = self.subscriber.poll_output() {
            self.on_output(PeerTarget::Subscriber, now, output);
        }
        self.publisher.flush();
        self.subscriber.flush();
    }

    fn poll_timeout(&mut self, now: Instant) -> Instant {
        let media = if self.publisher.state() == RTCPeerConnectionState::Connected {
            self.publications
                .iter()
                .filter_map(|p| p.media.as_ref())
                .map(Outgoing::poll_timeout)
                .min()
        } else {
            None
        };
        [
            self.publisher.poll_timeout(),
            self.subscriber.poll_timeout(),
            media,
            self.data_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(now + IDLE_WAKE)
        .min(now + IDLE_WAKE)
    }

    fn peer_mut(&mut self, target: PeerTarget) -> &mut Peer {
        match target {
            PeerTarget::Publisher => &mut self.publisher,
            PeerTarget::Subscriber => &mut self.subscriber,
        }
    }

    fn on_output(&mut self, target: PeerTarget, now: Instant, output: PeerOutput) {
        match output {
            PeerOutput::Candidate(candidate) => {
                self.signals
                    .push_back(ClientMessage::Candidate { target, candidate });
            }
            PeerOutput::StateChanged(state) => {
                let srtp_profile = (state == RTCPeerConnectionState::Connected)
                    .then(|| self.peer_mut(target).srtp_profile(now))
                    .flatten();
                let mut stats = self.stats.lock();
                let peer = peer_stats(&mut stats, target);
                peer.state = Some(state);
                if srtp_profile.is_some() {
                    peer.srtp_profile = srtp_profile;
                }
            }
            PeerOutput::TrackOpened {
                track_id,
                stream_id,
                receiver,
                ssrc,
                kind,
            } => self.on_track_opened(track_id, stream_id, receiver, ssrc, kind),
            PeerOutput::Rtp {
                track_id,
                packet,
                received_at,
            } => self.on_rtp(received_at, track_id, packet),
            PeerOutput::Rtcp(packets) => self.on_rtcp(target, &packets),
            PeerOutput::DataOpen(id) => self.on_data_open(id),
            PeerOutput::Data {
                channel,
                text,
                data,
            } => self.on_data(channel, text, data),
        }
    }
}

fn peer_stats(stats: &mut ClientStats, target: PeerTarget) -> &mut PeerStats {
    match target {
        PeerTarget::Publisher => &mut stats.publisher,
        PeerTarget::Subscriber => &mut stats.subscriber,
    }
}
