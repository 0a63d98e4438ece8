//! Whole-room scenarios: the real room core, real client peer connections connected in
//! memory, a simulated clock (`chorus_room::sim`). Each asserts behaviour a change to
//! the core could break.

use std::collections::BTreeSet;

use chorus_core::KeyframeThrottle;
use chorus_protocol::signal::{
    ClientMessage, PeerTarget, ROOM_AUDIO_TRACK, ROSTER_PAGE, ServerMessage,
};
use chorus_protocol::{Grants, LeaveReason, ParticipantInfo, ParticipantState};
use chorus_room::io::{Command, Reply};
use chorus_room::sim::{ClientId, Dir, RtpIn, Sim, ms, opus_loop, seq_jumps};
use chorus_room::skips::Skip;

const MIX: &str = ROOM_AUDIO_TRACK;

/// Whether `c` was told that `who` is `state`.
fn saw_state(sim: &Sim, c: ClientId, who: ClientId, state: ParticipantState) -> bool {
    let id = sim.participant_id(who);
    sim.frames(c).iter().any(|m| {
        matches!(m, ServerMessage::ParticipantState { participant_id, state: s, .. }
            if participant_id == id && *s == state)
    })
}

/// Whether an SDP sends `track` (an `a=msid` line names it).
fn offers_track(sdp: &str, track: &str) -> bool {
    sdp.lines()
        .any(|l| l.starts_with("a=msid:") && l.contains(track))
}

/// Longest time between two packets.
fn longest_silence(packets: &[RtpIn]) -> std::time::Duration {
    let gaps = packets.windows(2).map(|w| w[1].at - w[0].at);
    gaps.max().unwrap_or_default()
}

#[test]
fn join_publish_subscribe_media_flows() {
    let mut sim = Sim::new(1);
    let alice = sim.join("alice");
    let bob = sim.join("bob");
    let video = sim.publish_video(alice);
    let audio = sim.publish_audio(alice);
    sim.run_for(ms(1000));

    assert!(
        matches!(&sim.frames(bob)[0], ServerMessage::Joined { participants, .. }
        if participants.iter().any(|p| p.identity == "alice"))
    );
    assert_eq!(
        sim.count(
            alice,
            |m| matches!(m, ServerMessage::ParticipantJoined { participant }
            if participant.identity == "bob")
        ),
        1
    );
    for track in [&video, &audio] {
        assert_eq!(
            sim.count(
                bob,
                |m| matches!(m, ServerMessage::TrackPublished { track: t }
                if t.track_id == *track)
            ),
            1,
            "track_published {track}"
        );
    }
    let got = sim.rtp(bob, &video);
    assert!(got.len() > 40, "video packets: {}", got.len());
    assert!(
        got[0].keyframe,
        "the subscriber's video starts at a keyframe"
    );
    assert_eq!(seq_jumps(got), []);
    // One other talker: the room audio relays alice's Opus frames as they are.
    let heard = sim.rtp(bob, MIX);
    assert!(heard.len() > 30, "room audio packets: {}", heard.len());
    let sizes: BTreeSet<usize> = opus_loop().iter().map(|f| f.len()).collect();
    assert!(heard.iter().all(|p| sizes.contains(&p.payload_len)));
    // Nothing comes back to alice: she is the only talker and publisher.
    assert!(sim.rtp(alice, MIX).is_empty());
}

