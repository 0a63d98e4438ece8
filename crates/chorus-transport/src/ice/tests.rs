//! Paths and liveness on a simulated clock.

use super::*;
use crate::stun::{binding_indication, binding_request};

const UFRAG: &str = "srvufrag";
const PWD: &str = "server-password-0123456789abcdef";

fn crypto() -> Arc<dyn RTCCryptoProvider> {
    rtc::crypto::default_provider().expect("ring is built in")
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 2], port))
}

fn request(nominate: bool) -> Vec<u8> {
    binding_request(UFRAG, "cli", PWD, nominate, crypto().crypto())
}

fn ice(t0: Instant) -> IceLite {
    let mut ice = IceLite::new(LivenessConfig::default(), crypto(), t0);
    let creds = IceCredentials {
        ufrag: UFRAG.into(),
        pwd: PWD.into(),
    };
    assert_eq!(
        ice.set_credentials(creds, t0),
        None,
        "the first credentials are no restart"
    );
    ice
}

fn events(ice: &mut IceLite) -> Vec<IceEvent> {
    std::iter::from_fn(|| ice.poll_event()).collect()
}

/// Runs the timers the way the room does: at every deadline up to `until`.
fn run_until(ice: &mut IceLite, until: Instant) {
    while let Some(t) = ice.poll_timeout().filter(|t| *t <= until) {
        ice.handle_timeout(t);
    }
    ice.handle_timeout(until);
}

#[test]
fn stun_checks() {
    let t0 = Instant::now();
    let other_ufrag = binding_request("someone", "cli", PWD, false, crypto().crypto());
    let wrong_pwd = binding_request(
        UFRAG,
        "cli",
        "another-password-0123456789abcd",
        true,
        crypto().crypto(),
    );
    let mut truncated = request(false);
    truncated.truncate(30);
    let cases: Vec<(&str, Vec<u8>, StunCheck)> = vec![
        (
            "request",
            request(false),
            StunCheck::Request { nominated: false },
        ),
        (
            "nomination",
            request(true),
            StunCheck::Request { nominated: true },
        ),
        ("indication", binding_indication(), StunCheck::NotRequest),
        ("other ufrag", other_ufrag, StunCheck::WrongUfrag),
        ("bad integrity", wrong_pwd, StunCheck::BadIntegrity),
        ("truncated", truncated, StunCheck::Malformed),
        (
            "rtp",
            vec![0x80, 0x60, 0, 1, 0, 0, 0, 0],
            StunCheck::Malformed,
        ),
    ];
    for (name, msg, want) in cases {
        let mut ice = ice(t0);
        assert_eq!(ice.check_stun(addr(1), &msg, t0), want, "{name}");
        let confirmed = events(&mut ice).contains(&IceEvent::RouteConfirmed(addr(1)));
        assert_eq!(
            confirmed,
            matches!(want, StunCheck::Request { .. }),
            "{name}: route"
        );
    }
}

#[test]
fn no_credentials_yet_means_wrong_ufrag() {
    let t0 = Instant::now();
    let mut ice = IceLite::new(LivenessConfig::default(), crypto(), t0);
    assert_eq!(
        ice.check_stun(addr(1), &request(true), t0),
        StunCheck::WrongUfrag
    );
    assert_eq!(ice.destination(), None);
}

