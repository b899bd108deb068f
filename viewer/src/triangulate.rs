//! Ear clipping of simple polygons (footprints, water, parks), in the ground plane.

/// Triangle indices into `ring` (an open ring: the first point is not repeated) for a simple polygon of
/// either winding. Degenerate rings give what triangles they can; never panics.
pub fn triangulate(ring: &[[f64; 2]]) -> Vec<[u32; 3]> {
    let n = ring.len();
    if n < 3 {
        return Vec::new();
    }
    let ccw = signed_area(ring) > 0.0;
    let mut idx: Vec<usize> = (0..n).collect();
    if !ccw {
        idx.reverse();
    }
    let mut out = Vec::with_capacity(n - 2);
    let mut guard = 0;
    let mut i = 0;
    while idx.len() > 3 && guard < 2 * n * n {
        guard += 1;
        let m = idx.len();
        let (a, b, c) = (idx[(i + m - 1) % m], idx[i % m], idx[(i + 1) % m]);
        if is_ear(ring, &idx, a, b, c) {
            out.push([a as u32, b as u32, c as u32]);
            idx.remove(i % m);
            i = i.saturating_sub(1);
        } else {
            i = (i + 1) % m;
        }
    }
    if idx.len() == 3 {
        out.push([idx[0] as u32, idx[1] as u32, idx[2] as u32]);
    } else if idx.len() > 3 {
        // Not simple (self-touching): fan what is left rather than drop it.
        for k in 1..idx.len() - 1 {
            out.push([idx[0] as u32, idx[k] as u32, idx[k + 1] as u32]);
        }
    }
    out
}

fn signed_area(ring: &[[f64; 2]]) -> f64 {
    let n = ring.len();
    (0..n).map(|i| ring[i][0] * ring[(i + 1) % n][1] - ring[(i + 1) % n][0] * ring[i][1]).sum::<f64>() / 2.0
}

fn cross(o: [f64; 2], a: [f64; 2], b: [f64; 2]) -> f64 {
    (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
}

fn is_ear(ring: &[[f64; 2]], idx: &[usize], a: usize, b: usize, c: usize) -> bool {
    let (pa, pb, pc) = (ring[a], ring[b], ring[c]);
    if cross(pa, pb, pc) <= 0.0 {
        return false; // reflex or flat
    }
    !idx.iter().any(|&k| {
        k != a && k != b && k != c && {
            let p = ring[k];
            cross(pa, pb, p) >= 0.0 && cross(pb, pc, p) >= 0.0 && cross(pc, pa, p) >= 0.0
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn area(ring: &[[f64; 2]], tris: &[[u32; 3]]) -> f64 {
        tris.iter().map(|t| cross(ring[t[0] as usize], ring[t[1] as usize], ring[t[2] as usize]).abs() / 2.0).sum()
    }

    #[test]
    fn covers_convex_and_concave_rings_of_either_winding() {
        let square = [[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]];
        assert_eq!(triangulate(&square).len(), 2);
        assert!((area(&square, &triangulate(&square)) - 4.0).abs() < 1e-9);
        // An L shape, clockwise.
        let l = [[0.0, 0.0], [0.0, 3.0], [1.0, 3.0], [1.0, 1.0], [3.0, 1.0], [3.0, 0.0]];
        let t = triangulate(&l);
        assert_eq!(t.len(), 4);
        assert!((area(&l, &t) - 5.0).abs() < 1e-9);
    }

    #[test]
    fn degenerate_input_does_not_panic() {
        assert!(triangulate(&[]).is_empty());
        assert!(triangulate(&[[0.0, 0.0], [1.0, 1.0]]).is_empty());
        let _ = triangulate(&[[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [0.0, 0.0]]);
        let _ = triangulate(&[[0.0, 0.0], [f64::NAN, 1.0], [2.0, 0.0], [1.0, 5.0]]);
    }
}
