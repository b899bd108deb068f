//! Planar geometry in a local metric frame.
//!
//! The city is small (about 20 km across), so an equirectangular projection around its centre is
//! accurate to well under a metre for placement: `x` metres east, `y` metres north. All generation and
//! all geometric checks (point in polygon, segment and polygon intersection, distances) happen here;
//! positions go back to WGS84 (rounded to 1e-7 degree, about 1 cm) only when an entity is written.

use twin_model::{GeoPoint, geometry::EARTH_RADIUS_M};

/// A position in the local frame, metres east (`x`) and north (`y`) of the projection centre.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Xy {
    /// Metres east.
    pub x: f64,
    /// Metres north.
    pub y: f64,
}

impl Xy {
    /// A position.
    pub const fn new(x: f64, y: f64) -> Self {
        Xy { x, y }
    }

    /// Euclidean distance in metres.
    pub fn dist(self, o: Xy) -> f64 {
        (self.x - o.x).hypot(self.y - o.y)
    }

    /// The point a fraction `t` of the way to `o`.
    pub fn lerp(self, o: Xy, t: f64) -> Xy {
        Xy::new(self.x + (o.x - self.x) * t, self.y + (o.y - self.y) * t)
    }
}

/// An equirectangular projection around a centre.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Projection {
    lon0: f64,
    lat0: f64,
    m_per_deg_lon: f64,
    m_per_deg_lat: f64,
}

impl Projection {
    /// A projection centred on `centre`.
    pub fn new(centre: GeoPoint) -> Self {
        let m_per_deg_lat = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;
        Projection {
            lon0: centre.lon,
            lat0: centre.lat,
            m_per_deg_lat,
            m_per_deg_lon: m_per_deg_lat * centre.lat.to_radians().cos(),
        }
    }

    /// WGS84 to local metres.
    pub fn to_local(&self, p: GeoPoint) -> Xy {
        Xy::new((p.lon - self.lon0) * self.m_per_deg_lon, (p.lat - self.lat0) * self.m_per_deg_lat)
    }

    /// Local metres to WGS84, rounded to 1e-7 degree.
    pub fn to_geo(&self, p: Xy) -> GeoPoint {
        GeoPoint {
            lon: round7(self.lon0 + p.x / self.m_per_deg_lon),
            lat: round7(self.lat0 + p.y / self.m_per_deg_lat),
        }
    }

    /// Local x of a longitude.
    pub fn x_of(&self, lon: f64) -> f64 {
        (lon - self.lon0) * self.m_per_deg_lon
    }

    /// Local y of a latitude.
    pub fn y_of(&self, lat: f64) -> f64 {
        (lat - self.lat0) * self.m_per_deg_lat
    }
}

/// Rounds degrees to 7 decimals (about 1 cm), so written coordinates are short and stable.
pub fn round7(v: f64) -> f64 {
    (v * 1e7).round() / 1e7
}

/// An axis-aligned rectangle in the local frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    /// South-west corner.
    pub min: Xy,
    /// North-east corner.
    pub max: Xy,
}

impl Rect {
    /// The rectangle between two corners, in any order.
    pub fn new(x0: f64, y0: f64, x1: f64, y1: f64) -> Self {
        Rect { min: Xy::new(x0.min(x1), y0.min(y1)), max: Xy::new(x0.max(x1), y0.max(y1)) }
    }

    /// The bounding rectangle of `points` (an empty rectangle at the origin for none).
    pub fn around(points: &[Xy]) -> Self {
        let Some(first) = points.first() else { return Rect::new(0.0, 0.0, 0.0, 0.0) };
        let mut r = Rect { min: *first, max: *first };
        for p in points {
            r.min.x = r.min.x.min(p.x);
            r.min.y = r.min.y.min(p.y);
            r.max.x = r.max.x.max(p.x);
            r.max.y = r.max.y.max(p.y);
        }
        r
    }

    /// Width in metres.
    pub fn width(&self) -> f64 {
        self.max.x - self.min.x
    }

    /// Height (north-south extent) in metres.
    pub fn height(&self) -> f64 {
        self.max.y - self.min.y
    }

    /// The centre.
    pub fn centre(&self) -> Xy {
        self.min.lerp(self.max, 0.5)
    }

