//! Sensors and devices of every smart-city domain, placed where they belong:
//!
//! | type | where | links |
//! |---|---|---|
//! | `TrafficFlowObserved` | mid-carriageway of every ring and arterial segment and one collector in three | road |
//! | `TrafficSignal` | every junction of two collector-or-larger roads | road |
//! | `ParkingSpot` | kerb lane of central collector and local streets, in rows of six | road |
//! | `OffStreetParking` | in a quarter of the commercial, office and mixed buildings of 40 m or more | building, road |
//! | `EVChargingStation` | at half of the car parks | car park |
//! | `Bus` | on every ring and arterial line with eight or more segments, one per five segments | road |
//! | `AirQualityObserved` | six per district, in blocks | district |
//! | `NoiseLevelObserved` | roadside of one arterial segment in eight | road |
//! | `WeatherObserved` | three per district plus Yuelu summit | district |
//! | `Streetlight` | sidewalks of ring and arterial roads every 50 m (alternating sides), collectors every 70 m | road |
//! | `Substation` | one block in forty, at the block corner | district |
//! | `PhotovoltaicMeasurement` | rooftops of 6 % of lower non-residential buildings | building |
//! | `WasteContainer` | one or two per built block, at the block edge | road |
//! | `RiverGauge` | Xiang banks every 2 km (alternating), Liuyang banks at three points | water body |
//! | `RainGauge` | eight per district, in blocks | district |
//! | `RetentionPark` | the centre of each sponge-city park | park, water body |
//! | `Defibrillator` | hospitals, half the public buildings, a third of schools and towers | building |
//! | `Ambulance` | ten per district, at the district's hospitals | hospital |
//! | `FireHydrant` | roadside of every other segment | road |
//!
//! Every device also carries `refDistrict`, the district its position lies in. Sensors get only the
//! static attributes that describe the installation (a bus's route, a car park's size, a container's
//! waste stream); live readings come from the signal models.

use twin_model::{Entity, EntityId, Geometry};

use super::{
    Frame, Ids,
    buildings::{Buildings, Category},
    districts::District,
    parks::Park,
    roads::{RoadClass, Roads, Segment},
    terrain::YUELU_PEAK,
    water::{Water, WaterKind},
};
use crate::{
    geo::{Rect, Xy, dist_point_polyline},
    make::Make,
    rng::Rng,
};

struct Out<'a> {
    frame: &'a Frame,
    ids: &'a mut Ids,
    entities: &'a mut Vec<Entity>,
}

impl Out<'_> {
    /// A device of `entity_type` at `p`, numbered within its district, with `refDistrict` set.
    fn device(&mut self, entity_type: &'static str, p: Xy, width: usize) -> Make {
        let d = self.frame.district_at(p);
        let g = self.frame.proj.to_geo(p);
        Make::new(self.ids.next(entity_type, d, width), entity_type, Some(Geometry::point(g.lon, g.lat)))
            .rel("refDistrict", self.frame.districts.id(d))
    }

    fn push(&mut self, m: Make) {
        self.entities.push(m.build());
    }
}

/// A point `t` of the way along a segment, `offset` metres to its left (north or west side for
/// positive offsets, by the segment's direction).
fn along(s: &Segment, t: f64, offset: f64) -> Xy {
    let p = s.a.lerp(s.b, t);
    if s.horizontal { Xy::new(p.x, p.y + offset) } else { Xy::new(p.x - offset, p.y) }
}

fn half(s: &Segment) -> f64 {
    s.class.width_m() / 2.0
}

fn random_in(rng: &mut Rng, r: &Rect) -> Xy {
    Xy::new(rng.range(r.min.x, r.max.x), rng.range(r.min.y, r.max.y))
}

