//! Data channels against `rtc`'s client: channels it opens (reliable-ordered and
//! unreliable-unordered), channels the server opens, both directions, the limits.

use bytes::BytesMut;
use rtc::data_channel::RTCDataChannelInit;

use super::*;
use crate::webrtc::datachannel::{MAX_BUFFERED, MAX_MESSAGE_SIZE};

fn reliable() -> RTCDataChannelInit {
    RTCDataChannelInit::default()
}

/// Unordered, each message sent once: what a game's position updates would use.
fn unreliable() -> RTCDataChannelInit {
    RTCDataChannelInit {
        ordered: false,
        max_retransmits: Some(0),
        ..Default::default()
    }
}

/// A client publishing a microphone, with `channels` created before its offer: the call
/// (connected, every channel open on both sides), the client's channel ids, the answer.
fn data_call(channels: &[(&str, RTCDataChannelInit)]) -> (Call, Vec<RTCDataChannelId>, String) {
    let now = Instant::now();
    let mut client = client(None, now);
    let track = sending_track(
        "stream".into(),
        "microphone".into(),
        "microphone".into(),
        RtpCodecKind::Audio,
        SSRC,
    );
    let senders = vec![client.add_track(track).unwrap()];
    let ids = channels
        .iter()
        .map(|(label, init)| {
            let dc = client
                .create_data_channel(label, Some(init.clone()))
                .unwrap();
            dc.id()
        })
        .collect();
    let offer = client_offer(&mut client, now, false);
    let dtls = DtlsSrtpConfig::generate().unwrap();
    let (server, answer) = ServerConnection::accept(&offer, params(&dtls), now).unwrap();
    client
        .set_remote_description(now, RTCSessionDescription::answer(answer.clone()).unwrap())
        .unwrap();
    let mut call = Call::new(client, senders, server, now);
    call.connect();
    call.run_until("every channel open", |c| {
        c.opened().len() == channels.len() && c.client_open().len() == channels.len()
    });
    (call, ids, answer)
}

impl Call {
    fn run_until(&mut self, what: &str, done: impl Fn(&Call) -> bool) {
        for _ in 0..400 {
            if done(self) {
                return;
            }
            self.run(1);
        }
        panic!("never: {what}; server events {:?}", self.channel_events());
    }

    fn channel_events(&self) -> Vec<&ChannelEvent> {
        self.events
            .iter()
            .filter_map(|e| match e {
                ConnectionEvent::Channel(c) => Some(c),
                _ => None,
            })
            .collect()
    }

    /// The server's `Opened` events: (id, label, ordered, reliability).
    fn opened(&self) -> Vec<(ChannelId, String, bool, Reliability)> {
        let opened = |e: &&ChannelEvent| match e {
            ChannelEvent::Opened {
                id,
                label,
                ordered,
                reliability,
                ..
            } => Some((*id, label.clone(), *ordered, *reliability)),
            _ => None,
        };
        self.channel_events().iter().filter_map(opened).collect()
    }

    /// The server's channel labelled `label`.
    fn server_channel(&self, label: &str) -> ChannelId {
        let found = self.opened().into_iter().find(|(_, l, ..)| l == label);
        found.expect("opened on the server").0
    }

    /// What the server's channels received: (id, binary, data).
    fn server_messages(&self) -> Vec<(ChannelId, bool, Bytes)> {
        let message = |e: &&ChannelEvent| match e {
            ChannelEvent::Message { id, binary, data } => Some((*id, *binary, data.clone())),
            _ => None,
        };
        self.channel_events().iter().filter_map(message).collect()
    }

    /// The client's channels that opened, in order.
    fn client_open(&self) -> Vec<RTCDataChannelId> {
        let open = |e: &RTCDataChannelEvent| match e {
            RTCDataChannelEvent::OnOpen(id) => Some(*id),
            _ => None,
        };
        self.client_channels.iter().filter_map(open).collect()
    }

    /// What the client's channel `id` received: (text?, length, first bytes), short
    /// enough to read in a failed assertion.
    fn client_messages(&self, id: RTCDataChannelId) -> Vec<(bool, usize, Vec<u8>)> {
        let on = |(i, m): &(RTCDataChannelId, RTCDataChannelMessage)| {
            let head = m.data.iter().take(16).copied().collect();
            (*i == id).then(|| (m.is_string, m.data.len(), head))
        };
        self.client_data.iter().filter_map(on).collect()
    }

    fn client_send(&mut self, id: RTCDataChannelId, text: bool, data: &[u8]) {
        let now = self.now;
        let mut dc = self.client.data_channel(id).expect("the client's channel");
        if text {
            dc.send_text(now, String::from_utf8(data.to_vec()).unwrap())
                .unwrap();
        } else {
            dc.send(now, BytesMut::from(data)).unwrap();
        }
    }
}

