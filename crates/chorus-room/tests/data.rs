//! Data messages between participants on the simulated clock (docs/signaling.md, "Data
//! messages"): text (JSON) and binary messages through real data channels into the
//! room core and out to the receivers, to the room or to those named, the sender
//! stamped by the room, the grant, the size and rate limits as the clock advances, and
//! a receiver that does not keep up.

use chorus_protocol::Grants;
use chorus_protocol::data::{DataMode, write_binary};
use chorus_protocol::signal::ServerMessage;
use chorus_room::data::DataLimits;
use chorus_room::sim::{ClientId, Sim, ms};
use chorus_room::skips::Skip;
use serde_json::{Value, json};

/// A room with these data limits.
fn room(seed: u64, limits: DataLimits) -> Sim {
    Sim::with_config(seed, |c| c.data = limits)
}

/// Limits loose enough never to refuse anything a scenario sends.
fn loose() -> DataLimits {
    DataLimits {
        max_message_bytes: 60 * 1024,
        messages_per_second: 10_000,
        bytes_per_second: 100_000_000,
    }
}

/// Joins and opens the data channels.
fn join_open(sim: &mut Sim, identity: &str, grants: Grants) -> ClientId {
    let c = sim.join_with(identity, grants);
    sim.open_data(c);
    c
}

/// A binary message: `header` framed before `payload`.
fn binary(header: Value, payload: &[u8]) -> Vec<u8> {
    write_binary(&header, payload).unwrap()
}

/// How many `error` frames of `code` the client got.
fn errors(sim: &Sim, c: ClientId, code: &str) -> usize {
    sim.count(
        c,
        |m| matches!(m, ServerMessage::Error { code: got, .. } if got == code),
    )
}

/// What a client received, in one form for both kinds: (binary, sender identity,
/// sender participant id, topic, private, the JSON `data` or the payload as text).
type Got = (bool, String, String, Option<String>, bool, String);

fn received(sim: &Sim, c: ClientId) -> Vec<Got> {
    sim.data_in(c)
        .iter()
        .map(|m| {
            if m.binary {
                let (h, at) = chorus_protocol::data::read_binary::<
                    Option<chorus_protocol::data::BinaryDelivery>,
                >(&m.data)
                .unwrap();
                let h = h.unwrap();
                let payload = String::from_utf8_lossy(&m.data[at..]).into_owned();
                (
                    true,
                    h.from.identity,
                    h.from.participant_id,
                    h.topic,
                    h.private,
                    payload,
                )
            } else {
                let d: chorus_protocol::data::DataDelivery =
                    serde_json::from_slice(&m.data).unwrap();
                let data = d.data.as_str().unwrap_or_default().to_owned();
                (
                    false,
                    d.from.identity,
                    d.from.participant_id,
                    d.topic,
                    d.private,
                    data,
                )
            }
        })
        .collect()
}

/// Text and binary messages reach the whole room but the sender, or only those named
/// by identity or participant id; each receiver sees the sender as the room knows it
/// (a `from` the client wrote is ignored), the topic, and whether it was private.
#[test]
fn messages_reach_the_room_or_those_named_stamped_by_the_room() {
    let mut sim = room(1, loose());
    let alice = join_open(&mut sim, "alice", Grants::default());
    let bob = join_open(&mut sim, "bob", Grants::default());
    let carol = join_open(&mut sim, "carol", Grants::default());
    let carol_id = sim.participant_id(carol).to_owned();
    let forged = json!({"identity": "mallory", "participant_id": "PA_forged"});
    // (what, binary, the addressing (and a forged sender), receivers)
    let cases: [(&str, bool, Value, &[ClientId]); 8] = [
        ("text to the room", false, json!({}), &[bob, carol]),
        ("binary to the room", true, json!({}), &[bob, carol]),
        ("text to bob", false, json!({"to": ["bob"]}), &[bob]),
        ("binary to bob", true, json!({"to": ["bob"]}), &[bob]),
        (
            "binary to carol's id",
            true,
            json!({"to_participants": [carol_id]}),
            &[carol],
        ),
        (
            "text, forged sender",
            false,
            json!({"from": forged}),
            &[bob, carol],
        ),
        (
            "binary, forged sender",
            true,
            json!({"from": forged}),
            &[bob, carol],
        ),
        ("binary to nobody here", true, json!({"to": ["dave"]}), &[]),
    ];
    let alice_id = sim.participant_id(alice).to_owned();
    for (what, is_binary, mut header, receivers) in cases {
        let before = [bob, carol].map(|c| sim.data_in(c).len());
        let private = header.get("to").is_some() || header.get("to_participants").is_some();
        header["topic"] = json!("t");
        if is_binary {
            sim.send_data_binary(alice, DataMode::Reliable, &binary(header, what.as_bytes()));
        } else {
            header["data"] = json!(what);
            sim.send_data(alice, DataMode::Reliable, &header.to_string());
        }
        sim.run_for(ms(100));
        for (c, before) in [bob, carol].into_iter().zip(before) {
            let got = received(&sim, c).split_off(before);
            let want: Vec<Got> = match receivers.contains(&c) {
                true => vec![(
                    is_binary,
                    "alice".into(),
                    alice_id.clone(),
                    Some("t".into()),
                    private,
                    what.into(),
                )],
                false => Vec::new(),
            };
            assert_eq!(got, want, "{what}: {}", sim.identity(c));
        }
    }
    assert!(sim.data_in(alice).is_empty(), "never her own");
    let f = sim.core().forwarding();
    assert_eq!((f.data_received, f.data_delivered), (8, 11));
    assert!(
        sim.data_in(bob)
            .iter()
            .all(|m| m.mode == DataMode::Reliable)
    );
}

