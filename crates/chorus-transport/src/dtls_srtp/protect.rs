//! The sending half of SRTP, in place: the caller writes header and payload into one
//! buffer, [`SrtpSender::protect_rtp`] encrypts the payload where it lies and appends the
//! tag. No allocation (given capacity for the tag) and no header parse: the caller knows
//! the header's length, SSRC and sequence number because it just wrote them.
//!
//! Both profiles Chorus negotiates: AEAD_AES_128_GCM (RFC 7714) and
//! AES_CM_128_HMAC_SHA1_80 (RFC 3711), on `rtc-crypto`'s keyed primitives. Session keys
//! come from the master key and salt by the AES-CM PRF (RFC 3711 §4.3) with a key
//! derivation rate of 0, as RFC 5764 requires: one derivation per association.
//!
//! The buffer is a [`BytesMut`]: a caller that writes packets into one reused arena
//! protects each in place, then `split()`s it off and hands it on (a transmit queue takes
//! `BytesMut`) without a copy, while the arena keeps its spare capacity.
//!
//! SRTCP and the receiving side stay with `rtc-srtp`'s `Context`.

use bytes::BytesMut;
use rtc::crypto::{
    AeadAlgorithm, AeadCipher, BlockCipherAlgorithm, CryptoError, HmacAlgorithm, Mac, RTCCrypto,
    StreamCipher, StreamCipherAlgorithm,
};
use thiserror::Error;

use super::SrtpProfile;

#[cfg(test)]
mod tests;

/// The most bytes [`SrtpSender::protect_rtp`] appends, whatever the profile (GCM's tag).
pub const MAX_RTP_OVERHEAD: usize = GCM_TAG;

const GCM_TAG: usize = 16;
/// HMAC-SHA1 truncated to 80 bits (RFC 3711 §5.2).
const HMAC_SHA1_80_TAG: usize = 10;
const SHA1_LEN: usize = 20;
const MASTER_KEY_LEN: usize = 16;
const FIXED_HEADER: usize = 12;

/// RFC 3711 §4.3.1 labels, SRTP side only.
const LABEL_ENCRYPTION: u8 = 0x00;
const LABEL_AUTHENTICATION: u8 = 0x01;
const LABEL_SALT: u8 = 0x02;

/// Beyond this index the keys are spent (RFC 3711 §9.2: 2^48 packets per master key).
const MAX_INDEX: u64 = (1 << 48) - 1;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ProtectError {
    #[error("SRTP master key is {got} bytes, {profile:?} needs {expected}")]
    KeyLength {
        profile: SrtpProfile,
        expected: usize,
        got: usize,
    },
    #[error("SRTP master salt is {got} bytes, {profile:?} needs {expected}")]
    SaltLength {
        profile: SrtpProfile,
        expected: usize,
        got: usize,
    },
    #[error("RTP header of {header_len} bytes in a packet of {len}")]
    BadHeader { header_len: usize, len: usize },
    #[error("SSRC {0:#010x} sent 2^48 packets under one key: the association must rekey")]
    Exhausted(u32),
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
}

/// The per-packet primitive, keyed once.
enum Seal {
    /// RFC 7714: payload encrypted, header authenticated as AAD, 16-byte tag.
    Gcm(Box<dyn AeadCipher>),
    /// RFC 3711: AES-CM over the payload, then HMAC-SHA1 over header, payload and ROC.
    CmHmac {
        cipher: Box<dyn StreamCipher>,
        mac: Box<dyn Mac>,
    },
}

pub struct SrtpSender {
    seal: Seal,
    /// Session salt; GCM uses the first 12 bytes.
    salt: [u8; 14],
    streams: Streams,
}

