//! A room that panics closes alone: its clients are told, every other room
//! keeps forwarding, and the failed room's name can be used again. A panic in one of
//! a room's egress shards (on another thread) is a panic of that room.

mod common;

use std::time::{Duration, Instant};

use chorus_client::{TrackInfo, TrackSource};
use common::{FLOWING, LIMIT, Participant, TestServer, error_code, test_config};

/// Two participants of one room, each publishing its microphone and receiving the other's.
struct Pair {
    first: Participant,
    first_mic: TrackInfo,
    second: Participant,
    second_mic: TrackInfo,
}

impl Pair {
    async fn new(server: &TestServer, room: &str) -> Self {
        let mut first = server.join(room, &format!("{room}-1")).await;
        let mut second = server.join(room, &format!("{room}-2")).await;
        let first_mic = first.publish_ok(TrackSource::Microphone).await;
        let second_mic = second.publish_ok(TrackSource::Microphone).await;
        let pair = Self {
            first,
            first_mic,
            second,
            second_mic,
        };
        pair.keep_exchanging().await;
        pair
    }

    /// Both keep receiving the other's microphone.
    async fn keep_exchanging(&self) {
        self.first
            .wait_more_packets(&[&self.second_mic], FLOWING)
            .await;
        self.second
            .wait_more_packets(&[&self.first_mic], FLOWING)
            .await;
    }
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    Room,
    Shard,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_room_fails_alone() {
    fails_alone(Fault::Room).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_egress_shard_fails_its_room_alone() {
    fails_alone(Fault::Shard).await;
}

async fn fails_alone(fault: Fault) {
    let mut config = test_config();
    // More than one shard, whatever the machine: the fault must happen on a shard thread.
    config.rooms.egress_shards = 2;
    let (server, registry) = TestServer::start_with_registry(config).await;
    let mut x = Pair::new(&server, "x").await;
    let y = Pair::new(&server, "y").await;

    match fault {
        Fault::Room => registry.inject_panic("x").await.unwrap(),
        Fault::Shard => registry.inject_shard_panic("x").await.unwrap(),
    }

    // Room X's clients learn that their room failed, and their sessions end.
    for p in [&mut x.first, &mut x.second] {
        p.expect("error room_closed", error_code("room_closed"))
            .await;
        p.expect_closed("after room_closed").await;
    }
    // The registry forgets X.
    let deadline = Instant::now() + LIMIT;
    loop {
        let (status, _) = server.call(reqwest::Method::GET, "/v1/rooms/x", None).await;
        if status == 404 {
            break;
        }
        assert!(Instant::now() < deadline, "room x still listed ({status})");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Room Y never noticed: media keeps flowing both ways, and newcomers get it.
    y.keep_exchanging().await;
    let y3 = server.join("y", "y-3").await;
    y3.wait_receiving(&[&y.first_mic, &y.second_mic], FLOWING)
        .await;

    // X's name is free again: a new room X works from scratch.
    let mut x3 = server.join("x", "x-3").await;
    assert_eq!(x3.room(), "x");
    assert!(x3.others_at_join().is_empty(), "{:#?}", x3.others_at_join());
    let x3_mic = x3.publish_ok(TrackSource::Microphone).await;
    let x4 = server.join("x", "x-4").await;
    x4.wait_receiving(&[&x3_mic], FLOWING).await;
    y.keep_exchanging().await;
    server.stop().await;
    registry.shutdown().await;
}