#[test]
fn the_answer_accepts_the_clients_data_channel_section_bundled() {
    let (_, _, answer) = data_call(&[("chat", reliable())]);
    for line in [
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "a=sctp-port:5000",
        "a=max-message-size:65536",
        "a=group:BUNDLE 0 1",
        "a=mid:1",
    ] {
        assert!(answer.contains(line), "{line} missing:\n{answer}");
    }
}

#[test]
fn channels_the_client_opens_carry_text_and_binary_both_ways() {
    // (label, the client's init, ordered, reliability the server reads)
    let cases = [
        ("chat", reliable(), true, Reliability::Reliable),
        ("moves", unreliable(), false, Reliability::MaxRetransmits(0)),
    ];
    let channels: Vec<(&str, RTCDataChannelInit)> = cases
        .iter()
        .map(|(l, init, ..)| (*l, init.clone()))
        .collect();
    let (mut call, client_ids, _) = data_call(&channels);
    for ((label, _, ordered, reliability), client_id) in cases.iter().zip(client_ids) {
        let id = call.server_channel(label);
        let opened = call.opened().into_iter().find(|o| o.0 == id).unwrap();
        assert_eq!((opened.2, opened.3), (*ordered, *reliability), "{label}");
        assert_eq!(
            id.0 % 2,
            0,
            "{label}: the client (DTLS client here) takes even ids"
        );

        call.client_send(client_id, true, b"hello");
        call.client_send(client_id, false, &[0, 1, 2, 255]);
        call.run_until("the client's messages", |c| {
            c.server_messages().iter().filter(|m| m.0 == id).count() == 2
        });
        let got: Vec<(bool, Bytes)> = call
            .server_messages()
            .into_iter()
            .filter(|m| m.0 == id)
            .map(|(_, binary, data)| (binary, data))
            .collect();
        let want = [
            (false, Bytes::from_static(b"hello")),
            (true, Bytes::from_static(&[0, 1, 2, 255])),
        ];
        assert_eq!(got, want, "{label}");

        let now = call.now;
        call.server.send_data(id, false, b"welcome", now).unwrap();
        call.server.send_data(id, true, &[9; 3000], now).unwrap();
        call.server.send_data(id, true, b"", now).unwrap();
        call.run_until("the server's messages", |c| {
            c.client_messages(client_id).len() == 3
        });
        let got = call.client_messages(client_id);
        let want = vec![
            (true, 7, b"welcome".to_vec()),
            (false, 3000, vec![9; 16]),
            (false, 0, vec![]),
        ];
        assert_eq!(got, want, "{label}");
    }
    assert_eq!(call.server.data_counters(), DataCounters::default());
}

#[test]
fn a_channel_the_server_opens_reaches_the_client() {
    let (mut call, _, _) = data_call(&[("chat", reliable())]);
    // (label, ordered, max retransmits)
    let cases = [("room", true, None), ("positions", false, Some(0))];
    for (label, ordered, max_retransmits) in cases {
        let now = call.now;
        let id = call
            .server
            .open_channel(label, ordered, max_retransmits, now)
            .unwrap();
        assert_eq!(id.0 % 2, 1, "{label}: the DTLS server takes odd ids");
        // Nothing goes before the client acknowledged it.
        assert_eq!(
            call.server.send_data(id, true, b"early", now),
            Err(DataError::UnknownChannel(id))
        );
        call.run_until("the client acknowledged", |c| {
            c.opened().iter().any(|o| o.0 == id)
        });
        let opened = call.opened().into_iter().find(|o| o.0 == id).unwrap();
        let reliability = max_retransmits.map_or(Reliability::Reliable, |n| {
            Reliability::MaxRetransmits(u32::from(n))
        });
        assert_eq!(opened, (id, label.to_owned(), ordered, reliability));
        let client_id = *call.client_open().last().unwrap();
        assert_eq!(call.client.data_channel(client_id).unwrap().label(), label);

        let now = call.now;
        call.server
            .send_data(id, false, b"from the server", now)
            .unwrap();
        call.run_until("the client got it", |c| {
            !c.client_messages(client_id).is_empty()
        });
        assert_eq!(
            call.client_messages(client_id),
            vec![(true, 15, b"from the server".to_vec())]
        );
        call.client_send(client_id, false, b"back");
        call.run_until("the server got it", |c| {
            c.server_messages().iter().any(|m| m.0 == id)
        });
    }
}

