#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Acceptance tests for the Changsha demonstration city (issue 3, part 1). The city is generated once
//! per test binary, since generation in debug builds takes a few seconds.

use std::{collections::HashMap, sync::OnceLock};

use twin_city::{
    City,
    changsha::{BOUNDS, CBD_RADIUS_M, CENTRE, DEFAULT_SEED, WUYI_SQUARE},
    geo::{Projection, Rect, Xy, dist_point_polyline, point_in_ring, rect_intersects_ring, rings_intersect},
};
use twin_model::{Catalog, Entity, GeoPoint, Shape, Value};

fn city() -> &'static City {
    static CITY: OnceLock<City> = OnceLock::new();
    CITY.get_or_init(|| twin_city::changsha(DEFAULT_SEED))
}

fn proj() -> Projection {
    Projection::new(CENTRE)
}

fn ring_of(e: &Entity) -> Vec<Xy> {
    let p = proj();
    match &e.header.geometry.as_ref().expect("geometry").shape {
        Shape::Polygon(r) | Shape::Line(r) => r.iter().map(|g| p.to_local(*g)).collect(),
        Shape::Point(g) => vec![p.to_local(*g)],
    }
}

fn position(e: &Entity) -> GeoPoint {
    e.header.geometry.as_ref().expect("geometry").reference_point()
}

fn num(e: &Entity, attr: &str) -> f64 {
    e.reported(attr).and_then(Value::as_f64).unwrap_or_else(|| panic!("{} has no {attr}", e.id()))
}

fn text<'a>(e: &'a Entity, attr: &str) -> &'a str {
    match e.reported(attr) {
        Some(Value::Text(t)) => t,
        other => panic!("{} {attr} is {other:?}", e.id()),
    }
}

fn named<'a>(city: &'a City, entity_type: &'a str, name: &str) -> &'a Entity {
    city.of_type(entity_type).find(|e| text(e, "name") == name).unwrap_or_else(|| panic!("no {entity_type} {name}"))
}

fn rel<'a>(index: &HashMap<&str, &'a Entity>, e: &Entity, name: &str) -> &'a Entity {
    let id = e.header.relationships.get(name).unwrap_or_else(|| panic!("{} has no {name}", e.id()));
    index.get(id.as_str()).unwrap_or_else(|| panic!("{} {name} -> {id} does not exist", e.id()))
}

/// Sensor and device types: everything outside the city-structure and building domains.
fn is_sensor(catalog: &Catalog, e: &Entity) -> bool {
    let domain = &catalog.get(e.header.entity_type.as_str()).unwrap().domain;
    domain != "city" && domain != "buildings"
}

#[test]
fn same_seed_same_city_and_different_seed_different_city() {
    let again = twin_city::changsha(DEFAULT_SEED);
    assert_eq!(again.content_hash(), city().content_hash());
    assert_eq!(&again, city());
    let other = twin_city::changsha(DEFAULT_SEED + 1);
    assert_ne!(other.content_hash(), city().content_hash());
    // The hash sees a one-attribute change.
    let mut changed = again;
    let b = changed.entities.iter_mut().find(|e| e.header.entity_type.as_str() == "Building").unwrap();
    b.attributes.get_mut("height").unwrap().reported.as_mut().unwrap().value = Value::Number(1.0);
    assert_ne!(changed.content_hash(), city().content_hash());
}

