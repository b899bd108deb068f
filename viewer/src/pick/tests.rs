use glam::{Vec2, Vec3};
use twin_model::{GeoPoint, Geometry, Shape};

use super::*;
use crate::{
    render::marker_unit_px,
    scene::Scene,
    testing::{edge_box, entity},
};

fn square(x: f32, z: f32, side: f32, height_m: f32) -> Footprint {
    Footprint {
        id: format!("b{x}:{z}"),
        ring: vec![Vec2::new(x, z), Vec2::new(x + side, z), Vec2::new(x + side, z + side), Vec2::new(x, z + side)],
        height_m,
        vertices: 0..0,
    }
}

fn ray(origin: Vec3, towards: Vec3) -> Ray {
    Ray { origin, dir: (towards - origin).normalize() }
}

#[test]
fn a_ray_hits_a_prism_on_its_roof_or_a_wall_and_misses_beside_or_above_it() {
    let b = square(0.0, 0.0, 10.0, 20.0);
    let down = b.hit(&ray(Vec3::new(5.0, 100.0, 5.0), Vec3::new(5.0, 0.0, 5.0))).unwrap();
    assert!((down - 80.0).abs() < 1e-3, "the roof is 80 m below: {down}");
    let side = b.hit(&ray(Vec3::new(-10.0, 5.0, 5.0), Vec3::new(0.0, 5.0, 5.0))).unwrap();
    assert!((side - 10.0).abs() < 1e-3, "the west wall is 10 m east: {side}");
    assert_eq!(b.hit(&ray(Vec3::new(-10.0, 5.0, 15.0), Vec3::new(0.0, 5.0, 15.0))), None, "passes north of it");
    assert_eq!(b.hit(&ray(Vec3::new(-10.0, 25.0, 5.0), Vec3::new(0.0, 25.0, 5.0))), None, "passes over the roof");
    assert_eq!(b.hit(&ray(Vec3::new(-1.0, 5.0, 5.0), Vec3::new(-10.0, 5.0, 5.0))), None, "points away");
}

#[test]
fn a_concave_footprint_is_hit_exactly_not_by_its_bounding_box() {
    // An L: the north-east quarter of the 20 m square is empty.
    let l = Footprint {
        id: "l".into(),
        ring: [(0.0, 0.0), (20.0, 0.0), (20.0, 10.0), (10.0, 10.0), (10.0, 20.0), (0.0, 20.0)]
            .map(|(x, z)| Vec2::new(x, z))
            .to_vec(),
        height_m: 30.0,
        vertices: 0..0,
    };
    assert_eq!(l.hit(&ray(Vec3::new(15.0, 100.0, 15.0), Vec3::new(15.0, 0.0, 15.0))), None, "into the notch");
    assert!(l.hit(&ray(Vec3::new(5.0, 100.0, 15.0), Vec3::new(5.0, 0.0, 15.0))).is_some(), "onto the roof");
}

#[test]
fn the_nearest_building_along_the_ray_wins() {
    let row: Vec<Footprint> = (0..5).map(|i| square(i as f32 * 30.0, 0.0, 10.0, 10.0 + i as f32 * 10.0)).collect();
    let grid = BuildingGrid::build(&row);
    let mut cost = PickCost::default();
    // Looking east along the row at 5 m: the first wall wins, though every building is on the ray.
    let east = ray(Vec3::new(-50.0, 5.0, 5.0), Vec3::new(0.0, 5.0, 5.0));
    assert_eq!(grid.first_hit(&row, &east, &mut cost).map(|h| h.0), Some(0));
    // Looking west from the far end: the last one.
    let west = ray(Vec3::new(500.0, 5.0, 5.0), Vec3::new(0.0, 5.0, 5.0));
    assert_eq!(grid.first_hit(&row, &west, &mut cost).map(|h| h.0), Some(4));
    // High enough to pass over the low ones: the first tall enough.
    let high = ray(Vec3::new(-50.0, 35.0, 5.0), Vec3::new(0.0, 35.0, 5.0));
    assert_eq!(grid.first_hit(&row, &high, &mut cost).map(|h| h.0), Some(3));
}

/// A city of `side` x `side` square buildings, 20 m wide on a 40 m pitch, 10 to 130 m tall.
fn grid_city(side: usize) -> Scene {
    let footprints: Vec<Footprint> = (0..side * side)
        .map(|i| {
            let (x, z) = ((i % side) as f32 * 40.0, (i / side) as f32 * 40.0);
            // Heights vary without a pattern a grid walk could exploit.
            let height = 10.0 + ((i as u64).wrapping_mul(2_654_435_761) % 121) as f32;
            square(x, z, 20.0, height)
        })
        .collect();
    let building_grid = BuildingGrid::build(&footprints);
    Scene { footprints, building_grid, ..Scene::default() }
}

