//! The Changsha demonstration city, generated deterministically from a seed.
//!
//! The geography is fixed and follows the real city (approximate WGS84); the seed varies what a
//! planner would vary: the spacing of the street grid, the blocks chosen for retention parks, every
//! building's footprint, height and use, and where sensors sit.
//!
//! - [`water`]: the Xiang River (about 1 km wide, centred on 112.958 E) with Orange Isle (28.165-28.21 N,
//!   50-200 m wide), the Liuyang River joining from the east near 28.254 N, Meixi Lake at 112.893 E.
//! - [`terrain`]: the plain at 38-50 m and Yuelu Mountain (300 m at 112.935 E 28.185 N), as zoom-16
//!   `TerrainTile`s.
//! - [`districts`]: Yuelu (west bank), Kaifu (north), Furong (centre, the Wuyi Square CBD), Tianxin
//!   (south), Yuhua (south-east).
//! - [`roads`]: an axis-aligned grid (blocks of 200-270 m; every fourth line an arterial, every second a
//!   collector), the 2nd and 3rd ring roads, named arterials, and bridges where the grid crosses the
//!   Xiang (six named crossings) or an arterial crosses the Liuyang. Roads stop at water and parks.
//! - [`parks`]: Yuelu Mountain scenic area, Orange Isle, Martyrs' Park and sponge-city retention parks.
//! - [`buildings`]: footprints inside the blocks between roads, inset by the road half-width plus a
//!   setback, so no building touches a road by construction; lots near water are checked exactly.
//!   Heights and uses follow each area's character.
//! - [`sensors`]: the devices of every smart-city domain, each linked to its district and to its road,
//!   building, water body, park, car park or hospital.
//!
//! Entity order: districts, water bodies, terrain tiles, parks, road segments, bridges, buildings,
//! then sensors by type. Ids are NGSI-LD URNs numbered per type and district in that order, e.g.
//! `urn:ngsi-ld:Building:changsha:furong:012345`.

pub mod buildings;
pub mod districts;
pub mod parks;
pub mod roads;
pub mod sensors;
pub mod terrain;
pub mod water;

use std::collections::HashMap;

use twin_model::{BoundingBox, EntityId, GeoPoint};

use crate::{City, geo::Projection, make::entity_id};
use districts::{District, Districts};
use terrain::Terrain;
use water::Water;

/// The seed of the default demonstration city.
pub const DEFAULT_SEED: u64 = 2_024;

/// The centre of the local frame.
pub const CENTRE: GeoPoint = GeoPoint { lon: 112.95, lat: 28.20 };

/// The area the city covers.
pub const BOUNDS: BoundingBox = BoundingBox { min_lon: 112.85, min_lat: 28.10, max_lon: 113.05, max_lat: 28.30 };

/// Wuyi Square, the centre of the CBD.
pub const WUYI_SQUARE: GeoPoint = GeoPoint { lon: 112.977, lat: 28.196 };

/// Radius of the CBD around Wuyi Square, in metres: towers of 150-452 m stand only here.
pub const CBD_RADIUS_M: f64 = 1_000.0;

/// The city's bounding box.
pub fn bounds() -> BoundingBox {
    BOUNDS
}

/// The fixed frame every layer is built in.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The local projection around [`CENTRE`].
    pub proj: Projection,
    /// Water.
    pub water: Water,
    /// Terrain.
    pub terrain: Terrain,
    /// Districts.
    pub districts: Districts,
}

impl Frame {
    /// The frame for `seed`.
    pub fn new(seed: u64) -> Self {
        let proj = Projection::new(CENTRE);
        let water = Water::new(&proj);
        let terrain = Terrain::new(&proj, seed);
        let districts = Districts::new(&proj, &water);
        Frame { proj, water, terrain, districts }
    }

    /// The district at `p`.
    pub fn district_at(&self, p: crate::geo::Xy) -> District {
        self.districts.at(&self.water, p)
    }
}

/// Numbers entities per type and district: `urn:ngsi-ld:{type}:changsha:{district}:{n}`.
#[derive(Debug, Default)]
pub(crate) struct Ids(HashMap<(&'static str, District), u32>);

impl Ids {
    pub(crate) fn next(&mut self, entity_type: &'static str, d: District, width: usize) -> EntityId {
        let n = self.0.entry((entity_type, d)).or_insert(0);
        *n += 1;
        entity_id(&format!("urn:ngsi-ld:{entity_type}:changsha:{}:{:0width$}", d.slug(), n))
    }
}

/// Generates the Changsha demonstration city for `seed` (see the module docs for the layout).
pub fn changsha(seed: u64) -> City {
    let frame = Frame::new(seed);
    let mut ids = Ids::default();
    let mut entities = frame.districts.entities(&frame.proj);
    entities.extend(frame.water.entities(&frame.proj));
    entities.extend(frame.terrain.tiles(&frame));
    let grid = roads::Grid::new(&frame, seed);
    let parks = parks::plan(&frame, &grid, seed);
    entities.extend(parks::entities(&frame, &parks));
    let mut roads = roads::build(&frame, &grid, &parks, &mut ids);
    entities.append(&mut roads.entities);
    let mut buildings = buildings::build(&frame, &grid, &parks, &roads, seed, &mut ids);
    entities.append(&mut buildings.entities);
    sensors::build(&frame, &parks, &roads, &buildings, seed, &mut ids, &mut entities);
    City { name: "changsha".to_owned(), entities }
}