#[test]
fn media_follows_the_latest_nomination() {
    let t0 = Instant::now();
    let mut ice = ice(t0);
    let s = Duration::from_secs;
    // Both pairs checked, the first nominated.
    ice.check_stun(addr(1), &request(false), t0);
    ice.check_stun(addr(2), &request(false), t0);
    assert_eq!(ice.destination(), None, "no nomination yet");
    ice.check_stun(addr(1), &request(true), t0);
    assert_eq!(ice.destination(), Some(addr(1)));
    // Mid-call the client nominates the second pair.
    ice.check_stun(addr(2), &request(true), t0 + s(10));
    assert_eq!(ice.destination(), Some(addr(2)));
    // A non-nominating check on the old pair does not move media back.
    ice.check_stun(addr(1), &request(false), t0 + s(11));
    assert_eq!(ice.destination(), Some(addr(2)));
    let evs = events(&mut ice);
    assert_eq!(
        evs,
        vec![
            IceEvent::RouteConfirmed(addr(1)),
            IceEvent::RouteConfirmed(addr(2)),
            IceEvent::Switched {
                from: None,
                to: addr(1)
            },
            IceEvent::Switched {
                from: Some(addr(1)),
                to: addr(2)
            },
        ]
    );
    // A forged nomination moves nothing.
    let forged = binding_request(
        UFRAG,
        "cli",
        "not-the-password-0123456789abcd",
        true,
        crypto().crypto(),
    );
    assert_eq!(
        ice.check_stun(addr(3), &forged, t0 + s(12)),
        StunCheck::BadIntegrity
    );
    assert_eq!(ice.destination(), Some(addr(2)));
    assert!(events(&mut ice).is_empty());
}

#[test]
fn old_path_stays_routable_until_it_expires() {
    let t0 = Instant::now();
    let mut ice = ice(t0);
    let s = Duration::from_secs;
    ice.check_stun(addr(1), &request(true), t0);
    ice.connected(t0);
    ice.check_stun(addr(2), &request(true), t0 + s(5));
    events(&mut ice);
    // Media keeps coming on the new path only.
    let mut t = t0 + s(5);
    while t < t0 + s(40) {
        t += Duration::from_millis(500);
        ice.heard(addr(2), t);
        run_until(&mut ice, t);
        let routes: Vec<_> = ice.routes().collect();
        let old_kept = t < t0 + s(30);
        assert_eq!(routes.contains(&addr(1)), old_kept, "at {:?}", t - t0);
        assert!(routes.contains(&addr(2)));
    }
    let evs = events(&mut ice);
    assert_eq!(
        evs,
        vec![IceEvent::RouteExpired(addr(1))],
        "only the old route goes"
    );
    assert_eq!(ice.destination(), Some(addr(2)));
    assert_eq!(ice.state(), LinkState::Connected);
}

#[test]
fn silent_active_path_falls_back_to_the_live_one() {
    let t0 = Instant::now();
    let mut ice = ice(t0);
    ice.check_stun(addr(1), &request(true), t0);
    ice.check_stun(addr(2), &request(false), t0);
    ice.connected(t0);
    events(&mut ice);
    let mut t = t0;
    for _ in 0..80 {
        t += Duration::from_millis(500);
        ice.heard(addr(2), t);
        run_until(&mut ice, t);
    }
    assert_eq!(ice.destination(), Some(addr(2)));
    assert_eq!(
        events(&mut ice),
        vec![
            IceEvent::RouteExpired(addr(1)),
            IceEvent::Switched {
                from: Some(addr(1)),
                to: addr(2)
            },
        ]
    );
}

