use super::*;

fn ev(kind: EventKind, jsep: Option<Jsep>) -> Event {
    Event {
        transaction: None,
        kind,
        jsep,
    }
}

#[test]
fn events_parse_as_janus_sends_them() {
    let host = "candidate:1 1 udp 2015363327 127.0.0.1 20001 typ host";
    let cases: Vec<(Value, Option<&str>, EventKind, Option<Jsep>)> = vec![
        (
            json!({"janus": "event", "transaction": "t3", "sender": 9,
                   "plugindata": {"plugin": "janus.plugin.videoroom",
                                  "data": {"videoroom": "joined", "room": 1, "id": 77, "publishers": []}}}),
            Some("t3"),
            EventKind::Joined(FeedId(77)),
            None,
        ),
        (
            json!({"janus": "event", "transaction": "t4",
                   "plugindata": {"data": {"videoroom": "event", "configured": "ok", "streams": []}},
                   "jsep": {"type": "answer", "sdp": "v=0 a"}}),
            Some("t4"),
            EventKind::Configured,
            Some(Jsep::Answer("v=0 a".into())),
        ),
        (
            json!({"janus": "event", "transaction": "t5",
                   "plugindata": {"data": {"videoroom": "attached", "room": 1, "streams": [
                       {"type": "audio", "mid": "0", "mindex": 0, "feed_id": 77, "feed_mid": "0"},
                       {"type": "video", "mid": "1", "mindex": 1, "feed_id": 77, "feed_mid": "1"},
                       {"type": "data", "mid": "2", "mindex": 2},
                       {"type": "video", "mid": "3"},
                   ]}},
                   "jsep": {"type": "offer", "sdp": "v=0 o"}}),
            Some("t5"),
            EventKind::Attached(vec![
                Relayed {
                    mid: "0".into(),
                    feed: FeedId(77),
                    kind: MediaKind::Audio,
                },
                Relayed {
                    mid: "1".into(),
                    feed: FeedId(77),
                    kind: MediaKind::Video,
                },
            ]),
            Some(Jsep::Offer("v=0 o".into())),
        ),
        (
            json!({"janus": "event", "plugindata": {"data": {"videoroom": "event", "started": "ok"}}}),
            None,
            EventKind::Started,
            None,
        ),
        (
            json!({"janus": "event", "transaction": "t6",
                   "plugindata": {"data": {"videoroom": "event", "error_code": 426, "error": "No such room"}}}),
            Some("t6"),
            EventKind::PluginError {
                code: 426,
                reason: "No such room".into(),
            },
            None,
        ),
        (
            json!({"janus": "event", "plugindata": {"data": {"videoroom": "event", "publishers": []}}}),
            None,
            EventKind::Plugin,
            None,
        ),
        (
            json!({"janus": "trickle", "sender": 9,
                   "candidate": {"sdpMid": "0", "sdpMLineIndex": 0, "candidate": host}}),
            None,
            EventKind::Trickle(Some(IceCandidate {
                candidate: host.into(),
                sdp_mid: Some("0".into()),
                sdp_mline_index: Some(0),
                username_fragment: None,
            })),
            None,
        ),
        (
            json!({"janus": "trickle", "candidate": {"completed": true}}),
            None,
            EventKind::Trickle(None),
            None,
        ),
        (
            json!({"janus": "webrtcup", "sender": 9}),
            None,
            EventKind::WebrtcUp,
            None,
        ),
        (
            json!({"janus": "hangup", "reason": "DTLS alert"}),
            None,
            EventKind::Hangup("DTLS alert".into()),
            None,
        ),
        (
            json!({"janus": "keepalive"}),
            None,
            EventKind::Keepalive,
            None,
        ),
        (
            json!({"janus": "media", "type": "video", "receiving": true}),
            None,
            EventKind::Other("media".into()),
            None,
        ),
        // Network input of the wrong shape must not fail.
        (json!(42), None, EventKind::Other(String::new()), None),
        (
            json!({"janus": "event", "plugindata": "nonsense", "jsep": {"type": "pranswer", "sdp": "x"}}),
            None,
            EventKind::Plugin,
            None,
        ),
    ];
    for (value, transaction, kind, jsep) in cases {
        let event = Event::parse(&value);
        assert_eq!(event.transaction.as_deref(), transaction, "{value}");
        assert_eq!(event.kind, kind, "{value}");
        assert_eq!(event.jsep, jsep, "{value}");
    }
}