#[test]
fn has_enough_buildings_and_sensors_of_every_domain() {
    let counts = city().count_by_type();
    assert!(counts["Building"] >= 50_000, "{counts:?}");
    let catalog = Catalog::builtin();
    let sensors = city().entities.iter().filter(|e| is_sensor(&catalog, e)).count();
    assert!(sensors >= 10_000, "{sensors} sensors");
    for t in [
        "District",
        "WaterBody",
        "TerrainTile",
        "Park",
        "RoadSegment",
        "Bridge",
        "Building",
        "TrafficFlowObserved",
        "TrafficSignal",
        "ParkingSpot",
        "OffStreetParking",
        "Bus",
        "AirQualityObserved",
        "NoiseLevelObserved",
        "WeatherObserved",
        "Streetlight",
        "Substation",
        "PhotovoltaicMeasurement",
        "EVChargingStation",
        "WasteContainer",
        "RiverGauge",
        "RainGauge",
        "RetentionPark",
        "Defibrillator",
        "Ambulance",
        "FireHydrant",
    ] {
        assert!(counts.get(t).copied().unwrap_or(0) > 0, "no {t}: {counts:?}");
    }
    for d in ["yuelu", "kaifu", "furong", "tianxin", "yuhua"] {
        let id = format!("urn:ngsi-ld:District:changsha:{d}");
        let stations =
            city().of_type("AirQualityObserved").filter(|e| e.header.relationships["refDistrict"].as_str() == id);
        assert!(stations.count() >= 3, "too few air-quality stations in {d}");
        let ambulances = city().of_type("Ambulance").filter(|e| e.header.relationships["refDistrict"].as_str() == id);
        assert!(ambulances.count() >= 1, "no ambulance in {d}");
    }
}

#[test]
fn every_entity_satisfies_the_catalog() {
    let catalog = Catalog::builtin();
    let index = city().index();
    assert_eq!(index.len(), city().len(), "entity ids are not unique");
    for e in &city().entities {
        let def = catalog.check_type(&e.header.entity_type).unwrap_or_else(|v| panic!("{}: {v}", e.id()));
        assert!(e.id().as_str().starts_with(&format!("urn:ngsi-ld:{}:changsha:", e.header.entity_type)), "{}", e.id());
        for (name, state) in &e.attributes {
            let r = state.reported.as_ref().unwrap();
            assert_eq!(r.observed_at, twin_city::STATIC_OBSERVED_AT);
            let checked = catalog
                .check_value(&e.header.entity_type, name, r.value.clone())
                .unwrap_or_else(|v| panic!("{} {name}: {v}", e.id()));
            assert_eq!(checked, r.value, "{} {name} kind differs from the catalog", e.id());
            assert!(state.desired.is_none());
        }
        for (name, target) in &e.header.relationships {
            assert!(def.relationships.iter().any(|r| r == name.as_str()), "{}: {name} is not in the catalog", e.id());
            assert!(index.contains_key(target.as_str()), "{}: {name} -> {target} does not exist", e.id());
        }
        let g = e.header.geometry.clone().unwrap_or_else(|| panic!("{} has no geometry", e.id()));
        let valid = g.clone().validated().unwrap_or_else(|err| panic!("{}: {err}", e.id()));
        assert_eq!(valid, g, "{}: geometry is not stored in canonical form", e.id());
    }
}

/// Water as the test sees it: the Xiang minus Orange Isle, the Liuyang and Meixi Lake.
struct Water {
    xiang: Vec<Xy>,
    isle: Vec<Xy>,
    others: Vec<Vec<Xy>>,
}

fn water() -> Water {
    let c = city();
    Water {
        xiang: ring_of(named(c, "WaterBody", "Xiang River")),
        isle: ring_of(named(c, "Park", "Orange Isle (Juzizhou) Park")),
        others: vec![ring_of(named(c, "WaterBody", "Liuyang River")), ring_of(named(c, "WaterBody", "Meixi Lake"))],
    }
}

impl Water {
    fn touches(&self, footprint: &[Xy]) -> bool {
        let on_isle =
            footprint.iter().all(|p| point_in_ring(*p, &self.isle)) && !rings_intersect_edges(footprint, &self.isle);
        (rings_intersect(footprint, &self.xiang) && !on_isle)
            || self.others.iter().any(|o| rings_intersect(footprint, o))
    }

    fn contains(&self, p: Xy) -> bool {
        (point_in_ring(p, &self.xiang) && !point_in_ring(p, &self.isle))
            || self.others.iter().any(|o| point_in_ring(p, o))
    }
}