#[test]
fn sends_over_the_limits_are_refused_and_counted() {
    let (mut call, client_ids, _) = data_call(&[("chat", reliable())]);
    let id = call.server_channel("chat");
    let now = call.now;
    let big = vec![0u8; MAX_MESSAGE_SIZE + 1];
    assert_eq!(
        call.server.send_data(id, true, &big, now),
        Err(DataError::TooLarge {
            size: MAX_MESSAGE_SIZE + 1,
            limit: MAX_MESSAGE_SIZE
        })
    );
    call.server
        .send_data(id, true, &big[..MAX_MESSAGE_SIZE], now)
        .unwrap();
    let unknown = ChannelId(999);
    assert_eq!(
        call.server.send_data(unknown, true, b"x", now),
        Err(DataError::UnknownChannel(unknown))
    );

    // A client that reads nothing (every datagram of the server's lost): what waits is
    // bounded, and then sends are refused.
    call.deliver = false;
    let mut sent = 0;
    let refused = loop {
        let now = call.now;
        match call.server.send_data(id, true, &[1; 16 * 1024], now) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        call.run(1);
        assert!(sent <= MAX_BUFFERED / (16 * 1024), "{sent} sends accepted");
    };
    assert!(matches!(refused, DataError::BufferFull { .. }), "{refused}");
    let counters = call.server.data_counters();
    assert_eq!((counters.send_too_large, counters.send_buffer_full), (1, 1));

    // Delivered again, what waited drains and sends succeed again.
    call.deliver = true;
    call.run_until("the buffer drained", |c| {
        c.client_messages(client_ids[0]).len() > sent
    });
    let now = call.now;
    call.server.send_data(id, true, b"again", now).unwrap();
}

#[test]
fn garbage_application_data_is_dropped_and_the_channels_go_on() {
    let (mut call, client_ids, _) = data_call(&[("chat", reliable())]);
    let garbage: [&[u8]; 5] = [
        &[],
        &[0],
        &[0x13, 0x88, 0x13, 0x88, 0, 0, 0, 0],
        &[
            0x13, 0x88, 0x13, 0x88, 1, 2, 3, 4, 5, 6, 7, 8, 0, 3, 0, 4, 9, 9,
        ],
        &[0xff; 1500],
    ];
    for g in garbage {
        let now = call.now;
        let data = call.server.data.as_mut().unwrap();
        data.handle_data(BytesMut::from(g), now);
        call.server.pump_data(now);
    }
    call.client_send(client_ids[0], true, b"still here");
    call.run_until("the message after the garbage", |c| {
        !c.server_messages().is_empty()
    });
}

#[test]
fn closing_the_connection_closes_its_channels() {
    let (mut call, _, _) = data_call(&[("chat", reliable()), ("moves", unreliable())]);
    let now = call.now;
    call.server.close(now);
    while let Some(e) = call.server.poll_event() {
        call.events.push(e);
    }
    let closed = call
        .channel_events()
        .iter()
        .filter(|e| matches!(e, ChannelEvent::Closed { .. }))
        .count();
    assert_eq!(closed, 2);
    assert_eq!(
        call.server.send_data(ChannelId(0), true, b"x", now),
        Err(DataError::NotConnected)
    );
}

