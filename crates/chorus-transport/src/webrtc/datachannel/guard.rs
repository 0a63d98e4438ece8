//! A check of what the peer's SCTP packets claim, before `rtc-sctp` reads them.
//!
//! `rtc-sctp` 0.21.1 walks TSN by TSN from where it is to what a SACK or a FORWARD TSN
//! says, trusting the number: a SACK acknowledging 2^31 TSNs ahead, or a FORWARD TSN
//! moving that far, costs it seconds of CPU (and an overflow panic in debug builds); each
//! of a SACK's gap blocks up to 65536 more steps. The mutation test found it. Any client
//! can send such a packet on its own association, so without this check one packet would
//! stall the room. So:
//! - a SACK may acknowledge only TSNs this end sent, its gap blocks in order (RFC 9260
//!   §3.3.4) and within what it sent;
//! - a FORWARD TSN (RFC 3758), or a DATA chunk, may be at most [`WINDOW`] TSNs past
//!   what this end acknowledged last (further, `rtc-sctp`'s gap blocks overflow: an
//!   overflow panic in debug builds);
//! - the error causes of an ERROR or ABORT chunk must fit in it (`rtc-sctp` slices
//!   past the end otherwise: a panic in any build).
//!
//! Both ends' TSNs are read from the packets that pass: the initial TSNs in INIT and
//! INIT ACK, this end's DATA and SACKs. Anything that does not parse is refused too
//! (`rtc-sctp` would drop it anyway).

/// How far past this end's last acknowledgement a peer's TSN may be. A SACK's gap
/// blocks are 16-bit offsets from its cumulative ack, so no peer can use TSNs further
/// ahead and have them acknowledged; and it bounds `rtc-sctp`'s loop to this many steps.
pub const WINDOW: u32 = 1 << 15;

const DATA: u8 = 0;
const INIT: u8 = 1;
const INIT_ACK: u8 = 2;
const SACK: u8 = 3;
const ABORT: u8 = 6;
const ERROR: u8 = 9;
const FORWARD_TSN: u8 = 192;

#[derive(Debug, Default)]
pub(super) struct TsnGuard {
    /// The highest TSN this end sent (its initial TSN − 1 before any DATA).
    pub(super) sent: Option<u32>,
    /// This end's cumulative TSN ack in its last SACK (the peer's initial TSN − 1 before).
    pub(super) acked: Option<u32>,
}

impl TsnGuard {
    /// A packet this end sends.
    pub fn outbound(&mut self, packet: &[u8]) {
        for_each_chunk(packet, |kind, chunk| {
            match kind {
                INIT | INIT_ACK if self.sent.is_none() => {
                    self.sent = u32_at(chunk, 16).map(|tsn| tsn.wrapping_sub(1));
                }
                DATA => advance(&mut self.sent, u32_at(chunk, 4)),
                SACK => advance(&mut self.acked, u32_at(chunk, 4)),
                _ => {}
            }
            true
        });
    }

    /// Whether `rtc-sctp` may read a packet of the peer's.
    pub fn inbound(&mut self, packet: &[u8]) -> bool {
        for_each_chunk(packet, |kind, chunk| match kind {
            INIT | INIT_ACK => {
                if self.acked.is_none() {
                    self.acked = u32_at(chunk, 16).map(|tsn| tsn.wrapping_sub(1));
                }
                true
            }
            SACK => self.sent.is_some_and(|sent| sack_fits(chunk, sent)),
            DATA | FORWARD_TSN => match (self.acked, u32_at(chunk, 4)) {
                (Some(acked), Some(tsn)) => !after(tsn, acked) || tsn.wrapping_sub(acked) <= WINDOW,
                _ => false,
            },
            ABORT | ERROR => causes_fit(chunk),
            _ => true,
        })
    }
}

/// A SACK (RFC 9260 §3.3.4) acknowledging nothing past `sent`, its gap blocks in order.
fn sack_fits(chunk: &[u8], sent: u32) -> bool {
    let (Some(cum), Some(gaps)) = (u32_at(chunk, 4), u16_at(chunk, 12)) else {
        return false;
    };
    if after(cum, sent) {
        return false;
    }
    let room = sent.wrapping_sub(cum);
    let mut last_end = 0u16;
    (0..usize::from(gaps)).all(|i| {
        let (Some(start), Some(end)) = (u16_at(chunk, 16 + 4 * i), u16_at(chunk, 18 + 4 * i))
        else {
            return false;
        };
        let fits = start > last_end && start <= end && u32::from(end) <= room;
        last_end = end;
        fits
    })
}

/// The error causes of an ERROR or ABORT chunk (RFC 9260 §3.3.10), walked as `rtc-sctp`
/// walks them: each at least its 4-byte header and within the chunk.
fn causes_fit(chunk: &[u8]) -> bool {
    let mut offset = 4;
    while offset + 4 <= chunk.len() {
        match u16_at(chunk, offset + 2).map(usize::from) {
            Some(len) if len >= 4 && offset + len <= chunk.len() => offset += len,
            _ => return false,
        }
    }
    true
}

/// Calls `f` with each chunk's type and bytes (header included, padding not); false if
/// `f` said so or the chunks do not parse.
fn for_each_chunk(packet: &[u8], mut f: impl FnMut(u8, &[u8]) -> bool) -> bool {
    // The common header: ports, verification tag, checksum.
    let mut rest = match packet.get(12..) {
        Some(rest) => rest,
        None => return false,
    };
    while !rest.is_empty() {
        let Some(len) = u16_at(rest, 2).map(usize::from) else {
            return false;
        };
        let (Some(chunk), true) = (rest.get(..len), len >= 4) else {
            return false;
        };
        if !f(rest[0], chunk) {
            return false;
        }
        // Chunks are padded to 4 bytes; the last one's padding may be left out.
        rest = rest.get(len.next_multiple_of(4)..).unwrap_or_default();
    }
    true
}

/// Serial number arithmetic (RFC 1982): whether `a` comes after `b`.
fn after(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 1 << 31
}

fn advance(point: &mut Option<u32>, to: Option<u32>) {
    if let Some(to) = to
        && point.is_none_or(|p| after(to, p))
    {
        *point = Some(to);
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
