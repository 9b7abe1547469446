//! A small deterministic pseudo-random generator (SplitMix64) for test and benchmark data.

/// SplitMix64: fast, seedable, and good enough for test data (not for cryptography).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub const fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[-1, 1)`.
    pub fn next_f32(&mut self) -> f32 {
        // 24 random bits -> [0, 1), then to [-1, 1).
        let unit = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        2.0 * unit - 1.0
    }

    /// Fills a buffer with values uniform in `[-1, 1)`.
    pub fn fill(&mut self, buf: &mut [f32]) {
        for v in buf {
            *v = self.next_f32();
        }
    }
}