/// Both kinds go on the receiver's channel of the sender's: lossy stays lossy. The
/// channels open beside media already published (a renegotiation adds them).
#[test]
fn lossy_messages_arrive_on_the_lossy_channel() {
    let mut sim = room(2, loose());
    let alice = sim.join("alice");
    let camera = sim.publish_video(alice);
    sim.run_for(ms(300));
    sim.open_data(alice);
    let bob = join_open(&mut sim, "bob", Grants::default());
    sim.send_data(alice, DataMode::Lossy, r#"{"data": 1}"#);
    sim.send_data_binary(alice, DataMode::Lossy, &binary(json!({}), b"\x00\xff"));
    sim.run_for(ms(100));
    let modes: Vec<_> = sim
        .data_in(bob)
        .iter()
        .map(|m| (m.mode, m.binary))
        .collect();
    assert_eq!(
        modes,
        [(DataMode::Lossy, false), (DataMode::Lossy, true)],
        "in the order sent: nothing was lost"
    );
    let (_, header, payload) = &sim.data_binary(bob)[0];
    assert_eq!(
        (header.from.identity.as_str(), &payload[..]),
        ("alice", &b"\x00\xff"[..])
    );
    sim.run_for(ms(300));
    assert!(sim.rtp(bob, &camera).len() > 5, "and the camera still goes");
}

/// Without `can_publish_data` neither kind reaches anyone: each refusal is counted,
/// the sender told once a second; it still receives, even with no publish grant.
#[test]
fn without_the_grant_messages_are_refused_but_received() {
    let mut sim = room(3, loose());
    let alice = join_open(&mut sim, "alice", Grants::default());
    let viewer = join_open(&mut sim, "viewer", Grants::subscribe_only());
    sim.send_data(viewer, DataMode::Reliable, r#"{"data": "no"}"#);
    sim.send_data_binary(viewer, DataMode::Reliable, &binary(json!({}), b"no"));
    sim.run_for(ms(100));
    assert!(sim.data_in(alice).is_empty());
    assert_eq!(sim.skips().get(Skip::DataNotAllowed), 2);
    assert_eq!(errors(&sim, viewer, "data_not_allowed"), 1, "once a second");
    sim.run_for(ms(1000));
    sim.send_data_binary(viewer, DataMode::Lossy, &binary(json!({}), b"no"));
    assert_eq!(
        errors(&sim, viewer, "data_not_allowed"),
        2,
        "a second later, again"
    );
    sim.send_data(alice, DataMode::Reliable, r#"{"data": "yes"}"#);
    sim.run_for(ms(100));
    assert_eq!(received(&sim, viewer).len(), 1, "the viewer receives");
    assert_eq!(sim.core().forwarding().data_received, 1);
}

/// The size limit counts the whole message: a text message's JSON, a binary message's
/// length, header and payload. One byte over is refused, counted, and told.
#[test]
fn the_size_limit_counts_the_whole_message_of_either_kind() {
    let limits = DataLimits {
        max_message_bytes: 100,
        ..loose()
    };
    let mut sim = room(4, limits);
    let alice = join_open(&mut sim, "alice", Grants::default());
    let bob = join_open(&mut sim, "bob", Grants::default());
    // `{"data":"xx…"}` is 11 bytes around its string; a binary message with the
    // header `{}` is 4 bytes before its payload.
    let text = |n: usize| format!(r#"{{"data":"{}"}}"#, "x".repeat(n - 11)).into_bytes();
    let bytes = |n: usize| binary(json!({}), &vec![7; n - 4]);
    assert_eq!((text(100).len(), bytes(100).len()), (100, 100));
    // (what, binary, the message, taken)
    let cases = [
        ("text of 100 bytes", false, text(100), true),
        ("text of 101 bytes", false, text(101), false),
        ("binary of 100 bytes", true, bytes(100), true),
        ("binary of 101 bytes", true, bytes(101), false),
    ];
    for (i, (what, is_binary, message, taken)) in cases.into_iter().enumerate() {
        let before = sim.data_in(bob).len();
        match is_binary {
            true => sim.send_data_binary(alice, DataMode::Reliable, &message),
            false => {
                let text = String::from_utf8(message).unwrap();
                sim.send_data(alice, DataMode::Reliable, &text)
            }
        }
        // A second apart: each refusal is told.
        sim.run_for(ms(1000));
        assert_eq!(
            sim.data_in(bob).len() - before,
            usize::from(taken),
            "{what}"
        );
        let refused = i / 2 + usize::from(!taken);
        assert_eq!(errors(&sim, alice, "data_too_large"), refused, "{what}");
        assert_eq!(
            sim.skips().get(Skip::DataTooLarge),
            refused as u64,
            "{what}"
        );
    }
    let payload = &sim.data_binary(bob)[0].2;
    assert_eq!(payload.len(), 96, "the payload as sent");
}

/// Messages and bytes are limited each by a token bucket holding a second's worth that
/// refills as the clock advances; text and binary draw from the same. A refusal takes
/// nothing; a malformed message, checked after the rate, takes its share.
#[test]
fn the_rate_limit_refills_as_the_clock_advances() {
    let limits = DataLimits {
        max_message_bytes: 1000,
        messages_per_second: 4,
        bytes_per_second: 2000,
    };
    let mut sim = room(5, limits);
    let alice = join_open(&mut sim, "alice", Grants::default());
    let bob = join_open(&mut sim, "bob", Grants::default());
    let small_text = r#"{"data":0}"#.to_owned();
    let small_binary = binary(json!({}), b"0");
    let big_binary = binary(json!({}), &[0; 996]);
    enum Msg {
        Text,
        Binary,
        Big,
        Malformed,
    }
    use Msg::*;
    // (ms to advance first, what alice sends, how many reach bob, refused by the rate);
    // each step then runs 20 ms.
    let steps: [(u64, &[Msg], usize, u64); 6] = [
        (0, &[Text, Binary, Text, Binary, Text, Binary], 4, 2),
        (100, &[Text], 0, 1),
        (150, &[Binary, Text], 1, 1),
        (1000, &[Malformed, Malformed, Text, Text, Text], 2, 1),
        (1000, &[Big, Big, Big], 2, 1),
        (400, &[Big, Text], 1, 1),
    ];
    let mut refused = 0;
    for (i, (advance, sends, delivered, by_rate)) in steps.into_iter().enumerate() {
        sim.run_for(ms(advance));
        let before = sim.data_in(bob).len();
        for send in sends {
            match send {
                Text => sim.send_data(alice, DataMode::Reliable, &small_text),
                Binary => sim.send_data_binary(alice, DataMode::Reliable, &small_binary),
                Big => sim.send_data_binary(alice, DataMode::Reliable, &big_binary),
                Malformed => sim.send_data_binary(alice, DataMode::Reliable, b"\x00"),
            }
        }
        refused += by_rate;
        sim.run_for(ms(20));
        assert_eq!(sim.data_in(bob).len() - before, delivered, "step {i}");
        assert_eq!(sim.skips().get(Skip::DataRateLimited), refused, "step {i}");
    }
    assert_eq!(sim.skips().get(Skip::DataInvalid), 2);
    // Refused at 0, 0.12, 0.29, 1.31, 2.33 and 2.75 s; told at most once a second: at
    // 0, 1.31 and 2.33 s.
    assert_eq!(errors(&sim, alice, "data_rate_limited"), 3);
}

/// Malformed binary messages are refused with `bad_data_message`, counted, and reach
/// no one; a header-only message (empty payload) is a message.
#[test]
fn malformed_binary_messages_are_refused() {
    let mut sim = room(6, loose());
    let alice = join_open(&mut sim, "alice", Grants::default());
    let bob = join_open(&mut sim, "bob", Grants::default());
    let cases: [(&str, Vec<u8>, bool); 6] = [
        ("one byte", vec![0], false),
        ("header past the end", b"\x00\x09{}".to_vec(), false),
        ("header not JSON", b"\x00\x02{x".to_vec(), false),
        ("header not an object", b"\x00\x04null".to_vec(), false),
        ("no header, no payload", vec![0, 0], true),
        ("header only", binary(json!({"topic": "ping"}), b""), true),
    ];
    let mut invalid = 0;
    for (what, message, taken) in cases {
        let before = sim.data_in(bob).len();
        sim.send_data_binary(alice, DataMode::Reliable, &message);
        sim.run_for(ms(1000));
        invalid += u64::from(!taken);
        assert_eq!(
            sim.data_in(bob).len() - before,
            usize::from(taken),
            "{what}"
        );
        assert_eq!(sim.skips().get(Skip::DataInvalid), invalid, "{what}");
        assert_eq!(
            errors(&sim, alice, "bad_data_message"),
            invalid as usize,
            "{what}"
        );
    }
    let empty: Vec<_> = sim
        .data_binary(bob)
        .into_iter()
        .map(|(_, h, p)| (h.topic, p.len()))
        .collect();
    assert_eq!(empty, [(None, 0), (Some("ping".into()), 0)]);
}

/// A receiver that does not keep up (nothing reaches it: its client acknowledges
/// nothing) loses its own copies once its bound is reached: 64 KiB waiting for
/// unreliable ones, 1 MiB for reliable ones. Each is counted, the reliable ones told;
/// the sender and the other receiver get everything, in order, and are told nothing.
#[test]
fn a_slow_receiver_loses_only_its_own_copies() {
    let mut sim = room(7, loose());
    let alice = join_open(&mut sim, "alice", Grants::default());
    let bob = join_open(&mut sim, "bob", Grants::default());
    let carol = join_open(&mut sim, "carol", Grants::default());
    sim.set_loss(bob, chorus_room::sim::Dir::Down, 1.0);
    let dropped = |sim: &Sim| sim.skips().get(Skip::DataReceiverFull) as usize;
    let delivered = |sim: &Sim| sim.core().forwarding().data_delivered as usize;

    // 20 unreliable ones of 10 KB: bob takes what fits in 64 KiB.
    const LOSSY: usize = 20;
    let pad = "x".repeat(10_000);
    for seq in 0..LOSSY {
        let message = binary(json!({"topic": pad}), format!("{seq}").as_bytes());
        sim.send_data_binary(alice, DataMode::Lossy, &message);
    }
    sim.run_for(ms(1000));
    let carol_lossy = received(&sim, carol).len();
    let to_bob = delivered(&sim) - carol_lossy;
    assert_eq!(carol_lossy, LOSSY, "carol keeps up");
    assert_eq!(to_bob, 64 * 1024 / 10_100, "bob's copies until 64 KiB wait");
    assert_eq!(
        dropped(&sim),
        LOSSY - to_bob,
        "bob's dropped copies, and only his"
    );
    assert_eq!(
        errors(&sim, bob, "data_dropped"),
        0,
        "unreliable ones are not told"
    );

    // 40 reliable ones of 30 KB, text and binary in turn: over 1 MiB.
    const N: usize = 40;
    let pad = "x".repeat(30_000);
    for seq in 0..N {
        if seq % 2 == 0 {
            let text = json!({"data": format!("{seq}"), "topic": pad}).to_string();
            sim.send_data(alice, DataMode::Reliable, &text);
        } else {
            let message = binary(json!({"topic": pad}), format!("{seq}").as_bytes());
            sim.send_data_binary(alice, DataMode::Reliable, &message);
        }
    }
    sim.run_for(ms(1000));
    let carol_got = received(&sim, carol);
    let reliable: Vec<String> = carol_got[LOSSY..].iter().map(|g| g.5.clone()).collect();
    assert_eq!(
        reliable,
        (0..N).map(|s| s.to_string()).collect::<Vec<_>>(),
        "all, in order"
    );
    let to_bob = delivered(&sim) - carol_got.len() - to_bob;
    assert!(
        to_bob < N,
        "bob's bound was reached ({to_bob} copies taken)"
    );
    assert!(
        to_bob >= (1024 * 1024 - 65_536) / 30_100,
        "but not before 1 MiB ({to_bob})"
    );
    // Every copy (two of each message) was delivered, or dropped as bob's.
    assert_eq!(dropped(&sim) + delivered(&sim), 2 * (LOSSY + N));
    assert_eq!(
        errors(&sim, bob, "data_dropped"),
        1,
        "told once: all in one second"
    );
    assert_eq!(
        errors(&sim, carol, "data_dropped") + errors(&sim, alice, "data_dropped"),
        0
    );
    assert!(sim.data_in(bob).is_empty());
}
