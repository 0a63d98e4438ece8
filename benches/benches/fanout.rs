//! The forwarding path through real `rtc` peer connections, without sockets: one incoming
//! packet fanned out to every subscriber connection (rewrite, `handle_write`, the
//! interceptor chain, SRTP protect, `poll_write`), and the RTCP a subscriber sends back
//! (receiver report + NACK + PLI in one compound packet) through `handle_read` and the
//! room's dispatch.
//!
//! Every server connection is built by `chorus_transport::PeerFactory` (or, for the
//! interceptor comparison, the same configuration with a chosen interceptor set) and is
//! connected (ICE, DTLS-SRTP) to a client connection configured as `chorus-client`
//! configures it, by passing datagrams between them in memory on a simulated clock.
//!
//! `FANOUT_SUBSCRIBERS` (default 349) sets the fan-out; `FANOUT_INTERCEPTORS=1` adds
//! the comparison of interceptor sets.

use std::collections::HashMap;
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chorus_core::{ExtTimestamp, Forwarder, KeyframeThrottle, SeqUnwrapper, Translation};
use chorus_transport::{PeerFactory, PeerRole, VP8_PT, sending_track, with_rtcp_to_application};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rtc::interceptor::{NackResponderBuilder, Registry, SenderReportBuilder, Slot};
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::RTCPeerConnectionBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_simulcast_extension_headers, register_default_interceptors,
};
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::reception_report::ReceptionReport;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{NackPair, TransportLayerNack};
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

/// The server's media port, as announced in its ICE candidate.
const SERVER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 7882);
/// A full video packet's payload, as the load test sends (30 fps × 4 × 1100 B).
const PAYLOAD: usize = 1100;

/// Which interceptors the server's subscriber connections run.
#[derive(Debug, Clone, Copy)]
enum Chain {
    /// `PeerFactory` as the server uses it: NACK responder + sender reports.
    Factory,
    /// The factory's configuration with only these interceptors (RTCP-to-application
    /// always stays: the room needs PLI/FIR).
    Custom {
        nack_responder: bool,
        sender_report: bool,
    },
}

/// One subscriber: the server's connection, the client's, and the room's per-subscriber state.
struct Pair {
    server: RTCPeerConnection,
    client: RTCPeerConnection,
    client_addr: SocketAddr,
    track_id: String,
    ssrc: u32,
    forwarder: Forwarder,
}

fn transport(local: SocketAddr, peer: SocketAddr) -> TransportContext {
    TransportContext {
        local_addr: local,
        peer_addr: peer,
        ecn: None,
        transport_protocol: TransportProtocol::UDP,
    }
}

/// The client side as `chorus-client` builds it: Opus + VP8, the default interceptors.
fn client_pc(now: Instant, addr: SocketAddr) -> RTCPeerConnection {
    let mut media_engine = MediaEngine::default();
    media_engine
        .register_codec(chorus_transport::opus_codec(), RtpCodecKind::Audio)
        .unwrap();
    media_engine
        .register_codec(chorus_transport::vp8_codec(), RtpCodecKind::Video)
        .unwrap();
    let registry = with_rtcp_to_application(Registry::new());
    let registry = register_default_interceptors(registry, &mut media_engine).unwrap();
    let mut pc = RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(media_engine)
        .with_interceptor_registry(registry)
        .build(now)
        .unwrap();
    pc.add_local_candidate(chorus_transport::host_candidate(addr).unwrap())
        .unwrap();
    pc
}

/// The factory's subscriber configuration (ICE-lite, codecs, simulcast extensions,
/// RTCP to the application) with a chosen set of interceptors, to price each of them.
fn custom_server_pc(
    now: Instant,
    cert: &rtc::peer_connection::certificate::RTCCertificate,
    nack_responder: bool,
    sender_report: bool,
) -> RTCPeerConnection {
    let setting_engine = SettingEngineBuilder::new()
        .with_lite(true)
        .with_ice_credentials(format!("bench{:011}", rand_u32()), "p".repeat(32))
        .build();
    let mut media_engine = MediaEngine::default();
    for (params, kind) in chorus_transport::codecs() {
        media_engine.register_codec(params, kind).unwrap();
    }
    configure_simulcast_extension_headers(&mut media_engine).unwrap();
    let mut registry = with_rtcp_to_application(Registry::new());
    if nack_responder {
        registry = registry.with(Slot::NackResponder, NackResponderBuilder::new().build());
    }
    if sender_report {
        registry = registry.with(Slot::SenderReport, SenderReportBuilder::new().build());
    }
    let mut pc = RTCPeerConnectionBuilder::new()
        .with_configuration(
            RTCConfigurationBuilder::new()
                .with_certificates(vec![cert.clone()])
                .build(),
        )
        .with_setting_engine(setting_engine)
        .with_media_engine(media_engine)
        .with_interceptor_registry(registry)
        .build(now)
        .unwrap();
    pc.add_local_candidate(chorus_transport::host_candidate(SERVER).unwrap())
        .unwrap();
    pc
}

