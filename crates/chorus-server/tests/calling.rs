//! The lobby and invitations with real clients and the control API: a participant
//! waits in a room's lobby until the control API admits it (then receives media), or is
//! rejected; an invitation rings in the roster and the invitee joins as it.

mod common;

use chorus_client::{ClientConfig, LeaveReason, ServerMessage};
use chorus_protocol::{Grants, ParticipantState};
use common::{FLOWING, Participant, TestServer, contains, position};
use reqwest::Method;
use serde_json::json;

fn admitter() -> Grants {
    Grants {
        can_admit: true,
        ..Grants::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_api_admits_from_the_lobby_and_rejects() {
    let server = TestServer::start().await;
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/rooms",
            Some(json!({"name": "lobby", "lobby": true})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["lobby"], true);
    let mut host = server.join_with("lobby", "host", admitter()).await;
    let (mic, cam) = host.publish_mic_and_camera().await;

    // The guest's client waits for `joined`, which comes once it is admitted.
    let token = server.token("lobby", "guest");
    let url = server.ws_url.clone();
    let guest = tokio::spawn(chorus_client::connect(ClientConfig::new(&url, token)));
    let waiting = host
        .expect(
            "guest waiting",
            |e| matches!(e, ServerMessage::LobbyWaiting { identity, .. } if identity == "guest"),
        )
        .await;
    let ServerMessage::LobbyWaiting { participant_id, .. } = waiting else {
        unreachable!()
    };
    let (status, body) = server
        .call(Method::GET, "/v1/rooms/lobby/participants/guest", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "in_lobby");
    let (_, room) = server.call(Method::GET, "/v1/rooms/lobby", None).await;
    assert_eq!(room["num_waiting"], 1);
    assert!(
        !guest.is_finished(),
        "the guest joined before it was admitted"
    );
    // What the room hears meanwhile (an invitation ringing) does not reach the lobby.
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/rooms/lobby/invitations",
            Some(json!({"identity": "dora"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    host.expect("dora ringing", |e| {
        matches!(e, ServerMessage::ParticipantJoined { participant } if participant.identity == "dora")
    })
    .await;

    let path = format!("/v1/rooms/lobby/lobby/{participant_id}/admit");
    let (status, body) = server.call(Method::POST, &path, None).await;
    assert_eq!(status, 204, "{body}");
    let client = guest.await.unwrap().expect("admitted, the guest joins");
    assert_eq!(client.participant_id(), participant_id);
    let mut guest = Participant::new("guest", client);
    guest.wait_receiving(&[&mic, &cam], FLOWING).await;
    // Dora is in its roster (`joined`), but it never heard her invitation while waiting.
    assert!(guest.others_at_join().iter().any(|p| p.identity == "dora"));
    let dora_heard = |e: &ServerMessage| match e {
        ServerMessage::ParticipantJoined { participant } => participant.identity == "dora",
        ServerMessage::ParticipantState { state, .. } => *state == ParticipantState::Ringing,
        _ => false,
    };
    let me = participant_id.clone();
    guest
        .until("its own in_lobby -> connecting", |log| {
            contains(log, |e| {
                matches!(e, ServerMessage::ParticipantState { participant_id, state, .. }
                    if *participant_id == me && *state == ParticipantState::Connecting)
            })
        })
        .await;
    assert!(!contains(guest.log(), dora_heard), "{:#?}", guest.log());
    guest
        .until("the lobby frame came first", |log| {
            matches!(
                log.first(),
                Some(ServerMessage::Lobby {
                    num_participants: 1,
                    ..
                })
            )
        })
        .await;
    let id = participant_id.as_str();
    let change = |from, to| {
        move |e: &ServerMessage| {
            matches!(e, ServerMessage::ParticipantState { participant_id: p, previous, state, .. }
                if p == id && *previous == Some(from) && *state == to)
        }
    };
    host.until("the guest in_lobby -> connecting -> connected", |log| {
        let admitted = position(
            log,
            change(ParticipantState::InLobby, ParticipantState::Connecting),
        );
        let connected = position(
            log,
            change(ParticipantState::Connecting, ParticipantState::Connected),
        );
        admitted.is_some() && admitted < connected
    })
    .await;
    // Admitting again: it no longer waits.
    let (status, body) = server.call(Method::POST, &path, None).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_in_lobby");

    // A second guest is turned away: its join fails, it was told why.
    let token = server.token("lobby", "late");
    let late = tokio::spawn(chorus_client::connect(ClientConfig::new(&url, token)));
    host.expect(
        "late waiting",
        |e| matches!(e, ServerMessage::LobbyWaiting { identity, .. } if identity == "late"),
    )
    .await;
    let (status, body) = server
        .call(Method::POST, "/v1/rooms/lobby/lobby/late/reject", None)
        .await;
    assert_eq!(status, 204, "{body}");
    assert!(late.await.unwrap().is_err(), "a rejected guest never joins");
    let (_, room) = server.call(Method::GET, "/v1/rooms/lobby", None).await;
    let reasons: Vec<&str> = room["recently_left"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["lobby_rejected"]);
    assert!(!contains(host.log(), |e| matches!(
        e,
        ServerMessage::ParticipantLeft {
            reason: LeaveReason::LobbyRejected,
            ..
        }
    )));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_rings_until_the_invitee_joins() {
    let server = TestServer::start().await;
    let mut alice = server.join("call", "alice").await;
    let bob = server.join("call", "bob").await;
    let (mic, _cam) = alice.publish_mic_and_camera().await;
    bob.wait_receiving(&[&mic], FLOWING).await;
    let (status, invitation) = server
        .call(
            Method::POST,
            "/v1/rooms/call/invitations",
            Some(json!({"identity": "carol", "timeout_secs": 60})),
        )
        .await;
    assert_eq!(status, 201, "{invitation}");
    let ringing_id = invitation["participant_id"].as_str().unwrap().to_owned();
    alice
        .expect("carol ringing", |e| {
            matches!(e, ServerMessage::ParticipantJoined { participant }
                if participant.participant_id == ringing_id
                    && participant.state == ParticipantState::Ringing)
        })
        .await;
    let (_, list) = server
        .call(Method::GET, "/v1/rooms/call/participants", None)
        .await;
    assert!(
        list["participants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["identity"] == "carol" && p["state"] == "ringing"),
        "{list}"
    );
    // The 1:1 call becomes a group call as carol accepts by joining.
    let carol = server.join("call", "carol").await;
    assert_eq!(carol.id(), ringing_id);
    carol.wait_receiving(&[&mic], FLOWING).await;
    alice
        .expect("carol ringing -> connecting", |e| {
            matches!(e, ServerMessage::ParticipantState { participant_id, previous, state, .. }
                if *participant_id == ringing_id
                    && *previous == Some(ParticipantState::Ringing)
                    && *state == ParticipantState::Connecting)
        })
        .await;
    let (status, body) = server
        .call(
            Method::DELETE,
            &format!(
                "/v1/rooms/call/invitations/{}",
                invitation["invitation_id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(status, 404, "accepted, it rings no more: {body}");
    assert_eq!(body["error"]["code"], "invitation_not_found");
    server.stop().await;
}