fn rings_intersect_edges(a: &[Xy], b: &[Xy]) -> bool {
    let edges = |r: &[Xy]| (0..r.len()).map(|i| (r[i], r[(i + 1) % r.len()])).collect::<Vec<_>>();
    let eb = edges(b);
    edges(a).iter().any(|(p, q)| eb.iter().any(|(r, s)| twin_city::geo::segments_intersect(*p, *q, *r, *s)))
}

#[test]
fn no_building_stands_in_water_or_on_a_road() {
    let w = water();
    // Roads as carriageway rectangles (the grid is axis-aligned) in a 250 m spatial hash.
    let mut cells: HashMap<(i64, i64), Vec<Rect>> = HashMap::new();
    for r in city().of_type("RoadSegment") {
        let line = ring_of(r);
        let hw = num(r, "widthM") / 2.0;
        let rect = Rect::around(&line).expand(hw);
        for cx in (rect.min.x / 250.0).floor() as i64..=(rect.max.x / 250.0).floor() as i64 {
            for cy in (rect.min.y / 250.0).floor() as i64..=(rect.max.y / 250.0).floor() as i64 {
                cells.entry((cx, cy)).or_default().push(rect);
            }
        }
    }
    let mut checked = 0;
    for b in city().of_type("Building") {
        let fp = ring_of(b);
        assert!(!w.touches(&fp), "{} stands in water", b.id());
        let bb = Rect::around(&fp);
        for cx in (bb.min.x / 250.0).floor() as i64..=(bb.max.x / 250.0).floor() as i64 {
            for cy in (bb.min.y / 250.0).floor() as i64..=(bb.max.y / 250.0).floor() as i64 {
                for road in cells.get(&(cx, cy)).into_iter().flatten() {
                    assert!(!rect_intersects_ring(road, &fp), "{} stands on a road", b.id());
                }
            }
        }
        checked += 1;
    }
    assert!(checked >= 50_000);
}

#[test]
fn xiang_runs_north_south_about_a_kilometre_wide_with_the_liuyang_joining_from_the_east() {
    let xiang = ring_of(named(city(), "WaterBody", "Xiang River"));
    let p = proj();
    for lat in [28.12, 28.16, 28.20, 28.24, 28.28] {
        let y = p.y_of(lat);
        let xs: Vec<f64> = (0..xiang.len())
            .filter_map(|i| {
                let (a, b) = (xiang[i], xiang[(i + 1) % xiang.len()]);
                ((a.y - y) * (b.y - y) < 0.0).then(|| a.x + (b.x - a.x) * (y - a.y) / (b.y - a.y))
            })
            .collect();
        assert_eq!(xs.len(), 2, "the Xiang should cross {lat} N once");
        let (w, e) = (xs[0].min(xs[1]), xs[0].max(xs[1]));
        assert!((800.0..=1_200.0).contains(&(e - w)), "width {} at {lat}", e - w);
        let centre = p.to_geo(Xy::new((w + e) / 2.0, y)).lon;
        assert!((112.950..=112.966).contains(&centre), "centre {centre} at {lat}");
    }
    let liuyang = named(city(), "WaterBody", "Liuyang River");
    let lr = ring_of(liuyang);
    assert!(rings_intersect(&lr, &xiang), "the Liuyang does not reach the Xiang");
    let join = lr.iter().filter(|q| point_in_ring(**q, &xiang)).map(|q| p.to_geo(*q).lat).fold(0.0, f64::max);
    assert!((28.24..=28.27).contains(&join), "joins at {join}");
    assert!(lr.iter().any(|q| p.to_geo(*q).lon > 113.04), "the Liuyang should come from the east");
    let lake = named(city(), "WaterBody", "Meixi Lake");
    let c = position(lake);
    assert!((c.lon - 112.89).abs() < 0.01 && (c.lat - 28.19).abs() < 0.01, "{c:?}");
    assert_eq!(text(lake, "kind"), "lake");
}

