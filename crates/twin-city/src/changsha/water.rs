//! Water: the Xiang River (north-south through the centre, about 1 km wide) with Orange Isle in it, the
//! Liuyang River joining from the east in the north, and Meixi Lake in the west.
//!
//! The geography is fixed (not seeded) so the city stays recognisable. The Xiang is modelled by its
//! centre line and half-width sampled every [`SAMPLE_M`] metres from the south edge of the city to the
//! north edge; its polygon is the west bank south-to-north then the east bank north-to-south, so "is this
//! point in the Xiang" is an interpolation of the banks, exact for the polygon. The Xiang polygon
//! includes Orange Isle; the isle is land (a park), so water = Xiang minus isle, plus Liuyang, plus lake.

use twin_model::GeoPoint;

use super::bounds;
use crate::geo::Projection;
use crate::geo::{Rect, Xy, ellipse, point_in_ring, rect_intersects_ring};

/// Spacing of the Xiang's bank samples, in metres.
pub const SAMPLE_M: f64 = 100.0;
/// Latitudes of Orange Isle's southern and northern tips.
pub const ISLE_LAT: (f64, f64) = (28.165, 28.21);
/// Longitude of the Xiang's mean centre line.
pub const XIANG_LON: f64 = 112.958;
/// Meixi Lake's centre.
pub const MEIXI_CENTRE: GeoPoint = GeoPoint { lon: 112.893, lat: 28.192 };

/// Which water body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WaterKind {
    /// The Xiang River.
    Xiang,
    /// The Liuyang River.
    Liuyang,
    /// Meixi Lake.
    Meixi,
}

impl WaterKind {
    /// All water bodies, in city order.
    pub const ALL: [WaterKind; 3] = [WaterKind::Xiang, WaterKind::Liuyang, WaterKind::Meixi];

    /// The id slug.
    pub fn slug(self) -> &'static str {
        match self {
            WaterKind::Xiang => "xiang-river",
            WaterKind::Liuyang => "liuyang-river",
            WaterKind::Meixi => "meixi-lake",
        }
    }

    /// The English name.
    pub fn name(self) -> &'static str {
        match self {
            WaterKind::Xiang => "Xiang River",
            WaterKind::Liuyang => "Liuyang River",
            WaterKind::Meixi => "Meixi Lake",
        }
    }
}

/// The water layer in the local frame.
#[derive(Debug, Clone)]
pub struct Water {
    y0: f64,
    west: Vec<f64>,
    east: Vec<f64>,
    centre: Vec<f64>,
    /// The Xiang polygon (including the isle).
    pub xiang: Vec<Xy>,
    /// Orange Isle.
    pub isle: Vec<Xy>,
    /// The Liuyang River polygon.
    pub liuyang: Vec<Xy>,
    /// The Liuyang centre line, east to west.
    pub liuyang_line: Vec<Xy>,
    /// Meixi Lake.
    pub lake: Vec<Xy>,
    isle_box: Rect,
    liuyang_box: Rect,
    lake_box: Rect,
}