#[test]
fn a_newcomer_gets_the_roster_in_pages_before_anything_about_it() {
    let mut sim = Sim::new(40);
    let quiet = Grants {
        can_publish: false,
        can_subscribe: false,
        can_publish_data: false,
        ..Grants::default()
    };
    let mut others: Vec<ClientId> = (0..2 * ROSTER_PAGE + 2)
        .map(|i| sim.join_with(&format!("p{i:02}"), quiet.clone()))
        .collect();
    let alice = sim.join("alice");
    let camera = sim.publish_video(alice);
    others.push(alice);
    let bob = sim.join("bob");
    // Changes after the join come after the pages.
    sim.leave(others.remove(0));
    others.push(sim.join_with("late", quiet));
    sim.run_for(ms(200));

    let frames = sim.frames(bob);
    let ServerMessage::Joined {
        participants,
        roster_complete: false,
        ..
    } = &frames[0]
    else {
        panic!("first frame: {:?}", frames[0]);
    };
    assert_eq!(participants.len(), ROSTER_PAGE);
    let mut roster: Vec<ParticipantInfo> = participants.clone();
    let mut pages = vec![(participants.len(), false)];
    for frame in &frames[1..] {
        let ServerMessage::Roster {
            participants,
            complete,
        } = frame
        else {
            break;
        };
        roster.extend(participants.iter().cloned());
        pages.push((participants.len(), *complete));
    }
    // Two full pages and the three left over, no frame above the page size.
    assert_eq!(
        pages,
        [(ROSTER_PAGE, false), (ROSTER_PAGE, false), (3, true)],
        "pages"
    );
    // Pages carry tracks like `joined` does.
    let listed = roster.iter().find(|p| p.identity == "alice").unwrap();
    assert!(listed.tracks.iter().any(|t| t.track_id == camera));
    // The roster, then what happened since, is who is in the room now.
    for frame in &frames[pages.len()..] {
        assert!(!matches!(frame, ServerMessage::Roster { .. }), "late page");
        match frame {
            ServerMessage::ParticipantJoined { participant } => roster.push(participant.clone()),
            ServerMessage::ParticipantLeft { participant_id, .. } => {
                roster.retain(|p| p.participant_id != *participant_id)
            }
            _ => {}
        }
    }
    let mut have: Vec<&str> = roster.iter().map(|p| p.participant_id.as_str()).collect();
    let mut want: Vec<&str> = others.iter().map(|&c| sim.participant_id(c)).collect();
    have.sort_unstable();
    want.sort_unstable();
    assert_eq!(have, want);
}

#[test]
fn a_reoffer_waits_for_the_answer_in_flight() {
    let mut sim = Sim::new(2);
    let alice = sim.join("alice");
    sim.publish_video(alice);
    let bob = sim.join("bob");
    sim.run_for(ms(300));
    assert_eq!(sim.offers(bob).len(), 1);

    sim.hold_answers(bob);
    let carol = sim.join("carol");
    let camera = sim.publish_video(carol);
    sim.run_for(ms(100));
    assert_eq!(sim.offers(bob).len(), 2, "carol's camera is offered");
    assert!(offers_track(sim.offers(bob)[1], &camera));

    // Published while bob's answer is out: queued, not offered.
    let screen = sim.publish(carol, chorus_protocol::TrackSource::ScreenShare);
    sim.run_for(ms(300));
    assert_eq!(sim.offers(bob).len(), 2, "no offer while one is in flight");
    assert!(
        sim.rtp(bob, &camera).is_empty(),
        "not live before the answer"
    );

    sim.release_answers(bob);
    assert_eq!(sim.offers(bob).len(), 3, "exactly one more offer");
    assert!(offers_track(sim.offers(bob)[2], &screen));
    sim.run_for(ms(500));
    assert_eq!(sim.offers(bob).len(), 3);
    assert!(sim.rtp(bob, &camera).len() > 10);
    assert!(sim.rtp(bob, &screen).len() > 10);
}

#[test]
fn a_republished_camera_reuses_the_subscribers_m_section() {
    let mut sim = Sim::new(11);
    let alice = sim.join("alice");
    let bob = sim.join("bob");
    let first = sim.publish_video(alice);
    sim.run_for(ms(500));
    sim.unpublish(alice, &first);
    assert_eq!(
        sim.count(
            bob,
            |m| matches!(m, ServerMessage::TrackUnpublished { track_id, .. }
            if *track_id == first)
        ),
        1
    );
    let second = sim.publish_video(alice);
    sim.run_for(ms(1000));
    let offers = sim.offers(bob);
    assert!(
        !sim.frames(alice)
            .iter()
            .any(|m| matches!(m, ServerMessage::Error { .. })),
        "the publisher's offers without tracks are answered"
    );
    assert_eq!(offers.len(), 3, "the track, its removal, the new one");
    assert!(!offers_track(offers[1], &first));
    assert!(offers_track(offers[2], &second));
    let m_lines = offers[2]
        .lines()
        .filter(|l| l.starts_with("m=video"))
        .count();
    assert_eq!(m_lines, 1, "the freed m-section is reused");
    assert!(sim.rtp(bob, &second).len() > 30);
}

