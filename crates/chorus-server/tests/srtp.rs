//! The SRTP protection profile DTLS negotiates, end to end: two clients that offer
//! given profiles call each other through the server, media flows both ways, and the
//! profile each connection ended up with is the one expected, as the clients see it
//! and as the server reports it (`forwarding.srtp_profiles` of the room).
//!
//! Who picks: Chorus answers a publisher's offer `a=setup:passive` and is the DTLS
//! server; on the subscriber connection it offers `actpass`, and a client that answers
//! `active` (browsers, webrtcbin) makes it the server there too. As server it picks its
//! own preference (GCM) among the profiles the client's hello lists.

mod common;

use std::collections::BTreeMap;

use chorus_client::{ClientConfig, MediaProfile, SrtpProtectionProfile, TrackSource};
use common::{FLOWING, Participant, TestServer};
use reqwest::Method;

const GCM_128: &str = "SRTP_AEAD_AES_128_GCM";
const CM_80: &str = "SRTP_AES128_CM_HMAC_SHA1_80";

/// What Chromium offers, in its order (webrtc `CryptoOptions::GetSupportedDtlsSrtpCryptoSuites`).
const CHROMIUM: [SrtpProtectionProfile; 3] = [
    SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
    SrtpProtectionProfile::Srtp_Aead_Aes_256_Gcm,
    SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
];

/// How both clients of a call set up DTLS.
struct Dtls<'a> {
    offered: &'a [SrtpProtectionProfile],
    answer_active: bool,
}

async fn join_with(
    server: &TestServer,
    room: &str,
    identity: &str,
    dtls: &Dtls<'_>,
) -> Participant {
    let mut config = ClientConfig::new(&server.ws_url, server.token(room, identity));
    config.media = MediaProfile {
        srtp_profiles: dtls.offered.to_vec(),
        answer_setup_active: dtls.answer_active,
        ..MediaProfile::default()
    };
    let client = chorus_client::connect(config)
        .await
        .unwrap_or_else(|e| panic!("{identity} cannot join {room}: {e}"));
    Participant::new(identity, client)
}

/// Alice (microphone and camera) and Bob (camera) call through a fresh server and
/// receive each other's media. Every client connection must have negotiated
/// `publisher` and `subscriber`; returns what the room reports.
async fn call(
    room: &str,
    dtls: Dtls<'_>,
    publisher: &str,
    subscriber: &str,
) -> BTreeMap<String, u64> {
    let server = TestServer::start().await;
    let mut a = join_with(&server, room, "alice", &dtls).await;
    let mut b = join_with(&server, room, "bob", &dtls).await;
    let (a_mic, a_cam) = a.publish_mic_and_camera().await;
    let b_cam = b.publish_ok(TrackSource::Camera).await;
    b.wait_receiving(&[&a_mic, &a_cam], FLOWING).await;
    a.wait_receiving(&[&b_cam], FLOWING).await;

    for p in [&a, &b] {
        let stats = p.stats();
        assert_eq!(
            stats.publisher.srtp_profile.as_deref(),
            Some(publisher),
            "{}'s publisher connection",
            p.identity
        );
        assert_eq!(
            stats.subscriber.srtp_profile.as_deref(),
            Some(subscriber),
            "{}'s subscriber connection",
            p.identity
        );
    }
    let (status, body) = server
        .call(Method::GET, &format!("/v1/rooms/{room}"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let reported = serde_json::from_value(body["forwarding"]["srtp_profiles"].clone())
        .unwrap_or_else(|e| panic!("forwarding.srtp_profiles: {e}: {body}"));
    server.stop().await;
    reported
}

fn counts(entries: &[(&str, u64)]) -> BTreeMap<String, u64> {
    entries.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

/// What every WebRTC endpoint must support (RFC 8827) and all GStreamer's `dtlssrtpenc`
/// offers, with Chorus the DTLS server on the subscriber connection as with webrtcbin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_offering_only_aes_cm_gets_it_on_both_connections() {
    let dtls = Dtls {
        offered: &[SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80],
        answer_active: true,
    };
    let reported = call("srtp-cm", dtls, CM_80, CM_80).await;
    assert_eq!(reported, counts(&[(CM_80, 4)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_offering_only_aes_gcm_gets_it_on_both_connections() {
    let dtls = Dtls {
        offered: &[SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm],
        answer_active: true,
    };
    let reported = call("srtp-gcm", dtls, GCM_128, GCM_128).await;
    assert_eq!(reported, counts(&[(GCM_128, 4)]));
}

/// rtc's default list puts AEAD_AES_128_GCM first, as Chorus's does; whoever is the
/// DTLS server, both orders agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_with_rtcs_default_profiles_gets_gcm_on_both_connections() {
    for (room, answer_active) in [
        ("srtp-default-passive", false),
        ("srtp-default-active", true),
    ] {
        let dtls = Dtls {
            offered: &[],
            answer_active,
        };
        let reported = call(room, dtls, GCM_128, GCM_128).await;
        assert_eq!(reported, counts(&[(GCM_128, 4)]), "{room}");
    }
}

/// Chromium's list, AES_CM first: Chorus is the DTLS server on both connections and
/// picks GCM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_preferring_aes_cm_gets_gcm_where_chorus_picks() {
    let dtls = Dtls {
        offered: &CHROMIUM,
        answer_active: true,
    };
    let reported = call("srtp-chromium-order", dtls, GCM_128, GCM_128).await;
    assert_eq!(reported, counts(&[(GCM_128, 4)]));

    // Answering `passive` (rtc's own answer to an ICE-lite offerer) leaves the choice
    // to Chorus's order on both connections.
    let dtls = Dtls {
        offered: &CHROMIUM,
        answer_active: false,
    };
    let reported = call("srtp-chromium-order-passive", dtls, GCM_128, GCM_128).await;
    assert_eq!(reported, counts(&[(GCM_128, 4)]));
}
