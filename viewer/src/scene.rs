//! From entities to GPU-ready geometry.
//!
//! The static layers (ground, terrain, parks, water, roads and district boundaries, extruded buildings) are merged into one
//! [`Mesh`] per layer, each drawn in one call; every sensor or device with a point becomes one
//! [`Glyph`] instance, all drawn in one instanced call. Layers lie at small fixed heights so they never
//! fight for depth: ground < terrain < water < parks (Orange Isle lies in the river) < roads < district
//! boundaries. Which entity is which comes from the catalog types of the data, not from any one city.
//!
//! Edge boxes (`EdgeNode`) stand out from the sensors they feed: a glyph [`EDGE_GLYPH_SIZE`] wide, and a
//! map marker in the colour of its link state: a dot and a ring on the ground around it and a line to the
//! centre of its district (`refDistrict`). A marker keeps its size on screen (about 26 pixels across,
//! never smaller than a few dozen metres up close) and is drawn over everything, so a box shows in the
//! whole-city view and behind towers. Markers live in a small [`Scene::edge_overlay`] mesh whose vertices
//! hold an anchor and an offset in marker units (see [`MARKER_FLOOR_M`]), rebuilt whenever a box's state
//! changes.

use std::{collections::HashMap, ops::Range};

use bytemuck::{Pod, Zeroable};
use glam::{Vec2, Vec3};
use twin_model::{BoundingBox, Entity, GeoPoint, Shape, Value};

use crate::{
    lod::{BuildingParts, BuildingTiles},
    pick::{BuildingGrid, Footprint, Picked},
    project::Projection,
    style::live_color,
    triangulate::triangulate,
};

/// A vertex of the merged meshes.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
pub struct Vertex {
    /// World position.
    pub pos: [f32; 3],
    /// Unit normal.
    pub normal: [f32; 3],
    /// Linear RGBA.
    pub color: [f32; 4],
}

/// One sensor's instance data: where it is, how big, which colour. A live update rewrites only this.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
pub struct Glyph {
    /// World position of its base.
    pub center: [f32; 3],
    /// Width in metres (height is twice that).
    pub size: f32,
    /// Linear RGBA.
    pub color: [f32; 4],
}

/// Indexed triangles.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mesh {
    /// Vertices.
    pub vertices: Vec<Vertex>,
    /// Triangle list indices.
    pub indices: Vec<u32>,
}

impl Mesh {
    fn push_polygon(&mut self, ring: &[[f64; 2]], y: f32, color: [f32; 4]) {
        let base = self.vertices.len() as u32;
        for p in ring {
            self.vertices.push(Vertex { pos: [p[0] as f32, y, -p[1] as f32], normal: [0.0, 1.0, 0.0], color });
        }
        for t in triangulate(ring) {
            // Triangles come counter-clockwise in the (east, north) plane, which is counter-clockwise seen
            // from above with north up: front faces, which back-face culling keeps.
            self.indices.extend_from_slice(&[base + t[0], base + t[1], base + t[2]]);
        }
    }

    fn push_quad(&mut self, corners: [Vec3; 4], normal: Vec3, color: [f32; 4]) {
        let base = self.vertices.len() as u32;
        for c in corners {
            self.vertices.push(Vertex { pos: c.into(), normal: normal.into(), color });
        }
        self.indices.extend_from_slice(&[base, base + 1, base + 2, base, base + 2, base + 3]);
    }