/// Liveness over a minute of traffic shapes: (name, interval of consent checks, interval
/// of other authenticated packets, expected states seen).
#[test]
fn liveness_table() {
    let ms = Duration::from_millis;
    let never = Duration::MAX;
    let cases: [(&str, Duration, Duration, &[LinkState]); 6] = [
        (
            "chromium: checks every 2.5 s, media",
            ms(2_500),
            ms(20),
            &[LinkState::Connected],
        ),
        (
            "firefox: checks every 8 s, media",
            ms(8_000),
            ms(20),
            &[LinkState::Connected],
        ),
        (
            "libnice: indications only, media",
            never,
            ms(15),
            &[LinkState::Connected],
        ),
        (
            "checks every 8 s, no media",
            ms(8_000),
            never,
            &[LinkState::Connected],
        ),
        (
            "checks every 12 s, no media: flaps",
            ms(12_000),
            never,
            &[LinkState::Connected, LinkState::Disconnected],
        ),
        (
            "silent after the handshake",
            never,
            never,
            &[
                LinkState::Connected,
                LinkState::Disconnected,
                LinkState::Lost,
            ],
        ),
    ];
    for (name, checks, media, want) in cases {
        let t0 = Instant::now();
        let mut ice = ice(t0);
        ice.check_stun(addr(1), &request(true), t0);
        ice.connected(t0);
        let mut seen = vec![ice.state()];
        let (mut next_check, mut next_media) = (t0.checked_add(checks), t0.checked_add(media));
        let end = t0 + Duration::from_secs(60);
        let mut t = t0;
        while t < end {
            t += ms(5);
            if next_check.is_some_and(|c| c <= t) {
                assert!(matches!(
                    ice.check_stun(addr(1), &request(true), t),
                    StunCheck::Request { .. }
                ));
                next_check = t.checked_add(checks);
            }
            if next_media.is_some_and(|m| m <= t) {
                ice.heard(addr(1), t);
                next_media = t.checked_add(media);
            }
            run_until(&mut ice, t);
            if seen.last() != Some(&ice.state()) {
                seen.push(ice.state());
            }
        }
        let mut dedup = seen.clone();
        dedup.dedup();
        let mut distinct: Vec<LinkState> = Vec::new();
        for s in dedup {
            if !distinct.contains(&s) {
                distinct.push(s);
            }
        }
        assert_eq!(distinct, want, "{name}: states seen {seen:?}");
    }
}

#[test]
fn lost_after_thirty_seconds_of_silence_not_before() {
    let t0 = Instant::now();
    let mut ice = ice(t0);
    ice.check_stun(addr(1), &request(true), t0);
    ice.connected(t0);
    events(&mut ice);
    run_until(&mut ice, t0 + Duration::from_millis(9_999));
    assert_eq!(ice.state(), LinkState::Connected);
    run_until(&mut ice, t0 + Duration::from_secs(10));
    assert_eq!(ice.state(), LinkState::Disconnected);
    run_until(&mut ice, t0 + Duration::from_millis(29_999));
    assert_eq!(ice.state(), LinkState::Disconnected);
    // Anything authenticated brings it back.
    ice.heard(addr(1), t0 + Duration::from_secs(29));
    assert_eq!(ice.state(), LinkState::Connected);
    run_until(&mut ice, t0 + Duration::from_secs(59));
    assert_eq!(ice.state(), LinkState::Lost);
    assert_eq!(ice.poll_timeout(), None, "lost is final");
    assert_eq!(
        events(&mut ice)
            .into_iter()
            .filter(|e| matches!(e, IceEvent::State(_)))
            .collect::<Vec<_>>(),
        vec![
            IceEvent::State(LinkState::Disconnected),
            IceEvent::State(LinkState::Connected),
            IceEvent::State(LinkState::Disconnected),
            IceEvent::State(LinkState::Lost),
        ]
    );
}

#[test]
fn never_up_is_reported_unreachable_then_lost() {
    let t0 = Instant::now();
    let mut ice = ice(t0);
    // Checks arrive, but DTLS never completes.
    let mut t = t0;
    while t < t0 + Duration::from_secs(31) {
        t += Duration::from_secs(1);
        ice.check_stun(addr(1), &request(true), t);
        run_until(&mut ice, t);
    }
    let evs: Vec<_> = events(&mut ice)
        .into_iter()
        .filter(|e| matches!(e, IceEvent::Unreachable { .. } | IceEvent::State(_)))
        .collect();
    assert_eq!(
        evs,
        vec![
            IceEvent::Unreachable {
                after: Duration::from_secs(10)
            },
            IceEvent::State(LinkState::Lost),
        ]
    );
}

