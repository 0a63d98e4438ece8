//! A phone over plain RTP in a room on the simulated clock: in the roster like anyone,
//! heard through the mixer by WebRTC clients, sent its mix-minus-self as samples, and
//! gone with a reason; in early media (heard, sent nothing) until answered. Its endpoint (socket, G.711, resampling) is tested in
//! `chorus-plainrtp` and end to end with ffmpeg (`chorus-server/tests/plain_rtp.rs`).

use std::sync::Arc;

use chorus_plainrtp::driver::MixData;
use chorus_plainrtp::{FRAME_SAMPLES, InboundFrame, PlainCodec};
use chorus_protocol::ParticipantInfo;
use chorus_protocol::signal::{ROOM_AUDIO_TRACK, ServerMessage};
use chorus_protocol::{LeaveReason, ParticipantState, TrackSource};
use chorus_room::io::{Command, Input, ParticipantKey, Reply, RtpAdmitted, RtpJoin};
use chorus_room::sim::{Sim, ms};
use chorus_room_api::RoomError;

fn add_phone(sim: &mut Sim, identity: &str, max: u32) -> Result<RtpAdmitted, RoomError> {
    add(sim, identity, max, false)
}

fn add(sim: &mut Sim, identity: &str, max: u32, early: bool) -> Result<RtpAdmitted, RoomError> {
    let join = RtpJoin {
        identity: identity.into(),
        name: format!("Phone {identity}"),
        codec: PlainCodec::Pcmu,
        max_in_room: max,
        early_media: early,
    };
    match sim.command(Command::AddRtpParticipant(join)) {
        Reply::RtpAdded(r) => r,
        other => panic!("unexpected {other:?}"),
    }
}

/// 20 ms of a 1 kHz tone at 48 kHz, frame `n`.
fn tone(n: u64) -> Vec<i16> {
    (0..FRAME_SAMPLES)
        .map(|i| {
            let t = (n as usize * FRAME_SAMPLES + i) as f64 / 48_000.0;
            (8_000.0 * (2.0 * std::f64::consts::PI * 1_000.0 * t).sin()) as i16
        })
        .collect()
}