impl SrtpSender {
    pub fn new(
        profile: SrtpProfile,
        master_key: &[u8],
        master_salt: &[u8],
        crypto: &dyn RTCCrypto,
    ) -> Result<Self, ProtectError> {
        let salt_len = salt_len(profile);
        if master_key.len() != MASTER_KEY_LEN {
            return Err(ProtectError::KeyLength {
                profile,
                expected: MASTER_KEY_LEN,
                got: master_key.len(),
            });
        }
        if master_salt.len() != salt_len {
            return Err(ProtectError::SaltLength {
                profile,
                expected: salt_len,
                got: master_salt.len(),
            });
        }
        let derive = |label, out: &mut [u8]| prf(crypto, master_key, master_salt, label, out);
        let mut key = [0u8; MASTER_KEY_LEN];
        derive(LABEL_ENCRYPTION, &mut key)?;
        let mut salt = [0u8; 14];
        derive(LABEL_SALT, &mut salt[..salt_len])?;
        let seal = match profile {
            SrtpProfile::AeadAes128Gcm => {
                Seal::Gcm(crypto.new_aead(AeadAlgorithm::Aes128Gcm, &key)?)
            }
            SrtpProfile::Aes128CmHmacSha1_80 => {
                let mut auth = [0u8; SHA1_LEN];
                derive(LABEL_AUTHENTICATION, &mut auth)?;
                let mac = crypto.new_hmac(HmacAlgorithm::Sha1, &auth);
                auth.fill(0);
                Seal::CmHmac {
                    cipher: crypto.new_stream_cipher(StreamCipherAlgorithm::Aes128Ctr, &key)?,
                    mac: mac?,
                }
            }
        };
        // The keyed primitives hold their own copy; this one need not outlive them.
        key.fill(0);
        Ok(Self {
            seal,
            salt,
            streams: Streams::default(),
        })
    }

    /// How many bytes [`Self::protect_rtp`] appends: reserve them with the packet.
    pub fn rtp_overhead(&self) -> usize {
        match self.seal {
            Seal::Gcm(_) => GCM_TAG,
            Seal::CmHmac { .. } => HMAC_SHA1_80_TAG,
        }
    }

    /// Protects the RTP packet `buf[..]` (a header of `header_len` bytes, then the
    /// payload) in place and appends the tag. `ssrc` and `seq` must be the header's. The
    /// rollover counter is tracked here per SSRC: a resent packet (NACK) gets the one it
    /// was first sent under.
    pub fn protect_rtp(
        &mut self,
        buf: &mut BytesMut,
        header_len: usize,
        ssrc: u32,
        seq: u16,
    ) -> Result<(), ProtectError> {
        if header_len < FIXED_HEADER || header_len > buf.len() {
            return Err(ProtectError::BadHeader {
                header_len,
                len: buf.len(),
            });
        }
        let (slot, index) = self.streams.index(ssrc, seq)?;
        let roc = (index >> 16) as u32;
        match &mut self.seal {
            Seal::Gcm(aead) => {
                // RFC 7714 §8.1: 00 00 | SSRC | ROC | SEQ, XOR the salt.
                let mut nonce = [0u8; 12];
                nonce[2..6].copy_from_slice(&ssrc.to_be_bytes());
                nonce[6..10].copy_from_slice(&roc.to_be_bytes());
                nonce[10..12].copy_from_slice(&seq.to_be_bytes());
                xor(&mut nonce, &self.salt[..12]);
                let (header, payload) = buf.split_at_mut(header_len);
                let mut tag = [0u8; GCM_TAG];
                aead.seal_in_place(&nonce, header, payload, &mut tag)?;
                buf.extend_from_slice(&tag);
            }
            Seal::CmHmac { cipher, mac } => {
                // RFC 3711 §4.1.1: salt·2^16 XOR SSRC·2^64 XOR index·2^16.
                let mut iv = [0u8; 16];
                iv[4..8].copy_from_slice(&ssrc.to_be_bytes());
                iv[8..12].copy_from_slice(&roc.to_be_bytes());
                iv[12..14].copy_from_slice(&seq.to_be_bytes());
                xor(&mut iv, &self.salt);
                cipher.apply_keystream(&iv, &mut buf[header_len..])?;
                // RFC 3711 §4.2: the tag covers the packet and the ROC, which is not sent.
                let mut tag = [0u8; SHA1_LEN];
                mac.sign(&[&buf[..], &roc.to_be_bytes()], &mut tag)?;
                buf.extend_from_slice(&tag[..HMAC_SHA1_80_TAG]);
            }
        }
        // Only a packet that went out moves the stream on.
        self.streams.sent(slot, index);
        Ok(())
    }
}

fn salt_len(profile: SrtpProfile) -> usize {
    match profile {
        SrtpProfile::AeadAes128Gcm => 12,
        SrtpProfile::Aes128CmHmacSha1_80 => 14,
    }
}

