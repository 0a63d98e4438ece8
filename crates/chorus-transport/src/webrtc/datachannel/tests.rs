//! Two data channel ends back to back, without DTLS: the one as DTLS client and the
//! one as DTLS server, and what a peer may send that it should not.

use std::time::Duration;

use datachannel::message::message_channel_ack::DataChannelAck;
use datachannel::message::message_channel_open::ChannelType;

use super::*;

struct Pair {
    /// The DTLS client's end (the SCTP client), and the DTLS server's.
    client: DataChannels,
    server: DataChannels,
    now: Instant,
    /// Every SCTP packet the client sent, and the server, for the mutation test.
    sent: Vec<Bytes>,
    received: Vec<Bytes>,
}

/// Two ends, associated; the client's takes messages up to `client_limit`.
fn pair(client_limit: usize) -> Pair {
    let now = Instant::now();
    let limit = client_limit as u32;
    let mut pair = Pair {
        client: DataChannels::with_limit(DtlsRole::Client, Some(limit), client_limit),
        server: DataChannels::new(DtlsRole::Server, Some(limit)),
        now,
        sent: Vec::new(),
        received: Vec::new(),
    };
    pair.client.start(now);
    pair.run(20);
    assert!(pair.client.is_connected() && pair.server.is_connected());
    pair
}

impl Pair {
    /// Moves packets both ways and runs timers, `steps` times 10 ms.
    fn run(&mut self, steps: usize) {
        for _ in 0..steps {
            loop {
                let mut moved = false;
                while let Some(packets) = self.client.poll_transmit(self.now) {
                    for p in packets {
                        moved = true;
                        self.sent.push(p.clone());
                        self.server.handle_data(BytesMut::from(&p[..]), self.now);
                    }
                }
                while let Some(packets) = self.server.poll_transmit(self.now) {
                    for p in packets {
                        moved = true;
                        self.received.push(p.clone());
                        self.client.handle_data(BytesMut::from(&p[..]), self.now);
                    }
                }
                if !moved {
                    break;
                }
            }
            self.now += Duration::from_millis(10);
            self.client.handle_timeout(self.now);
            self.server.handle_timeout(self.now);
        }
    }

    /// Writes `data` on stream `id` of the client's end as it is, past every check of
    /// [`DataChannels::send`]: what a misbehaving peer could send.
    fn raw(&mut self, id: u16, ppi: Ppi, data: &[u8]) {
        let (_, association) = self.client.association.as_mut().unwrap();
        let mut stream = match association.stream(id) {
            Ok(s) => s,
            Err(_) => association.open_stream(id, ppi).unwrap(),
        };
        stream.write_with_ppi(self.now, data, ppi).unwrap();
        self.run(2);
    }
}

fn events(end: &mut DataChannels) -> Vec<ChannelEvent> {
    std::iter::from_fn(|| end.poll_event()).collect()
}

#[test]
fn either_end_opens_channels_of_its_parity_and_both_carry_messages() {
    let mut p = pair(MAX_MESSAGE_SIZE);
    let now = p.now;
    // (the end that opens, ordered, max retransmits, the parity of its ids)
    for (client_opens, ordered, max_retransmits, parity) in [
        (true, true, None, 0),
        (true, false, Some(0), 0),
        (false, true, None, 1),
        (false, false, Some(3), 1),
    ] {
        let (opener, other) = if client_opens {
            (&mut p.client, &mut p.server)
        } else {
            (&mut p.server, &mut p.client)
        };
        let id = opener.open("c", ordered, max_retransmits, now).unwrap();
        assert_eq!(id.0 % 2, parity);
        let _ = other;
        p.run(2);
        let reliability = max_retransmits.map_or(Reliability::Reliable, |n| {
            Reliability::MaxRetransmits(u32::from(n))
        });
        let opened = ChannelEvent::Opened {
            id,
            label: "c".into(),
            protocol: String::new(),
            ordered,
            reliability,
        };
        assert_eq!(events(&mut p.client), vec![opened.clone()]);
        assert_eq!(events(&mut p.server), vec![opened]);
        p.server.send(id, true, b"down", p.now).unwrap();
        p.client.send(id, false, b"up", p.now).unwrap();
        p.run(2);
        let message = |binary, data: &'static [u8]| ChannelEvent::Message {
            id,
            binary,
            data: Bytes::from_static(data),
        };
        assert_eq!(events(&mut p.client), vec![message(true, b"down")]);
        assert_eq!(events(&mut p.server), vec![message(false, b"up")]);
    }
    assert_eq!(p.server.counters(), DataCounters::default());
    let long = "l".repeat(70_000);
    assert!(matches!(
        p.server.open(&long, true, None, p.now),
        Err(DataError::TooLarge { size: 70_000, .. })
    ));
}