#[test]
fn a_subscriber_connection_offers_a_data_channel_section_and_opens_channels_on_it() {
    let now = Instant::now();
    let dtls = DtlsSrtpConfig::generate().unwrap();
    let mut server = ServerConnection::offering(params(&dtls), now).unwrap();
    server.offer_data_channels();
    let audio = OutTrack {
        mid: "0".into(),
        kind: "audio".into(),
        codec: chorus_core::Codec::Opus,
        ssrc: 0xabcd_0001,
        stream_id: "s".into(),
        track_id: "t".into(),
        idle: false,
    };
    let offer = server.reoffer(std::slice::from_ref(&audio), None, now);
    for line in [
        "a=group:BUNDLE data 0",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "a=setup:actpass",
    ] {
        assert!(offer.contains(line), "{line} missing:\n{offer}");
    }
    // The data section comes first and stays there when tracks change.
    let first = offer.find("m=").map(|i| &offer[i..i + 13]);
    assert_eq!(first, Some("m=application"));
    let mut client = client(None, now);
    let answer = client_answer(&mut client, offer, now);
    server.apply_answer(&answer, now).unwrap();
    assert!(server.has_data_channels());
    let mut call = Call::new(client, Vec::new(), server, now);
    call.connect();

    // rtc's client answers an ICE-lite offerer `passive`: the server is the DTLS client,
    // so the SCTP client too, and takes even stream ids.
    call.run_until("SCTP up", |c| {
        c.server.data.as_ref().is_some_and(|d| d.is_connected())
    });
    let now = call.now;
    let id = call.server.open_channel("room", true, None, now).unwrap();
    assert_eq!(id.0 % 2, 0, "the DTLS client's parity");
    call.run_until("the client acknowledged", |c| c.opened().len() == 1);
    let client_id = call.client_open()[0];
    let now = call.now;
    call.server
        .send_data(id, false, b"hi subscriber", now)
        .unwrap();
    call.run_until("the client got it", |c| {
        !c.client_messages(client_id).is_empty()
    });
    call.client_send(client_id, true, b"hi server");
    call.run_until("the server got it", |c| !c.server_messages().is_empty());
    assert_eq!(
        call.server_messages(),
        vec![(id, false, Bytes::from_static(b"hi server"))]
    );

    // A re-offer keeps the section first, and the channel goes on.
    let now = call.now;
    let video = OutTrack {
        mid: "1".into(),
        kind: "video".into(),
        codec: chorus_core::Codec::Vp8,
        ..audio.clone()
    };
    let reoffer = call.server.reoffer(&[audio, video], None, now);
    assert!(reoffer.contains("a=group:BUNDLE data 0 1"), "{reoffer}");
    let answer = client_answer(&mut call.client, reoffer, now);
    call.server.apply_answer(&answer, now).unwrap();
    call.server.send_data(id, true, b"after", now).unwrap();
    call.run_until("the message after the re-offer", |c| {
        c.client_messages(client_id).len() == 2
    });
}

#[test]
fn a_subscriber_connection_without_data_channels_offers_none() {
    let now = Instant::now();
    let dtls = DtlsSrtpConfig::generate().unwrap();
    let (mut server, offer) = ServerConnection::offer(&[], params(&dtls), now).unwrap();
    assert!(!offer.contains("m=application"), "{offer}");
    assert_eq!(
        server.open_channel("x", true, None, now),
        Err(DataError::NotConnected)
    );
}

#[test]
fn a_channel_closed_by_either_side_is_closed_on_both() {
    let (mut call, client_ids, _) = data_call(&[("chat", reliable()), ("moves", unreliable())]);
    let (chat, moves) = (call.server_channel("chat"), call.server_channel("moves"));
    let closed = |c: &Call, id| {
        c.channel_events()
            .iter()
            .any(|e| **e == ChannelEvent::Closed { id })
    };
    let client_closed = |c: &Call, id| {
        c.client_channels
            .iter()
            .any(|e| matches!(e, RTCDataChannelEvent::OnClose(i) if *i == id))
    };
    // The client closes one: its stream is reset, the server says so.
    call.client
        .data_channel(client_ids[0])
        .unwrap()
        .close()
        .unwrap();
    call.run_until("closed on the server", |c| closed(c, chat));
    let now = call.now;
    assert_eq!(
        call.server.send_data(chat, true, b"x", now),
        Err(DataError::UnknownChannel(chat))
    );
    // The server closes the other.
    call.server.close_channel(moves, now).unwrap();
    call.run(1);
    assert!(closed(&call, moves));
    call.run_until("closed on the client", |c| client_closed(c, client_ids[1]));
}

#[test]
fn a_data_channel_added_by_a_re_offer_works() {
    // The server as DTLS client, so SCTP client: it sends the INIT as soon as the
    // re-answer agrees on data channels. (The other way round, `rtc`'s client would have
    // to send it, and it only does when its DTLS handshake completes, not on a later
    // offer: its limitation, which browsers do not share.)
    let passive = |offer: String| offer.replace("a=setup:actpass", "a=setup:passive");
    let (mut call, _, answer) = publish(None, &[RtpCodecKind::Audio], passive);
    assert!(answer.contains("a=setup:active"), "{answer}");
    call.connect();
    assert!(!call.server.has_data_channels());
    let client_id = call
        .client
        .create_data_channel("late", Some(reliable()))
        .unwrap()
        .id();
    let now = call.now;
    let offer = passive(client_offer(&mut call.client, now, false));
    assert!(offer.contains("m=application"), "{offer}");
    let answer = call
        .server
        .reanswer(&offer, || credentials("unused"), now)
        .unwrap();
    assert!(answer.contains("a=sctp-port:5000"), "{answer}");
    call.client
        .set_remote_description(now, RTCSessionDescription::answer(answer).unwrap())
        .unwrap();
    call.run_until("the late channel open", |c| {
        c.opened().len() == 1 && c.client_open() == [client_id]
    });
    call.client_send(client_id, true, b"late but here");
    call.run_until("its message", |c| !c.server_messages().is_empty());
}