fn amplitude(x: &[i16], freq: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / 48_000.0;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &v in x {
        let s0 = f64::from(v) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    2.0 * (s1 * s1 + s2 * s2 - coeff * s1 * s2).max(0.0).sqrt() / x.len() as f64
}

fn talk(sim: &mut Sim, phone: ParticipantKey, frames: std::ops::Range<u64>) {
    for n in frames {
        let frame = InboundFrame {
            seq: n,
            pcm: tone(n),
        };
        sim.input(Input::RtpFrame {
            participant: phone,
            frame,
        });
        sim.run_for(ms(20));
    }
}

#[test]
fn a_phone_is_in_the_roster_heard_in_the_mix_and_hears_the_others() {
    let mut sim = Sim::new(11);
    let alice = sim.join("alice");
    sim.publish_audio(alice); // a 440 Hz tone in real Opus
    sim.run_for(ms(500));
    let phone = add_phone(&mut sim, "phone", 8).expect("admitted");
    let key = phone.participant;

    // In the roster like anyone: one microphone track, connecting until RTP comes.
    let info = &phone.info;
    assert_eq!(info.identity, "phone");
    assert_eq!(info.name, "Phone phone");
    assert_eq!(info.state, ParticipantState::Connecting);
    assert_eq!(info.tracks.len(), 1);
    assert_eq!(info.tracks[0].source, TrackSource::Microphone);
    let joined = sim.count(alice, |m| {
        matches!(m, ServerMessage::ParticipantJoined { participant } if participant.identity == "phone")
    });
    assert_eq!(joined, 1, "alice hears of the phone");
    let Reply::Participants(list) = sim.command(Command::Participants) else {
        panic!()
    };
    assert!(list.iter().any(|p| p.identity == "phone"));

    talk(&mut sim, key, 0..100);
    let connected = sim.count(alice, |m| {
        matches!(m, ServerMessage::ParticipantState { participant_id, state: ParticipantState::Connected, .. }
            if *participant_id == phone.info.participant_id)
    });
    assert_eq!(connected, 1, "its first RTP makes it connected");

    // The phone gets a mix frame every 20 ms, as samples: alice, not itself.
    let mine: Vec<&Arc<[i16]>> = sim
        .rtp_mix()
        .iter()
        .filter(|(k, _)| *k == key)
        .map(|(_, f)| match &f.audio {
            MixData::Pcm(pcm) => pcm,
            MixData::Opus(_) => panic!("a PCMU phone takes samples"),
        })
        .collect();
    assert!(mine.len() >= 95, "{} mix frames in 2 s", mine.len());
    let heard: Vec<i16> = mine[40..].iter().flat_map(|f| f.iter().copied()).collect();
    let (others, own) = (amplitude(&heard, 440.0), amplitude(&heard, 1_000.0));
    assert!(others > 2_000.0, "the phone hears alice: {others:.0}");
    assert!(own < 100.0, "the phone does not hear itself: {own:.0}");

    // Alice, whose only other talker is the phone, hears the mix (a phone is never
    // relayed: its audio is no Opus a browser could take).
    let room_audio = sim.rtp(alice, ROOM_AUDIO_TRACK).len();
    assert!(room_audio >= 90, "alice's room audio: {room_audio} packets");
    assert!(sim.core().forwarding().mix_frames >= 95);
}

#[test]
fn a_phone_leaves_with_a_reason_and_its_mix_stops() {
    let mut sim = Sim::new(12);
    let alice = sim.join("alice");
    sim.publish_audio(alice);
    sim.run_for(ms(200));
    let key = add_phone(&mut sim, "phone", 8).unwrap().participant;
    talk(&mut sim, key, 0..10);
    // Its endpoint reports the RTP stopped: the driver closes it with `rtp_timeout`.
    sim.input(Input::ClientGone {
        participant: key,
        reason: LeaveReason::RtpTimeout,
    });
    let left = sim.count(alice, |m| {
        matches!(m, ServerMessage::ParticipantLeft { identity, reason: LeaveReason::RtpTimeout, .. } if identity == "phone")
    });
    assert_eq!(left, 1);
    let before = sim.rtp_mix().len();
    sim.run_for(ms(500));
    assert_eq!(sim.rtp_mix().len(), before, "no mix for a phone that left");

    // Removed through the control API: `removed_by_server`.
    let key = add_phone(&mut sim, "phone", 8).unwrap().participant;
    talk(&mut sim, key, 0..5);
    let Reply::Removed(r) = sim.command(Command::Remove {
        identity: "phone".into(),
        message: None,
    }) else {
        panic!()
    };
    r.unwrap();
    let removed = sim.count(alice, |m| {
        matches!(m, ServerMessage::ParticipantLeft { identity, reason: LeaveReason::RemovedByServer, .. } if identity == "phone")
    });
    assert_eq!(removed, 1);
}

#[test]
fn phones_are_limited_per_room_and_identities_are_not_taken_over() {
    let mut sim = Sim::new(13);
    let _alice = sim.join("alice");
    // (identity, limit, expected)
    let cases: [(&str, u32, Result<(), RoomError>); 4] = [
        ("p1", 2, Ok(())),
        ("p2", 2, Ok(())),
        ("p3", 2, Err(RoomError::TooManyRtpParticipants(2))),
        ("alice", 8, Err(RoomError::IdentityInUse("alice".into()))),
    ];
    for (identity, max, want) in cases {
        let got = add_phone(&mut sim, identity, max).map(|_| ());
        assert_eq!(got, want, "{identity}");
    }
}

/// The PCM mix frames `key` was sent, in order.
fn mix_of(sim: &Sim, key: ParticipantKey) -> Vec<i16> {
    sim.rtp_mix()
        .iter()
        .filter(|(k, _)| *k == key)
        .flat_map(|(_, f)| match &f.audio {
            MixData::Pcm(pcm) => pcm.iter().copied(),
            MixData::Opus(_) => panic!("a PCMU phone takes samples"),
        })
        .collect()
}

fn answer(sim: &mut Sim, identity: &str) -> Result<ParticipantInfo, RoomError> {
    match sim.command(Command::AnswerRtp {
        identity: identity.into(),
    }) {
        Reply::RtpAnswered(r) => r,
        other => panic!("unexpected {other:?}"),
    }
}

fn state_of(sim: &mut Sim, identity: &str) -> ParticipantState {
    match sim.command(Command::Participant {
        identity: identity.into(),
    }) {
        Reply::Participant(Ok(p)) => p.state,
        other => panic!("unexpected {other:?}"),
    }
}

/// A gateway's call not answered yet: in the roster as `early_media`, its ringback
/// heard in the room's mix, sent no mix itself; the answer makes it `connected` (the
/// room told, with the previous state) and its mix starts. Answers that do not fit
/// are refused by name, and a phone in early media is not held.
#[test]
fn a_phone_in_early_media_is_heard_and_sent_nothing_until_answered() {
    let mut sim = Sim::new(14);
    let alice = sim.join("alice");
    sim.publish_audio(alice); // 440 Hz
    sim.run_for(ms(300));
    // A phone already in the call, to listen to the room as samples.
    let desk = add_phone(&mut sim, "desk", 8).unwrap().participant;
    let gw = add(&mut sim, "gw", 8, true).unwrap();
    let key = gw.participant;
    let gw_id = gw.info.participant_id.clone();
    assert_eq!(gw.info.state, ParticipantState::EarlyMedia);
    let joined_early = sim.count(alice, |m| {
        matches!(m, ServerMessage::ParticipantJoined { participant }
            if participant.identity == "gw" && participant.state == ParticipantState::EarlyMedia)
    });
    assert_eq!(joined_early, 1, "the roster shows it in early media");

    // Its ringback (1 kHz) for 2 s: heard by the room, nothing sent to it, and it
    // stays in early media however much RTP comes.
    talk(&mut sim, key, 0..100);
    assert_eq!(state_of(&mut sim, "gw"), ParticipantState::EarlyMedia);
    assert!(
        mix_of(&sim, key).is_empty(),
        "nothing goes to a line nobody answered"
    );
    let heard = mix_of(&sim, desk);
    assert!(heard.len() >= 90 * FRAME_SAMPLES, "{} samples", heard.len());
    let ringback = amplitude(&heard[40 * FRAME_SAMPLES..], 1_000.0);
    assert!(
        ringback > 2_000.0,
        "the room hears its early media: {ringback:.0}"
    );

    // Held before the answer: refused, nothing changes.
    let Reply::Held(held) = sim.command(Command::Hold {
        identity: "gw".into(),
        held: true,
    }) else {
        panic!()
    };
    assert_eq!(held.unwrap_err(), RoomError::NotAnswered("gw".into()));
    assert_eq!(state_of(&mut sim, "gw"), ParticipantState::EarlyMedia);

    // Answered: `connected`, announced once with the previous state.
    let info = answer(&mut sim, "gw").expect("answered");
    assert_eq!(info.state, ParticipantState::Connected);
    let answered = sim.count(alice, |m| {
        matches!(m, ServerMessage::ParticipantState { participant_id, previous: Some(ParticipantState::EarlyMedia), state: ParticipantState::Connected, reason: None }
            if *participant_id == gw_id)
    });
    assert_eq!(answered, 1);
    // Now it hears the room (alice's 440 Hz), not itself.
    talk(&mut sim, key, 100..200);
    let mix = mix_of(&sim, key);
    assert!(mix.len() >= 90 * FRAME_SAMPLES, "{} samples", mix.len());
    let tail = &mix[40 * FRAME_SAMPLES..];
    let (others, own) = (amplitude(tail, 440.0), amplitude(tail, 1_000.0));
    assert!(others > 2_000.0, "answered, it hears alice: {others:.0}");
    assert!(own < 100.0, "it does not hear itself: {own:.0}");

    // (identity, expected): answered twice, never in early media, not a phone, nobody.
    let cases = [
        ("gw", RoomError::AlreadyAnswered("gw".into())),
        ("desk", RoomError::AlreadyAnswered("desk".into())),
        ("alice", RoomError::ParticipantNotFound("alice".into())),
        ("nobody", RoomError::ParticipantNotFound("nobody".into())),
    ];
    for (identity, want) in cases {
        assert_eq!(answer(&mut sim, identity).unwrap_err(), want, "{identity}");
    }
    let changes = sim.count(alice, |m| {
        matches!(m, ServerMessage::ParticipantState { participant_id, .. } if *participant_id == gw_id)
    });
    assert_eq!(changes, 1, "refused answers announce nothing");
    let Reply::Info(info) = sim.command(Command::Info) else {
        panic!()
    };
    assert_eq!(info.refused_state_changes, 0);

    // An answered phone on hold stays on hold while its RTP comes.
    let Reply::Held(held) = sim.command(Command::Hold {
        identity: "gw".into(),
        held: true,
    }) else {
        panic!()
    };
    assert_eq!(held.unwrap().state, ParticipantState::OnHold);
    talk(&mut sim, key, 200..210);
    assert_eq!(state_of(&mut sim, "gw"), ParticipantState::OnHold);
}
