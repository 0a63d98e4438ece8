//! 8 kHz ↔ 48 kHz, the phone's rate and the mixer's: a factor of 6 each way, through
//! one windowed-sinc low-pass (cut at 3.7 kHz, below the phone band's 4 kHz Nyquist)
//! that keeps the images of upsampling and the aliases of downsampling out. Each
//! direction keeps the last inputs across calls, so 20 ms frames join seamlessly.

/// The ratio between the mixer's rate and the phone's.
pub const FACTOR: usize = 6;
/// Filter length at 48 kHz (2 ms): a multiple of [`FACTOR`].
const TAPS: usize = 96;
const CUTOFF_HZ: f64 = 3_700.0;
const RATE_HZ: f64 = 48_000.0;

/// The low-pass, normalised to a gain of 1 at DC.
fn lowpass() -> [f32; TAPS] {
    let mut h = [0f64; TAPS];
    let fc = CUTOFF_HZ / RATE_HZ;
    let mid = (TAPS - 1) as f64 / 2.0;
    for (i, v) in h.iter_mut().enumerate() {
        let t = i as f64 - mid;
        let sinc = if t == 0.0 {
            2.0 * fc
        } else {
            (2.0 * std::f64::consts::PI * fc * t).sin() / (std::f64::consts::PI * t)
        };
        // Blackman window: about 74 dB of stop-band attenuation.
        let w = 2.0 * std::f64::consts::PI * i as f64 / (TAPS - 1) as f64;
        *v = sinc * (0.42 - 0.5 * w.cos() + 0.08 * (2.0 * w).cos());
    }
    let sum: f64 = h.iter().sum();
    h.map(|v| (v / sum) as f32)
}

fn to_i16(v: f32) -> i16 {
    v.round().clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16
}

/// 8 kHz to 48 kHz.
pub struct Upsampler {
    h: [f32; TAPS],
    /// The last `TAPS / FACTOR` input samples, oldest first.
    history: Vec<f32>,
}

impl Default for Upsampler {
    fn default() -> Self {
        Self {
            h: lowpass(),
            history: vec![0.0; TAPS / FACTOR],
        }
    }
}

impl Upsampler {
    /// Appends `FACTOR` output samples per input sample to `out`.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        let keep = self.history.len();
        let mut x = std::mem::take(&mut self.history);
        x.extend(input.iter().map(|&s| f32::from(s)));
        out.reserve(input.len() * FACTOR);
        // Output n (of this call) sits at zero-stuffed position (keep + i)·6 + p; only
        // the taps that land on input samples contribute (polyphase).
        for i in 0..input.len() {
            for p in 0..FACTOR {
                let mut acc = 0f32;
                let mut tap = p;
                let mut k = keep + i;
                while tap < TAPS {
                    acc += self.h[tap] * x[k];
                    tap += FACTOR;
                    if k == 0 {
                        break;
                    }
                    k -= 1;
                }
                out.push(to_i16(acc * FACTOR as f32));
            }
        }
        let from = x.len() - keep;
        x.drain(..from);
        self.history = x;
    }
}

/// 48 kHz to 8 kHz.
pub struct Downsampler {
    h: [f32; TAPS],
    /// The last `TAPS - 1` input samples, oldest first.
    history: Vec<f32>,
    /// Input samples to skip before the next output (when a call's length is not a
    /// multiple of [`FACTOR`]).
    phase: usize,
}

impl Default for Downsampler {
    fn default() -> Self {
        Self {
            h: lowpass(),
            history: vec![0.0; TAPS - 1],
            phase: 0,
        }
    }
}

