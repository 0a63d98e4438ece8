//! Just enough STUN parsing to route a packet: is it a binding request, and what
//! USERNAME does it carry. Never panics on any input. The two messages a client sends
//! to keep a path (for clients and tests) are `chorus-rtc-profile`'s, re-exported here.

pub use chorus_rtc_profile::ice::{binding_indication, binding_request};

const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const BINDING_REQUEST: u16 = 0x0001;
const ATTR_USERNAME: u16 = 0x0006;
const HEADER_LEN: usize = 20;

/// True if the first byte says STUN (RFC 7983 demultiplexing: 0..=3).
pub fn looks_like_stun(buf: &[u8]) -> bool {
    buf.len() >= HEADER_LEN && buf[0] < 4 && buf[4..8] == MAGIC_COOKIE
}

/// The local (server) ufrag from a binding request's `USERNAME` ("local:remote").
pub fn binding_request_local_ufrag(buf: &[u8]) -> Option<&str> {
    if !looks_like_stun(buf) {
        return None;
    }
    let msg_type = u16::from_be_bytes([buf[0], buf[1]]);
    if msg_type != BINDING_REQUEST {
        return None;
    }
    let body_len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
    let body = buf.get(HEADER_LEN..HEADER_LEN + body_len)?;
    let mut at = 0;
    while at + 4 <= body.len() {
        let typ = u16::from_be_bytes([body[at], body[at + 1]]);
        let len = u16::from_be_bytes([body[at + 2], body[at + 3]]) as usize;
        let value = body.get(at + 4..at + 4 + len)?;
        if typ == ATTR_USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            return username.split(':').next().filter(|u| !u.is_empty());
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding_request(attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (typ, value) in attrs {
            body.extend_from_slice(&typ.to_be_bytes());
            body.extend_from_slice(&(value.len() as u16).to_be_bytes());
            body.extend_from_slice(value);
            while body.len() % 4 != 0 {
                body.push(0);
            }
        }
        let mut msg = vec![0x00, 0x01];
        msg.extend_from_slice(&(body.len() as u16).to_be_bytes());
        msg.extend_from_slice(&MAGIC_COOKIE);
        msg.extend_from_slice(&[7; 12]);
        msg.extend_from_slice(&body);
        msg
    }

    #[test]
    fn username_table() {
        let priority: &[u8] = &[0, 0, 0, 1];
        let cases: Vec<(Vec<u8>, Option<&str>)> = vec![
            (binding_request(&[(ATTR_USERNAME, b"srv:cli")]), Some("srv")),
            (
                binding_request(&[(0x0024, priority), (ATTR_USERNAME, b"abcd:efgh")]),
                Some("abcd"),
            ),
            (binding_request(&[(ATTR_USERNAME, b"odd:x")]), Some("odd")),
            (binding_request(&[(0x0024, priority)]), None), // no USERNAME
            (binding_request(&[(ATTR_USERNAME, b":cli")]), None), // empty local part
            (binding_request(&[(ATTR_USERNAME, &[0xff, 0xfe])]), None), // not UTF-8
            (vec![0x80, 0x60, 0, 0], None),                 // RTP
            (
                vec![
                    22, 254, 253, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                ],
                None,
            ), // DTLS
        ];
        for (msg, want) in cases {
            assert_eq!(binding_request_local_ufrag(&msg), want, "{msg:?}");
        }
    }

    #[test]
    fn truncated_and_garbage_input_never_panics() {
        let good = binding_request(&[(ATTR_USERNAME, b"srv:cli")]);
        for cut in 0..good.len() {
            let _ = binding_request_local_ufrag(&good[..cut]);
        }
        // A length field that claims more than there is.
        let mut lying = good.clone();
        lying[2] = 0xff;
        assert_eq!(binding_request_local_ufrag(&lying), None);
        let mut attr_lying = good;
        attr_lying[HEADER_LEN + 2] = 0xff;
        assert_eq!(binding_request_local_ufrag(&attr_lying), None);
    }
}