    /// Whether the rectangles share any point.
    pub fn intersects(&self, o: &Rect) -> bool {
        self.min.x <= o.max.x && o.min.x <= self.max.x && self.min.y <= o.max.y && o.min.y <= self.max.y
    }

    /// Whether `p` is inside or on the edge.
    pub fn contains(&self, p: Xy) -> bool {
        (self.min.x..=self.max.x).contains(&p.x) && (self.min.y..=self.max.y).contains(&p.y)
    }

    /// The rectangle grown by `d` metres on every side (shrunk for negative `d`).
    pub fn expand(&self, d: f64) -> Rect {
        Rect { min: Xy::new(self.min.x - d, self.min.y - d), max: Xy::new(self.max.x + d, self.max.y + d) }
    }

    /// The four corners, counter-clockwise from the south-west.
    pub fn corners(&self) -> [Xy; 4] {
        [self.min, Xy::new(self.max.x, self.min.y), self.max, Xy::new(self.min.x, self.max.y)]
    }
}

/// Whether `p` is inside the ring (even-odd rule; the ring is open or closed).
pub fn point_in_ring(p: Xy, ring: &[Xy]) -> bool {
    let mut inside = false;
    let n = ring.len();
    let mut j = n.wrapping_sub(1);
    for i in 0..n {
        let (a, b) = (ring[i], ring[j]);
        if (a.y > p.y) != (b.y > p.y) && p.x < (b.x - a.x) * (p.y - a.y) / (b.y - a.y) + a.x {
            inside = !inside;
        }
        j = i;
    }
    inside
}

fn orient(a: Xy, b: Xy, c: Xy) -> f64 {
    (b.x - a.x) * (c.y - a.y) - (b.y - a.y) * (c.x - a.x)
}

fn on_segment(a: Xy, b: Xy, p: Xy) -> bool {
    p.x >= a.x.min(b.x) && p.x <= a.x.max(b.x) && p.y >= a.y.min(b.y) && p.y <= a.y.max(b.y)
}

/// Whether segments `ab` and `cd` share any point (touching and collinear overlap included).
pub fn segments_intersect(a: Xy, b: Xy, c: Xy, d: Xy) -> bool {
    let (d1, d2) = (orient(c, d, a), orient(c, d, b));
    let (d3, d4) = (orient(a, b, c), orient(a, b, d));
    if ((d1 > 0.0 && d2 < 0.0) || (d1 < 0.0 && d2 > 0.0)) && ((d3 > 0.0 && d4 < 0.0) || (d3 < 0.0 && d4 > 0.0)) {
        return true;
    }
    (d1 == 0.0 && on_segment(c, d, a))
        || (d2 == 0.0 && on_segment(c, d, b))
        || (d3 == 0.0 && on_segment(a, b, c))
        || (d4 == 0.0 && on_segment(a, b, d))
}

/// Distance from `p` to segment `ab`.
pub fn dist_point_segment(p: Xy, a: Xy, b: Xy) -> f64 {
    let (dx, dy) = (b.x - a.x, b.y - a.y);
    let len2 = dx * dx + dy * dy;
    if len2 == 0.0 {
        return p.dist(a);
    }
    let t = (((p.x - a.x) * dx + (p.y - a.y) * dy) / len2).clamp(0.0, 1.0);
    p.dist(Xy::new(a.x + t * dx, a.y + t * dy))
}

/// Distance between segments `ab` and `cd` (0 when they touch).
pub fn dist_segment_segment(a: Xy, b: Xy, c: Xy, d: Xy) -> f64 {
    if segments_intersect(a, b, c, d) {
        return 0.0;
    }
    dist_point_segment(a, c, d)
        .min(dist_point_segment(b, c, d))
        .min(dist_point_segment(c, a, b))
        .min(dist_point_segment(d, a, b))
}

/// Distance from `p` to a polyline.
pub fn dist_point_polyline(p: Xy, line: &[Xy]) -> f64 {
    match line {
        [] => f64::INFINITY,
        [only] => p.dist(*only),
        _ => line.windows(2).map(|w| dist_point_segment(p, w[0], w[1])).fold(f64::INFINITY, f64::min),
    }
}

/// The edges of a ring, closing it.
pub fn ring_edges(ring: &[Xy]) -> impl Iterator<Item = (Xy, Xy)> + '_ {
    let n = ring.len();
    (0..n).map(move |i| (ring[i], ring[(i + 1) % n]))
}

