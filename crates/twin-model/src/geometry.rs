//! WGS84 geometry: points, line strings and polygon footprints with a height.

use serde::{Deserialize, Serialize};

/// Mean Earth radius used for great-circle distances, in metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// The tallest structure the twin accepts, in metres (well above any building on Earth).
pub const MAX_HEIGHT_M: f64 = 2_000.0;

/// The most vertices one geometry may have.
pub const MAX_VERTICES: usize = 10_000;

/// A WGS84 position in degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    /// Longitude in degrees, -180 to 180.
    pub lon: f64,
    /// Latitude in degrees, -90 to 90.
    pub lat: f64,
}

/// The shape of a geometry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Shape {
    /// A single position (a sensor, a bus).
    Point(GeoPoint),
    /// An open line of at least two positions (a road segment, a river centre line).
    Line(Vec<GeoPoint>),
    /// A footprint: the exterior ring of at least three positions, stored open (the first position is
    /// not repeated at the end).
    Polygon(Vec<GeoPoint>),
}

/// A validated geometry: a shape plus a height above ground for extruded footprints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Geometry {
    /// The shape.
    pub shape: Shape,
    /// Height above ground in metres; 0 for flat things.
    pub height_m: f64,
}

/// An axis-aligned box in degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BoundingBox {
    /// West edge.
    pub min_lon: f64,
    /// South edge.
    pub min_lat: f64,
    /// East edge.
    pub max_lon: f64,
    /// North edge.
    pub max_lat: f64,
}

/// Why a geometry is invalid.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GeometryError {
    /// A coordinate is NaN, infinite or outside the WGS84 range.
    #[error("position {index} ({lon}, {lat}) is outside WGS84 (lon -180..180, lat -90..90) or not finite")]
    BadPosition {
        /// Index of the position within the shape.
        index: usize,
        /// Its longitude.
        lon: f64,
        /// Its latitude.
        lat: f64,
    },
    /// Too few positions for the shape.
    #[error("a {shape} needs at least {min} distinct positions, got {got}")]
    TooFewPositions {
        /// "line" or "polygon".
        shape: &'static str,
        /// The minimum.
        min: usize,
        /// How many were given.
        got: usize,
    },
    /// Too many positions.
    #[error("a geometry may have at most {max} positions, got {got}")]
    TooManyPositions {
        /// The limit.
        max: usize,
        /// How many were given.
        got: usize,
    },
    /// The height is negative, not finite or absurd.
    #[error("height {0} m is not within 0..={MAX_HEIGHT_M} m")]
    BadHeight(f64),
    /// The bounding box is inverted or not finite.
    #[error("bounding box is empty or not finite (min must not exceed max)")]
    BadBox,
}

impl GeoPoint {
    /// Checks the position is finite and inside WGS84.
    pub fn validate(&self, index: usize) -> Result<(), GeometryError> {
        let ok = self.lon.is_finite()
            && self.lat.is_finite()
            && (-180.0..=180.0).contains(&self.lon)
            && (-90.0..=90.0).contains(&self.lat);
        if ok { Ok(()) } else { Err(GeometryError::BadPosition { index, lon: self.lon, lat: self.lat }) }
    }

    /// Great-circle (haversine) distance in metres.
    pub fn distance_m(&self, other: &GeoPoint) -> f64 {
        let (lat1, lat2) = (self.lat.to_radians(), other.lat.to_radians());
        let dlat = lat2 - lat1;
        let dlon = (other.lon - self.lon).to_radians();
        let a = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
    }
}

impl Geometry {
    /// A point geometry.
    pub fn point(lon: f64, lat: f64) -> Self {
        Geometry { shape: Shape::Point(GeoPoint { lon, lat }), height_m: 0.0 }
    }

    /// Validates positions, counts and height; closes nothing, but drops a repeated closing position of a
    /// polygon so rings are stored open.
    pub fn validated(mut self) -> Result<Self, GeometryError> {
        if !(self.height_m.is_finite() && (0.0..=MAX_HEIGHT_M).contains(&self.height_m)) {
            return Err(GeometryError::BadHeight(self.height_m));
        }
        match &mut self.shape {
            Shape::Point(p) => p.validate(0)?,
            Shape::Line(points) => check_positions(points, "line", 2)?,
            Shape::Polygon(ring) => {
                if ring.len() > 1 && ring.first() == ring.last() {
                    ring.pop();
                }
                check_positions(ring, "polygon", 3)?;
            }
        }
        Ok(self)
    }

    /// The smallest box holding every position.
    pub fn envelope(&self) -> BoundingBox {
        match &self.shape {
            Shape::Point(p) => BoundingBox { min_lon: p.lon, min_lat: p.lat, max_lon: p.lon, max_lat: p.lat },
            Shape::Line(points) | Shape::Polygon(points) => BoundingBox::around(points),
        }
    }

    /// The position radius queries measure from: the point itself, or the mean of the vertices.
    pub fn reference_point(&self) -> GeoPoint {
        match &self.shape {
            Shape::Point(p) => *p,
            Shape::Line(points) | Shape::Polygon(points) => {
                let n = points.len().max(1) as f64;
                let (lon, lat) = points.iter().fold((0.0, 0.0), |(x, y), p| (x + p.lon, y + p.lat));
                GeoPoint { lon: lon / n, lat: lat / n }
            }
        }
    }
}