#[test]
fn restart_keeps_paths_and_waits_for_a_nomination() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let mut ice = ice(t0);
    ice.check_stun(addr(1), &request(true), t0);
    ice.connected(t0);
    events(&mut ice);
    let new = IceCredentials {
        ufrag: "newufrag".into(),
        pwd: "new-password-0123456789abcdefghij".into(),
    };
    let old = ice.set_credentials(new.clone(), t0 + s(1));
    assert_eq!(old.map(|c| c.ufrag), Some(UFRAG.to_owned()));
    assert_eq!(
        ice.set_credentials(new.clone(), t0 + s(1)),
        None,
        "same again: no restart"
    );
    // Old credentials no longer pass; the old path still carries media.
    assert_eq!(
        ice.check_stun(addr(1), &request(true), t0 + s(2)),
        StunCheck::WrongUfrag
    );
    assert_eq!(ice.destination(), Some(addr(1)));
    // The client comes back from a new address with the new credentials.
    let fresh = binding_request(&new.ufrag, "cli2", &new.pwd, true, crypto().crypto());
    assert_eq!(
        ice.check_stun(addr(9), &fresh, t0 + s(3)),
        StunCheck::Request { nominated: true }
    );
    assert_eq!(ice.destination(), Some(addr(9)));
    run_until(&mut ice, t0 + s(20));
    let evs = events(&mut ice);
    assert!(
        !evs.iter()
            .any(|e| matches!(e, IceEvent::Unreachable { .. })),
        "the restart completed: {evs:?}"
    );
}

#[test]
fn restart_without_a_nomination_is_reported_unreachable() {
    let t0 = Instant::now();
    let mut ice = ice(t0);
    ice.check_stun(addr(1), &request(true), t0);
    ice.connected(t0);
    let new = IceCredentials {
        ufrag: "newufrag".into(),
        pwd: "new-password-0123456789abcdefghij".into(),
    };
    ice.set_credentials(new, t0);
    events(&mut ice);
    run_until(&mut ice, t0 + Duration::from_secs(11));
    assert!(events(&mut ice).contains(&IceEvent::Unreachable {
        after: Duration::from_secs(10)
    }));
}

#[test]
fn paths_are_bounded() {
    let t0 = Instant::now();
    let mut ice = ice(t0);
    ice.check_stun(addr(1), &request(true), t0);
    for port in 2..40 {
        ice.check_stun(
            addr(port),
            &request(false),
            t0 + Duration::from_millis(port.into()),
        );
    }
    let routes: Vec<_> = ice.routes().collect();
    assert_eq!(routes.len(), MAX_PATHS);
    assert!(
        routes.contains(&addr(1)),
        "the active path is never evicted"
    );
    let confirmed = events(&mut ice)
        .iter()
        .filter(|e| matches!(e, IceEvent::RouteConfirmed(_)))
        .count();
    assert_eq!(confirmed, 39);
}

#[test]
fn a_binding_request_gets_a_signed_success_naming_its_source() {
    use rtc::stun::fingerprint::FINGERPRINT;
    use rtc::stun::message::{BINDING_SUCCESS, Getter};
    use rtc::stun::xoraddr::XorMappedAddress;

    let t0 = Instant::now();
    let ice = ice(t0);
    let req = request(true);
    let from = addr(5000);
    let raw = ice.binding_success(&req, from).expect("a response");
    let mut res = Message {
        raw,
        ..Message::default()
    };
    res.decode().unwrap();
    let mut sent = Message {
        raw: req.clone(),
        ..Message::default()
    };
    sent.decode().unwrap();
    assert_eq!(res.typ, BINDING_SUCCESS);
    assert_eq!(res.transaction_id, sent.transaction_id);
    let mut mapped = XorMappedAddress::default();
    mapped.get_from(&res).unwrap();
    assert_eq!(SocketAddr::new(mapped.ip, mapped.port), from);
    MessageIntegrity::check(&mut res, PWD.as_bytes(), crypto().crypto())
        .expect("signed with the server's password");
    FINGERPRINT.check(&res).expect("fingerprinted");
    // Not a request, or no credentials yet: nothing to answer.
    assert!(ice.binding_success(&binding_indication(), from).is_none());
    let bare = IceLite::new(LivenessConfig::default(), crypto(), t0);
    assert!(bare.binding_success(&req, from).is_none());
}
