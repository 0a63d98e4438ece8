use super::*;

fn k(n: u64) -> ParticipantKey {
    ParticipantKey(n)
}

fn owner_id() -> ParticipantId {
    ParticipantId::from_random(7)
}

fn bind(tracks: &mut Tracks, id: &TrackId) {
    tracks.get_mut(id).unwrap().upstream = Some(UpstreamBinding {
        codec: chorus_core::Codec::Vp8,
        media_ssrc: None,
        simulcast: None,
        svc: None,
        audio_level_ext: None,
    });
}

#[test]
fn publish_is_checked_against_grants_cid_and_sources() {
    let camera_only = Grants {
        can_publish_sources: vec![TrackSource::Camera],
        ..Grants::default()
    };
    let long = "x".repeat(MAX_CID_LEN + 1);
    // (grants, cid, source, expected error code)
    let cases: [(Grants, &str, TrackSource, Option<&str>); 6] = [
        (Grants::default(), "mic", TrackSource::Microphone, None),
        (Grants::default(), "cam", TrackSource::Camera, None),
        (
            Grants::default(),
            "mic2",
            TrackSource::Microphone,
            Some("source_already_published"),
        ),
        (
            Grants::subscribe_only(),
            "s",
            TrackSource::ScreenShare,
            Some("permission_denied"),
        ),
        (
            camera_only,
            "s",
            TrackSource::ScreenShare,
            Some("permission_denied"),
        ),
        (
            Grants::default(),
            &long,
            TrackSource::ScreenShare,
            Some("bad_message"),
        ),
    ];
    let mut tracks = Tracks::default();
    for (i, (grants, cid, source, want)) in cases.into_iter().enumerate() {
        let id = TrackId::from_random(i as u64);
        let got = tracks.publish(k(1), &owner_id(), &grants, cid.into(), source, false, id);
        assert_eq!(got.err().map(|e| e.code()), want, "case {i}");
    }
    // Announced is not published: nobody else sees them yet.
    assert!(tracks.infos_of(k(1)).is_empty());
    assert_eq!(tracks.published_count(), 0);
}

#[test]
fn an_sdp_track_binds_by_cid_then_by_kind() {
    let mut tracks = Tracks::default();
    let g = Grants::default();
    let (mic, cam) = (TrackId::from_random(1), TrackId::from_random(2));
    tracks
        .publish(
            k(1),
            &owner_id(),
            &g,
            "m".into(),
            TrackSource::Microphone,
            false,
            mic.clone(),
        )
        .unwrap();
    tracks
        .publish(
            k(1),
            &owner_id(),
            &g,
            "c".into(),
            TrackSource::Camera,
            false,
            cam.clone(),
        )
        .unwrap();
    // (owner, sdp track id, kind, expected)
    let cases = [
        (k(1), "c", MediaKind::Video, Some(cam.clone())),
        (k(1), "c", MediaKind::Audio, Some(cam.clone())),
        (k(1), "whatever", MediaKind::Audio, Some(mic.clone())),
        (k(1), "whatever", MediaKind::Video, Some(cam.clone())),
        (k(2), "c", MediaKind::Video, None),
    ];
    for (owner, sdp, kind, want) in cases {
        assert_eq!(
            tracks.match_unbound(owner, sdp, kind),
            want,
            "{sdp} {kind:?}"
        );
    }
    bind(&mut tracks, &cam);
    assert_eq!(tracks.match_unbound(k(1), "c", MediaKind::Video), None);
    assert_eq!(tracks.forwarded_for(k(2)), vec![cam.clone()]);
    assert!(
        tracks.forwarded_for(k(1)).is_empty(),
        "nobody receives their own video"
    );
    assert!(
        tracks.audio_sources().is_empty(),
        "the microphone is not bound"
    );
}

#[test]
fn only_the_server_unmutes_what_it_muted() {
    let mut tracks = Tracks::default();
    let id = TrackId::from_random(1);
    let g = Grants::default();
    tracks
        .publish(
            k(1),
            &owner_id(),
            &g,
            "m".into(),
            TrackSource::Microphone,
            false,
            id.clone(),
        )
        .unwrap();
    // (muted, by_server, expected error, muted after)
    let cases = [
        (true, false, None, true),
        (false, false, None, false),
        (true, true, None, true),
        (false, false, Some("muted_by_server"), true),
        (true, false, None, true),
        (false, true, None, false),
        (false, false, None, false),
    ];
    for (i, (muted, by_server, want, after)) in cases.into_iter().enumerate() {
        let got = tracks.set_muted(&id, muted, by_server);
        assert_eq!(got.as_ref().err().map(|e| e.code()), want, "case {i}");
        assert_eq!(tracks.get(&id).unwrap().muted, after, "case {i}");
        if let Ok(change) = got {
            assert!(!change.announce, "an unbound track is not announced");
        }
    }
}

#[test]
fn subscribers_are_listed_once_and_forgotten_with_their_connection() {
    let mut tracks = Tracks::default();
    let id = TrackId::from_random(1);
    let g = Grants::default();
    tracks
        .publish(
            k(1),
            &owner_id(),
            &g,
            "c".into(),
            TrackSource::Camera,
            false,
            id.clone(),
        )
        .unwrap();
    tracks.add_subscriber(&id, ConnId(5));
    tracks.add_subscriber(&id, ConnId(5));
    tracks.add_subscriber(&id, ConnId(6));
    assert_eq!(
        tracks.get(&id).unwrap().subscribers,
        vec![ConnId(5), ConnId(6)]
    );
    assert_eq!(tracks.subscribed_by(ConnId(5)), vec![id.clone()]);
    tracks.forget_subscriber(ConnId(5));
    assert_eq!(tracks.get(&id).unwrap().subscribers, vec![ConnId(6)]);
}
