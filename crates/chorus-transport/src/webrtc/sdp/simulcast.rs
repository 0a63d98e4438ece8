//! Simulcast in a client's offer (RFC 8853 with RFC 8851 rids): the layers it sends on
//! one m-section, each its own RTP stream told apart by the rid header extension
//! (RFC 8852). The answer takes up to [`MAX_LAYERS`] of them.

use rtc::sdp::description::common::Attribute;

use super::attributes::values;

/// The most layers Chorus takes from one m-section (what browsers send: q/h/f).
pub const MAX_LAYERS: usize = 3;

/// RFC 8852 RtpStreamId: which layer a packet belongs to.
pub const RID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
/// RFC 8852 RepairedRtpStreamId: the layer an RTX packet repairs.
pub const REPAIRED_RID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id";

/// The rids the client sends on an m-section, in the order of its `a=simulcast:send`
/// list, each one with an `a=rid:<id> send` line; at most [`MAX_LAYERS`]. Empty without
/// simulcast (`a=rid` lines alone describe no layers).
///
/// The list order is the layer order: Chromium lists the encodings as `sendEncodings`
/// gives them, and its default scaling for three of them (4, 2, 1) puts the lowest
/// resolution first, as applications do too. So index 0 is the lowest quality.
pub fn offered_rids(attrs: &[Attribute]) -> Vec<String> {
    let send_rids: Vec<&str> = values(attrs, "rid")
        .filter_map(|v| {
            let mut parts = v.split_whitespace();
            let id = parts.next()?;
            (parts.next()? == "send" && valid_rid(id)).then_some(id)
        })
        .collect();
    let Some(list) = values(attrs, "simulcast").find_map(send_list) else {
        return Vec::new();
    };
    let mut rids: Vec<String> = Vec::new();
    // `a;b` are layers, `a,b` alternatives for one layer (the first is taken), `~a` a
    // layer paused for now (taken: it may start later).
    for layer in list.split(';') {
        let Some(first) = layer.split(',').next() else {
            continue;
        };
        let id = first.trim().trim_start_matches('~');
        if send_rids.contains(&id) && !rids.iter().any(|r| r == id) && rids.len() < MAX_LAYERS {
            rids.push(id.to_owned());
        }
    }
    rids
}

/// `send <list>` (maybe after or before `recv <list>`): the send list.
fn send_list(value: &str) -> Option<&str> {
    let mut parts = value.split_whitespace();
    while let Some(dir) = parts.next() {
        let list = parts.next()?;
        if dir == "send" {
            return Some(list);
        }
    }
    None
}

/// RFC 8851 rid-id: letters, digits, `-` and `_`; at most 16 bytes, the most a one-byte
/// header extension carries (RFC 8285).
fn valid_rid(id: &str) -> bool {
    (1..=16).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(lines: &[&str]) -> Vec<Attribute> {
        lines
            .iter()
            .map(|l| {
                let (k, v) = l.split_once(':').unwrap();
                Attribute::new(k.to_owned(), Some(v.to_owned()))
            })
            .collect()
    }

    #[test]
    fn layers_follow_the_simulcast_list() {
        let cases: [(&str, &[&str], &[&str]); 7] = [
            (
                "chromium",
                &[
                    "rid:q send",
                    "rid:h send",
                    "rid:f send",
                    "simulcast:send q;h;f",
                ],
                &["q", "h", "f"],
            ),
            (
                "list order, not rid line order",
                &["rid:f send", "rid:q send", "simulcast:send q;f"],
                &["q", "f"],
            ),
            (
                "paused and alternatives",
                &[
                    "rid:a send",
                    "rid:b send",
                    "rid:c send",
                    "simulcast:send ~a;b,c",
                ],
                &["a", "b"],
            ),
            (
                "recv list first",
                &["rid:1 send", "rid:2 send", "simulcast:recv x send 1;2"],
                &["1", "2"],
            ),
            (
                "at most three",
                &[
                    "rid:a send",
                    "rid:b send",
                    "rid:c send",
                    "rid:d send",
                    "simulcast:send a;b;c;d",
                ],
                &["a", "b", "c"],
            ),
            ("rids without simulcast", &["rid:q send", "rid:h send"], &[]),
            (
                "recv rids and rids with no line",
                &["rid:q recv", "rid:h send", "simulcast:send q;h;f"],
                &["h"],
            ),
        ];
        for (name, lines, want) in cases {
            assert_eq!(offered_rids(&attrs(lines)), want, "{name}");
        }
    }
}