/// Distance from segment `ab` to the area of a ring (0 when the segment touches or is inside it).
pub fn dist_segment_ring(a: Xy, b: Xy, ring: &[Xy]) -> f64 {
    if point_in_ring(a, ring) {
        return 0.0;
    }
    ring_edges(ring).map(|(c, d)| dist_segment_segment(a, b, c, d)).fold(f64::INFINITY, f64::min)
}

/// Whether two ring areas share any point.
pub fn rings_intersect(a: &[Xy], b: &[Xy]) -> bool {
    if !Rect::around(a).intersects(&Rect::around(b)) {
        return false;
    }
    if a.first().is_some_and(|p| point_in_ring(*p, b)) || b.first().is_some_and(|p| point_in_ring(*p, a)) {
        return true;
    }
    ring_edges(a).any(|(p, q)| ring_edges(b).any(|(r, s)| segments_intersect(p, q, r, s)))
}

/// Whether a rectangle and a ring area share any point.
pub fn rect_intersects_ring(r: &Rect, ring: &[Xy]) -> bool {
    if !r.intersects(&Rect::around(ring)) {
        return false;
    }
    if ring.iter().any(|p| r.contains(*p)) || point_in_ring(r.centre(), ring) {
        return true;
    }
    let c = r.corners();
    ring_edges(ring).any(|(p, q)| (0..4).any(|i| segments_intersect(p, q, c[i], c[(i + 1) % 4])))
}

/// Area of a ring in square metres (shoelace, absolute).
pub fn ring_area(ring: &[Xy]) -> f64 {
    (ring_edges(ring).map(|(a, b)| a.x * b.y - b.x * a.y).sum::<f64>() / 2.0).abs()
}

/// A polygon approximating an ellipse with semi-axes `a` (east-west) and `b` (north-south).
pub fn ellipse(centre: Xy, a: f64, b: f64, vertices: usize) -> Vec<Xy> {
    (0..vertices)
        .map(|k| {
            let t = std::f64::consts::TAU * k as f64 / vertices as f64;
            Xy::new(centre.x + a * t.cos(), centre.y + b * t.sin())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projection_round_trips_and_matches_haversine() {
        let proj = Projection::new(GeoPoint { lon: 112.95, lat: 28.2 });
        let p = GeoPoint { lon: 112.977, lat: 28.196 };
        let xy = proj.to_local(p);
        let back = proj.to_geo(xy);
        assert!((back.lon - p.lon).abs() < 1e-7 && (back.lat - p.lat).abs() < 1e-7);
        let d = GeoPoint { lon: 112.95, lat: 28.2 }.distance_m(&p);
        assert!((xy.x.hypot(xy.y) - d).abs() < 2.0, "{} vs {d}", xy.x.hypot(xy.y));
    }

    #[test]
    fn polygon_predicates() {
        let sq = Rect::new(0.0, 0.0, 10.0, 10.0).corners().to_vec();
        assert!(point_in_ring(Xy::new(5.0, 5.0), &sq));
        assert!(!point_in_ring(Xy::new(15.0, 5.0), &sq));
        assert!(segments_intersect(Xy::new(-1.0, 5.0), Xy::new(11.0, 5.0), sq[1], sq[2]));
        assert!(!segments_intersect(Xy::new(-1.0, 5.0), Xy::new(9.0, 5.0), sq[1], sq[2]));
        assert_eq!(dist_segment_ring(Xy::new(12.0, 0.0), Xy::new(12.0, 10.0), &sq), 2.0);
        assert_eq!(dist_segment_ring(Xy::new(2.0, 2.0), Xy::new(3.0, 3.0), &sq), 0.0);
        let inner = Rect::new(2.0, 2.0, 3.0, 3.0).corners().to_vec();
        assert!(rings_intersect(&sq, &inner) && rings_intersect(&inner, &sq));
        assert!(!rings_intersect(&sq, &Rect::new(11.0, 0.0, 12.0, 1.0).corners()));
        assert!(rect_intersects_ring(&Rect::new(9.0, 9.0, 20.0, 20.0), &sq));
        assert_eq!(ring_area(&sq), 100.0);
        assert!((dist_point_polyline(Xy::new(5.0, 1.0), &[Xy::new(0.0, 0.0), Xy::new(10.0, 0.0)]) - 1.0).abs() < 1e-12);
    }
}