impl Water {
    pub(crate) fn new(proj: &Projection) -> Self {
        let b = bounds();
        let (ys, yn) = (proj.y_of(b.min_lat), proj.y_of(b.max_lat));
        let x0 = proj.x_of(XIANG_LON);
        let n = ((yn - ys) / SAMPLE_M).ceil() as usize;
        let (mut west, mut east, mut centre) = (Vec::new(), Vec::new(), Vec::new());
        for k in 0..=n {
            let y = ys + k as f64 * SAMPLE_M;
            let c = x0 + 140.0 * (y / 4200.0 + 0.6).sin();
            let hw = 500.0 + 40.0 * (y / 1700.0).sin() + 20.0 * (y / 530.0 + 1.0).sin();
            centre.push(c);
            west.push(c - hw);
            east.push(c + hw);
        }
        let mut xiang: Vec<Xy> = west.iter().enumerate().map(|(k, x)| Xy::new(*x, ys + k as f64 * SAMPLE_M)).collect();
        xiang.extend(east.iter().enumerate().rev().map(|(k, x)| Xy::new(*x, ys + k as f64 * SAMPLE_M)));
        let mut w = Water {
            y0: ys,
            west,
            east,
            centre,
            xiang,
            isle: Vec::new(),
            liuyang: Vec::new(),
            liuyang_line: Vec::new(),
            lake: Vec::new(),
            isle_box: Rect::new(0.0, 0.0, 0.0, 0.0),
            liuyang_box: Rect::new(0.0, 0.0, 0.0, 0.0),
            lake_box: Rect::new(0.0, 0.0, 0.0, 0.0),
        };
        // Orange Isle: 5 km long, 50 m wide at the tips and 200 m in the middle, a little west of centre.
        let (is, inn) = (proj.y_of(ISLE_LAT.0), proj.y_of(ISLE_LAT.1));
        let steps = 50;
        let side = |sign: f64, k: usize| {
            let t = k as f64 / steps as f64;
            let y = is + (inn - is) * t;
            let width = 50.0 + 150.0 * (std::f64::consts::PI * t).sin().powf(0.7);
            Xy::new(w.centre_x(y) - 60.0 + sign * width / 2.0, y)
        };
        let mut isle: Vec<Xy> = (0..=steps).map(|k| side(-1.0, k)).collect();
        isle.extend((0..=steps).rev().map(|k| side(1.0, k)));
        w.isle = isle;
        // The Liuyang: from the east edge of the city west and north to the Xiang, about 160 m wide.
        let control = [
            (113.050, 28.212),
            (113.032, 28.221),
            (113.013, 28.226),
            (112.999, 28.236),
            (112.986, 28.247),
            (112.972, 28.2535),
        ];
        let mut pts: Vec<Xy> =
            control.iter().map(|(lon, lat)| proj.to_local(GeoPoint { lon: *lon, lat: *lat })).collect();
        let join_y = pts[pts.len() - 1].y;
        pts.push(Xy::new(w.centre_x(join_y), join_y));
        let line = densify(&pts, 50.0);
        w.liuyang = buffer_line(&line, 80.0);
        w.liuyang_line = line;
        // Meixi Lake: an ellipse of about 2.6 km2 with a gently wavy shore.
        let c = proj.to_local(MEIXI_CENTRE);
        w.lake = ellipse(c, 1300.0, 650.0, 72)
            .into_iter()
            .enumerate()
            .map(|(k, p)| {
                let f = 1.0 + 0.05 * (k as f64 * 0.52).sin();
                Xy::new(c.x + (p.x - c.x) * f, c.y + (p.y - c.y) * f)
            })
            .collect();
        w.isle_box = Rect::around(&w.isle);
        w.liuyang_box = Rect::around(&w.liuyang);
        w.lake_box = Rect::around(&w.lake);
        w
    }

    fn interp(&self, v: &[f64], y: f64) -> f64 {
        let t = ((y - self.y0) / SAMPLE_M).clamp(0.0, (v.len() - 1) as f64);
        let k = (t.floor() as usize).min(v.len() - 2);
        let f = t - k as f64;
        v[k] * (1.0 - f) + v[k + 1] * f
    }

    /// The Xiang's centre line x at `y` (the Yuelu district boundary).
    pub fn centre_x(&self, y: f64) -> f64 {
        self.interp(&self.centre, y)
    }

    /// The Xiang's west and east bank x at `y`.
    pub fn banks(&self, y: f64) -> (f64, f64) {
        (self.interp(&self.west, y), self.interp(&self.east, y))
    }

    /// The centre line between `y0` and `y1` (`y0 < y1`): the interpolated ends and every sample between.
    pub fn centre_chain(&self, y0: f64, y1: f64) -> Vec<Xy> {
        let mut out = vec![Xy::new(self.centre_x(y0), y0)];
        for (k, c) in self.centre.iter().enumerate() {
            let y = self.y0 + k as f64 * SAMPLE_M;
            if y > y0 && y < y1 {
                out.push(Xy::new(*c, y));
            }
        }
        out.push(Xy::new(self.centre_x(y1), y1));
        out
    }

    /// Whether `p` is on Orange Isle.
    pub fn on_isle(&self, p: Xy) -> bool {
        self.isle_box.contains(p) && point_in_ring(p, &self.isle)
    }

    /// The isle's bounding rectangle.
    pub fn isle_box(&self) -> Rect {
        self.isle_box
    }

    /// Which water body `p` is in, if any (Orange Isle is land).
    pub fn water_at(&self, p: Xy) -> Option<WaterKind> {
        let (w, e) = self.banks(p.y);
        if p.x > w && p.x < e && p.y >= self.y0 && !self.on_isle(p) {
            return Some(WaterKind::Xiang);
        }
        if self.liuyang_box.contains(p) && point_in_ring(p, &self.liuyang) {
            return Some(WaterKind::Liuyang);
        }
        if self.lake_box.contains(p) && point_in_ring(p, &self.lake) {
            return Some(WaterKind::Meixi);
        }
        None
    }