    /// Extrudes a footprint to `height`: a roof and one wall per edge, each with its own normal. Returns
    /// the range of its vertices and where its roof and wall triangles are.
    fn push_extrusion(
        &mut self,
        ring: &[[f64; 2]],
        height: f32,
        roof: [f32; 4],
        wall: [f32; 4],
    ) -> (Range<u32>, BuildingParts) {
        let first = self.vertices.len() as u32;
        let roof_start = self.indices.len() as u32;
        self.push_polygon(ring, height, roof);
        let walls_start = self.indices.len() as u32;
        let n = ring.len();
        let ccw =
            (0..n).map(|i| ring[i][0] * ring[(i + 1) % n][1] - ring[(i + 1) % n][0] * ring[i][1]).sum::<f64>() > 0.0;
        for i in 0..n {
            let (a, b) = if ccw { (ring[i], ring[(i + 1) % n]) } else { (ring[(i + 1) % n], ring[i]) };
            let (pa, pb) = (Vec3::new(a[0] as f32, 0.0, -a[1] as f32), Vec3::new(b[0] as f32, 0.0, -b[1] as f32));
            let along = pb - pa;
            if along.length_squared() < 1e-6 {
                continue;
            }
            // Outward normal of a counter-clockwise ring (seen from above): the edge turned right.
            let normal = Vec3::new(-along.z, 0.0, along.x).normalize();
            let up = Vec3::new(0.0, height, 0.0);
            self.push_quad([pa, pb, pb + up, pa + up], normal, wall);
        }
        let parts = BuildingParts { roof: roof_start..walls_start, walls: walls_start..self.indices.len() as u32 };
        (first..self.vertices.len() as u32, parts)
    }

    /// A marker quad: four corners at `anchors`, each moved by its `offsets` (marker units, scaled on the
    /// GPU). Marker vertices carry the offset where other meshes carry the normal.
    fn push_marker_quad(&mut self, anchors: [Vec3; 4], offsets: [Vec3; 4], color: [f32; 4]) {
        let base = self.vertices.len() as u32;
        for (pos, offset) in anchors.into_iter().zip(offsets) {
            self.vertices.push(Vertex { pos: pos.into(), normal: offset.into(), color });
        }
        self.indices.extend_from_slice(&[base, base + 1, base + 2, base, base + 2, base + 3]);
    }

    /// A flat marker ring around `anchor`, between `inner` and `outer` marker units (a disc if `inner` is 0).
    fn push_marker_ring(&mut self, anchor: Vec3, inner: f32, outer: f32, color: [f32; 4]) {
        const SEGMENTS: usize = 32;
        for i in 0..SEGMENTS {
            let dir = |k: usize| {
                let angle = (k % SEGMENTS) as f32 / SEGMENTS as f32 * std::f32::consts::TAU;
                Vec3::new(angle.cos(), 0.0, angle.sin())
            };
            let (a, b) = (dir(i), dir(i + 1));
            self.push_marker_quad([anchor; 4], [a * inner, a * outer, b * outer, b * inner], color);
        }
    }

    /// A flat marker line from `from` to `to`, `width` marker units wide.
    fn push_marker_line(&mut self, from: Vec3, to: Vec3, width: f32, color: [f32; 4]) {
        let along = to - from;
        if along.length_squared() < 1e-6 {
            return;
        }
        let side = Vec3::new(-along.z, 0.0, along.x).normalize() * (width / 2.0);
        self.push_marker_quad([from, to, to, from], [-side, -side, side, side], color);
    }

    /// An upright box (a beacon's parts): `lo` and `hi` are opposite corners.
    fn push_box(&mut self, lo: Vec3, hi: Vec3, color: [f32; 4]) {
        let (a, b) = (lo, hi);
        let c = |x: f32, y: f32, z: f32| Vec3::new(x, y, z);
        self.push_quad([c(a.x, b.y, b.z), c(b.x, b.y, b.z), c(b.x, b.y, a.z), c(a.x, b.y, a.z)], Vec3::Y, color);
        self.push_quad([c(a.x, a.y, b.z), c(b.x, a.y, b.z), c(b.x, b.y, b.z), c(a.x, b.y, b.z)], Vec3::Z, color);
        self.push_quad([c(b.x, a.y, a.z), c(a.x, a.y, a.z), c(a.x, b.y, a.z), c(b.x, b.y, a.z)], Vec3::NEG_Z, color);
        self.push_quad([c(b.x, a.y, b.z), c(b.x, a.y, a.z), c(b.x, b.y, a.z), c(b.x, b.y, b.z)], Vec3::X, color);
        self.push_quad([c(a.x, a.y, a.z), c(a.x, a.y, b.z), c(a.x, b.y, b.z), c(a.x, b.y, a.z)], Vec3::NEG_X, color);
    }