#[test]
fn orange_isle_is_a_long_thin_island_of_land_in_the_xiang() {
    let isle = named(city(), "Park", "Orange Isle (Juzizhou) Park");
    let ring = ring_of(isle);
    let xiang = ring_of(named(city(), "WaterBody", "Xiang River"));
    assert!(ring.iter().all(|p| point_in_ring(*p, &xiang)), "the isle is not inside the Xiang");
    let b = Rect::around(&ring);
    assert!((4_500.0..=5_500.0).contains(&b.height()), "length {}", b.height());
    let p = proj();
    assert!((p.to_geo(b.min).lat - 28.165).abs() < 0.003 && (p.to_geo(b.max).lat - 28.21).abs() < 0.003);
    // Width at 10 latitudes between the tips: 50-200 m.
    for k in 1..10 {
        let y = b.min.y + b.height() * k as f64 / 10.0 + 0.37;
        let xs: Vec<f64> = (0..ring.len())
            .filter_map(|i| {
                let (a, c) = (ring[i], ring[(i + 1) % ring.len()]);
                ((a.y - y) * (c.y - y) < 0.0).then(|| a.x + (c.x - a.x) * (y - a.y) / (c.y - a.y))
            })
            .collect();
        let width =
            xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max) - xs.iter().cloned().fold(f64::INFINITY, f64::min);
        assert!((50.0..=201.0).contains(&width), "isle width {width}");
    }
    // Land: a few low buildings stand on it, and the water test does not count them as wet.
    let w = water();
    let on_isle: Vec<&Entity> =
        city().of_type("Building").filter(|e| ring_of(e).iter().all(|q| point_in_ring(*q, &ring))).collect();
    assert!((1..=10).contains(&on_isle.len()), "{} buildings on the isle", on_isle.len());
    assert!(on_isle.iter().all(|e| num(e, "height") <= 15.0));
    assert!(!w.contains(b.centre()) || !point_in_ring(b.centre(), &ring));
    assert!(!w.contains(Rect::around(&ring_of(on_isle[0])).centre()));
}

#[test]
fn yuelu_mountain_rises_to_about_300_m_on_the_west_bank_and_stays_green() {
    let p = proj();
    let peak = p.to_local(GeoPoint { lon: 112.935, lat: 28.185 });
    let tiles: Vec<&Entity> = city().of_type("TerrainTile").collect();
    let summit = tiles.iter().find(|t| point_in_ring(peak, &ring_of(t))).expect("a tile holds the summit");
    assert!((250.0..=320.0).contains(&num(summit, "maxElevation")), "{}", num(summit, "maxElevation"));
    let highest = tiles.iter().max_by(|a, b| num(a, "maxElevation").total_cmp(&num(b, "maxElevation"))).unwrap();
    assert_eq!(highest.id(), summit.id());
    let east = p.to_local(WUYI_SQUARE);
    let cbd_tile = tiles.iter().find(|t| point_in_ring(east, &ring_of(t))).unwrap();
    assert!(num(cbd_tile, "maxElevation") < 80.0);
    let mountain = ring_of(named(city(), "Park", "Yuelu Mountain Scenic Area"));
    assert!(point_in_ring(peak, &mountain));
    let inside = city().of_type("Building").filter(|b| rings_intersect(&ring_of(b), &mountain)).count();
    assert_eq!(inside, 0, "buildings on Yuelu Mountain");
    let roads = city().of_type("RoadSegment").filter(|r| rings_intersect(&ring_of(r), &mountain)).count();
    assert_eq!(roads, 0, "roads on Yuelu Mountain");
}

#[test]
fn cbd_towers_around_wuyi_square_are_the_tallest() {
    let cbd = proj().to_local(WUYI_SQUARE);
    let dist = |e: &Entity| Rect::around(&ring_of(e)).centre().dist(cbd);
    let mut by_height: Vec<&Entity> = city().of_type("Building").collect();
    by_height.sort_by(|a, b| num(b, "height").total_cmp(&num(a, "height")));
    let tallest = by_height[0];
    assert!(num(tallest, "height") >= 440.0 && num(tallest, "height") <= 460.0);
    assert!(dist(tallest) < CBD_RADIUS_M);
    let towers: Vec<&&Entity> = by_height.iter().take_while(|e| num(e, "height") >= 150.0).collect();
    assert!(towers.len() >= 20, "only {} towers", towers.len());
    for t in &towers {
        assert!(
            dist(t) < CBD_RADIUS_M + 100.0,
            "{} is {} m tall but {} m from Wuyi Square",
            t.id(),
            num(t, "height"),
            dist(t)
        );
    }
    let floors = tallest.reported("floorsAboveGround").and_then(Value::as_f64).unwrap();
    assert!((floors - num(tallest, "height") / 3.2).abs() <= 1.0);
}

