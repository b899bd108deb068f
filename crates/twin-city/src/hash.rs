//! A content hash of a city that is stable across runs, platforms and Rust versions: 64-bit FNV-1a over
//! a canonical byte encoding of every entity (unlike `std`'s `DefaultHasher`, whose output may change).
//!
//! Encoding, in entity order: id, type, geometry (shape tag, coordinates as IEEE-754 bits little-endian,
//! height), relationships and attributes in name order (the maps are sorted), each attribute's reported
//! and desired value with its timestamps, then the entity revision. Strings are length-prefixed, so no
//! two different entities encode to the same bytes.

use twin_model::{Entity, Geometry, Reported, Shape, Value};

const OFFSET: u64 = 0xCBF2_9CE4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01B3;

/// A 64-bit FNV-1a hasher.
#[derive(Debug, Clone)]
pub struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(OFFSET)
    }
}

impl Fnv1a {
    /// Feeds bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(PRIME);
        }
    }

    /// Feeds a `u64`, little-endian.
    pub fn write_u64(&mut self, v: u64) {
        self.write(&v.to_le_bytes());
    }

    /// Feeds an `f64` by its bits (`-0.0` counted as `0.0`).
    pub fn write_f64(&mut self, v: f64) {
        let v = if v == 0.0 { 0.0 } else { v };
        self.write_u64(v.to_bits());
    }

    /// Feeds a length-prefixed string.
    pub fn write_str(&mut self, s: &str) {
        self.write_u64(s.len() as u64);
        self.write(s.as_bytes());
    }

    /// The hash so far.
    pub fn finish(&self) -> u64 {
        self.0
    }

    /// Feeds the canonical encoding of one entity.
    pub fn write_entity(&mut self, e: &Entity) {
        self.write_str(e.header.id.as_str());
        self.write_str(e.header.entity_type.as_str());
        match &e.header.geometry {
            None => self.write(&[0]),
            Some(g) => self.write_geometry(g),
        }
        self.write_u64(e.header.relationships.len() as u64);
        for (name, target) in &e.header.relationships {
            self.write_str(name.as_str());
            self.write_str(target.as_str());
        }
        self.write_u64(e.attributes.len() as u64);
        for (name, state) in &e.attributes {
            self.write_str(name.as_str());
            self.write_reported(state.reported.as_ref());
            self.write_reported(state.desired.as_ref());
        }
        self.write_u64(e.revision);
    }

    fn write_geometry(&mut self, g: &Geometry) {
        let (tag, points) = match &g.shape {
            Shape::Point(p) => (1u8, std::slice::from_ref(p)),
            Shape::Line(points) => (2, points.as_slice()),
            Shape::Polygon(points) => (3, points.as_slice()),
        };
        self.write(&[tag]);
        self.write_u64(points.len() as u64);
        for p in points {
            self.write_f64(p.lon);
            self.write_f64(p.lat);
        }
        self.write_f64(g.height_m);
    }

    fn write_reported(&mut self, r: Option<&Reported>) {
        let Some(r) = r else {
            self.write(&[0]);
            return;
        };
        match &r.value {
            Value::Number(v) => {
                self.write(&[1]);
                self.write_f64(*v);
            }
            Value::Integer(v) => {
                self.write(&[2]);
                self.write(&v.to_le_bytes());
            }
            Value::Bool(v) => self.write(&[3, u8::from(*v)]),
            Value::Text(t) => {
                self.write(&[4]);
                self.write_str(t);
            }
            Value::Point(p) => {
                self.write(&[5]);
                self.write_f64(p.lon);
                self.write_f64(p.lat);
            }
        }
        self.write(&r.observed_at.to_le_bytes());
        self.write(&r.received_at.to_le_bytes());
        self.write_u64(r.revision);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_published_fnv1a_vectors() {
        let mut h = Fnv1a::default();
        assert_eq!(h.finish(), 0xCBF2_9CE4_8422_2325);
        h.write(b"a");
        assert_eq!(h.finish(), 0xAF63_DC4C_8601_EC8C);
        let mut h = Fnv1a::default();
        h.write(b"foobar");
        assert_eq!(h.finish(), 0x8594_4171_F739_67E8);
    }
}