#[test]
fn what_a_peer_should_not_send_is_dropped_and_counted() {
    let mut p = pair(4 * MAX_MESSAGE_SIZE);
    let id = p.client.open("c", true, None, p.now).unwrap();
    p.run(2);
    events(&mut p.server);
    let open = |label: &[u8]| {
        let open = Dcep::DataChannelOpen(DataChannelOpen {
            channel_type: ChannelType::Reliable,
            priority: CHANNEL_PRIORITY_NORMAL,
            reliability_parameter: 0,
            label: label.to_vec(),
            protocol: Vec::new(),
        });
        open.marshal().unwrap().to_vec()
    };
    let ack = Dcep::DataChannelAck(DataChannelAck {}).marshal().unwrap();
    // (what, stream, PPID, payload, counted as too large, counted as invalid)
    let big = vec![7; MAX_MESSAGE_SIZE + 1];
    let cases = [
        ("over the limit", id.0, Ppi::Binary, big, 1, 0),
        (
            "on a stream never opened",
            6,
            Ppi::Binary,
            b"x".to_vec(),
            0,
            1,
        ),
        (
            "an open on the server's parity",
            7,
            Ppi::Dcep,
            open(b"odd"),
            0,
            1,
        ),
        (
            "an open of a channel already open",
            id.0,
            Ppi::Dcep,
            open(b"again"),
            0,
            1,
        ),
        ("an ack of nothing", 10, Ppi::Dcep, ack.to_vec(), 0, 1),
        (
            "DCEP that does not parse",
            12,
            Ppi::Dcep,
            vec![3, 0xff],
            0,
            1,
        ),
        (
            "a label that is not UTF-8",
            14,
            Ppi::Dcep,
            open(&[0xff, 0xfe]),
            0,
            1,
        ),
    ];
    for (what, stream, ppi, payload, too_large, invalid) in cases {
        let before = p.server.counters();
        p.raw(stream, ppi, &payload);
        let after = p.server.counters();
        let counted = (
            after.received_too_large - before.received_too_large,
            after.received_invalid - before.received_invalid,
        );
        assert_eq!(counted, (too_large, invalid), "{what}");
        assert_eq!(events(&mut p.server), vec![], "{what}");
    }
    // The channel still works.
    p.client.send(id, true, b"fine", p.now).unwrap();
    p.run(2);
    assert_eq!(events(&mut p.server).len(), 1);
}

/// CRC-32C (Castagnoli), as SCTP's checksum: so mutated packets get past it.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn mutated_and_garbage_packets_do_not_panic() {
    let mut p = pair(MAX_MESSAGE_SIZE);
    let id = p.client.open("c", false, Some(0), p.now).unwrap();
    p.run(2);
    for i in 0..20u8 {
        p.client.send(id, i % 2 == 0, &[i; 2000], p.now).unwrap();
    }
    p.run(5);
    // Both ends' packets: INIT, INIT ACK, COOKIE ECHO, DATA, SACK, FORWARD TSN…
    let valid = [p.sent.clone(), p.received.clone()].concat();
    assert!(valid.len() > 10);
    // The checksum below is SCTP's: a packet's own comes out again.
    let mut copy = valid[0].to_vec();
    copy[8..12].fill(0);
    assert_eq!(crc32c(&copy).to_le_bytes(), valid[0][8..12]);
    // xorshift: the same mutations every run.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..3000 {
        let mut packet = valid[next() as usize % valid.len()].to_vec();
        match next() % 4 {
            0 => packet.truncate(next() as usize % packet.len()),
            1 => packet.extend((0..next() % 64).map(|_| next() as u8)),
            _ => {
                for _ in 0..1 + next() % 4 {
                    let at = next() as usize % packet.len();
                    packet[at] = next() as u8;
                }
            }
        }
        // Most get a checksum that holds, to reach the chunk parsers.
        if round % 8 != 0 && packet.len() >= 12 {
            packet[8..12].fill(0);
            let sum = crc32c(&packet);
            packet[8..12].copy_from_slice(&sum.to_le_bytes());
        }
        p.server.handle_data(BytesMut::from(&packet[..]), p.now);
        p.client.handle_data(BytesMut::from(&packet[..]), p.now);
        if round % 100 == 0 {
            p.run(1);
        }
    }
    p.run(50);
}

#[test]
fn a_second_association_is_refused() {
    let mut p = pair(MAX_MESSAGE_SIZE);
    let mut other = DataChannels::new(DtlsRole::Client, None);
    other.start(p.now);
    for _ in 0..5 {
        while let Some(packets) = other.poll_transmit(p.now) {
            for packet in packets {
                p.server.handle_data(BytesMut::from(&packet[..]), p.now);
            }
        }
        // The server answers nothing to it.
        assert!(p.server.poll_transmit(p.now).is_none());
        p.now += Duration::from_secs(1);
        other.handle_timeout(p.now);
    }
    assert!(!other.is_connected());
    // The first association goes on.
    let id = p.client.open("c", true, None, p.now).unwrap();
    p.run(2);
    assert_eq!(events(&mut p.server).len(), 1, "{id:?} opened");
}

