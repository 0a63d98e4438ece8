//! G.711 (ITU-T G.711, 1988): µ-law and A-law, 8-bit log-PCM at 8 kHz, what phone
//! networks carry. Each is a few shifts; written here from the standard's segment
//! tables rather than taken from a codec library.

/// µ-law's bias: added before the segment search so that every segment's step fits.
const ULAW_BIAS: i32 = 0x84;
/// Largest magnitude µ-law encodes before clipping (32767 minus the bias).
const ULAW_CLIP: i32 = 32635;

/// One linear 16-bit sample to µ-law (PCMU, RTP payload type 0).
pub fn ulaw_encode(sample: i16) -> u8 {
    let mut x = i32::from(sample);
    let sign = if x < 0 {
        x = -x;
        0x80
    } else {
        0
    };
    x = x.min(ULAW_CLIP) + ULAW_BIAS;
    // The segment is the position of the highest bit above bit 7 (x >= 0x84 here).
    let exponent = (31 - x.leading_zeros() as i32 - 7).clamp(0, 7);
    let mantissa = (x >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) | mantissa) as u8
}

/// One µ-law byte to linear 16-bit.
pub fn ulaw_decode(byte: u8) -> i16 {
    let u = !byte;
    let exponent = i32::from((u >> 4) & 0x07);
    let mantissa = i32::from(u & 0x0f);
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    if u & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// One linear 16-bit sample to A-law (PCMA, RTP payload type 8).
pub fn alaw_encode(sample: i16) -> u8 {
    // A-law works on 13 bits; even bits are inverted on the line (the 0x55 mask).
    let mut x = i32::from(sample) >> 3;
    let mask = if x >= 0 {
        0xd5
    } else {
        x = -x - 1;
        0x55
    };
    // Segment 0 and 1 share a step; above, each segment doubles it.
    let segment = match x {
        ..=0x1f => 0,
        _ => (32 - (x as u32).leading_zeros() as i32 - 5).min(8),
    };
    if segment >= 8 {
        return (0x7f ^ mask) as u8;
    }
    let step_shift = if segment < 2 { 1 } else { segment };
    let byte = (segment << 4) | ((x >> step_shift) & 0x0f);
    (byte ^ mask) as u8
}

/// One A-law byte to linear 16-bit.
pub fn alaw_decode(byte: u8) -> i16 {
    let a = i32::from(byte ^ 0x55);
    let segment = (a & 0x70) >> 4;
    let mut t = (a & 0x0f) << 4;
    t += if segment == 0 { 8 } else { 0x108 };
    if segment > 1 {
        t <<= segment - 1;
    }
    if a & 0x80 != 0 { t as i16 } else { -t as i16 }
}

/// Which G.711 law.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Law {
    Ulaw,
    Alaw,
}

impl Law {
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            Law::Ulaw => ulaw_encode(sample),
            Law::Alaw => alaw_encode(sample),
        }
    }

    pub fn decode(self, byte: u8) -> i16 {
        match self {
            Law::Ulaw => ulaw_decode(byte),
            Law::Alaw => alaw_decode(byte),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_of_the_standard() {
        // (law, byte, linear): G.711's decision and reconstruction values at the ends
        // and at zero (µ-law has a positive and a negative zero).
        let cases: [(Law, u8, i16); 8] = [
            (Law::Ulaw, 0xff, 0),
            (Law::Ulaw, 0x7f, 0),
            (Law::Ulaw, 0x80, 32124),
            (Law::Ulaw, 0x00, -32124),
            (Law::Alaw, 0xd5, 8),
            (Law::Alaw, 0x55, -8),
            (Law::Alaw, 0xaa, 32256),
            (Law::Alaw, 0x2a, -32256),
        ];
        for (law, byte, linear) in cases {
            assert_eq!(law.decode(byte), linear, "{law:?} decode {byte:#04x}");
        }
        // Silence and full scale encode to the standard's codes.
        let encoded: [(Law, i16, u8); 6] = [
            (Law::Ulaw, 0, 0xff),
            (Law::Ulaw, i16::MAX, 0x80),
            (Law::Ulaw, i16::MIN, 0x00),
            (Law::Alaw, 0, 0xd5),
            (Law::Alaw, i16::MAX, 0xaa),
            (Law::Alaw, i16::MIN, 0x2a),
        ];
        for (law, linear, byte) in encoded {
            assert_eq!(law.encode(linear), byte, "{law:?} encode {linear}");
        }
    }

    #[test]
    fn every_code_survives_a_round_trip() {
        for law in [Law::Ulaw, Law::Alaw] {
            for byte in 0..=255u8 {
                let back = law.encode(law.decode(byte));
                // µ-law's negative zero comes back as positive zero.
                let same = back == byte || (law == Law::Ulaw && byte == 0x7f && back == 0xff);
                assert!(same, "{law:?} {byte:#04x} -> {back:#04x}");
            }
        }
    }

    #[test]
    fn round_trip_error_stays_within_the_segment_step() {
        for law in [Law::Ulaw, Law::Alaw] {
            for s in (i16::MIN..=i16::MAX).step_by(7) {
                let back = i32::from(law.decode(law.encode(s)));
                let err = (back - i32::from(s)).abs();
                // Logarithmic: the step is about 1/16 of the magnitude's segment (at
                // most 1024 in the top segment, 4 to 16 at the bottom).
                let bound = (i32::from(s).abs() / 16).max(16) + 8;
                assert!(
                    err <= bound,
                    "{law:?} {s} -> {back} (error {err} > {bound})"
                );
            }
        }
    }
}
