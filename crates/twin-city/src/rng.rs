//! A tiny deterministic pseudo-random generator (SplitMix64), so the generated city never changes with
//! a dependency upgrade. Each layer of the city draws from its own stream, seeded from the city seed and
//! a per-layer constant, so adding draws to one layer leaves the others as they were.

/// SplitMix64 (Steele, Lea, Flood 2014): 64 bits of state, good statistical quality, trivially portable.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A stream for `seed` and the layer constant `stream`.
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut r = Rng(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        r.next_u64();
        r
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// A uniform number in `[0, 1)`.
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform number in `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }

    /// A uniform integer in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// An index into `weights`, drawn in proportion to the weights.
    pub fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.f64() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len().saturating_sub(1)
    }
}

/// The SplitMix64 finaliser: a bijective 64-bit mix.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform number in `[0, 1)` that depends only on `seed` and the lattice point `(i, j)` (for noise).
pub fn lattice(seed: u64, i: i64, j: i64) -> f64 {
    let h = mix(seed ^ mix((i as u64).wrapping_mul(0x1656_67B1_9E37_79F9) ^ (j as u64).wrapping_add(0x27D4_EB2F)));
    (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Smooth value noise in `[0, 1)`: `lattice` values bilinearly blended with a smoothstep.
pub fn value_noise(seed: u64, x: f64, y: f64) -> f64 {
    let (fx, fy) = (x.floor(), y.floor());
    let (i, j) = (fx as i64, fy as i64);
    let s = |t: f64| t * t * (3.0 - 2.0 * t);
    let (tx, ty) = (s(x - fx), s(y - fy));
    let a = lattice(seed, i, j) * (1.0 - tx) + lattice(seed, i + 1, j) * tx;
    let b = lattice(seed, i, j + 1) * (1.0 - tx) + lattice(seed, i + 1, j + 1) * tx;
    a * (1.0 - ty) + b * ty
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_deterministic_and_distinct() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(7, 1);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(7, 1);
                move |_| r.next_u64()
            })
            .collect();
        let c = Rng::new(7, 2).next_u64();
        assert_eq!(a, b);
        assert_ne!(a[0], c);
        // Pinned: the generator must never change, or every generated city changes.
        assert_eq!(Rng::new(0, 0).next_u64(), mix(0x9E37_79B9_7F4A_7C15u64.wrapping_mul(2)));
    }

    #[test]
    fn ranges_hold() {
        let mut r = Rng::new(1, 2);
        for _ in 0..10_000 {
            let v = r.range(3.0, 5.0);
            assert!((3.0..5.0).contains(&v));
            assert!(r.below(7) < 7);
        }
        assert_eq!(r.below(0), 0);
    }
}
