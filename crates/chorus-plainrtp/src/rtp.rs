//! RTP framing (RFC 3550 §5.1): reading a packet from the network without trusting
//! it, and writing the 12-byte header of what Chorus sends.

/// The fixed header's length.
pub const HEADER_LEN: usize = 12;

/// What a packet's header says, and where its payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub marker: bool,
    pub payload_type: u8,
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: u32,
}

/// Why bytes are not an RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("shorter than an RTP header")]
    TooShort,
    #[error("RTP version is not 2")]
    Version,
    #[error("CSRC list or header extension runs past the end")]
    Truncated,
    #[error("padding longer than the payload")]
    Padding,
    #[error("an RTCP packet (payload type 72 to 79 with the marker bit)")]
    Rtcp,
}

/// Reads `data` as an RTP packet: its header and its payload (CSRCs, extension and
/// padding skipped).
pub fn parse(data: &[u8]) -> Result<(RtpHeader, &[u8]), RtpError> {
    if data.len() < HEADER_LEN {
        return Err(RtpError::TooShort);
    }
    if data[0] >> 6 != 2 {
        return Err(RtpError::Version);
    }
    // RTCP on the same port (rtcp-mux): its packet types 200..=207 read as a marker bit
    // and payload types 72..=79 (RFC 5761 §4).
    if (72..=79).contains(&(data[1] & 0x7f)) && data[1] & 0x80 != 0 {
        return Err(RtpError::Rtcp);
    }
    let padding = data[0] & 0x20 != 0;
    let extension = data[0] & 0x10 != 0;
    let csrcs = usize::from(data[0] & 0x0f);
    let header = RtpHeader {
        marker: data[1] & 0x80 != 0,
        payload_type: data[1] & 0x7f,
        seq: u16::from_be_bytes([data[2], data[3]]),
        timestamp: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
        ssrc: u32::from_be_bytes([data[8], data[9], data[10], data[11]]),
    };
    let mut start = HEADER_LEN + 4 * csrcs;
    if extension {
        let words = data.get(start + 2..start + 4).ok_or(RtpError::Truncated)?;
        start += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    if start > data.len() {
        return Err(RtpError::Truncated);
    }
    let mut end = data.len();
    if padding {
        let pad = usize::from(data[end - 1]);
        if pad == 0 || pad > end - start {
            return Err(RtpError::Padding);
        }
        end -= pad;
    }
    Ok((header, &data[start..end]))
}

/// Writes `header` (version 2, no CSRC, no extension, no padding) followed by
/// `payload` into `out`, replacing what it held.
pub fn write(header: &RtpHeader, payload: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.reserve(HEADER_LEN + payload.len());
    out.push(0x80);
    out.push(u8::from(header.marker) << 7 | (header.payload_type & 0x7f));
    out.extend_from_slice(&header.seq.to_be_bytes());
    out.extend_from_slice(&header.timestamp.to_be_bytes());
    out.extend_from_slice(&header.ssrc.to_be_bytes());
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_read_as_the_header_says() {
        let h = RtpHeader {
            marker: true,
            payload_type: 8,
            seq: 0xfffe,
            timestamp: 0xdead_beef,
            ssrc: 0x0102_0304,
        };
        let mut buf = Vec::new();
        write(&h, &[1, 2, 3], &mut buf);
        assert_eq!(
            buf,
            [
                0x80, 0x88, 0xff, 0xfe, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 1, 2, 3
            ]
        );
        assert_eq!(parse(&buf), Ok((h, &[1u8, 2, 3][..])));

        // (name, bytes, expected payload or error)
        let base = [0x80u8, 0x00, 0, 1, 0, 0, 0, 160, 0, 0, 0, 9];
        let with = |first: u8, tail: &[u8]| {
            let mut v = base.to_vec();
            v[0] = first;
            v.extend_from_slice(tail);
            v
        };
        type Case = (&'static str, Vec<u8>, Result<&'static [u8], RtpError>);
        let cases: Vec<Case> = vec![
            ("empty", vec![], Err(RtpError::TooShort)),
            ("11 bytes", base[..11].to_vec(), Err(RtpError::TooShort)),
            ("version 1", with(0x40, &[7]), Err(RtpError::Version)),
            ("header only", base.to_vec(), Ok(&[])),
            ("one CSRC", with(0x81, &[0, 0, 0, 5, 7]), Ok(&[7])),
            (
                "CSRC past the end",
                with(0x82, &[0, 0, 0, 5]),
                Err(RtpError::Truncated),
            ),
            (
                "extension of one word",
                with(0x90, &[0xbe, 0xde, 0, 1, 9, 9, 9, 9, 7]),
                Ok(&[7]),
            ),
            (
                "extension past the end",
                with(0x90, &[0xbe, 0xde, 0, 9, 7]),
                Err(RtpError::Truncated),
            ),
            (
                "extension header cut",
                with(0x90, &[0xbe]),
                Err(RtpError::Truncated),
            ),
            ("two bytes of padding", with(0xa0, &[7, 0, 2]), Ok(&[7])),
            (
                "padding of zero",
                with(0xa0, &[7, 0]),
                Err(RtpError::Padding),
            ),
            (
                "padding too long",
                with(0xa0, &[7, 9]),
                Err(RtpError::Padding),
            ),
        ];
        for (name, bytes, want) in cases {
            assert_eq!(parse(&bytes).map(|(_, p)| p), want, "{name}");
        }
        // An RTCP sender report (packet type 200) on the same port.
        let mut rtcp = base.to_vec();
        rtcp[1] = 200;
        assert_eq!(parse(&rtcp), Err(RtpError::Rtcp));
    }
}