fn xor(into: &mut [u8], with: &[u8]) {
    into.iter_mut().zip(with).for_each(|(a, b)| *a ^= b);
}

/// The AES-CM PRF of RFC 3711 §4.3.1/§4.3.3 with index DIV kdr = 0: blocks of
/// AES(master key, (master salt XOR label at byte 7) | block counter). RFC 7714's 12-byte
/// salt takes the same place as the 14-byte one (byte 0 on), as `rtc-srtp` and the
/// browsers do.
fn prf(
    crypto: &dyn RTCCrypto,
    master_key: &[u8],
    master_salt: &[u8],
    label: u8,
    out: &mut [u8],
) -> Result<(), ProtectError> {
    let mut input = [0u8; 16];
    input[..master_salt.len()].copy_from_slice(master_salt);
    input[7] ^= label;
    for (i, chunk) in out.chunks_mut(16).enumerate() {
        let mut block = input;
        block[14..].copy_from_slice(&(i as u16).to_be_bytes());
        crypto.block_encrypt(BlockCipherAlgorithm::Aes128, master_key, &mut block)?;
        chunk.copy_from_slice(&block[..chunk.len()]);
    }
    Ok(())
}

/// The highest packet index sent per SSRC. A connection sends a handful of SSRCs, so a
/// linear scan of a short Vec beats hashing; the last one used is checked first, since
/// a video frame's packets come in a run.
#[derive(Default)]
struct Streams {
    ssrcs: Vec<u32>,
    highest: Vec<u64>,
    last: usize,
}

impl Streams {
    /// The index `seq` stands for on `ssrc` (RFC 3711 §3.3.1 and Appendix A: the one of
    /// ROC-1, ROC, ROC+1 nearest the highest index sent), and the stream's slot.
    fn index(&mut self, ssrc: u32, seq: u16) -> Result<(usize, u64), ProtectError> {
        let slot = if self.ssrcs.get(self.last) == Some(&ssrc) {
            self.last
        } else if let Some(slot) = self.ssrcs.iter().position(|&s| s == ssrc) {
            slot
        } else {
            // A new stream starts at ROC 0 with its first sequence number.
            self.ssrcs.push(ssrc);
            self.highest.push(u64::from(seq));
            self.ssrcs.len() - 1
        };
        self.last = slot;
        let highest = self.highest[slot];
        let (roc, s_l, seq16) = (highest >> 16, highest & 0xffff, u64::from(seq));
        let roc = if s_l < 0x8000 {
            // A seq far above the highest is a packet from before the last wrap; at ROC 0
            // there was none, so it is a jump forward instead.
            if seq16 > s_l + 0x8000 {
                roc.saturating_sub(1)
            } else {
                roc
            }
        } else if s_l - 0x8000 > seq16 {
            roc + 1
        } else {
            roc
        };
        let index = (roc << 16) | seq16;
        if index > MAX_INDEX {
            return Err(ProtectError::Exhausted(ssrc));
        }
        Ok((slot, index))
    }

    /// Records a packet sent; a resend of an older one leaves the highest where it is.
    fn sent(&mut self, slot: usize, index: u64) {
        let highest = &mut self.highest[slot];
        *highest = (*highest).max(index);
    }
}

/// The header length, SSRC and sequence number of an RTP packet, for callers that hold
/// only the bytes (RFC 3550 §5.1, §5.3.1): fixed header, CSRCs, extension.
pub fn rtp_header(packet: &[u8]) -> Result<(usize, u32, u16), ProtectError> {
    let bad = |header_len| ProtectError::BadHeader {
        header_len,
        len: packet.len(),
    };
    if packet.len() < FIXED_HEADER {
        return Err(bad(FIXED_HEADER));
    }
    let mut len = FIXED_HEADER + 4 * usize::from(packet[0] & 0x0f);
    if packet[0] & 0x10 != 0 {
        let words = packet.get(len + 2..len + 4).ok_or_else(|| bad(len + 4))?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    if len > packet.len() {
        return Err(bad(len));
    }
    let seq = u16::from_be_bytes([packet[2], packet[3]]);
    let ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
    Ok((len, ssrc, seq))
}
