//! Data messages between participants (docs/signaling.md, "Data messages"), through the
//! real server with real WebRTC clients: both modes, to the room and to named
//! receivers, the sender stamped by the server, the grant, the size and rate limits, a
//! receiver that stops reading, and binary messages.

mod common;

use std::time::Duration;

use chorus_client::{BinarySend, DataMode, DataReceived, DataSend, PathChange, PeerTarget};
use chorus_protocol::Grants;
use common::{LIMIT, Participant, TestServer, error_code, test_config};
use serde_json::{Value, json};

/// A message of `data` to the room.
fn to_room(data: Value) -> DataSend {
    DataSend {
        to: Vec::new(),
        to_participants: Vec::new(),
        topic: Some("test".into()),
        data,
    }
}

/// Waits for `n` data messages to `p`.
async fn receive(p: &mut Participant, n: usize) -> Vec<DataReceived> {
    let mut got = Vec::new();
    while got.len() < n {
        match p.next_data(LIMIT).await {
            Ok(m) => got.push(m),
            Err(e) => panic!(
                "{}: {e} after {} of {n} messages: {:?}",
                p.identity,
                got.len(),
                got.iter()
                    .map(|m| (m.mode, m.delivery.data["seq"].clone()))
                    .collect::<Vec<_>>()
            ),
        }
    }
    got
}

/// The `seq` of each message.
fn seqs(messages: &[DataReceived]) -> Vec<u64> {
    messages
        .iter()
        .map(|m| m.delivery.data["seq"].as_u64().expect("a seq"))
        .collect()
}