#[test]
fn districts_have_their_character() {
    let c = city();
    let index = c.index();
    let mut heights: HashMap<&str, Vec<f64>> = HashMap::new();
    let mut education: HashMap<&str, usize> = HashMap::new();
    for b in c.of_type("Building") {
        let d = b.header.relationships["refDistrict"].as_str();
        heights.entry(d).or_default().push(num(b, "height"));
        if text(b, "category") == "education" {
            *education.entry(d).or_default() += 1;
        }
    }
    let mean = |d: &str| {
        let v = &heights[format!("urn:ngsi-ld:District:changsha:{d}").as_str()];
        v.iter().sum::<f64>() / v.len() as f64
    };
    assert!(mean("tianxin") < mean("furong") && mean("tianxin") < mean("kaifu"), "Tianxin should be low-rise");
    assert!(mean("tianxin") < 25.0, "{}", mean("tianxin"));
    let (top, _) = education.iter().max_by_key(|(_, n)| **n).unwrap();
    assert_eq!(*top, "urn:ngsi-ld:District:changsha:yuelu", "the campuses are in Yuelu");
    // District geography: Yuelu west of the river, Kaifu north of Furong, Tianxin south.
    let centre =
        |d: &str| Rect::around(&ring_of(index[format!("urn:ngsi-ld:District:changsha:{d}").as_str()])).centre();
    assert!(centre("yuelu").x < centre("furong").x);
    assert!(centre("kaifu").y > centre("furong").y && centre("tianxin").y < centre("furong").y);
    assert!(centre("yuhua").x > centre("tianxin").x);
}

#[test]
fn roads_have_rings_arterials_and_bridges_across_the_xiang() {
    let c = city();
    let classes: Vec<&str> = c.of_type("RoadSegment").map(|r| text(r, "roadClass")).collect();
    for class in ["ring", "arterial", "collector", "local"] {
        assert!(classes.contains(&class), "no {class} road");
    }
    let index = c.index();
    let w = water();
    let xiang_bridges: Vec<&Entity> = c
        .of_type("Bridge")
        .filter(|b| b.header.relationships["refWaterBody"].as_str() == "urn:ngsi-ld:WaterBody:changsha:xiang-river")
        .collect();
    assert!(xiang_bridges.len() >= 5, "{} Xiang bridges", xiang_bridges.len());
    for b in xiang_bridges {
        let line = ring_of(b);
        let (a, z) = (line[0], line[line.len() - 1]);
        assert!(!w.contains(a) && !w.contains(z), "{} does not land on both banks", b.id());
        assert!(w.contains(a.lerp(z, 0.5)) || point_in_ring(a.lerp(z, 0.5), &w.isle));
        assert!((z.x - a.x).abs() > 800.0, "{} is too short to cross the Xiang", b.id());
        let road = rel(&index, b, "refRoadSegment");
        assert_eq!(ring_of(road), line);
    }
    assert!(c.of_type("Bridge").any(|b| text(b, "name") == "Juzizhou Bridge"));
}