    /// A flat strip along a polyline (a road).
    fn push_strip(&mut self, line: &[[f64; 2]], width: f32, y: f32, color: [f32; 4]) {
        for w in line.windows(2) {
            let (a, b) = (Vec3::new(w[0][0] as f32, y, -w[0][1] as f32), Vec3::new(w[1][0] as f32, y, -w[1][1] as f32));
            let along = b - a;
            if along.length_squared() < 1e-6 {
                continue;
            }
            // `side` points right of the direction of travel: this order is counter-clockwise from above.
            let side = Vec3::new(-along.z, 0.0, along.x).normalize() * (width / 2.0);
            self.push_quad([a + side, b + side, b - side, a - side], Vec3::Y, color);
        }
    }

    /// Orders the triangles top layer first (by height), so that drawn in order, the fragments of a lower
    /// layer under an upper one fail the depth test before they are shaded: the flat layers cover the view
    /// several times over (ground, terrain, water, parks), and a software adapter pays for every fragment.
    fn sort_top_first(&mut self) {
        let y = |t: &[u32]| {
            t.iter().map(|i| self.vertices.get(*i as usize).map_or(0.0, |v| v.pos[1])).fold(f32::MIN, f32::max)
        };
        let mut triangles: Vec<[u32; 3]> = self.indices.chunks_exact(3).map(|t| [t[0], t[1], t[2]]).collect();
        triangles.sort_by(|a, b| y(b).total_cmp(&y(a)));
        self.indices = triangles.into_iter().flatten().collect();
    }

    /// Number of triangles.
    pub fn triangles(&self) -> usize {
        self.indices.len() / 3
    }
}

/// The layers a user can switch on and off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layer {
    /// Ground, terrain, water and parks.
    Land,
    /// Roads.
    Roads,
    /// Buildings.
    Buildings,
    /// Sensors and devices.
    Sensors,
}

/// Heights of the flat layers, in metres.
const GROUND_Y: f32 = -1.0;
const TERRAIN_Y: f32 = 0.0;
const WATER_Y: f32 = 0.4;
const PARK_Y: f32 = 0.8;
const ROAD_Y: f32 = 1.2;
const BOUNDARY_Y: f32 = 1.6;
const EDGE_Y: f32 = 2.0;
/// District boundaries are drawn this wide, in metres.
const BOUNDARY_WIDTH: f32 = 30.0;
/// A sensor glyph's width in metres.
pub const GLYPH_SIZE: f32 = 8.0;
/// An edge box's glyph width in metres: two and a half sensors, so a box stands out among what it feeds.
pub const EDGE_GLYPH_SIZE: f32 = 20.0;
/// A marker unit is a pixel, but never less than this many metres: far away a marker keeps its size on
/// screen (the whole-city view is about 20 metres a pixel, where a box itself is one pixel); up close it
/// keeps its size on the ground and does not swamp the street.
pub const MARKER_FLOOR_M: f32 = 4.0;
/// An edge box's marker: the dot's radius, then the ring's inner and outer radius, in marker units.
pub const EDGE_MARKER_UNITS: (f32, f32, f32) = (4.0, 9.0, 13.0);
/// The width of the line from an edge box to its district's centre, in marker units.
pub const EDGE_LINK_UNITS: f32 = 3.0;
/// The catalog type of edge boxes.
pub const EDGE_NODE: &str = "EdgeNode";
/// An edge box's colour before it reports its link state (sRGB): grey, the state is unknown.
pub const EDGE_UNREPORTED: (u8, u8, u8) = (150, 150, 160);

/// An sRGB colour as linear RGBA.
pub fn srgb(r: u8, g: u8, b: u8) -> [f32; 4] {
    let lin = |c: u8| {
        let c = f32::from(c) / 255.0;
        if c <= 0.04045 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
    };
    [lin(r), lin(g), lin(b), 1.0]
}

