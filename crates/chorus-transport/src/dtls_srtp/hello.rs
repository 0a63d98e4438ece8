//! The client's hello, as the DTLS server receives it, read for the SRTP profiles its
//! `use_srtp` extension offers (RFC 5764 §4.1.1) before the handshake is configured.
//! A hello may arrive in fragments, over several records and datagrams: Chromium's,
//! with its post-quantum key share, exceeds one datagram, and it orders its extensions
//! at random, so `use_srtp` may be in any fragment. Bounds-checked throughout: the
//! bytes are the network's.

use std::collections::BTreeMap;

use dtls::extension::extension_use_srtp::SrtpProtectionProfile;

/// Largest hello assembled; anything bigger is not worth holding the handshake for.
const MAX_HELLO: usize = 16 * 1024;

/// What the datagrams so far say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hello {
    /// No whole ClientHello yet.
    Incomplete,
    /// The profiles the whole hello offers, in the client's order (empty: none, or a
    /// hello that does not parse).
    Offers(Vec<SrtpProtectionProfile>),
}

/// The first ClientHello's fragments, put together.
#[derive(Debug, Default)]
pub struct HelloAssembly {
    /// (message sequence, length) of the hello being assembled.
    message: Option<(u16, usize)>,
    body: Vec<u8>,
    /// Fragments received: offset → length.
    fragments: BTreeMap<usize, usize>,
}

impl HelloAssembly {
    /// Takes the ClientHello fragments of one datagram.
    pub fn add(&mut self, datagram: &[u8]) -> Hello {
        for record in records(datagram) {
            if let Some(fragment) = hello_fragment(record) {
                self.take(fragment);
            }
        }
        match self.message {
            Some((_, len)) if self.covered() >= len => {
                Hello::Offers(srtp_profiles(&self.body).unwrap_or_default())
            }
            Some((_, len)) if len > MAX_HELLO => Hello::Offers(Vec::new()),
            _ => Hello::Incomplete,
        }
    }

    fn take(&mut self, f: Fragment<'_>) {
        let (seq, len) = *self.message.get_or_insert((f.message_seq, f.length));
        if (seq, len) != (f.message_seq, f.length) || len > MAX_HELLO {
            return;
        }
        let Some(end) = f.offset.checked_add(f.data.len()).filter(|e| *e <= len) else {
            return;
        };
        self.body.resize(len, 0);
        self.body[f.offset..end].copy_from_slice(f.data);
        self.fragments.insert(f.offset, f.data.len());
    }

    /// Bytes of the hello received, counting overlaps once.
    fn covered(&self) -> usize {
        let mut reached = 0;
        let mut covered = 0;
        for (&offset, &len) in &self.fragments {
            let end = offset + len;
            if end > reached {
                covered += end - offset.max(reached);
                reached = end;
            }
        }
        covered
    }
}

/// One fragment of a handshake message of type ClientHello.
struct Fragment<'a> {
    message_seq: u16,
    length: usize,
    offset: usize,
    data: &'a [u8],
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

fn u24_at(b: &[u8], i: usize) -> Option<usize> {
    Some(usize::from(*b.get(i)?) << 16 | usize::from(u16_at(b, i + 1)?))
}

/// The handshake records of a datagram (content type 22), each's body; stops at the
/// first record that does not fit.
fn records(mut datagram: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        loop {
            // Type, version, epoch, sequence number, length.
            let len = usize::from(u16_at(datagram, 11)?);
            let body = datagram.get(13..13 + len)?;
            let kind = datagram[0];
            datagram = &datagram[13 + len..];
            if kind == 22 {
                return Some(body);
            }
        }
    })
}

/// The record's ClientHello fragment, if it carries one (one handshake message per
/// record, as DTLS stacks send a hello).
fn hello_fragment(record: &[u8]) -> Option<Fragment<'_>> {
    // Type 1 (ClientHello), length, message sequence, fragment offset and length.
    if *record.first()? != 1 {
        return None;
    }
    let frag_len = u24_at(record, 9)?;
    Some(Fragment {
        message_seq: u16_at(record, 4)?,
        length: u24_at(record, 1)?,
        offset: u24_at(record, 6)?,
        data: record.get(12..12 + frag_len)?,
    })
}

/// The `use_srtp` profiles of a whole ClientHello body; `None` if it does not parse.
fn srtp_profiles(hello: &[u8]) -> Option<Vec<SrtpProtectionProfile>> {
    let mut p = 2 + 32; // version, random
    p += 1 + usize::from(*hello.get(p)?); // session id
    p += 1 + usize::from(*hello.get(p)?); // cookie
    p += 2 + usize::from(u16_at(hello, p)?); // cipher suites
    p += 1 + usize::from(*hello.get(p)?); // compression methods
    let end = p + 2 + usize::from(u16_at(hello, p)?);
    p += 2;
    while p + 4 <= end {
        let (kind, len) = (u16_at(hello, p)?, usize::from(u16_at(hello, p + 2)?));
        let data = hello.get(p + 4..p + 4 + len)?;
        if kind == 0x000e {
            let n = usize::from(u16_at(data, 0)?);
            let list = data.get(2..2 + n)?;
            return Some(
                list.chunks_exact(2)
                    .map(|c| SrtpProtectionProfile::from(u16::from_be_bytes([c[0], c[1]])))
                    .collect(),
            );
        }
        p += 4 + len;
    }
    Some(Vec::new())
}

/// The profiles one datagram's whole ClientHello offers; `None` if it holds none.
#[cfg(test)]
pub fn client_hello_srtp_profiles(datagram: &[u8]) -> Option<Vec<SrtpProtectionProfile>> {
    match HelloAssembly::default().add(datagram) {
        Hello::Offers(offers) => Some(offers),
        Hello::Incomplete => None,
    }
}
