//! `log.format = "json"`: one JSON object per line, and the lines of a room and of a
//! participant's session carry their names (the spans they were logged in).

mod common;

use std::time::Duration;

use common::binary::Binary;

fn message(line: &serde_json::Value) -> &str {
    line["fields"]["message"].as_str().unwrap_or("")
}

#[tokio::test]
async fn json_logs_name_the_room_and_the_participant() {
    let env = [
        ("CHORUS_LOG_FORMAT", "json"),
        ("CHORUS_LOG", "info,chorus_api=debug"),
    ];
    let mut server = Binary::start(&env, true).await;
    let alice = server.join("standup", "alice").await;
    alice.leave().await.unwrap();
    server.signal("INT");
    let logs = server.logs.take().unwrap();
    assert!(server.exited(Duration::from_secs(20)).await.is_some());

    let lines: Vec<serde_json::Value> = logs
        .iter()
        .map(|l| serde_json::from_str(&l).unwrap_or_else(|e| panic!("not JSON: {e}: {l}")))
        .collect();
    assert!(!lines.is_empty());
    let in_span = |line: &serde_json::Value, name: &str, field: &str, value: &str| {
        line["spans"]
            .as_array()
            .is_some_and(|spans| spans.iter().any(|s| s["name"] == name && s[field] == value))
    };
    let room_open = lines.iter().find(|l| message(l) == "room open");
    let room_open = room_open.unwrap_or_else(|| panic!("no room open line in {lines:#?}"));
    assert!(in_span(room_open, "room", "room", "standup"), "{room_open}");
    let joined = lines.iter().find(|l| message(l) == "joined");
    let joined = joined.unwrap_or_else(|| panic!("no joined line in {lines:#?}"));
    assert!(in_span(joined, "session", "identity", "alice"), "{joined}");
    assert!(in_span(joined, "session", "room", "standup"), "{joined}");
}
