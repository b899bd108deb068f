//! The City Twin domain model: what an entity is, what values it carries, and which updates are valid.
//!
//! No I/O lives here; the store, the cloud service, the edge agent and the viewer all share these types.
//!
//! - [`id`]: validated names: [`EntityId`] (URN-like, printable ASCII, at most 256 bytes), [`AttrName`],
//!   [`TypeName`], [`EdgeId`].
//! - [`value`]: attribute values ([`Value`]) and their kinds.
//! - [`geometry`]: WGS84 points, line strings and polygon footprints with a height, bounding boxes and
//!   great-circle distance.
//! - [`entity`]: [`Entity`], its reported/desired attribute state and relationships.
//! - [`catalog`]: the entity-type catalog (built-in smart-city types plus types loaded from a file) and
//!   the validation of updates against it ([`Violation`]).
//! - [`aqi`]: the China Air Quality Index (HJ 633-2012) from pollutant concentrations.

pub mod aqi;
pub mod catalog;
pub mod entity;
pub mod geometry;
pub mod id;
pub mod value;

pub use catalog::{AttributeDef, Catalog, CatalogError, EntityTypeDef, Violation};
pub use entity::{AttributeState, Entity, EntityStatic, Reported};
pub use geometry::{BoundingBox, GeoPoint, Geometry, GeometryError, Shape};
pub use id::{AttrName, EdgeId, EntityId, IdError, TypeName};
pub use value::{Value, ValueKind};

/// Milliseconds since the Unix epoch, UTC. Every timestamp in the twin uses this unit.
pub type UnixMs = i64;

/// The earliest observed time the twin accepts (2000-01-01T00:00:00Z). Static attributes (a building's
/// height, a road's lane count) carry it, so that any live reading wins over them.
pub const MIN_OBSERVED_AT: UnixMs = 946_684_800_000;

/// The current wall-clock time in [`UnixMs`].
pub fn now_unix_ms() -> UnixMs {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
