//! The tokio task around an [`Endpoint`]: its own UDP socket in, the room's mix in,
//! frames and its departure out to the room. It decides nothing.

use std::sync::Arc;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::counts::DropCounts;
use crate::endpoint::{Endpoint, EndpointStats, Gone, InboundFrame, MixAudio};

/// One frame of the room's mix, as the room hands it to the task.
#[derive(Debug, Clone)]
pub struct MixFrame {
    /// The mixer's frame number.
    pub seq: u64,
    pub audio: MixData,
}

#[derive(Debug, Clone)]
pub enum MixData {
    Pcm(Arc<[i16]>),
    Opus(Arc<[u8]>),
}

/// What the task tells its room.
#[derive(Debug)]
pub enum ToRoom {
    Frame(InboundFrame),
    Gone(Gone),
}

/// Runs the participant until the room drops its side of `mix` (it was removed or
/// the room closed), `to_room` says the room is gone (`false`), its RTP stops, or
/// `shutdown`. Each datagram not taken is added to `drops` at once. Returns what
/// happened to its packets.
pub async fn run(
    socket: UdpSocket,
    mut endpoint: Endpoint,
    mut mix: mpsc::Receiver<MixFrame>,
    mut to_room: impl FnMut(ToRoom) -> bool + Send,
    drops: Arc<DropCounts>,
    shutdown: CancellationToken,
) -> EndpointStats {
    let remote = endpoint.config().remote;
    let mut buf = vec![0u8; 2048];
    let mut out = Vec::with_capacity(1_500);
    let mut send_errors = 0u64;
    loop {
        let deadline = endpoint.poll_timeout();
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            frame = mix.recv() => {
                let Some(frame) = frame else { break };
                let audio = match &frame.audio {
                    MixData::Pcm(pcm) => MixAudio::Pcm(pcm),
                    MixData::Opus(packet) => MixAudio::Opus(packet),
                };
                if endpoint.send_mix(frame.seq, audio, &mut out)
                    && socket.send_to(&out, remote).await.is_err()
                {
                    send_errors += 1;
                }
            }
            got = socket.recv_from(&mut buf) => {
                // An ICMP error of an earlier send (nobody listens yet) reads as an
                // error here: nothing to do but go on.
                let Ok((n, from)) = got else { continue };
                if let Err(reason) = endpoint.handle_datagram(from, &buf[..n], Instant::now()) {
                    drops.add(reason);
                    continue;
                }
                let mut open = true;
                while let Some(frame) = endpoint.poll_frame() {
                    open &= to_room(ToRoom::Frame(frame));
                }
                if !open {
                    break;
                }
            }
            _ = tokio::time::sleep_until(deadline.into()) => {
                if let Some(gone) = endpoint.handle_timeout(Instant::now()) {
                    to_room(ToRoom::Gone(gone));
                    break;
                }
            }
        }
    }
    let stats = endpoint.stats();
    tracing::info!(
        %remote,
        received = stats.received,
        frames_in = stats.frames_in,
        packets_out = stats.packets_out,
        send_errors,
        dropped = ?crate::DropReason::ALL.map(|r| (r.as_str(), stats.dropped(r))),
        "plain-RTP participant stopped"
    );
    stats
}