/// The colours of the static layers (sRGB).
pub mod palette {
    /// Open ground.
    pub const GROUND: (u8, u8, u8) = (196, 204, 186);
    /// Water.
    pub const WATER: (u8, u8, u8) = (52, 101, 164);
    /// Parks.
    pub const PARK: (u8, u8, u8) = (110, 160, 96);
    /// Roads.
    pub const ROAD: (u8, u8, u8) = (92, 92, 98);
    /// District boundaries.
    pub const BOUNDARY: (u8, u8, u8) = (150, 60, 150);
    /// Building roofs.
    pub const ROOF: (u8, u8, u8) = (226, 220, 208);
    /// Building walls.
    pub const WALL: (u8, u8, u8) = (200, 192, 178);
    /// The selected entity: a building's roof and walls, a sensor's beacon. No layer or live scale uses it
    /// (the sensors' cyans, blues, yellows and reds would be mistaken for a state).
    pub const SELECTION: (u8, u8, u8) = (255, 40, 170);
    /// The selected building's walls: the selection colour a little darker, so its shape still reads.
    pub const SELECTION_WALL: (u8, u8, u8) = (215, 30, 140);
}

fn rgb(c: (u8, u8, u8)) -> [f32; 4] {
    srgb(c.0, c.1, c.2)
}

/// Terrain tinted by elevation: lowland green to hill brown.
fn terrain_color(elevation_m: f64) -> [f32; 4] {
    let t = ((elevation_m - 30.0) / 250.0).clamp(0.0, 1.0) as f32;
    let (lo, hi) = (rgb((176, 196, 160)), rgb((150, 130, 100)));
    [lo[0] + (hi[0] - lo[0]) * t, lo[1] + (hi[1] - lo[1]) * t, lo[2] + (hi[2] - lo[2]) * t, 1.0]
}

/// A glyph's colour by domain, for types without live colouring or before their first value.
pub fn glyph_color(entity_type: &str) -> [f32; 4] {
    match entity_type {
        "AirQualityObserved" | "NoiseLevelObserved" | "WeatherObserved" => srgb(0, 170, 200),
        "TrafficFlowObserved" | "TrafficSignal" | "ParkingSpot" | "OffStreetParking" | "Bus" => srgb(235, 140, 20),
        "Streetlight" | "Substation" | "PhotovoltaicMeasurement" | "EVChargingStation" => srgb(250, 215, 40),
        "WasteContainer" => srgb(140, 90, 50),
        "RiverGauge" | "RainGauge" | "RetentionPark" => srgb(30, 60, 220),
        EDGE_NODE => srgb(EDGE_UNREPORTED.0, EDGE_UNREPORTED.1, EDGE_UNREPORTED.2),
        _ => srgb(220, 60, 60),
    }
}

/// A point of interest the cameras can frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Landmark {
    /// A short key, e.g. `orange-isle`.
    pub key: String,
    /// Its centre in world space.
    pub center: Vec3,
    /// Its radius in metres.
    pub radius: f32,
}

/// An edge box: its glyph and where its link line goes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EdgeBox {
    /// Its glyph index.
    pub glyph: usize,
    /// The centre of its district (`refDistrict`) on the ground, if the district is in the scene.
    pub district_center: Option<Vec3>,
}