#[test]
fn a_late_joiner_gets_one_offer_with_everything() {
    let mut sim = Sim::new(3);
    let alice = sim.join("alice");
    let bob = sim.join("bob");
    let a = sim.publish_video(alice);
    let b = sim.publish_video(bob);
    sim.publish_audio(alice);
    sim.publish_audio(bob);
    sim.run_for(ms(300));

    let carol = sim.join("carol");
    sim.run_for(ms(1000));
    let offers = sim.offers(carol);
    assert_eq!(offers.len(), 1);
    for track in [&a, &b, &MIX.to_owned()] {
        assert!(offers_track(offers[0], track), "{track} in the first offer");
    }
    assert!(sim.rtp(carol, &a).len() > 10);
    assert!(sim.rtp(carol, &b).len() > 10);
    assert!(sim.rtp(carol, MIX).len() > 10, "carol hears the mix");
}

#[test]
fn leave_and_remove_tell_everyone() {
    let mut sim = Sim::new(4);
    let alice = sim.join("alice");
    let bob = sim.join("bob");
    let carol = sim.join("carol");
    sim.publish_video(alice);
    sim.run_for(ms(200));

    sim.leave(alice);
    assert_eq!(sim.own_left(alice), Some(LeaveReason::ClientLeft));
    assert!(sim.departed(alice));
    assert_eq!(sim.left_reason(bob, alice), Some(LeaveReason::ClientLeft));

    let reply = sim.command(Command::Remove {
        identity: "bob".into(),
        message: None,
    });
    assert!(matches!(reply, Reply::Removed(Ok(()))));
    assert_eq!(sim.own_left(bob), Some(LeaveReason::RemovedByServer));
    assert!(matches!(
        sim.frames(bob).last(),
        Some(ServerMessage::Left { .. })
    ));
    assert_eq!(
        sim.left_reason(carol, bob),
        Some(LeaveReason::RemovedByServer)
    );
    sim.run_for(ms(100));
    let Reply::Participants(list) = sim.command(Command::Participants) else {
        panic!("participants");
    };
    let names: Vec<&str> = list.iter().map(|p| p.identity.as_str()).collect();
    assert_eq!(names, ["carol"]);
}

#[test]
fn a_vanished_client_is_disconnected_then_removed() {
    let wall = std::time::Instant::now();
    let mut sim = Sim::new(5);
    let alice = sim.join("alice");
    let bob = sim.join("bob");
    // Alice's one connection carries media all the time: its silence starts when she
    // vanishes.
    sim.publish_video(alice);
    sim.run_for(ms(500));
    assert!(saw_state(&sim, bob, alice, ParticipantState::Connected));

    sim.vanish(alice);
    let ice_restart = |sim: &Sim| {
        sim.count(alice, |m| {
            matches!(
                m,
                ServerMessage::IceRestart {
                    target: PeerTarget::Publisher
                }
            )
        })
    };
    sim.run_for(ms(9_900));
    assert!(!saw_state(&sim, bob, alice, ParticipantState::Disconnected));
    assert_eq!(ice_restart(&sim), 0);
    sim.run_for(ms(200));
    assert!(saw_state(&sim, bob, alice, ParticipantState::Disconnected));
    assert_eq!(ice_restart(&sim), 1);

    sim.run_for(ms(19_800));
    assert_eq!(sim.left_reason(bob, alice), None);
    sim.run_for(ms(200));
    assert_eq!(
        sim.left_reason(bob, alice),
        Some(LeaveReason::ConnectionLost)
    );
    assert_eq!(sim.own_left(alice), Some(LeaveReason::ConnectionLost));
    eprintln!("{:?} simulated in {:?}", sim.elapsed(), wall.elapsed());
}

#[test]
fn relay_to_mix_and_back_keeps_the_listeners_numbering() {
    let mut sim = Sim::new(6);
    let alice = sim.join("alice");
    let bob = sim.join("bob");
    let carol = sim.join("carol");
    sim.publish_audio(alice);
    sim.publish_audio(bob);
    sim.run_for(ms(1000));
    let relayed = sim.rtp(alice, MIX).len();
    assert!(relayed > 30, "alice hears bob relayed: {relayed}");

    sim.publish_audio(carol);
    sim.run_for(ms(1000));
    let sizes: BTreeSet<usize> = opus_loop().iter().map(|f| f.len()).collect();
    let mixed = &sim.rtp(alice, MIX)[relayed..];
    assert!(mixed.len() > 40);
    assert!(
        mixed.iter().any(|p| !sizes.contains(&p.payload_len)),
        "alice hears the mix, not a relay"
    );
    let mixed = mixed.len();

    sim.leave(carol);
    sim.run_for(ms(1000));
    let heard = sim.rtp(alice, MIX);
    let after = heard.len() - relayed - mixed;
    assert!(after > 40, "alice hears bob relayed again: {after}");
    assert_eq!(seq_jumps(heard), [], "one numbering across both switches");
    assert!(heard.iter().all(|p| p.ssrc == heard[0].ssrc));
    assert!(longest_silence(heard) < ms(100));
}