/// Adds every device to `entities`.
pub(crate) fn build(
    frame: &Frame,
    parks: &[Park],
    roads: &Roads,
    buildings: &Buildings,
    seed: u64,
    ids: &mut Ids,
    entities: &mut Vec<Entity>,
) {
    let mut rng = Rng::new(seed, 0x5E45);
    let mut out = Out { frame, ids, entities };
    let segs = &roads.segments;
    let blocks_of = |d: District| buildings.blocks.iter().filter(move |b| b.2 == d).collect::<Vec<_>>();

    // Transport.
    for (k, s) in segs.iter().enumerate() {
        if s.class >= RoadClass::Arterial || (s.class == RoadClass::Collector && k % 3 == 0) {
            let m =
                out.device("TrafficFlowObserved", along(s, 0.5, 0.0), 4).rel("refRoadSegment", &s.id).int("laneId", 0);
            out.push(m);
        }
    }
    for (_, incident) in &roads.junctions {
        let major =
            |h: bool| incident.iter().any(|s| segs[*s].horizontal == h && segs[*s].class >= RoadClass::Collector);
        if !(major(true) && major(false)) {
            continue;
        }
        let Some(main) = incident.iter().copied().max_by_key(|s| (segs[*s].class, std::cmp::Reverse(*s))) else {
            continue;
        };
        let Some(node) = shared_node(segs, incident) else { continue };
        let m = out.device("TrafficSignal", node, 4).rel("refRoadSegment", &segs[main].id);
        out.push(m);
    }
    let cbd = frame.proj.to_local(super::WUYI_SQUARE);
    for s in segs {
        let central = s.a.dist(cbd) < 5_000.0;
        if s.bridge.is_some() || s.class > RoadClass::Collector || !central || !rng.chance(0.35) {
            continue;
        }
        let side = if rng.chance(0.5) { 1.0 } else { -1.0 };
        let len = s.length_m();
        for k in 0..6 {
            let t = (0.3 * len + 6.0 * k as f64) / len;
            let p = along(s, t, side * (half(s) - 1.25));
            let m = out
                .device("ParkingSpot", p, 5)
                .rel("refRoadSegment", &s.id)
                .text("category", "onStreet")
                .attr("evCharging", twin_model::Value::Bool(rng.chance(0.05)));
            out.push(m);
        }
    }
    let mut car_parks: Vec<(EntityId, Xy)> = Vec::new();
    for b in &buildings.infos {
        let big = matches!(b.category, Category::Commercial | Category::Office | Category::Mixed) && b.height >= 40.0;
        if !big || !rng.chance(0.25) {
            continue;
        }
        let p = b.rect.centre();
        let Some(road) = roads.nearest(p, |s| s.bridge.is_none()) else { continue };
        let total = (b.rect.width() * b.rect.height() / 25.0).clamp(60.0, 2_000.0).round() as i64;
        let m = out
            .device("OffStreetParking", p, 4)
            .rel("refBuilding", &b.id)
            .rel("refRoadSegment", &segs[road].id)
            .int("totalSpotNumber", total);
        let id = m_id(&m);
        out.push(m);
        car_parks.push((id, p));
    }
    for (id, p) in &car_parks {
        if !rng.chance(0.5) {
            continue;
        }
        let m = out
            .device("EVChargingStation", Xy::new(p.x + 2.0, p.y), 4)
            .rel("refOffStreetParking", id)
            .int("capacity", 4 + rng.below(17) as i64);
        out.push(m);
    }
    let mut route = 0;
    let mut k = 0;
    while k < segs.len() {
        let s = &segs[k];
        let mut end = k;
        while end < segs.len() && segs[end].horizontal == s.horizontal && segs[end].line == s.line {
            end += 1;
        }
        let major: Vec<&Segment> = segs[k..end].iter().filter(|x| x.class >= RoadClass::Arterial).collect();
        if major.len() >= 8 {
            route += 1;
            let code = if s.a.x < frame.water.centre_x(s.a.y) && !s.horizontal {
                format!("Y{route}")
            } else {
                format!("{route}")
            };
            for (n, x) in major.iter().enumerate().skip(rng.below(5)).step_by(5) {
                let side = if n % 2 == 0 { 1.0 } else { -1.0 };
                let m = out
                    .device("Bus", along(x, 0.5, side * half(x) / 2.0), 4)
                    .rel("refRoadSegment", &x.id)
                    .text("routeCode", &code);
                out.push(m);
            }
        }
        k = end;
    }

    // Environment.
    for d in District::ALL {
        let blocks = blocks_of(d);
        for _ in 0..6 {
            if let Some(b) = pick(&mut rng, &blocks) {
                let p = random_in(&mut rng, &b.1);
                let m = out.device("AirQualityObserved", p, 4);
                out.push(m);
            }
        }
    }
    for (k, s) in segs.iter().enumerate() {
        if s.class >= RoadClass::Arterial && s.bridge.is_none() && k % 8 == 0 {
            let m = out
                .device("NoiseLevelObserved", along(s, 0.5, half(s) + 3.0), 4)
                .rel("refRoadSegment", &s.id)
                .num("periodS", 60.0);
            out.push(m);
        }
    }
    for d in District::ALL {
        let blocks = blocks_of(d);
        for _ in 0..3 {
            if let Some(b) = pick(&mut rng, &blocks) {
                let p = random_in(&mut rng, &b.1);
                let m = out.device("WeatherObserved", p, 4);
                out.push(m);
            }
        }
    }
    let m = out.device("WeatherObserved", frame.proj.to_local(YUELU_PEAK), 4);
    out.push(m);

    // Energy.
    for s in segs {
        let (spacing, both) = match s.class {
            RoadClass::Ring | RoadClass::Arterial => (50.0, true),
            RoadClass::Collector => (70.0, false),
            RoadClass::Local => continue,
        };
        let len = s.length_m();
        let n = (len / spacing).floor() as usize;
        for k in 0..n {
            let t = (spacing / 2.0 + k as f64 * spacing) / len;
            let side = if both && k % 2 == 1 { -1.0 } else { 1.0 };
            let m = out.device("Streetlight", along(s, t, side * (half(s) + 1.0)), 5).rel("refRoadSegment", &s.id);
            out.push(m);
        }
    }
    for (k, b) in buildings.blocks.iter().enumerate() {
        if k % 40 == 17 {
            let m = out.device("Substation", Xy::new(b.1.min.x - 2.0, b.1.min.y - 2.0), 4);
            out.push(m);
        }
    }
    for b in &buildings.infos {
        let roof =
            matches!(b.category, Category::Industrial | Category::Education | Category::Public | Category::Commercial);
        if !roof || b.height > 60.0 || !rng.chance(0.06) {
            continue;
        }
        let peak = (b.rect.width() * b.rect.height() * 0.6 * 0.15).clamp(5.0, 5_000.0);
        let m =
            out.device("PhotovoltaicMeasurement", b.rect.centre(), 4).rel("refBuilding", &b.id).num("peakPower", peak);
        out.push(m);
    }

    // Waste.
    const STREAMS: [&str; 4] = ["residual", "recyclable", "kitchen", "hazardous"];
    for (_, land, _) in &buildings.blocks {
        for _ in 0..1 + rng.below(2) {
            let t = rng.f64();
            let p = match rng.below(4) {
                0 => Xy::new(land.min.x + t * land.width(), land.min.y - 1.5),
                1 => Xy::new(land.min.x + t * land.width(), land.max.y + 1.5),
                2 => Xy::new(land.min.x - 1.5, land.min.y + t * land.height()),
                _ => Xy::new(land.max.x + 1.5, land.min.y + t * land.height()),
            };
            let Some(road) = roads.nearest(p, |s| s.bridge.is_none()) else { continue };
            let stream = STREAMS[rng.weighted(&[0.45, 0.3, 0.22, 0.03])];
            let m = out.device("WasteContainer", p, 5).rel("refRoadSegment", &segs[road].id).text("wasteType", stream);
            out.push(m);
        }
    }

    // Water.
    let water = &frame.water;
    let b = super::bounds();
    let (ys, yn) = (frame.proj.y_of(b.min_lat), frame.proj.y_of(b.max_lat));
    let mut y = ys + 1_000.0;
    let mut east = false;
    while y < yn - 500.0 {
        let (w, e) = water.banks(y);
        let p = if east { Xy::new(e + 10.0, y) } else { Xy::new(w - 10.0, y) };
        if water.water_at(p).is_none() {
            let m = out.device("RiverGauge", p, 4).rel("refWaterBody", &Water::id(WaterKind::Xiang));
            out.push(m);
        }
        east = !east;
        y += 2_000.0;
    }
    let line = &water.liuyang_line;
    for t in [0.25, 0.5, 0.75] {
        let k = ((line.len() - 1) as f64 * t) as usize;
        let (a, c) = (line[k], line[k + 1]);
        let (dx, dy) = (c.x - a.x, c.y - a.y);
        let len = dx.hypot(dy).max(1e-9);
        let p = Xy::new(a.x - dy / len * 90.0, a.y + dx / len * 90.0);
        if water.water_at(p).is_none() {
            let m = out.device("RiverGauge", p, 4).rel("refWaterBody", &Water::id(WaterKind::Liuyang));
            out.push(m);
        }
    }
    for d in District::ALL {
        let blocks = blocks_of(d);
        for _ in 0..8 {
            if let Some(b) = pick(&mut rng, &blocks) {
                let p = random_in(&mut rng, &b.1);
                let m = out.device("RainGauge", p, 4);
                out.push(m);
            }
        }
    }
    for park in parks.iter().filter(|p| p.retention) {
        let c = park.bbox.centre();
        let nearest = WaterKind::ALL
            .iter()
            .copied()
            .min_by(|a, b| dist_point_polyline(c, water.ring(*a)).total_cmp(&dist_point_polyline(c, water.ring(*b))))
            .unwrap_or(WaterKind::Xiang);
        let capacity = park.bbox.width() * park.bbox.height() * 2.5;
        let m = out
            .device("RetentionPark", c, 4)
            .rel("refPark", &park.id)
            .rel("refWaterBody", &Water::id(nearest))
            .num("capacity", capacity);
        out.push(m);
    }

    // Health and safety.
    for b in &buildings.infos {
        let p = match b.category {
            Category::Hospital => 1.0,
            Category::Public => 0.5,
            Category::Education => 0.33,
            Category::Commercial | Category::Office if b.height > 60.0 => 0.33,
            _ => 0.0,
        };
        if p > 0.0 && rng.chance(p) {
            let m = out.device("Defibrillator", b.rect.centre(), 4).rel("refBuilding", &b.id);
            out.push(m);
        }
    }
    for d in District::ALL {
        let hospitals: Vec<_> =
            buildings.infos.iter().filter(|b| b.category == Category::Hospital && b.district == d).collect();
        if hospitals.is_empty() {
            continue;
        }
        for k in 0..10 {
            let h = hospitals[k % hospitals.len()];
            let c = h.rect.centre();
            let m = out
                .device("Ambulance", Xy::new(c.x, c.y + (k / hospitals.len()) as f64 * 4.0), 4)
                .rel("refHospital", &h.id);
            out.push(m);
        }
    }
    for (k, s) in segs.iter().enumerate() {
        if s.bridge.is_none() && k % 2 == 0 {
            let m = out.device("FireHydrant", along(s, 1.0 / 3.0, -(half(s) + 1.5)), 5).rel("refRoadSegment", &s.id);
            out.push(m);
        }
    }
}

fn m_id(m: &Make) -> EntityId {
    m.id().clone()
}

fn pick<'a, T>(rng: &mut Rng, items: &'a [T]) -> Option<&'a T> {
    if items.is_empty() { None } else { Some(&items[rng.below(items.len())]) }
}

/// The grid node all `incident` segments share.
fn shared_node(segs: &[Segment], incident: &[usize]) -> Option<Xy> {
    let first = &segs[*incident.first()?];
    [first.a, first.b].into_iter().find(|p| incident.iter().all(|s| segs[*s].a == *p || segs[*s].b == *p))
}