/// Everything the renderer draws, built once from the static entities.
#[derive(Debug, Clone, Default)]
pub struct Scene {
    /// The projection used.
    pub projection: Option<Projection>,
    /// Ground, terrain, water, parks.
    pub land: Mesh,
    /// Roads.
    pub roads: Mesh,
    /// Extruded buildings.
    pub buildings: Mesh,
    /// Sensor glyphs, one per point entity of a sensor or device type.
    pub glyphs: Vec<Glyph>,
    /// The entity id of each glyph, and where to find a glyph by id.
    pub glyph_ids: Vec<String>,
    /// Glyph index by entity id.
    pub glyph_index: HashMap<String, usize>,
    /// World-space bounds of everything (min, max).
    pub bounds: (Vec3, Vec3),
    /// Points of interest (the tallest buildings' cluster, named parks).
    pub landmarks: Vec<Landmark>,
    /// Every building as picking sees it, in the order of its vertices in `buildings`.
    pub footprints: Vec<Footprint>,
    /// Footprint index by entity id.
    pub footprint_index: HashMap<String, usize>,
    /// The footprints filed by ground cell, for picking.
    pub building_grid: BuildingGrid,
    /// The buildings' roofs and walls filed by ground tile, for level of detail.
    pub building_tiles: BuildingTiles,
    /// The edge boxes among the glyphs.
    pub edges: Vec<EdgeBox>,
    /// Each district's centre on the ground, by id: an edge box that appears later links to it.
    pub district_centers: HashMap<String, Vec3>,
}

/// The district an edge box serves (`refDistrict`).
fn district_of(e: &Entity) -> Option<&str> {
    e.header.relationships.iter().find(|(k, _)| k.as_str() == "refDistrict").map(|(_, id)| id.as_str())
}

fn number(e: &Entity, attribute: &str) -> Option<f64> {
    match e.reported(attribute)? {
        Value::Number(v) => Some(*v),
        Value::Integer(v) => Some(*v as f64),
        _ => None,
    }
}

/// The bounding box of all geometry, in degrees.
fn geo_bounds(entities: &[Entity]) -> Option<BoundingBox> {
    let mut b: Option<BoundingBox> = None;
    let mut add = |p: &GeoPoint| {
        let bb = b.get_or_insert(BoundingBox { min_lon: p.lon, min_lat: p.lat, max_lon: p.lon, max_lat: p.lat });
        bb.min_lon = bb.min_lon.min(p.lon);
        bb.max_lon = bb.max_lon.max(p.lon);
        bb.min_lat = bb.min_lat.min(p.lat);
        bb.max_lat = bb.max_lat.max(p.lat);
    };
    for e in entities {
        match e.header.geometry.as_ref().map(|g| &g.shape) {
            Some(Shape::Point(p)) => add(p),
            Some(Shape::Line(ps) | Shape::Polygon(ps)) => ps.iter().for_each(&mut add),
            None => {}
        }
    }
    b
}