/// The nearest hit by testing every footprint: the reference the grid walk must agree with.
fn brute_force(scene: &Scene, ray: &Ray) -> Option<usize> {
    scene
        .footprints
        .iter()
        .enumerate()
        .filter_map(|(i, f)| f.hit(ray).map(|t| (i, t)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
}

#[test]
fn picking_in_a_city_of_75000_buildings_tests_a_few_dozen_and_agrees_with_testing_them_all() {
    let scene = grid_city(274);
    assert!(scene.footprints.len() >= 75_000);
    let centre = Vec3::new(274.0 * 20.0, 0.0, 274.0 * 20.0);
    let cameras = [
        ("whole city", Camera::framing(centre, 6_000.0, 60.0)),
        ("district", Camera::framing(centre + Vec3::new(1_500.0, 0.0, -800.0), 800.0, 35.0)),
        // Standing in a street (x 5,500 to 5,520 m is between two columns of buildings), looking along it.
        ("street level", Camera { pitch: 4f32.to_radians(), ..Camera::focus(centre + Vec3::X * 30.0, 300.0) }),
    ];
    let (w, h) = (1600, 900);
    for (name, camera) in cameras {
        let (mut picks, mut hits, mut worst, mut total) = (0u32, 0u32, 0, 0);
        for y in (0..h).step_by(100) {
            for x in (0..w).step_by(100) {
                let at = (x as f32 + 0.5, y as f32 + 0.5);
                let (picked, cost) = pick_counted(&scene, &camera, (w, h), at, Pickable::default());
                let expected = brute_force(&scene, &camera.ray(at, w, h));
                assert_eq!(picked, expected.map(Picked::Building), "{name} at {at:?}");
                picks += 1;
                hits += u32::from(picked.is_some());
                worst = worst.max(cost.buildings_tested);
                total += cost.buildings_tested;
            }
        }
        let mean = total as f64 / f64::from(picks);
        eprintln!(
            "{name}: {hits} of {picks} picks hit a building; {mean:.1} footprints tested on average, {worst} at most"
        );
        // A quarter of the ground is built on, and the whole-city view shows a margin around it.
        assert!(hits > picks / 5, "{name}: the camera looks at the city");
        // Testing all 75,076 every click is what the grid avoids: a few dozen on average, never thousands.
        assert!(mean <= 50.0 && worst <= 1_000, "{name}: {mean:.1} footprints tested on average, {worst} at most");
    }
}

/// One 60 m tower around (112.95, 28.2), 40 m square, and two air-quality stations, 30 m south and 100 m
/// north of its centre: seen from the south, one stands in front of the tower and one behind it.
fn tower_between_two_stations() -> Scene {
    let d = 20.0 / 110_540.0;
    let dl = 20.0 / (111_320.0 * 28.2f64.to_radians().cos());
    let corners = [(-dl, -d), (dl, -d), (dl, d), (-dl, d)];
    let ring = corners.iter().map(|(x, y)| GeoPoint { lon: 112.95 + x, lat: 28.2 + y }).collect();
    let tower = Geometry { shape: Shape::Polygon(ring), height_m: 60.0 };
    let station = |north_m: f64| Geometry::point(112.95, 28.2 + north_m / 110_540.0);
    let entities = vec![
        entity("urn:ngsi-ld:Building:t:tower", "Building", tower),
        entity("urn:ngsi-ld:AirQualityObserved:t:front", "AirQualityObserved", station(-30.0)),
        entity("urn:ngsi-ld:AirQualityObserved:t:behind", "AirQualityObserved", station(100.0)),
    ];
    Scene::build(&entities)
}

#[test]
fn a_click_on_an_edge_box_ring_picks_the_box_even_over_a_tower() {
    // The box stands 100 m north of the tower: from the south its glyph is hidden, its marker is not.
    let mut scene = tower_between_two_stations();
    let boxed = edge_box("t", 112.95, 28.2 + 100.0 / 110_540.0, "urn:ngsi-ld:District:t:d", Some("connected"));
    let index = scene.add_point(&boxed).unwrap();
    let tower = scene.find("urn:ngsi-ld:Building:t:tower").unwrap();
    let (roof, _) = scene.focus(tower).unwrap();
    let camera = Camera { pitch: 5f32.to_radians(), ..Camera::focus(Vec3::new(roof.x, 30.0, roof.z), 500.0) };
    let size = (800, 600);
    let anchor = scene.edge_anchor(&scene.edges[0]).unwrap();
    let (x, y) = camera.to_pixel(anchor, size.0, size.1).unwrap();
    let ring_px = EDGE_MARKER_UNITS.2 * marker_unit_px(&camera, anchor, size.1);
    // On the ring's upper part, over the tower, beyond the few pixels a sensor glyph is clicked within.
    let on_ring = (x, y - ring_px * 0.9);
    assert!(ring_px * 0.9 > SENSOR_TOLERANCE_PX, "the ring reaches beyond a glyph's tolerance: {ring_px} px");
    assert_eq!(pick(&scene, &camera, size, on_ring, Pickable::default()), Some(Picked::Sensor(index)));
    assert_eq!(pick(&scene, &camera, size, (x, y), Pickable::default()), Some(Picked::Sensor(index)));
    // With the sensors layer off (no markers drawn), the same click reaches the tower; just outside the
    // ring, the box is not picked.
    let no_sensors = Pickable { buildings: true, sensors: false };
    assert_eq!(pick(&scene, &camera, size, on_ring, no_sensors), Some(tower));
    let outside = (x + ring_px * 1.3, y);
    assert_ne!(pick(&scene, &camera, size, outside, Pickable::default()), Some(Picked::Sensor(index)));
}

#[test]
fn a_sensor_in_front_of_a_building_wins_over_it_and_one_hidden_behind_it_cannot_be_clicked() {
    let scene = tower_between_two_stations();
    let tower = scene.find("urn:ngsi-ld:Building:t:tower").unwrap();
    let front = scene.find("urn:ngsi-ld:AirQualityObserved:t:front").unwrap();
    let behind = scene.find("urn:ngsi-ld:AirQualityObserved:t:behind").unwrap();
    let (Picked::Sensor(f), Picked::Sensor(b)) = (front, behind) else { panic!("stations are glyphs") };
    // Low from the south, looking north at the tower: the front station stands before its south wall,
    // the one behind it is on the line of sight through the tower, hidden.
    let (roof, _) = scene.focus(tower).unwrap();
    let target = Vec3::new(roof.x, 30.0, roof.z);
    let camera = Camera { pitch: 5f32.to_radians(), ..Camera::focus(target, 500.0) };
    let size = (800, 600);
    let pixel = |i: usize| {
        let g = &scene.glyphs[i];
        camera.to_pixel(Vec3::from(g.center) + Vec3::Y * g.size, size.0, size.1).unwrap()
    };
    assert_eq!(pick(&scene, &camera, size, pixel(f), Pickable::default()), Some(front));
    assert_eq!(pick(&scene, &camera, size, pixel(b), Pickable::default()), Some(tower), "behind the tower");
    // With the buildings layer off, the hidden station can be clicked; with sensors off, the click on the
    // front station goes through to the tower's wall.
    let no_buildings = Pickable { buildings: false, sensors: true };
    assert_eq!(pick(&scene, &camera, size, pixel(b), no_buildings), Some(behind));
    let no_sensors = Pickable { buildings: true, sensors: false };
    assert_eq!(pick(&scene, &camera, size, pixel(f), no_sensors), Some(tower));
    // The sky picks nothing.
    assert_eq!(pick(&scene, &camera, size, (400.0, 5.0), Pickable::default()), None);
}

#[test]
fn a_picked_building_is_found_by_id_and_framed() {
    let scene = tower_between_two_stations();
    let tower = scene.find("urn:ngsi-ld:Building:t:tower").unwrap();
    assert_eq!(scene.id_of(tower), Some("urn:ngsi-ld:Building:t:tower"));
    let (at, distance) = scene.focus(tower).unwrap();
    // The scene's origin is the middle of everything, 35 m north of the tower (world z points south).
    assert!((at - Vec3::new(0.0, 60.0, 35.0)).length() < 1.0, "the roof's centre: {at}");
    assert!(distance > 100.0, "{distance}");
    // The highlight rewrites exactly the tower's vertices, roofs and walls in the selection colours.
    let Picked::Building(i) = tower else { unreachable!() };
    let (start, vertices) = scene.highlighted_building(i).unwrap();
    assert_eq!(start, scene.footprints[i].vertices.start);
    assert_eq!(vertices.len(), scene.footprints[i].vertices.len());
    assert!(vertices.iter().all(|v| v.color != scene.buildings.vertices[start as usize].color));
}