#[test]
fn keyframe_requests_are_throttled_to_the_publisher() {
    let mut sim = Sim::new(7);
    let alice = sim.join("alice");
    let video = sim.publish_video(alice);
    let subscribers: Vec<ClientId> = ["bob", "carol", "dave"].map(|n| sim.join(n)).into();
    sim.run_for(ms(1000));
    let before = sim.plis(alice).len();
    let keyframes = sim.keyframes_sent(alice, &video);

    // 100 ms of every subscriber asking every 10 ms, then a second more of it.
    for _ in 0..110 {
        for &s in &subscribers {
            assert!(sim.request_keyframe(s, &video));
        }
        sim.run_for(ms(10));
    }
    let plis = sim.plis(alice);
    let interval = KeyframeThrottle::DEFAULT_INTERVAL;
    assert!(plis.len() > before, "requests reach the publisher");
    assert!(plis.len() - before <= 3, "{} in 1.1 s", plis.len() - before);
    for w in plis.windows(2) {
        assert!(
            w[1] - w[0] >= interval,
            "{:?} between two PLIs",
            w[1] - w[0]
        );
    }
    assert!(sim.keyframes_sent(alice, &video) > keyframes);
    for &s in &subscribers {
        let got = sim.rtp(s, &video);
        assert!(got.iter().filter(|p| p.keyframe).count() >= 2);
    }
}

#[test]
fn a_server_mute_stops_forwarding_and_holds() {
    let mut sim = Sim::new(8);
    let alice = sim.join("alice");
    let bob = sim.join("bob");
    let video = sim.publish_video(alice);
    sim.run_for(ms(500));
    let forwarded = sim.rtp(bob, &video).len();
    assert!(forwarded > 10);
    let muted_before = sim.skips().get(Skip::Muted);

    let reply = sim.command(Command::MuteTrack {
        identity: "alice".into(),
        track_id: video.clone(),
        muted: true,
    });
    assert!(matches!(reply, Reply::TrackMuted(Ok(ref t)) if t.muted));
    assert_eq!(
        sim.count(bob, |m| matches!(
            m,
            ServerMessage::TrackMuted { muted: true, .. }
        )),
        1
    );
    sim.run_for(ms(500));
    assert_eq!(
        sim.rtp(bob, &video).len(),
        forwarded,
        "nothing after the mute"
    );
    assert!(sim.skips().get(Skip::Muted) - muted_before > 20);

    let unmute = ClientMessage::Mute {
        track_id: video.clone(),
        muted: false,
    };
    sim.request(alice, "r1", unmute);
    assert!(matches!(sim.frames(alice).last(),
        Some(ServerMessage::Error { code, request_id: Some(id), .. })
            if code == "muted_by_server" && id == "r1"));
    sim.run_for(ms(300));
    assert_eq!(sim.rtp(bob, &video).len(), forwarded, "still muted");

    // The server unmutes: the video resumes at a keyframe the server asks for, numbered
    // on from where the mute stopped it (muted packets were never sent: no loss).
    let plis = sim.plis(alice).len();
    sim.command(Command::MuteTrack {
        identity: "alice".into(),
        track_id: video.clone(),
        muted: false,
    });
    assert_eq!(sim.plis(alice).len(), plis + 1, "a keyframe is requested");
    sim.run_for(ms(300));
    let got = sim.rtp(bob, &video);
    assert!(got.len() > forwarded + 10);
    assert!(got[forwarded].keyframe, "resumes at a keyframe");
    assert_eq!(seq_jumps(got), []);
}