impl Scene {
    /// Builds the scene from `entities` (any city: what is drawn follows the catalog types).
    pub fn build(entities: &[Entity]) -> Scene {
        let Some(bb) = geo_bounds(entities) else { return Scene::default() };
        let origin = GeoPoint { lon: (bb.min_lon + bb.max_lon) / 2.0, lat: (bb.min_lat + bb.max_lat) / 2.0 };
        let proj = Projection::new(origin);
        let mut scene = Scene { projection: Some(proj), ..Scene::default() };
        let (lo, hi) = (
            proj.to_plane(GeoPoint { lon: bb.min_lon, lat: bb.min_lat }),
            proj.to_plane(GeoPoint { lon: bb.max_lon, lat: bb.max_lat }),
        );
        let margin = 500.0;
        let ground = [
            [lo[0] - margin, lo[1] - margin],
            [hi[0] + margin, lo[1] - margin],
            [hi[0] + margin, hi[1] + margin],
            [lo[0] - margin, hi[1] + margin],
        ];
        scene.land.push_polygon(&ground, GROUND_Y, rgb(palette::GROUND));
        let mut max_height = 0.0f32;
        let mut towers: Vec<(f32, Vec3)> = Vec::new();
        let mut parts: Vec<BuildingParts> = Vec::new();
        let mut edge_districts: Vec<(usize, Option<&str>)> = Vec::new();
        let ring = |ps: &[GeoPoint]| ps.iter().map(|p| proj.to_plane(*p)).collect::<Vec<_>>();
        for e in entities {
            let Some(geometry) = e.header.geometry.as_ref() else { continue };
            let t = e.header.entity_type.as_str();
            match (&geometry.shape, t) {
                (Shape::Polygon(ps), "TerrainTile") => {
                    let elevation = number(e, "meanElevation").unwrap_or(0.0);
                    scene.land.push_polygon(&ring(ps), TERRAIN_Y, terrain_color(elevation));
                }
                (Shape::Polygon(ps), "WaterBody") => scene.land.push_polygon(&ring(ps), WATER_Y, rgb(palette::WATER)),
                (Shape::Polygon(ps), "Park" | "RetentionPark") => {
                    let r = ring(ps);
                    scene.land.push_polygon(&r, PARK_Y, rgb(palette::PARK));
                    if let Some(Value::Text(name)) = e.reported("name") {
                        scene.landmarks.push(landmark_of(name, &r));
                    }
                }
                (Shape::Polygon(ps), "Building") => {
                    let h = geometry.height_m.max(number(e, "height").unwrap_or(0.0)).max(3.0) as f32;
                    let r = ring(ps);
                    let (vertices, building) =
                        scene.buildings.push_extrusion(&r, h, rgb(palette::ROOF), rgb(palette::WALL));
                    parts.push(building);
                    scene.footprint_index.insert(e.header.id.to_string(), scene.footprints.len());
                    scene.footprints.push(Footprint {
                        id: e.header.id.to_string(),
                        ring: r.iter().map(|p| Vec2::new(p[0] as f32, -p[1] as f32)).collect(),
                        height_m: h,
                        vertices,
                    });
                    max_height = max_height.max(h);
                    let c = centroid(&r);
                    towers.push((h, Vec3::new(c[0] as f32, 0.0, -c[1] as f32)));
                }
                (Shape::Polygon(ps), "District") => {
                    let mut closed = ring(ps);
                    let c = centroid(&closed);
                    scene
                        .district_centers
                        .insert(e.header.id.to_string(), Vec3::new(c[0] as f32, EDGE_Y, -c[1] as f32));
                    if let Some(first) = closed.first().copied() {
                        closed.push(first);
                    }
                    scene.roads.push_strip(&closed, BOUNDARY_WIDTH, BOUNDARY_Y, rgb(palette::BOUNDARY));
                }
                (Shape::Line(ps), "RoadSegment") => {
                    let width = number(e, "widthM").unwrap_or(10.0) as f32;
                    scene.roads.push_strip(&ring(ps), width, ROAD_Y, rgb(palette::ROAD));
                }
                (Shape::Point(p), _) => {
                    let index = scene.push_glyph(e, proj.to_world(*p, ROAD_Y));
                    if t == EDGE_NODE {
                        edge_districts.push((index, district_of(e)));
                    }
                }
                _ => {}
            }
        }
        // The CBD: around the tallest buildings.
        towers.sort_by(|a, b| b.0.total_cmp(&a.0));
        let top: Vec<Vec3> = towers.iter().take(30).map(|t| t.1).collect();
        if !top.is_empty() {
            let center = top.iter().copied().sum::<Vec3>() / top.len() as f32;
            let radius = top.iter().map(|p| p.distance(center)).fold(300.0f32, f32::max);
            scene.landmarks.push(Landmark { key: "cbd".into(), center, radius });
        }
        scene.bounds =
            (Vec3::new(lo[0] as f32, 0.0, -hi[1] as f32), Vec3::new(hi[0] as f32, max_height, -lo[1] as f32));
        // Districts may come after the boxes in the listing: link them once all are known.
        scene.edges = edge_districts
            .into_iter()
            .map(|(glyph, district)| EdgeBox {
                glyph,
                district_center: district.and_then(|d| scene.district_centers.get(d).copied()),
            })
            .collect();
        scene.building_grid = BuildingGrid::build(&scene.footprints);
        scene.building_tiles = BuildingTiles::build(&scene.footprints, &parts, &scene.buildings.indices);
        scene.land.sort_top_first();
        scene
    }

    /// Where an edge box's marker is drawn: on the ground under its glyph.
    pub fn edge_anchor(&self, edge: &EdgeBox) -> Option<Vec3> {
        let glyph = self.glyphs.get(edge.glyph)?;
        Some(Vec3::new(glyph.center[0], EDGE_Y, glyph.center[2]))
    }

