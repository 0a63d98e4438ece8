//! SCTP packets a client sends inside DTLS for data channels: Chorus's check of the TSNs
//! they claim (`guard.rs`) before `rtc-sctp` reads them, the association, and DCEP once
//! a channel opens.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use chorus_transport::dtls_srtp::DtlsRole;
use chorus_transport::webrtc::DataChannels;

use crate::frames;

/// The first byte picks the server's role (odd: DTLS client, so SCTP client, which
/// sends the INIT) and the client's `a=max-message-size`; the frames after it are
/// SCTP packets from the client, 10 ms apart.
pub fn datachannel(data: &[u8]) {
    let Some((&setup, rest)) = data.split_first() else {
        return;
    };
    let role = if setup & 1 == 1 {
        DtlsRole::Client
    } else {
        DtlsRole::Server
    };
    let max_message = match setup >> 1 {
        0 => None,
        n => Some(u32::from(n) * 1024),
    };
    let start = Instant::now();
    let mut channels = DataChannels::new(role, max_message);
    channels.start(start);
    while channels.poll_transmit(start).is_some() {}
    for (i, packet) in frames(rest).enumerate() {
        let now = start + Duration::from_millis(10 * i as u64);
        channels.handle_data(BytesMut::from(packet), now);
        channels.handle_timeout(now);
        while channels.poll_transmit(now).is_some() {}
        while channels.poll_event().is_some() {}
    }
    let _ = channels.counters();
}
