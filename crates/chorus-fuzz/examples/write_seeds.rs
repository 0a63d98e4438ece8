//! Writes the seed inputs of every target into `fuzz/corpus/TARGET/seed-*`: real
//! datagrams, SDP and frames, made by the code that makes them for clients and tests.
//! Run by hand (`cargo run -p chorus-fuzz --example write_seeds`) when a target's input
//! format changes; the fuzzer grows the corpus from there. `cargo test` builds it, so it
//! keeps up with the code it calls.

use std::path::Path;
use std::time::Instant;

use bytes::Bytes;
use chorus_fuzz::framed;
use chorus_transport::dtls_srtp::{DtlsRole, DtlsSrtp, DtlsSrtpConfig};
use chorus_transport::rtcp::{
    write_fir, write_nack, write_pli, write_receiver_report, write_sdes_cname, write_sender_report,
};
use chorus_transport::stun;
use chorus_transport::webrtc::DataChannels;
use rtc::rtp::header::{EXTENSION_PROFILE_ONE_BYTE, EXTENSION_PROFILE_TWO_BYTE, Extension, Header};
use rtc::rtp::packet::Packet;
use rtc::shared::marshal::Marshal;

fn write(target: &str, name: &str, data: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    std::fs::create_dir_all(&dir).expect("corpus dir");
    std::fs::write(dir.join(format!("seed-{name}")), data).expect("seed written");
}

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../chorus-transport/src/webrtc/sdp/fixtures")
        .join(name);
    std::fs::read_to_string(path).expect("fixture")
}

fn rtp(seq: u16, ssrc: u32, extensions: &[(u8, &[u8])], payload: &[u8]) -> Vec<u8> {
    let packet = Packet {
        header: Header {
            version: 2,
            payload_type: 96,
            sequence_number: seq,
            timestamp: u32::from(seq) * 3000,
            ssrc,
            marker: true,
            extension: !extensions.is_empty(),
            // One-byte headers carry up to 16 bytes (a dependency descriptor with its
            // structure is longer).
            extension_profile: if extensions.iter().any(|(_, v)| v.len() > 16) {
                EXTENSION_PROFILE_TWO_BYTE
            } else {
                EXTENSION_PROFILE_ONE_BYTE
            },
            extensions: extensions
                .iter()
                .map(|(id, v)| Extension {
                    id: *id,
                    payload: Bytes::copy_from_slice(v),
                })
                .collect(),
            ..Default::default()
        },
        payload: Bytes::copy_from_slice(payload),
    };
    packet.marshal().expect("marshals").to_vec()
}

/// A VP8 keyframe's first packet: descriptor with a 15-bit picture id, TL0PICIDX, TID
/// and KEYIDX, then the keyframe header.
const VP8_KEY: &[u8] = &[
    0x90, 0xf0, 0x80, 0x2a, 0x07, 0x20, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01,
];
/// A delta frame, temporal layer 1.
const VP8_DELTA: &[u8] = &[0x90, 0xe0, 0x80, 0x2b, 0x07, 0x60, 0x31, 0x00, 0x00];

/// VP9 payloads (RFC 9628 descriptor, then a byte of frame): I L B V with 15-bit picture
/// id 7, SID 0, TL0PICIDX 1, SS of three layers with sizes; SID 1 and 2 (D) ending the
/// keyframe (E); then picture 8 at TID 2 (P, U) in its three layers.
const VP9_SVC: [&[u8]; 6] = [
    &[
        0xae, 0x80, 0x07, 0x00, 0x01, 0x50, 0x01, 0x40, 0x00, 0xb4, 0x02, 0x80, 0x01, 0x68, 0x05,
        0x00, 0x02, 0xd0, 0x00,
    ],
    &[0xac, 0x80, 0x07, 0x03, 0x01, 0x00],
    &[0xac, 0x80, 0x07, 0x05, 0x01, 0x00],
    &[0xec, 0x80, 0x08, 0x50, 0x01, 0x00],
    &[0xec, 0x80, 0x08, 0x52, 0x01, 0x00],
    &[0xec, 0x80, 0x08, 0x54, 0x01, 0x00],
];