#[test]
fn permissions_take_tracks_away() {
    let mut sim = Sim::new(9);
    let alice = sim.join("alice");
    let bob = sim.join("bob");
    let carol = sim.join("carol");
    let video = sim.publish_video(alice);
    sim.run_for(ms(500));
    for c in [bob, carol] {
        assert!(offers_track(sim.offers(c).last().unwrap(), &video));
        assert!(sim.rtp(c, &video).len() > 10);
    }

    // Bob may no longer subscribe: a new offer without alice's video.
    let grants = Grants {
        can_subscribe: false,
        ..Grants::default()
    };
    let reply = sim.command(Command::UpdatePermissions {
        identity: "bob".into(),
        grants,
    });
    assert!(matches!(reply, Reply::PermissionsChanged(Ok(_))));
    assert_eq!(sim.offers(bob).len(), 2);
    assert!(!offers_track(sim.offers(bob)[1], &video));
    sim.run_for(ms(100));
    let bob_got = sim.rtp(bob, &video).len();
    sim.run_for(ms(500));
    assert_eq!(sim.rtp(bob, &video).len(), bob_got, "bob receives no video");
    assert!(
        sim.rtp(carol, &video).len() > bob_got + 10,
        "carol still does"
    );

    // Alice may no longer publish: her track is gone for everyone.
    let grants = Grants {
        can_publish: false,
        ..Grants::default()
    };
    sim.command(Command::UpdatePermissions {
        identity: "alice".into(),
        grants,
    });
    assert_eq!(
        sim.count(
            carol,
            |m| matches!(m, ServerMessage::TrackUnpublished { track_id, .. }
            if *track_id == video)
        ),
        1
    );
    assert!(!offers_track(sim.offers(carol).last().unwrap(), &video));
    sim.run_for(ms(100));
    let carol_got = sim.rtp(carol, &video).len();
    sim.run_for(ms(500));
    assert_eq!(sim.rtp(carol, &video).len(), carol_got);
}

/// Distinct sequence numbers received, and how many the range from the first to the
/// last spans (of packets in order of arrival).
fn coverage(packets: &[RtpIn]) -> (usize, usize) {
    let first = packets[0].seq;
    let offsets: BTreeSet<u16> = packets.iter().map(|p| p.seq.wrapping_sub(first)).collect();
    let span = *offsets.last().unwrap() as usize + 1;
    (offsets.len(), span)
}

#[test]
fn loss_on_a_downlink_is_repaired() {
    let run = |seed| {
        let mut sim = Sim::new(seed);
        let alice = sim.join("alice");
        let bob = sim.join("bob");
        let video = sim.publish_video(alice);
        sim.run_for(ms(500));
        sim.set_loss(bob, Dir::Down, 0.05);
        let start = sim.now();
        sim.run_for(ms(3000));
        let lost = sim.dropped(bob, Dir::Down);
        assert!(lost > 5, "{lost} datagrams lost");
        // Media and probe padding: both take the track's numbers.
        let got: Vec<RtpIn> = sim
            .numbered(bob, &video)
            .into_iter()
            .filter(|p| p.at > start)
            .collect();
        let (distinct, span) = coverage(&got);
        // NACKs bring back what the loss took (a retransmission can be lost too).
        assert!(distinct * 100 >= span * 99, "{distinct} of {span}");

        // A keyframe asked for over the lossy link arrives.
        let keyframes = |sim: &Sim| sim.rtp(bob, &video).iter().filter(|p| p.keyframe).count();
        let before = keyframes(&sim);
        assert!(sim.request_keyframe(bob, &video));
        sim.run_for(ms(300));
        assert!(keyframes(&sim) > before);
        let seqs: Vec<u16> = sim.rtp(bob, &video).iter().map(|p| p.seq).collect();
        (lost, seqs)
    };
    let (lost, seqs) = run(10);
    assert_eq!(run(10), (lost, seqs), "the same seed, the same run");
}

/// A publisher's SRTP is unprotected where it arrives (the demultiplexer, on an I/O
/// thread in the server), not in the room: what reaches the room is plain RTP, and the
/// room forwards it.
#[test]
fn publishers_srtp_is_unprotected_before_it_reaches_the_room() {
    let mut sim = Sim::new(1);
    let publisher = sim.join("publisher");
    let subscriber = sim.join("subscriber");
    let video = sim.publish_video(publisher);
    sim.run_for(ms(1000));
    assert!(!sim.rtp(subscriber, &video).is_empty(), "video flows");
    let dg = sim.video_datagram(publisher, &video);
    assert!(dg.unprotected, "unprotected on the way in");
    assert_eq!(dg.data[0] >> 6, 2, "plain RTP, version 2");
    assert_eq!(sim.feed_datagram(dg), 1, "forwarded to the subscriber");
}