    /// Adds the glyph of an entity that appeared after the scene was built (an edge box registering its
    /// sensors, say), linking an edge box to its district. Returns its glyph index; `None` when the entity is
    /// not a point, is already in the scene, or the scene is empty (nothing to place it against).
    pub fn add_point(&mut self, e: &Entity) -> Option<usize> {
        let proj = self.projection?;
        let Some(Shape::Point(p)) = e.header.geometry.as_ref().map(|g| &g.shape) else { return None };
        if self.glyph_index.contains_key(e.header.id.as_str()) {
            return None;
        }
        let index = self.push_glyph(e, proj.to_world(*p, ROAD_Y));
        if e.header.entity_type.as_str() == EDGE_NODE {
            let district_center = district_of(e).and_then(|d| self.district_centers.get(d).copied());
            self.edges.push(EdgeBox { glyph: index, district_center });
        }
        Some(index)
    }

    fn push_glyph(&mut self, e: &Entity, center: Vec3) -> usize {
        let t = e.header.entity_type.as_str();
        let index = self.glyphs.len();
        self.glyph_index.insert(e.header.id.to_string(), index);
        self.glyph_ids.push(e.header.id.to_string());
        let color = live_color(t, |a| e.reported(a)).unwrap_or_else(|| glyph_color(t));
        let size = if t == EDGE_NODE { EDGE_GLYPH_SIZE } else { GLYPH_SIZE };
        self.glyphs.push(Glyph { center: center.into(), size, color });
        index
    }

    /// The edge boxes' markers (dot, ring, link line) in their glyphs' current colours: a marker mesh,
    /// its vertices' normals holding offsets in marker units. About 130 triangles a box: cheap to rebuild
    /// when a link state changes.
    pub fn edge_overlay(&self) -> Mesh {
        let mut mesh = Mesh::default();
        let (dot, inner, outer) = EDGE_MARKER_UNITS;
        for edge in &self.edges {
            let (Some(glyph), Some(at)) = (self.glyphs.get(edge.glyph), self.edge_anchor(edge)) else { continue };
            if let Some(to) = edge.district_center {
                mesh.push_marker_line(at, to, EDGE_LINK_UNITS, glyph.color);
            }
            mesh.push_marker_ring(at, 0.0, dot, glyph.color);
            mesh.push_marker_ring(at, inner, outer, glyph.color);
        }
        mesh
    }

    /// Whether glyph `index` is an edge box's.
    pub fn is_edge_glyph(&self, index: usize) -> bool {
        self.edges.iter().any(|e| e.glyph == index)
    }

    /// A sensor glyph or a building by entity id.
    pub fn find(&self, entity_id: &str) -> Option<Picked> {
        self.glyph_index
            .get(entity_id)
            .map(|i| Picked::Sensor(*i))
            .or_else(|| self.footprint_index.get(entity_id).map(|i| Picked::Building(*i)))
    }

    /// The entity id of what was picked.
    pub fn id_of(&self, picked: Picked) -> Option<&str> {
        match picked {
            Picked::Sensor(i) => self.glyph_ids.get(i).map(String::as_str),
            Picked::Building(i) => self.footprints.get(i).map(|f| f.id.as_str()),
        }
    }

    /// A point to look at for what was picked (a glyph's middle, a roof's centre) and a good distance.
    pub fn focus(&self, picked: Picked) -> Option<(Vec3, f32)> {
        match picked {
            Picked::Sensor(i) => self.glyphs.get(i).map(|g| (Vec3::from(g.center) + Vec3::Y * g.size, 250.0)),
            Picked::Building(i) => self.footprints.get(i).map(|f| {
                let (lo, hi) = f.bounds();
                (f.roof_center(), (hi - lo).length().max(f.height_m) * 3.0 + 100.0)
            }),
        }
    }