/// The room's `forwarding` counts, polled until `done` holds.
async fn forwarding_until(server: &TestServer, room: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        let (status, info) = server
            .call(reqwest::Method::GET, &format!("/v1/rooms/{room}"), None)
            .await;
        assert_eq!(status, 200, "{info}");
        let forwarding = info["forwarding"].clone();
        if done(&forwarding) {
            return forwarding;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never: {forwarding:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn skipped(forwarding: &Value, reason: &str) -> u64 {
    forwarding["skipped"][reason].as_u64().unwrap_or(0)
}

async fn join_open(server: &TestServer, room: &str, identity: &str, grants: Grants) -> Participant {
    let p = server.join_with(room, identity, grants).await;
    p.open_data()
        .await
        .unwrap_or_else(|e| panic!("{identity}: data channels: {e}"));
    p
}

/// Reliable messages reach everyone but the sender, all of them and in order, each
/// stamped with the sender's identity and participant id by the server: a `from` the
/// client wrote itself is not what the receivers see.
#[tokio::test]
async fn reliable_messages_reach_the_room_in_order_stamped_by_the_server() {
    let mut config = test_config();
    // More than the default 50 at once.
    config.rooms.data_messages_per_second = 1000;
    let server = TestServer::start_with(config).await;
    let mut alice = join_open(&server, "data", "alice", Grants::default()).await;
    let mut bob = join_open(&server, "data", "bob", Grants::default()).await;
    let mut carol = join_open(&server, "data", "carol", Grants::default()).await;
    const N: u64 = 100;
    for seq in 0..N {
        let message = if seq == 7 {
            // A forged sender, written by the client into its message.
            json!({"data": {"seq": seq}, "from": {"identity": "mallory", "participant_id": "PA_x"}})
                .to_string()
        } else {
            serde_json::to_string(&to_room(json!({"seq": seq}))).unwrap()
        };
        alice
            .send_data_text(DataMode::Reliable, message)
            .await
            .unwrap();
    }
    for p in [&mut bob, &mut carol] {
        let got = receive(p, N as usize).await;
        assert_eq!(
            seqs(&got),
            (0..N).collect::<Vec<_>>(),
            "{}: in order",
            p.identity
        );
        for m in &got {
            assert_eq!(m.mode, DataMode::Reliable);
            assert_eq!(m.delivery.from.identity, "alice", "{}: {m:?}", p.identity);
            assert_eq!(m.delivery.from.participant_id, alice.id());
            assert!(!m.delivery.private);
        }
        assert_eq!(got[1].delivery.topic.as_deref(), Some("test"));
    }
    // Bob answers; alice hears it and never her own messages.
    bob.send_data(DataMode::Reliable, &to_room(json!({"seq": 1000})))
        .await
        .unwrap();
    let got = receive(&mut alice, 1).await;
    assert_eq!(
        (seqs(&got)[0], got[0].delivery.from.identity.as_str()),
        (1000, "bob")
    );
    let forwarding = forwarding_until(&server, "data", |f| f["data_delivered"] == 2 * N + 2).await;
    assert_eq!(forwarding["data_received"], N + 1);
    server.stop().await;
}

/// Unreliable messages are delivered too, on the receiver's `_lossy` channel.
#[tokio::test]
async fn lossy_messages_are_delivered() {
    let server = TestServer::start().await;
    let alice = join_open(&server, "lossy", "alice", Grants::default()).await;
    let mut bob = join_open(&server, "lossy", "bob", Grants::default()).await;
    const N: u64 = 20;
    for seq in 0..N {
        let message = to_room(json!({"seq": seq}));
        alice.send_data(DataMode::Lossy, &message).await.unwrap();
    }
    let got = receive(&mut bob, N as usize).await;
    let mut seen = seqs(&got);
    seen.sort_unstable();
    assert_eq!(seen, (0..N).collect::<Vec<_>>());
    assert!(
        got.iter()
            .all(|m| m.mode == DataMode::Lossy && m.delivery.from.identity == "alice")
    );
    server.stop().await;
}

/// A message to named identities or participant ids reaches them alone.
#[tokio::test]
async fn messages_to_named_receivers_reach_only_them() {
    let server = TestServer::start().await;
    let alice = join_open(&server, "named", "alice", Grants::default()).await;
    let mut bob = join_open(&server, "named", "bob", Grants::default()).await;
    let mut carol = join_open(&server, "named", "carol", Grants::default()).await;
    let to_bob = DataSend {
        to: vec!["bob".into()],
        ..to_room(json!({"seq": 1}))
    };
    let to_carol = DataSend {
        to_participants: vec![carol.id()],
        ..to_room(json!({"seq": 2}))
    };
    let to_nobody_here = DataSend {
        to: vec!["dave".into()],
        ..to_room(json!({"seq": 3}))
    };
    for m in [to_bob, to_carol, to_nobody_here, to_room(json!({"seq": 4}))] {
        alice.send_data(DataMode::Reliable, &m).await.unwrap();
    }
    // The last one goes to everyone: whatever came before it is all there is.
    let got = receive(&mut bob, 2).await;
    assert_eq!(seqs(&got), [1, 4], "bob");
    assert_eq!(
        (got[0].delivery.private, got[1].delivery.private),
        (true, false)
    );
    let got = receive(&mut carol, 2).await;
    assert_eq!(seqs(&got), [2, 4], "carol");
    server.stop().await;
}

/// Without `can_publish_data` a participant's messages go nowhere and it gets
/// `data_not_allowed` (counted); it still receives, even with no publish grant at all.
#[tokio::test]
async fn without_the_grant_messages_are_refused_but_received() {
    let server = TestServer::start().await;
    let alice = join_open(&server, "grant", "alice", Grants::default()).await;
    let mut bob = join_open(&server, "grant", "bob", Grants::default()).await;
    // Neither media nor data: its publisher connection carries the data channels alone.
    let mut viewer = join_open(&server, "grant", "viewer", Grants::subscribe_only()).await;
    viewer
        .send_data(DataMode::Reliable, &to_room(json!({"seq": 666})))
        .await
        .unwrap();
    viewer
        .expect("data_not_allowed", error_code("data_not_allowed"))
        .await;
    alice
        .send_data(DataMode::Reliable, &to_room(json!({"seq": 1})))
        .await
        .unwrap();
    assert_eq!(
        seqs(&receive(&mut bob, 1).await),
        [1],
        "nothing of the viewer's first"
    );
    assert_eq!(
        seqs(&receive(&mut viewer, 1).await),
        [1],
        "the viewer receives"
    );
    let f = forwarding_until(&server, "grant", |f| skipped(f, "data_not_allowed") == 1).await;
    assert_eq!(f["data_received"], 1);
    server.stop().await;
}

/// A message over the size limit and messages over the rate are refused with their
/// codes, counted, and reach no one.
#[tokio::test]
async fn messages_over_the_size_or_rate_limit_are_refused() {
    let mut config = test_config();
    config.rooms.data_max_message_bytes = 1000;
    config.rooms.data_messages_per_second = 2;
    config.rooms.data_bytes_per_second = 100_000;
    let server = TestServer::start_with(config).await;
    let mut alice = join_open(&server, "limits", "alice", Grants::default()).await;
    let mut bob = join_open(&server, "limits", "bob", Grants::default()).await;

    let big = to_room(json!({"seq": 0, "pad": "x".repeat(1000)}));
    alice.send_data(DataMode::Reliable, &big).await.unwrap();
    alice
        .expect("data_too_large", error_code("data_too_large"))
        .await;

    // Two a second, two at once: of 30 sent at once nearly all are refused.
    const N: u64 = 30;
    for seq in 1..=N {
        let m = to_room(json!({"seq": seq}));
        alice.send_data(DataMode::Reliable, &m).await.unwrap();
    }
    alice
        .expect("data_rate_limited", error_code("data_rate_limited"))
        .await;
    let f = forwarding_until(&server, "limits", |f| {
        f["data_received"].as_u64().unwrap_or(0) + skipped(f, "data_rate_limited") == N
    })
    .await;
    assert_eq!(skipped(&f, "data_too_large"), 1);
    let taken = f["data_received"].as_u64().unwrap();
    assert!((2..N / 2).contains(&taken), "{taken} of {N} taken: {f:#}");
    let got = receive(&mut bob, taken as usize).await;
    assert_eq!(seqs(&got)[0], 1, "not the one over the size limit");
    bob.settle(Duration::from_millis(300)).await;
    assert!(bob.take_data().is_empty(), "no more than the room took");
    // One error frame per code a second, however many were refused.
    let told = alice
        .log()
        .iter()
        .filter(|e| error_code("data_rate_limited")(e))
        .count();
    assert!(told < 5, "{told} data_rate_limited frames");
    server.stop().await;
}

/// A receiver that stops reading (its publisher connection cut off) loses copies,
/// counted, and is told for the reliable ones; the others get every message in order.
#[tokio::test]
async fn a_receiver_that_does_not_keep_up_never_holds_the_room_back() {
    let mut config = test_config();
    config.rooms.data_max_message_bytes = 60 * 1024;
    config.rooms.data_messages_per_second = 10_000;
    config.rooms.data_bytes_per_second = 100_000_000;
    let server = TestServer::start_with(config).await;
    let alice = join_open(&server, "slow", "alice", Grants::default()).await;
    let mut bob = join_open(&server, "slow", "bob", Grants::default()).await;
    let mut carol = join_open(&server, "slow", "carol", Grants::default()).await;
    bob.change_path(PeerTarget::Publisher, PathChange::Offline)
        .await
        .unwrap();
    // 40 × 30 KB: over the 64 KiB lossy and the 1 MiB reliable budgets toward bob.
    const N: u64 = 40;
    let pad = "x".repeat(30_000);
    for mode in [DataMode::Lossy, DataMode::Reliable] {
        for seq in 0..N {
            let m = to_room(json!({"seq": seq, "pad": pad}));
            alice.send_data(mode, &m).await.unwrap();
        }
    }
    // Her own unreliable ones may be dropped too (sent in one burst, they are over the
    // 64 KiB budget toward anyone): the reliable ones all come.
    let mut reliable = Vec::new();
    while reliable.len() < N as usize {
        let m = carol.next_data(LIMIT).await.expect("carol's messages");
        if m.mode == DataMode::Reliable {
            reliable.push(m);
        }
    }
    assert_eq!(
        seqs(&reliable),
        (0..N).collect::<Vec<_>>(),
        "carol gets every reliable one"
    );
    bob.expect("data_dropped", error_code("data_dropped")).await;
    let f = forwarding_until(&server, "slow", |f| skipped(f, "data_receiver_full") > 0).await;
    assert!(skipped(&f, "data_receiver_full") >= N, "{f:#}");
    server.stop().await;
}

/// Binary messages (docs/signaling.md, "Binary messages"): the payload arrives byte for
/// byte on the receiver's channel of the sender's, to the room or to those named, under
/// a header the server wrote (a `from` in the sender's header is ignored); a message
/// not framed as documented is refused with `bad_data_message`, counted.
#[tokio::test]
async fn binary_messages_arrive_byte_for_byte_stamped_by_the_server() {
    let server = TestServer::start().await;
    let mut alice = join_open(&server, "binary", "alice", Grants::default()).await;
    let mut bob = join_open(&server, "binary", "bob", Grants::default()).await;
    let mut carol = join_open(&server, "binary", "carol", Grants::default()).await;
    // Every byte value, and more than one SCTP packet's worth.
    let payload: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    let to_room = BinarySend {
        topic: Some("file".into()),
        ..BinarySend::default()
    };
    alice
        .send_data_binary(DataMode::Reliable, &to_room, &payload)
        .await
        .unwrap();
    // A forged sender in a header written by hand, to bob alone, unreliable.
    let forged = json!({"to": ["bob"], "from": {"identity": "mallory", "participant_id": "PA_x"}});
    let message = chorus_protocol::data::write_binary(&forged, b"\x00only bob").unwrap();
    alice
        .send_data_bytes(DataMode::Lossy, message)
        .await
        .unwrap();
    // Not framed: a header length (200) past the end.
    alice
        .send_data_bytes(DataMode::Reliable, b"\x00\xc8{}".to_vec())
        .await
        .unwrap();
    alice
        .expect("bad_data_message", error_code("bad_data_message"))
        .await;
    // Bob's two come on two channels: in either order.
    let mut bobs = receive(&mut bob, 2).await;
    bobs.sort_by_key(|m| m.mode == DataMode::Lossy);
    let carols = receive(&mut carol, 1).await;
    for (who, m) in [("bob", &bobs[0]), ("carol", &carols[0])] {
        assert_eq!(m.mode, DataMode::Reliable, "{who}");
        assert_eq!(m.binary.as_deref(), Some(&payload[..]), "{who}");
        assert_eq!(m.delivery.from.identity, "alice");
        assert_eq!(m.delivery.from.participant_id, alice.id());
        assert_eq!(m.delivery.topic.as_deref(), Some("file"));
        assert!(!m.delivery.private);
    }
    let m = &bobs[1];
    assert_eq!(m.mode, DataMode::Lossy);
    assert_eq!(m.binary.as_deref(), Some(&b"\x00only bob"[..]));
    assert_eq!(
        (m.delivery.from.identity.as_str(), m.delivery.private),
        ("alice", true)
    );
    let f = forwarding_until(&server, "binary", |f| skipped(f, "data_invalid") == 1).await;
    assert_eq!(
        (f["data_received"].clone(), f["data_delivered"].clone()),
        (json!(2), json!(3))
    );
    carol.settle(Duration::from_millis(300)).await;
    assert!(carol.take_data().is_empty(), "nothing else for carol");
    server.stop().await;
}
