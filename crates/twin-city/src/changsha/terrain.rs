//! Terrain: a gently rolling plain at about 35-50 m with Yuelu Mountain (about 300 m) on the west bank,
//! published as `TerrainTile` entities: the Web Mercator zoom-[`ZOOM`] tiles covering the city, each with
//! its min, max and mean elevation from a 9 x 9 sample grid.
//!
//! Yuelu Mountain is an anisotropic Gaussian (narrow east-west, long north-south) peaking at
//! [`YUELU_PEAK`]; its scenic area (where the mountain rises more than about 30 m above the plain) is a
//! park without roads or buildings, so the slopes stay green.

use twin_model::{Entity, GeoPoint, Geometry, Shape};

use super::{Frame, bounds};
use crate::{
    geo::{Xy, ellipse},
    make::{Make, entity_id},
    rng::value_noise,
};

/// Yuelu Mountain's summit.
pub const YUELU_PEAK: GeoPoint = GeoPoint { lon: 112.935, lat: 28.185 };
/// The summit elevation in metres.
pub const YUELU_PEAK_M: f64 = 300.0;
/// The Xiang's normal water level in metres above the datum.
pub const RIVER_LEVEL_M: f64 = 29.0;
/// The tile zoom level.
pub const ZOOM: u32 = 16;

const PLAIN_M: f64 = 38.0;
const SIGMA_X: f64 = 450.0;
const SIGMA_Y: f64 = 900.0;
/// The scenic area is where the mountain adds more than this many metres.
const SCENIC_EDGE_M: f64 = 30.0;

/// The elevation model.
#[derive(Debug, Clone)]
pub struct Terrain {
    seed: u64,
    peak: Xy,
}

impl Terrain {
    pub(crate) fn new(proj: &crate::geo::Projection, seed: u64) -> Self {
        Terrain { seed: seed ^ 0x007E_44A1, peak: proj.to_local(YUELU_PEAK) }
    }

    fn mountain(&self, p: Xy) -> f64 {
        let (dx, dy) = ((p.x - self.peak.x) / SIGMA_X, (p.y - self.peak.y) / SIGMA_Y);
        (YUELU_PEAK_M - PLAIN_M) * (-(dx * dx + dy * dy) / 2.0).exp()
    }

    /// Ground elevation at `p`, in metres (the river level over water).
    pub fn elevation(&self, frame: &Frame, p: Xy) -> f64 {
        if frame.water.water_at(p).is_some() {
            return RIVER_LEVEL_M;
        }
        let rolling = 12.0 * value_noise(self.seed, p.x / 1500.0, p.y / 1500.0);
        PLAIN_M + rolling + self.mountain(p)
    }

    /// The scenic-area polygon around the summit.
    pub fn scenic_area(&self) -> Vec<Xy> {
        let f = (2.0 * ((YUELU_PEAK_M - PLAIN_M) / SCENIC_EDGE_M).ln()).sqrt();
        ellipse(self.peak, SIGMA_X * f, SIGMA_Y * f, 48)
    }

    /// The tiles covering the city.
    pub(crate) fn tiles(&self, frame: &Frame) -> Vec<Entity> {
        let b = bounds();
        let n = f64::from(1u32 << ZOOM);
        let tx = |lon: f64| ((lon + 180.0) / 360.0 * n).floor() as i64;
        let ty = |lat: f64| {
            let r = lat.to_radians();
            ((1.0 - (r.tan() + 1.0 / r.cos()).ln() / std::f64::consts::PI) / 2.0 * n).floor() as i64
        };
        let lon_of = |x: f64| x / n * 360.0 - 180.0;
        let lat_of = |y: f64| (std::f64::consts::PI * (1.0 - 2.0 * y / n)).sinh().atan().to_degrees();
        let mut out = Vec::new();
        for y in ty(b.max_lat)..=ty(b.min_lat) {
            for x in tx(b.min_lon)..=tx(b.max_lon) {
                let (w, e) = (lon_of(x as f64), lon_of(x as f64 + 1.0));
                let (nn, s) = (lat_of(y as f64), lat_of(y as f64 + 1.0));
                let (mut lo, mut hi, mut sum) = (f64::INFINITY, f64::NEG_INFINITY, 0.0);
                for i in 0..9 {
                    for j in 0..9 {
                        let g = GeoPoint { lon: w + (e - w) * i as f64 / 8.0, lat: s + (nn - s) * j as f64 / 8.0 };
                        let h = self.elevation(frame, frame.proj.to_local(g));
                        lo = lo.min(h);
                        hi = hi.max(h);
                        sum += h;
                    }
                }
                let ring: Vec<GeoPoint> = [(w, s), (e, s), (e, nn), (w, nn)]
                    .iter()
                    .map(|(lon, lat)| GeoPoint { lon: crate::geo::round7(*lon), lat: crate::geo::round7(*lat) })
                    .collect();
                let width_m = ring[0].distance_m(&ring[1]);
                let id = entity_id(&format!("urn:ngsi-ld:TerrainTile:changsha:{ZOOM}:{x}:{y}"));
                let geometry = Geometry { shape: Shape::Polygon(ring), height_m: 0.0 };
                out.push(
                    Make::new(id, "TerrainTile", Some(geometry))
                        .int("zoom", i64::from(ZOOM))
                        .num("resolutionM", width_m / 8.0)
                        .num("minElevation", lo)
                        .num("maxElevation", hi)
                        .num("meanElevation", sum / 81.0)
                        .build(),
                );
            }
        }
        out
    }
}