#[test]
fn engine_messages_become_janus_requests() {
    let c = IceCandidate {
        candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host".into(),
        sdp_mid: None,
        sdp_mline_index: Some(0),
        username_fragment: None,
    };
    let offer = ClientMessage::Offer {
        target: PeerTarget::Publisher,
        sdp: "o".into(),
    };
    let cases = vec![
        (
            offer.clone(),
            false,
            Some(
                json!({"janus": "message", "transaction": "t", "body": {"request": "publish"},
                        "jsep": {"type": "offer", "sdp": "o"}}),
            ),
        ),
        (
            offer,
            true,
            Some(
                json!({"janus": "message", "transaction": "t", "body": {"request": "configure"},
                        "jsep": {"type": "offer", "sdp": "o"}}),
            ),
        ),
        (
            ClientMessage::Answer {
                target: PeerTarget::Subscriber,
                sdp: "a".into(),
            },
            false,
            Some(
                json!({"janus": "message", "transaction": "t", "body": {"request": "start"},
                        "jsep": {"type": "answer", "sdp": "a"}}),
            ),
        ),
        (
            ClientMessage::Candidate {
                target: PeerTarget::Publisher,
                candidate: Some(c.clone()),
            },
            true,
            Some(json!({"janus": "trickle", "transaction": "t",
                        "candidate": {"candidate": c.candidate, "sdpMid": null, "sdpMLineIndex": 0}})),
        ),
        (
            ClientMessage::Candidate {
                target: PeerTarget::Subscriber,
                candidate: None,
            },
            false,
            Some(json!({"janus": "trickle", "transaction": "t", "candidate": {"completed": true}})),
        ),
        // No Janus counterpart: Chorus-only messages, wrong directions.
        (ClientMessage::Ping { ts: 1 }, false, None),
        (
            ClientMessage::Offer {
                target: PeerTarget::Subscriber,
                sdp: "o".into(),
            },
            false,
            None,
        ),
    ];
    for (message, published, want) in cases {
        let got = Request::for_engine(&message, published).map(|r| r.to_json("t"));
        assert_eq!(got, want, "{message:?} published={published}");
    }
}

#[test]
fn janus_events_become_engine_messages() {
    let sub = PeerTarget::Subscriber;
    let publ = PeerTarget::Publisher;
    let cases = vec![
        (
            sub,
            ev(EventKind::Attached(vec![]), Some(Jsep::Offer("o".into()))),
            Some(ServerMessage::Offer {
                target: sub,
                sdp: "o".into(),
            }),
        ),
        (
            publ,
            ev(EventKind::Configured, Some(Jsep::Answer("a".into()))),
            Some(ServerMessage::Answer {
                target: publ,
                sdp: "a".into(),
            }),
        ),
        (
            publ,
            ev(EventKind::Trickle(None), None),
            Some(ServerMessage::Candidate {
                target: publ,
                candidate: None,
            }),
        ),
        (sub, ev(EventKind::Started, None), None),
        (sub, ev(EventKind::WebrtcUp, None), None),
        (publ, ev(EventKind::Joined(FeedId(1)), None), None),
    ];
    for (target, event, want) in cases {
        assert_eq!(engine_message(target, &event), want, "{event:?}");
    }
}

#[test]
fn relayed_tracks_are_named_after_the_publishers_tracks() {
    let offer = "v=0\r\na=msid-semantic: WMS *\r\n\
                 m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=msid:janus janus0\r\na=ssrc:1 cname:janus\r\n\
                 m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=msid:janus janus1\r\n";
    let named = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(m, t)| (m.to_string(), t.to_string()))
            .collect()
    };
    let cases = [
        (
            named(&[("0", "p000-mic"), ("1", "p000-cam")]),
            offer
                .replace("a=msid:janus janus0", "a=msid:p000-mic p000-mic")
                .replace("a=msid:janus janus1", "a=msid:p000-cam p000-cam"),
        ),
        // Unnamed m-lines keep Janus's msid; a name for an absent mid changes nothing.
        (
            named(&[("1", "p000-cam"), ("7", "x")]),
            offer.replace("a=msid:janus janus1", "a=msid:p000-cam p000-cam"),
        ),
        (named(&[]), offer.to_owned()),
    ];
    for (names, want) in cases {
        assert_eq!(name_tracks(offer, &names), want, "{names:?}");
    }
    // The session-level msid-semantic line is not an m-line's msid.
    let named = name_tracks(offer, &named(&[("0", "a"), ("1", "b")]));
    assert!(named.contains("a=msid-semantic: WMS *\r\n"));
}