impl Downsampler {
    /// Appends one output sample per `FACTOR` input samples to `out`.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        let keep = self.history.len();
        let mut x = std::mem::take(&mut self.history);
        x.extend(input.iter().map(|&s| f32::from(s)));
        let mut n = self.phase;
        while n < input.len() {
            let end = keep + n; // the newest input this output sees
            let acc: f32 = (0..TAPS).map(|t| self.h[t] * x[end - t]).sum();
            out.push(to_i16(acc));
            n += FACTOR;
        }
        self.phase = n - input.len();
        let from = x.len() - keep;
        x.drain(..from);
        self.history = x;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The amplitude of `freq` in `x` sampled at `rate` (Goertzel).
    pub(crate) fn tone_amplitude(x: &[i16], freq: f64, rate: f64) -> f64 {
        let w = 2.0 * std::f64::consts::PI * freq / rate;
        let coeff = 2.0 * w.cos();
        let (mut s1, mut s2) = (0.0, 0.0);
        for &v in x {
            let s0 = f64::from(v) + coeff * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
        2.0 * power.max(0.0).sqrt() / x.len() as f64
    }

    fn tone(freq: f64, rate: f64, amplitude: f64, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                (amplitude * (2.0 * std::f64::consts::PI * freq * i as f64 / rate).sin()) as i16
            })
            .collect()
    }

    #[test]
    fn a_tone_keeps_its_frequency_and_level_both_ways() {
        // (tone Hz, expected gain): in band passes at unity, above the phone band is
        // stopped on the way down (it would alias).
        let cases: [(f64, f64, f64); 4] = [
            (1_000.0, 1.0, 0.03),
            (440.0, 1.0, 0.03),
            (3_000.0, 1.0, 0.1),
            (6_000.0, 0.0, 0.01),
        ];
        for (freq, gain, tol) in cases {
            let amplitude = 10_000.0;
            let input = tone(freq, 48_000.0, amplitude, 48_000);
            let mut down = Downsampler::default();
            let mut out = Vec::new();
            for frame in input.chunks(960) {
                down.process(frame, &mut out);
            }
            assert_eq!(out.len(), 8_000);
            // Skip the filter's start; measure a whole number of periods' worth.
            let settled = &out[800..];
            let got = tone_amplitude(settled, freq.min(3_999.0), 8_000.0) / amplitude;
            if gain > 0.0 {
                assert!((got - gain).abs() < tol, "down {freq} Hz: gain {got}");
            } else {
                // Where 6 kHz would alias (2 kHz at 8 kHz): nothing.
                let alias = tone_amplitude(settled, 2_000.0, 8_000.0) / amplitude;
                assert!(alias < tol, "down {freq} Hz: alias at 2 kHz {alias}");
            }
        }
        for (freq, _, tol) in cases.iter().filter(|c| c.1 > 0.0) {
            let amplitude = 10_000.0;
            let input = tone(*freq, 8_000.0, amplitude, 8_000);
            let mut up = Upsampler::default();
            let mut out = Vec::new();
            for frame in input.chunks(160) {
                up.process(frame, &mut out);
            }
            assert_eq!(out.len(), 48_000);
            let settled = &out[4_800..];
            let got = tone_amplitude(settled, *freq, 48_000.0) / amplitude;
            assert!((got - 1.0).abs() < *tol, "up {freq} Hz: gain {got}");
            // The images of upsampling (8 kHz ± f) are filtered out.
            let image = tone_amplitude(settled, 8_000.0 - freq, 48_000.0) / amplitude;
            assert!(image < 0.01, "up {freq} Hz: image {image}");
        }
    }

    #[test]
    fn odd_call_lengths_join_seamlessly() {
        let input = tone(1_000.0, 48_000.0, 8_000.0, 9_600);
        let (mut whole, mut pieces) = (Vec::new(), Vec::new());
        Downsampler::default().process(&input, &mut whole);
        let mut d = Downsampler::default();
        for chunk in input.chunks(7) {
            d.process(chunk, &mut pieces);
        }
        assert_eq!(whole, pieces);
        let (mut whole, mut pieces) = (Vec::new(), Vec::new());
        let input = tone(1_000.0, 8_000.0, 8_000.0, 1_600);
        Upsampler::default().process(&input, &mut whole);
        let mut u = Upsampler::default();
        for chunk in input.chunks(3) {
            u.process(chunk, &mut pieces);
        }
        assert_eq!(whole, pieces);
    }
}