fn check_positions(points: &[GeoPoint], shape: &'static str, min: usize) -> Result<(), GeometryError> {
    if points.len() > MAX_VERTICES {
        return Err(GeometryError::TooManyPositions { max: MAX_VERTICES, got: points.len() });
    }
    for (i, p) in points.iter().enumerate() {
        p.validate(i)?;
    }
    let mut distinct = 0;
    for (i, p) in points.iter().enumerate() {
        if !points[..i].contains(p) {
            distinct += 1;
        }
        if distinct >= min {
            return Ok(());
        }
    }
    Err(GeometryError::TooFewPositions { shape, min, got: distinct })
}

impl BoundingBox {
    /// A validated box.
    pub fn new(min_lon: f64, min_lat: f64, max_lon: f64, max_lat: f64) -> Result<Self, GeometryError> {
        let b = BoundingBox { min_lon, min_lat, max_lon, max_lat };
        let finite = [min_lon, min_lat, max_lon, max_lat].iter().all(|v| v.is_finite());
        if !finite || min_lon > max_lon || min_lat > max_lat {
            return Err(GeometryError::BadBox);
        }
        Ok(b)
    }

    fn around(points: &[GeoPoint]) -> Self {
        let mut b = BoundingBox {
            min_lon: f64::INFINITY,
            min_lat: f64::INFINITY,
            max_lon: f64::NEG_INFINITY,
            max_lat: f64::NEG_INFINITY,
        };
        for p in points {
            b.min_lon = b.min_lon.min(p.lon);
            b.min_lat = b.min_lat.min(p.lat);
            b.max_lon = b.max_lon.max(p.lon);
            b.max_lat = b.max_lat.max(p.lat);
        }
        b
    }

    /// Whether the boxes share any point (edges included).
    pub fn intersects(&self, other: &BoundingBox) -> bool {
        self.min_lon <= other.max_lon
            && other.min_lon <= self.max_lon
            && self.min_lat <= other.max_lat
            && other.min_lat <= self.max_lat
    }

    /// A box that contains the circle of `radius_m` around `center` (widened at the poles).
    pub fn around_circle(center: GeoPoint, radius_m: f64) -> Self {
        let dlat = (radius_m / EARTH_RADIUS_M).to_degrees();
        let cos = center.lat.to_radians().cos().max(1e-6);
        let dlon = (dlat / cos).min(360.0);
        BoundingBox {
            min_lon: center.lon - dlon,
            min_lat: center.lat - dlat,
            max_lon: center.lon + dlon,
            max_lat: center.lat + dlat,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haversine_matches_known_distance() {
        // Wuyi Square to Orange Isle bridge, about 2.4 km west.
        let a = GeoPoint { lon: 112.9770, lat: 28.1960 };
        let b = GeoPoint { lon: 112.9525, lat: 28.1960 };
        let d = a.distance_m(&b);
        assert!((d - 2_402.0).abs() < 10.0, "{d}");
    }

    #[test]
    fn polygon_rings_are_stored_open_and_checked() {
        let ring = vec![
            GeoPoint { lon: 0.0, lat: 0.0 },
            GeoPoint { lon: 1.0, lat: 0.0 },
            GeoPoint { lon: 1.0, lat: 1.0 },
            GeoPoint { lon: 0.0, lat: 0.0 },
        ];
        let g = Geometry { shape: Shape::Polygon(ring), height_m: 30.0 }.validated().unwrap();
        assert!(matches!(&g.shape, Shape::Polygon(r) if r.len() == 3));
        let degenerate =
            vec![GeoPoint { lon: 0.0, lat: 0.0 }, GeoPoint { lon: 1.0, lat: 0.0 }, GeoPoint { lon: 0.0, lat: 0.0 }];
        let err = Geometry { shape: Shape::Polygon(degenerate), height_m: 0.0 }.validated().unwrap_err();
        assert_eq!(err, GeometryError::TooFewPositions { shape: "polygon", min: 3, got: 2 });
    }

    #[test]
    fn rejects_nan_and_out_of_range() {
        assert!(Geometry::point(f64::NAN, 1.0).validated().is_err());
        assert!(Geometry::point(181.0, 1.0).validated().is_err());
        let g = Geometry { shape: Shape::Point(GeoPoint { lon: 1.0, lat: 1.0 }), height_m: -1.0 };
        assert_eq!(g.validated().unwrap_err(), GeometryError::BadHeight(-1.0));
        assert!(BoundingBox::new(1.0, 0.0, 0.0, 1.0).is_err());
    }

    #[test]
    fn circle_box_contains_circle() {
        let c = GeoPoint { lon: 112.94, lat: 28.23 };
        let b = BoundingBox::around_circle(c, 1_000.0);
        let east = GeoPoint { lon: b.max_lon, lat: c.lat };
        assert!(c.distance_m(&east) >= 999.0);
    }
}