#[test]
fn sacks_and_forward_tsns_claiming_tsns_the_peer_cannot_are_refused() {
    use guard::WINDOW;
    let mut p = pair(MAX_MESSAGE_SIZE);
    let id = p.server.open("c", false, Some(0), p.now).unwrap();
    p.run(2);
    p.server.send(id, true, b"x", p.now).unwrap();
    p.run(2);
    let (sent, acked) = (p.server.guard.sent.unwrap(), p.server.guard.acked.unwrap());
    // A packet of the client's own association (its ports and verification tag), with
    // `chunk` and a checksum that holds: what a misbehaving client can send.
    let header = p.sent.last().unwrap()[..12].to_vec();
    let packet = |chunk: Vec<u8>| {
        let mut packet = header.clone();
        packet.extend(chunk);
        packet[8..12].fill(0);
        let sum = crc32c(&packet);
        packet[8..12].copy_from_slice(&sum.to_le_bytes());
        BytesMut::from(&packet[..])
    };
    let forward_tsn = |to: u32| {
        let mut c = vec![192, 0, 0, 8];
        c.extend(to.to_be_bytes());
        c
    };
    let sack = |cum: u32, gaps: &[(u16, u16)]| {
        let len = 16 + 4 * gaps.len() as u16;
        let mut c = vec![3, 0];
        c.extend(len.to_be_bytes());
        c.extend(cum.to_be_bytes());
        c.extend(RECEIVE_WINDOW.to_be_bytes());
        c.extend((gaps.len() as u16).to_be_bytes());
        c.extend(0u16.to_be_bytes());
        for (start, end) in gaps {
            c.extend(start.to_be_bytes());
            c.extend(end.to_be_bytes());
        }
        c
    };
    let data = |tsn: u32| {
        // Unordered, on the channel's stream, one byte.
        let mut c = vec![0, 0x07, 0, 17];
        c.extend(tsn.to_be_bytes());
        c.extend(id.0.to_be_bytes());
        c.extend([0, 0, 0, 0, 0, 53, b'z']);
        c
    };
    // (what, the chunk, refused)
    let cases = [
        (
            "forward TSN half the space ahead",
            forward_tsn(acked.wrapping_add(i32::MAX as u32)),
            true,
        ),
        (
            "forward TSN past the window",
            forward_tsn(acked.wrapping_add(WINDOW + 1)),
            true,
        ),
        (
            "forward TSN to what was acknowledged",
            forward_tsn(acked),
            false,
        ),
        (
            "SACK of TSNs never sent",
            sack(sent.wrapping_add(1 << 30), &[]),
            true,
        ),
        (
            "SACK gap block past what was sent",
            sack(sent, &[(1, u16::MAX)]),
            true,
        ),
        (
            "SACK gap blocks out of order",
            sack(sent.wrapping_sub(9), &[(5, 6), (2, 3)]),
            true,
        ),
        (
            "SACK gap block ending before it starts",
            sack(sent.wrapping_sub(9), &[(5, 4)]),
            true,
        ),
        ("SACK of what was sent", sack(sent, &[]), false),
        (
            "a chunk longer than the packet",
            vec![3, 0, 0, 200, 0, 0, 0, 0],
            true,
        ),
        (
            "DATA past the window",
            data(acked.wrapping_add(WINDOW + 1)),
            true,
        ),
        ("DATA within it", data(acked.wrapping_add(2)), false),
        (
            "ERROR whose cause runs past it",
            vec![9, 0, 0, 8, 0, 1, 0, 200],
            true,
        ),
        (
            "ABORT whose cause is shorter than its header",
            vec![6, 0, 0, 8, 0, 1, 0, 2],
            true,
        ),
    ];
    for (what, chunk, refused) in cases {
        let before = p.server.counters().received_invalid;
        let started = std::time::Instant::now();
        p.server.handle_data(packet(chunk), p.now);
        let counted = p.server.counters().received_invalid - before;
        assert_eq!(counted, u64::from(refused), "{what}");
        assert!(started.elapsed() < Duration::from_millis(100), "{what}");
    }
    // The association is fine.
    p.server.send(id, true, b"y", p.now).unwrap();
    p.run(2);
    let got = events(&mut p.client);
    assert!(
        got.iter()
            .any(|e| matches!(e, ChannelEvent::Message { data, .. } if data == "y"))
    );
    // An ERROR whose cause fits is read (rtc-sctp then ends the association, as a peer
    // may have it do).
    let before = p.server.counters().received_invalid;
    p.server
        .handle_data(packet(vec![9, 0, 0, 8, 1, 0, 0, 4]), p.now);
    assert_eq!(p.server.counters().received_invalid, before);
}