    /// The selected building's vertices, recoloured: written over its range of the buildings mesh.
    pub fn highlighted_building(&self, index: usize) -> Option<(u32, Vec<Vertex>)> {
        let f = self.footprints.get(index)?;
        let vertices = self.buildings.vertices.get(f.vertices.start as usize..f.vertices.end as usize)?;
        let (roof, wall) = (rgb(palette::SELECTION), rgb(palette::SELECTION_WALL));
        let recoloured =
            vertices.iter().map(|v| Vertex { color: if v.normal[1] > 0.5 { roof } else { wall }, ..*v }).collect();
        Some((f.vertices.start, recoloured))
    }

    /// The selected building's own vertices, to restore when it is no longer selected.
    pub fn building_vertices(&self, index: usize) -> Option<(u32, &[Vertex])> {
        let f = self.footprints.get(index)?;
        Some((f.vertices.start, self.buildings.vertices.get(f.vertices.start as usize..f.vertices.end as usize)?))
    }

    /// A beacon over the selected sensor: a thin mast from its top and a box on the mast, in the selection
    /// colour, so the glyph keeps its live colour and still shows which one is selected.
    pub fn sensor_beacon(&self, index: usize) -> Option<Mesh> {
        let g = self.glyphs.get(index)?;
        let base = Vec3::from(g.center) + Vec3::Y * (2.0 * g.size);
        let mast = g.size * 0.15;
        let top = base + Vec3::Y * (g.size * 6.0);
        let head = g.size * 0.9;
        let mut mesh = Mesh::default();
        let color = rgb(palette::SELECTION);
        mesh.push_box(base - Vec3::new(mast, 0.0, mast), top + Vec3::new(mast, 0.0, mast), color);
        mesh.push_box(top - Vec3::new(head, 0.0, head), top + Vec3::new(head, 2.0 * head, head), color);
        Some(mesh)
    }

    /// A landmark by key.
    pub fn landmark(&self, key: &str) -> Option<&Landmark> {
        self.landmarks.iter().find(|l| l.key == key)
    }

    /// Sets one glyph's colour (a live change): only that instance changes. Returns its index.
    pub fn set_glyph_color(&mut self, entity_id: &str, color: [f32; 4]) -> Option<usize> {
        let i = *self.glyph_index.get(entity_id)?;
        self.glyphs[i].color = color;
        Some(i)
    }

    /// Where an entity's glyph stands, if it has one.
    pub fn glyph_position(&self, entity_id: &str) -> Option<Vec3> {
        self.glyph_index.get(entity_id).map(|i| Vec3::from(self.glyphs[*i].center))
    }
}

fn centroid(r: &[[f64; 2]]) -> [f64; 2] {
    let n = r.len().max(1) as f64;
    [r.iter().map(|p| p[0]).sum::<f64>() / n, r.iter().map(|p| p[1]).sum::<f64>() / n]
}

/// A named park as a landmark: its key is the first word(s) of its name, lower-case, hyphenated
/// (`Orange Isle (Juzizhou) Park` -> `orange-isle`).
fn landmark_of(name: &str, ring: &[[f64; 2]]) -> Landmark {
    let head = name.split(['(', ',']).next().unwrap_or(name).trim();
    let head = head.strip_suffix(" Park").unwrap_or(head);
    let words: String = head.to_lowercase().chars().filter(|c| c.is_alphanumeric() || c.is_whitespace()).collect();
    let key = words.split_whitespace().collect::<Vec<_>>().join("-");
    let c = centroid(ring);
    let center = Vec3::new(c[0] as f32, 0.0, -c[1] as f32);
    let radius =
        ring.iter().map(|p| ((p[0] - c[0]).powi(2) + (p[1] - c[1]).powi(2)).sqrt()).fold(100.0, f64::max) as f32;
    Landmark { key, center, radius }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn park_names_become_camera_keys() {
        let ring = [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]];
        assert_eq!(landmark_of("Orange Isle (Juzizhou) Park", &ring).key, "orange-isle");
        assert_eq!(landmark_of("Martyrs' Park", &ring).key, "martyrs");
    }
}