fn rand_u32() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0x1234_5678);
    NEXT.fetch_add(0x9e37_79b9, Ordering::Relaxed)
}

/// Passes every pending datagram from `from` to `to`; true if any moved.
fn relay(
    from: &mut RTCPeerConnection,
    from_addr: SocketAddr,
    to: &mut RTCPeerConnection,
    to_addr: SocketAddr,
    now: Instant,
) -> bool {
    let mut moved = false;
    while let Some(d) = from.poll_write() {
        moved = true;
        let _ = to.handle_read(TaggedBytesMut {
            now,
            transport: transport(to_addr, from_addr),
            message: d.message,
        });
    }
    moved
}

/// Drains events; true once the connection reports `connected`.
fn connected(pc: &mut RTCPeerConnection, state: &mut bool) -> bool {
    while let Some(ev) = pc.poll_event() {
        if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(
            RTCPeerConnectionState::Connected,
        ) = ev
        {
            *state = true;
        }
    }
    while pc.poll_read().is_some() {}
    *state
}

/// Builds a server subscriber connection with one video track, answers it from a client
/// connection, and runs ICE + DTLS between them until both are connected.
fn connect_pair(
    factory: &PeerFactory,
    cert: &rtc::peer_connection::certificate::RTCCertificate,
    chain: Chain,
    index: usize,
    clock: &mut Instant,
) -> Pair {
    let mut now = *clock;
    let mut server = match chain {
        Chain::Factory => factory.build(PeerRole::Subscriber, now).unwrap().pc,
        Chain::Custom {
            nack_responder,
            sender_report,
        } => custom_server_pc(now, cert, nack_responder, sender_report),
    };
    let track_id = format!("TR_bench{index:06}");
    let ssrc = 0x5000_0000 + index as u32;
    server
        .add_track(sending_track(
            track_id.clone(),
            track_id.clone(),
            "camera".to_owned(),
            RtpCodecKind::Video,
            ssrc,
        ))
        .unwrap();
    let offer = server.create_offer(None).unwrap();
    server.set_local_description(now, offer).unwrap();
    let offer = server.local_description().unwrap().sdp;

    let client_addr = SocketAddr::new(SERVER.ip(), 20_000 + index as u16);
    let mut client = client_pc(now, client_addr);
    client
        .set_remote_description(now, RTCSessionDescription::offer(offer).unwrap())
        .unwrap();
    let answer = client.create_answer(None).unwrap();
    client.set_local_description(now, answer).unwrap();
    let answer = client.local_description().unwrap().sdp;
    server
        .set_remote_description(now, RTCSessionDescription::answer(answer).unwrap())
        .unwrap();

    let (mut server_up, mut client_up) = (false, false);
    for _ in 0..20_000 {
        let a = relay(&mut client, client_addr, &mut server, SERVER, now);
        let b = relay(&mut server, SERVER, &mut client, client_addr, now);
        let up = connected(&mut server, &mut server_up) & connected(&mut client, &mut client_up);
        if up {
            // Let the last handshake flights settle.
            relay(&mut client, client_addr, &mut server, SERVER, now);
            relay(&mut server, SERVER, &mut client, client_addr, now);
            *clock = now;
            return Pair {
                server,
                client,
                client_addr,
                track_id,
                ssrc,
                forwarder: Forwarder::video(),
            };
        }
        if !a && !b {
            // Nothing in flight: jump to the earlier timer.
            let next = [server.poll_timeout(), client.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(now + Duration::from_millis(10));
            now = next.max(now + Duration::from_micros(100));
            let _ = server.handle_timeout(now);
            let _ = client.handle_timeout(now);
        }
    }
    panic!("pair {index} did not connect (server {server_up}, client {client_up})");
}

fn connect_pairs(n: usize, chain: Chain) -> (Vec<Pair>, Instant) {
    let factory = PeerFactory::new(SERVER).unwrap();
    let cert = {
        use rtc::crypto::{self, SignatureScheme};
        use rtc::peer_connection::certificate::{CertificateParams, RTCCertificate};
        let provider = crypto::default_provider().unwrap();
        let params = CertificateParams::new(vec!["chorus".to_owned()]).unwrap();
        RTCCertificate::generate(provider.crypto(), SignatureScheme::EcdsaP256Sha256, params)
            .unwrap()
    };
    let started = Instant::now();
    let mut clock = Instant::now();
    let pairs: Vec<Pair> = (0..n)
        .map(|i| connect_pair(&factory, &cert, chain, i, &mut clock))
        .collect();
    eprintln!(
        "{n} pairs ({chain:?}) connected in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    (pairs, clock)
}

fn subscribers() -> usize {
    std::env::var("FANOUT_SUBSCRIBERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(349)
}

/// A VP8 packet as a publisher sends it (after the room stripped its header extensions).
fn incoming(seq: u16, ts: u32) -> rtp::Packet {
    let payload = vec![0x5a; PAYLOAD];
    rtp::Packet {
        header: rtp::header::Header {
            version: 2,
            payload_type: VP8_PT,
            sequence_number: seq,
            timestamp: ts,
            ssrc: 0x1111_2222,
            marker: false,
            ..Default::default()
        },
        payload: Bytes::from(payload),
    }
}

/// What the room does per subscriber for one packet (room.rs `forward`): translate, rewrite,
/// `handle_write`; then, as `finish_turn` does, `poll_write` every connection. Returns the
/// datagrams that came out.
fn fan_out(pairs: &mut [Pair], packet: &rtp::Packet, seq: u64, ts: u64, now: Instant) -> usize {
    let mut out = 0;
    for p in pairs.iter_mut() {
        if let Translation::Forward {
            seq,
            timestamp,
            marker,
        } = p
            .forwarder
            // Every packet counts as a keyframe: the first one must, and the forwarder's
            // keyframe wait is not what this measures.
            .translate(chorus_core::ExtSeq(seq), ExtTimestamp(ts), false, true)
        {
            let mut pkt = packet.clone();
            pkt.header.ssrc = p.ssrc;
            pkt.header.payload_type = VP8_PT;
            pkt.header.sequence_number = seq;
            pkt.header.timestamp = timestamp;
            pkt.header.marker = marker;
            let msg = TaggedRTCMessage {
                now,
                message: RTCMessage::RtpPacket(p.track_id.clone(), pkt),
            };
            let _ = p.server.handle_write(msg);
        }
    }
    for p in pairs.iter_mut() {
        while let Some(d) = p.server.poll_write() {
            black_box(&d.message);
            out += 1;
        }
    }
    out
}

/// A set of connected subscribers and the publisher's stream state: one `step` is one
/// incoming packet forwarded to all of them.
struct Fanout {
    pairs: Vec<Pair>,
    unwrap: SeqUnwrapper,
    seq: u16,
    /// Real time from here on: the connections' timers were set on the simulated clock.
    offset: Duration,
}

impl Fanout {
    fn new(n: usize, chain: Chain) -> Self {
        let (pairs, start) = connect_pairs(n, chain);
        Fanout {
            pairs,
            unwrap: SeqUnwrapper::default(),
            seq: 1000,
            offset: start.saturating_duration_since(Instant::now()),
        }
    }

    /// Returns how many SRTP datagrams came out.
    fn step(&mut self) -> usize {
        self.seq = self.seq.wrapping_add(1);
        let ext = self.unwrap.unwrap(self.seq);
        let packet = incoming(self.seq, ext.0 as u32 * 750);
        let now = Instant::now() + self.offset;
        fan_out(&mut self.pairs, &packet, ext.0, ext.0 * 750, now)
    }
}

fn fanout(c: &mut Criterion) {
    let n = subscribers();
    let mut set = Fanout::new(n, Chain::Factory);
    let mut g = c.benchmark_group(format!("fanout/1 packet to {n} subscribers"));
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("PeerFactory chain (NACK responder + SR)", |b| {
        b.iter(|| set.step())
    });
    g.finish();
    // A bench that forwards nothing measures nothing.
    assert_eq!(set.step(), n, "every subscriber got one SRTP datagram");
    drop(set);
    if std::env::var_os("FANOUT_INTERCEPTORS").is_some() {
        compare_interceptors(n);
    }
}

/// Interceptor sets side by side, interleaved round by round in one process: on this
/// shared VM the same configuration measured minutes apart differs by ±25 %, more than
/// the differences sought, so sequential criterion runs cannot separate them.
fn compare_interceptors(n: usize) {
    const ROUNDS: usize = 40;
    const STEPS: u32 = 40;
    let variants = [
        ("NACK responder + SR", true, true),
        ("NACK responder only", true, false),
        ("SR only", false, true),
        ("no interceptors", false, false),
    ];
    let mut sets: Vec<Fanout> = variants
        .iter()
        .map(|&(_, nack_responder, sender_report)| {
            Fanout::new(
                n,
                Chain::Custom {
                    nack_responder,
                    sender_report,
                },
            )
        })
        .collect();
    let mut per_sub: Vec<Vec<f64>> = vec![Vec::new(); sets.len()];
    for _ in 0..ROUNDS {
        for (set, samples) in sets.iter_mut().zip(&mut per_sub) {
            let t = Instant::now();
            for _ in 0..STEPS {
                assert_eq!(black_box(set.step()), n);
            }
            samples.push(t.elapsed().as_secs_f64() * 1e9 / f64::from(STEPS) / n as f64);
        }
    }
    eprintln!(
        "interceptors, ns per subscriber per packet ({ROUNDS} interleaved rounds of {STEPS} packets x {n}):"
    );
    for ((name, ..), samples) in variants.iter().zip(&mut per_sub) {
        samples.sort_by(f64::total_cmp);
        eprintln!(
            "  {name:<22} median {:>6.0}  p10 {:>6.0}  p90 {:>6.0}",
            samples[ROUNDS / 2],
            samples[ROUNDS / 10],
            samples[ROUNDS * 9 / 10]
        );
    }
}

/// The room's RTCP dispatch for a subscriber connection (room.rs `drain_peer`): keyframe
/// requests by media SSRC → the track's throttle. NACKs and reports are the interceptors'.
fn dispatch(
    packets: &[Box<dyn rtc::rtcp::Packet>],
    tracks: &mut HashMap<u32, KeyframeThrottle>,
    now: Instant,
) -> usize {
    let mut requests = 0;
    for p in packets {
        let any = p.as_any();
        if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
            if let Some(t) = tracks.get_mut(&pli.media_ssrc) {
                requests += usize::from(t.should_send(now));
            }
        } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
            for e in &fir.fir {
                if let Some(t) = tracks.get_mut(&e.ssrc) {
                    requests += usize::from(t.should_send(now));
                }
            }
        }
    }
    requests
}

fn rtcp_compound(c: &mut Criterion) {
    let (mut pairs, start) = connect_pairs(1, Chain::Factory);
    let mut p = pairs.pop().unwrap();
    let mut now = start;
    // Fill the NACK responder's history, and let the client see the stream.
    let mut unwrap = SeqUnwrapper::default();
    for i in 0..200u16 {
        let ext = unwrap.unwrap(i);
        let packet = incoming(i, i as u32 * 750);
        fan_out(
            std::slice::from_mut(&mut p),
            &packet,
            ext.0,
            ext.0 * 750,
            now,
        );
    }
    let _ = p.client.handle_timeout(now);
    while p.client.poll_write().is_some() {}
    let last_seq = 199u16;
    let mut tracks = HashMap::from([(p.ssrc, KeyframeThrottle::new(Duration::from_millis(500)))]);
    let client_ssrc = 0x7777_0001;
    let compound = |seq: u16| -> Vec<Box<dyn rtc::rtcp::Packet>> {
        vec![
            Box::new(ReceiverReport {
                ssrc: client_ssrc,
                reports: vec![ReceptionReport {
                    ssrc: p.ssrc,
                    last_sequence_number: seq as u32,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            Box::new(TransportLayerNack {
                sender_ssrc: client_ssrc,
                media_ssrc: p.ssrc,
                nacks: vec![NackPair {
                    packet_id: seq,
                    lost_packets: 0,
                }],
            }),
            Box::new(PictureLossIndication {
                sender_ssrc: client_ssrc,
                media_ssrc: p.ssrc,
            }),
        ]
    };
    let mut retransmitted = 0u64;
    let mut handled = 0u64;
    c.bench_function(
        "rtcp/RR + NACK + PLI through a subscriber connection",
        |b| {
            b.iter_custom(|iters| {
                // SRTCP carries an index with replay protection: every datagram is fresh, made
                // (untimed) by the client connection.
                let mut datagrams = Vec::with_capacity(iters as usize);
                for i in 0..iters {
                    now += Duration::from_micros(50);
                    let msg = TaggedRTCMessage {
                        now,
                        message: RTCMessage::RtcpPacket(
                            String::new(),
                            compound(last_seq - (i % 100) as u16),
                        ),
                    };
                    p.client.handle_write(msg).unwrap();
                    while let Some(d) = p.client.poll_write() {
                        datagrams.push(d.message);
                    }
                }
                let timed = Instant::now();
                for d in datagrams {
                    let _ = p.server.handle_read(TaggedBytesMut {
                        now,
                        transport: transport(SERVER, p.client_addr),
                        message: d,
                    });
                    while p.server.poll_event().is_some() {}
                    while let Some(m) = p.server.poll_read() {
                        if let RTCMessage::RtcpPacket(_, packets) = m.message {
                            handled += 1;
                            black_box(dispatch(&packets, &mut tracks, now));
                        }
                    }
                    // The NACK's retransmission, protected and ready to send.
                    while let Some(d) = p.server.poll_write() {
                        retransmitted += 1;
                        black_box(d.message.len());
                    }
                }
                timed.elapsed()
            })
        },
    );
    eprintln!(
        "rtcp bench: {handled} compound packets reached the room, {retransmitted} retransmissions"
    );
    assert!(handled > 0, "RTCP reached the room");
}

fn short() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = short();
    targets = fanout, rtcp_compound
}
criterion_main!(benches);