#[test]
fn every_sensor_has_a_valid_type_a_position_in_the_city_and_its_district() {
    let catalog = Catalog::builtin();
    let index = city().index();
    let mut n = 0;
    for e in city().entities.iter().filter(|e| is_sensor(&catalog, e)) {
        assert!(catalog.get(e.header.entity_type.as_str()).is_some());
        let g = position(e);
        assert!(
            (BOUNDS.min_lon..=BOUNDS.max_lon).contains(&g.lon) && (BOUNDS.min_lat..=BOUNDS.max_lat).contains(&g.lat),
            "{} at {g:?} is outside the city",
            e.id()
        );
        let district = rel(&index, e, "refDistrict");
        assert_eq!(district.header.entity_type.as_str(), "District");
        let ring = ring_of(district);
        let p = proj().to_local(g);
        assert!(
            point_in_ring(p, &ring) || dist_point_polyline(p, &ring) < 1.0,
            "{} is not in its district {}",
            e.id(),
            district.id()
        );
        n += 1;
    }
    assert!(n >= 10_000);
}

#[test]
fn sensors_sit_where_they_belong() {
    let c = city();
    let index = c.index();
    let p = proj();
    let w = water();
    let at = |e: &Entity| p.to_local(position(e));
    for e in c.of_type("TrafficFlowObserved").chain(c.of_type("Bus")).chain(c.of_type("ParkingSpot")) {
        let road = rel(&index, e, "refRoadSegment");
        let d = dist_point_polyline(at(e), &ring_of(road));
        assert!(d <= num(road, "widthM") / 2.0, "{} is {d} m from its road", e.id());
    }
    for e in c.of_type("Streetlight").chain(c.of_type("FireHydrant")).chain(c.of_type("NoiseLevelObserved")) {
        let road = rel(&index, e, "refRoadSegment");
        let d = dist_point_polyline(at(e), &ring_of(road)) - num(road, "widthM") / 2.0;
        assert!((0.0..=5.0).contains(&d), "{} is {d} m from the kerb of its road", e.id());
    }
    for e in c.of_type("WasteContainer") {
        let road = rel(&index, e, "refRoadSegment");
        assert!(dist_point_polyline(at(e), &ring_of(road)) < 300.0, "{} is far from its road", e.id());
    }
    for e in c.of_type("Defibrillator").chain(c.of_type("PhotovoltaicMeasurement")).chain(c.of_type("OffStreetParking"))
    {
        let b = rel(&index, e, "refBuilding");
        assert_eq!(b.header.entity_type.as_str(), "Building");
        assert!(point_in_ring(at(e), &ring_of(b)), "{} is not in its building", e.id());
    }
    for e in c.of_type("Defibrillator") {
        let category = text(rel(&index, e, "refBuilding"), "category");
        assert!(
            ["hospital", "public", "education", "commercial", "office"].contains(&category),
            "AED in a {category} building"
        );
    }
    for e in c.of_type("Ambulance") {
        assert_eq!(text(rel(&index, e, "refHospital"), "category"), "hospital");
    }
    for e in c.of_type("EVChargingStation") {
        assert_eq!(rel(&index, e, "refOffStreetParking").header.entity_type.as_str(), "OffStreetParking");
    }
    for e in c.of_type("RetentionPark") {
        let park = rel(&index, e, "refPark");
        assert!(point_in_ring(at(e), &ring_of(park)));
        assert_eq!(rel(&index, e, "refWaterBody").header.entity_type.as_str(), "WaterBody");
    }
    let gauges: Vec<&Entity> = c.of_type("RiverGauge").collect();
    assert!(gauges.len() >= 8);
    for g in gauges {
        let river = ring_of(rel(&index, g, "refWaterBody"));
        let q = at(g);
        assert!(!w.contains(q), "{} is in the water", g.id());
        assert!(dist_point_polyline(q, &river) < 50.0, "{} is not on the bank", g.id());
    }
    let xiang_gauges = c
        .of_type("RiverGauge")
        .filter(|g| g.header.relationships["refWaterBody"].as_str().ends_with("xiang-river"))
        .count();
    assert!(xiang_gauges >= 8, "{xiang_gauges} gauges along the Xiang");
    for s in c.of_type("TrafficSignal") {
        let road = rel(&index, s, "refRoadSegment");
        let line = ring_of(road);
        let q = at(s);
        assert!(q.dist(line[0]) < 0.5 || q.dist(line[1]) < 0.5, "{} is not at a junction of its road", s.id());
    }
}