    /// Which water body the rectangle touches, if any, testing the Xiang first. Conservative for the Xiang
    /// (it uses the extreme banks over the rectangle's latitude span), exact for the others. A rectangle
    /// on Orange Isle counts as touching the Xiang.
    pub fn rect_touches(&self, r: &Rect) -> Option<WaterKind> {
        let (mut w, mut e) = (f64::INFINITY, f64::NEG_INFINITY);
        for y in [r.min.y, r.max.y] {
            let (a, b) = self.banks(y);
            w = w.min(a);
            e = e.max(b);
        }
        let k0 = ((r.min.y - self.y0) / SAMPLE_M).ceil().max(0.0) as usize;
        let k1 = (((r.max.y - self.y0) / SAMPLE_M).floor().max(-1.0) + 1.0) as usize;
        for k in k0..k1.min(self.west.len()) {
            w = w.min(self.west[k]);
            e = e.max(self.east[k]);
        }
        if r.max.x > w && r.min.x < e {
            return Some(WaterKind::Xiang);
        }
        if rect_intersects_ring(r, &self.liuyang) {
            return Some(WaterKind::Liuyang);
        }
        if rect_intersects_ring(r, &self.lake) {
            return Some(WaterKind::Meixi);
        }
        None
    }

    /// The polygon of a water body.
    pub fn ring(&self, kind: WaterKind) -> &[Xy] {
        match kind {
            WaterKind::Xiang => &self.xiang,
            WaterKind::Liuyang => &self.liuyang,
            WaterKind::Meixi => &self.lake,
        }
    }
}

/// Points along `pts` at most `step` metres apart.
fn densify(pts: &[Xy], step: f64) -> Vec<Xy> {
    let mut out = Vec::new();
    for w in pts.windows(2) {
        let n = (w[0].dist(w[1]) / step).ceil().max(1.0) as usize;
        for k in 0..n {
            out.push(w[0].lerp(w[1], k as f64 / n as f64));
        }
    }
    if let Some(last) = pts.last() {
        out.push(*last);
    }
    out
}

/// A polygon `half` metres either side of a gently curving line (mitred by averaging neighbour normals).
fn buffer_line(line: &[Xy], half: f64) -> Vec<Xy> {
    let n = line.len();
    let normal = |k: usize| {
        let (a, b) = (line[k.saturating_sub(1)], line[(k + 1).min(n - 1)]);
        let (dx, dy) = (b.x - a.x, b.y - a.y);
        let len = dx.hypot(dy).max(1e-9);
        (-dy / len, dx / len)
    };
    let mut left = Vec::with_capacity(n);
    let mut right = Vec::with_capacity(n);
    for (k, p) in line.iter().enumerate() {
        let (nx, ny) = normal(k);
        left.push(Xy::new(p.x + nx * half, p.y + ny * half));
        right.push(Xy::new(p.x - nx * half, p.y - ny * half));
    }
    right.reverse();
    left.extend(right);
    left
}

impl Water {
    /// The `WaterBody` entity id of `kind`.
    pub fn id(kind: WaterKind) -> twin_model::EntityId {
        crate::make::entity_id(&format!("urn:ngsi-ld:WaterBody:changsha:{}", kind.slug()))
    }

    pub(crate) fn entities(&self, proj: &Projection) -> Vec<twin_model::Entity> {
        use crate::geo::ring_area;
        WaterKind::ALL
            .iter()
            .map(|k| {
                let ring = self.ring(*k);
                let (kind, level, area) = match k {
                    WaterKind::Xiang => ("river", 29.0, ring_area(ring) - ring_area(&self.isle)),
                    WaterKind::Liuyang => ("river", 29.5, ring_area(ring)),
                    WaterKind::Meixi => ("lake", 34.0, ring_area(ring)),
                };
                let geometry = twin_model::Geometry {
                    shape: twin_model::Shape::Polygon(ring.iter().map(|p| proj.to_geo(*p)).collect()),
                    height_m: 0.0,
                };
                crate::make::Make::new(Water::id(*k), "WaterBody", Some(geometry))
                    .text("name", k.name())
                    .text("kind", kind)
                    .num("surfaceAreaKm2", area / 1e6)
                    .num("normalWaterLevel", level)
                    .build()
            })
            .collect()
    }
}