/// AV1 in L1T3 (payload: aggregation header, W=1, N on the keyframe; a byte of OBU) with
/// dependency descriptors (the spec's appendix A): a keyframe carrying the structure
/// (three decode targets, five templates, one chain, 640x360), then a T2 frame's last
/// packet and a T1 frame (templates 3 and 2). As `dependency_descriptor/tests.rs` spells
/// them bit by bit.
const AV1_L1T3: [(&[u8], &[u8]); 3] = [
    (
        &[
            0xc0, 0x00, 0x01, 0x80, 0x02, 0x14, 0xea, 0xa8, 0x70, 0x41, 0x4d, 0x14, 0x10, 0x20,
            0x84, 0x27, 0x02, 0x7f, 0x01, 0x67,
        ],
        &[0x18, 0x0a],
    ),
    (&[0x43, 0x00, 0x02], &[0x10, 0x32]),
    (&[0xc2, 0x00, 0x03], &[0x10, 0x32]),
];

fn main() {
    let crypto = rtc::crypto::default_provider().expect("crypto");
    let now = Instant::now();

    // demux: [who, datagram…] frames.
    let tagged = |who: u8, d: &[u8]| [&[who][..], d].concat();
    let request = stun::binding_request(
        chorus_fuzz_consts::UFRAG,
        "cli",
        chorus_fuzz_consts::PWD,
        true,
        crypto.crypto(),
    );
    let server = DtlsSrtpConfig::generate().expect("config");
    let client = DtlsSrtpConfig::generate().expect("config");
    let mut c = DtlsSrtp::new(
        DtlsRole::Client,
        &client,
        &server.fingerprint().expect("fingerprint"),
        now,
    )
    .expect("client");
    let hello = c.poll_transmit().expect("a ClientHello");
    let plain_rtp = rtp(1, 5, &[], &[1, 2, 3]);
    let signed = |flags: u8, remote: &[u8]| [&[0xff, flags][..], remote].concat();
    write(
        "demux",
        "requests",
        &framed([
            &tagged(0, &request)[..],
            &tagged(1, &signed(0, b"cli")),
            &tagged(2, &signed(1, b"cli")),
            &tagged(0, &plain_rtp),
            &tagged(3, &signed(1, b"cli")),
        ]),
    );
    write(
        "demux",
        "hello",
        &framed([&tagged(0, &request)[..], &tagged(0, &hello)]),
    );
    let (first, second) = hello.split_at(hello.len() / 2);
    write(
        "demux",
        "hello-split",
        &framed([
            &tagged(0, &request)[..],
            &tagged(0, first),
            &tagged(0, second),
        ]),
    );

    // rtp: a plain audio packet by MID, a simulcast layer by MID and rid, then by SSRC.
    let twcc = 7u16.to_be_bytes();
    let audio = rtp(
        10,
        100,
        &[(4, b"0"), (1, &[0x85]), (3, &twcc)],
        &[0xfc, 0xff, 0xfe],
    );
    let mut packets = vec![audio];
    for (i, (ssrc, rid)) in [(201u32, &b"q"[..]), (202, b"h"), (203, b"f")]
        .iter()
        .enumerate()
    {
        packets.push(rtp(
            100 + i as u16,
            *ssrc,
            &[(4, b"1"), (10, rid), (3, &twcc)],
            VP8_KEY,
        ));
        packets.push(rtp(101 + i as u16, *ssrc, &[], VP8_DELTA));
    }
    write("rtp", "simulcast", &framed(packets.iter().map(|p| &p[..])));
    // VP9 in L3T3_KEY: a keyframe picture of three spatial layers (the first with the
    // scalability structure: three layers, 320x180 to 1280x720), then a TID 2 picture.
    let mut svc = Vec::new();
    for (i, payload) in VP9_SVC.iter().enumerate() {
        svc.push(rtp(400 + i as u16, 401, &[(4, b"1"), (10, b"q")], payload));
    }
    write("rtp", "vp9-svc", &framed(svc.iter().map(|p| &p[..])));
    let mut av1 = Vec::new();
    for (i, (dd, payload)) in AV1_L1T3.iter().enumerate() {
        // 12: the dependency descriptor's id in the target (`DD_EXT`).
        let exts: [(u8, &[u8]); 3] = [(4, b"1"), (10, b"q"), (12, dd)];
        av1.push(rtp(500 + i as u16, 501, &exts, payload));
    }
    write("rtp", "av1-dd", &framed(av1.iter().map(|p| &p[..])));
    let rid_only = rtp(5, 300, &[(10, b"h")], VP8_KEY);
    write("rtp", "rid-only", &framed([&rid_only[..]]));

    // rtcp: compounds as clients send them.
    let mut rr = Vec::new();
    write_receiver_report(&mut rr, 1, &[]);
    write_sdes_cname(&mut rr, 1, "client-cname");
    let mut fb = rr.clone();
    write_nack(&mut fb, 1, 201, &[500, 501, 503, 530, 563]);
    write_pli(&mut fb, 1, 201);
    write_fir(&mut fb, 1, 201, 3);
    let mut sr = Vec::new();
    let info = chorus_core::SenderInfo {
        ntp: 0xe000_0000_0000_0000,
        rtp_timestamp: 90_000,
        packets: 10,
        octets: 1000,
    };
    write_sender_report(&mut sr, 2, &info, &[]);
    write("rtcp", "feedback", &framed([&rr[..], &fb, &sr]));
    let mut remb = rr.clone();
    // REMB: PSFB FMT 15, "REMB", 1 SSRC, 1.5 Mbit/s.
    remb.extend_from_slice(&[0x8f, 206, 0, 5, 0, 0, 0, 1, 0, 0, 0, 0]);
    remb.extend_from_slice(b"REMB");
    remb.extend_from_slice(&[1, 0x05, 0xb8, 0xd8, 0, 0, 0, 201]);
    // BYE.
    remb.extend_from_slice(&[0x81, 203, 0, 1, 0, 0, 0, 1]);
    write("rtcp", "remb-bye", &framed([&remb[..]]));

    // sdp: the fixtures, and a re-offer after the first offer.
    for name in ["chromium", "chromium-simulcast", "firefox", "webrtcbin"] {
        write("sdp", name, fixture(&format!("{name}.sdp")).as_bytes());
    }
    let reoffer = format!(
        "{}\0{}",
        fixture("chromium.sdp"),
        fixture("chromium-simulcast.sdp")
    );
    write("sdp", "reoffer", reoffer.as_bytes());
    write("sdp", "answer", fixture("chromium.answer.sdp").as_bytes());

    // datachannel: the INIT of an SCTP client, to a server.
    let mut sctp_client = DataChannels::new(DtlsRole::Client, None);
    sctp_client.start(now);
    let init = sctp_client.poll_transmit(now).expect("an INIT");
    write(
        "datachannel",
        "init",
        &[&[0u8][..], &framed([&init[0][..]])].concat(),
    );
    write("datachannel", "client", &[1u8, 0, 0]);

    // signaling: a session as docs/signaling.md shows it. The room draws its ids from
    // its seed: TR_2swsn2wvp89ek is alice's camera.
    let json = |v: serde_json::Value| v.to_string();
    let offer = fixture("chromium.sdp");
    let lines = [
        json(serde_json::json!({"type": "ping", "ts": 1})),
        json(
            serde_json::json!({"type": "publish", "cid": "3a0d9a9e-1c34-4c9b-a1a8-6f0e8d2f5b01", "source": "microphone"}),
        ),
        json(
            serde_json::json!({"type": "publish", "cid": "c4f1e2d3-5a6b-4c7d-8e9f-0a1b2c3d4e5f", "source": "camera", "muted": false}),
        ),
        json(
            serde_json::json!({"type": "offer", "target": "publisher", "sdp": offer, "request_id": "o1"}),
        ),
        json(
            serde_json::json!({"type": "candidate", "target": "publisher", "candidate": {"candidate": "candidate:1 1 udp 2122260223 192.0.2.7 50124 typ host", "sdpMid": "0", "sdpMLineIndex": 0}}),
        ),
        json(serde_json::json!({"type": "candidate", "target": "publisher", "candidate": null})),
        String::new(),
        format!(
            "~{}",
            json(
                serde_json::json!({"type": "track_settings", "track_id": "TR_2swsn2wvp89ek", "width": 320, "height": 180, "visible": true, "max_quality": "low", "request_id": "s1"})
            )
        ),
        json(serde_json::json!({"type": "mute", "track_id": "TR_2swsn2wvp89ek", "muted": true})),
        json(serde_json::json!({"type": "ice_restart", "target": "subscriber"})),
        format!(
            "~{}",
            json(
                serde_json::json!({"type": "answer", "target": "subscriber", "sdp": fixture("chromium.answer.sdp")})
            )
        ),
        json(serde_json::json!({"type": "unpublish", "track_id": "TR_2swsn2wvp89ek"})),
        json(serde_json::json!({"type": "leave"})),
    ];
    write("signaling", "session", lines.join("\n").as_bytes());
    write(
        "signaling",
        "join",
        b"{\"type\":\"join\"}\n~{\"type\":\"ping\"}",
    );

    // token: a token minted as the control API mints it, and claims to sign.
    let keys = chorus_api::Keys::new(
        chorus_fuzz_consts::KEY,
        chorus_api::ApiSecret::new(chorus_fuzz_consts::SECRET),
    );
    let grant = chorus_api::token::NewToken {
        room: "standup".into(),
        identity: "alice".into(),
        name: "Alice".into(),
        grants: Default::default(),
        ttl_secs: 3600,
    };
    let token = keys
        .mint(chorus_fuzz_consts::KEY, grant, chorus_fuzz_consts::NOW)
        .expect("minted");
    write("token", "minted", token.as_bytes());
    let claims = serde_json::json!({"iss": "devkey", "sub": "alice", "name": "Alice", "room": "standup",
        "exp": 1_700_003_600u64, "nbf": 1_700_000_000u64,
        "grants": {"can_publish": true, "can_subscribe": true, "can_publish_sources": ["camera", "microphone"]}});
    write("token", "claims", claims.to_string().as_bytes());

    // control_api: method byte, path, Authorization, body.
    let api = |method: u8, path: &str, auth: &str, body: &str| {
        [
            &[method][..],
            path.as_bytes(),
            b"\n",
            auth.as_bytes(),
            b"\n",
            body.as_bytes(),
        ]
        .concat()
    };
    let requests = [
        (
            "create-room",
            api(
                1,
                "/v1/rooms",
                "",
                r#"{"name":"standup","max_participants":50}"#,
            ),
        ),
        (
            "token",
            api(
                1,
                "/v1/tokens",
                "",
                r#"{"room":"standup","identity":"alice","name":"Alice","ttl_secs":600,"grants":{"can_publish":true}}"#,
            ),
        ),
        (
            "mute",
            api(
                1,
                "/v1/rooms/standup/participants/alice/tracks/TR_x/mute",
                "",
                r#"{"muted":true}"#,
            ),
        ),
        (
            "permissions",
            api(
                2,
                "/v1/rooms/standup/participants/alice/permissions",
                "",
                r#"{"grants":{"can_publish":false,"can_subscribe":true}}"#,
            ),
        ),
        (
            "remove",
            api(3, "/v1/rooms/standup/participants/alice", "", ""),
        ),
        ("drain", api(1, "/v1/drain", "", r#"{"timeout_secs":5}"#)),
        (
            "demo-token",
            api(
                1,
                "/demo/token",
                "",
                r#"{"room":"standup","identity":"bob"}"#,
            ),
        ),
        (
            "basic",
            api(
                0x80,
                "/v1/rooms",
                "Basic ZGV2a2V5OmRldnNlY3JldC1mb3ItZnV6emluZy0wMTIzNDU2Nzg5YWJjZGVm",
                "",
            ),
        ),
        ("media", api(0, "/v1/media", "", "")),
    ];
    for (name, data) in requests {
        write("control_api", name, &data);
    }
}

/// The constants the targets use, so seeds match them.
mod chorus_fuzz_consts {
    pub const UFRAG: &str = "srvufrag";
    pub const PWD: &str = "srvpwd-srvpwd-srvpwd-srvpwd";
    pub const KEY: &str = "devkey";
    pub const SECRET: &str = "devsecret-for-fuzzing-0123456789abcdef";
    pub const NOW: u64 = 1_700_000_000;
}
