//! Render tests on whatever adapter the machine has (lavapipe in CI): they fail, never skip, when there is
//! none. They assert on the pixels: not blank, water where the river is, buildings in the CBD, a picked
//! building in the selection colour.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;

use rand::{Rng, SeedableRng, rngs::SmallRng};
use twin_model::{Entity, Shape};
use viewer::{
    camera::Camera,
    pick::{Pickable, Picked, pick_counted},
    render::{Gpu, Image},
    scene::{Layer, Scene, palette},
    snapshot,
};

struct Fixture {
    entities: Vec<Entity>,
    scene: Scene,
    gpu: Gpu,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let entities = twin_city::changsha(twin_city::DEFAULT_SEED).entities;
        let scene = Scene::build(&entities);
        let gpu = Gpu::headless().unwrap_or_else(|e| panic!("render tests need a graphics adapter: {e}"));
        eprintln!("adapter: {} ({:?})", gpu.adapter.name, gpu.adapter.backend);
        Fixture { entities, scene, gpu }
    })
}

fn render(camera: &str, hidden: &[Layer]) -> (Camera, Image) {
    let f = fixture();
    let cam = Camera::preset(&f.scene, camera).unwrap();
    (cam, snapshot::render(&f.gpu, &f.scene, &cam, (480, 270), hidden, None).unwrap())
}

fn is_water(p: [u8; 4]) -> bool {
    let (r, g, b) = (i32::from(p[0]), i32::from(p[1]), i32::from(p[2]));
    b > r + 40 && b > g + 20 && b < 230
}

fn inside(ring: &[[f64; 2]], p: [f64; 2]) -> bool {
    let mut inside = false;
    for i in 0..ring.len() {
        let (a, b) = (ring[i], ring[(i + 1) % ring.len()]);
        if (a[1] > p[1]) != (b[1] > p[1]) && p[0] < (b[0] - a[0]) * (p[1] - a[1]) / (b[1] - a[1]) + a[0] {
            inside = !inside;
        }
    }
    inside
}

#[test]
fn the_whole_city_is_not_blank_and_shows_water_where_the_river_is() {
    let f = fixture();
    let (cam, image) = render("city", &[]);
    let distinct: std::collections::HashSet<[u8; 4]> = image.pixels.chunks(4).map(|p| p.try_into().unwrap()).collect();
    assert!(distinct.len() > 100, "a blank image: {} colours", distinct.len());

    let proj = f.scene.projection.unwrap();
    let rings = |t: &str| -> Vec<Vec<[f64; 2]>> {
        f.entities
            .iter()
            .filter(|e| e.header.entity_type.as_str() == t)
            .filter_map(|e| match e.header.geometry.as_ref().map(|g| &g.shape) {
                Some(Shape::Polygon(ps)) => Some(ps.iter().map(|p| proj.to_plane(*p)).collect()),
                _ => None,
            })
            .collect()
    };
    let (water, parks) = (rings("WaterBody"), rings("Park"));
    let obstacles: Vec<[f64; 2]> = f
        .entities
        .iter()
        .filter_map(|e| match e.header.geometry.as_ref().map(|g| &g.shape) {
            Some(Shape::Point(p)) => Some(vec![proj.to_plane(*p)]),
            Some(Shape::Line(ps)) => Some(ps.iter().map(|p| proj.to_plane(*p)).collect()),
            _ => None,
        })
        .flatten()
        .collect();
    let (lo, hi) = f.scene.bounds;
    let mut rng = SmallRng::seed_from_u64(7);
    let (mut checked, mut wet) = (0, 0);
    while checked < 40 {
        let p = [rng.random_range(lo.x..hi.x) as f64, -(rng.random_range(lo.z..hi.z) as f64)];
        let clear = obstacles.iter().all(|o| (o[0] - p[0]).hypot(o[1] - p[1]) > 150.0);
        if !water.iter().any(|r| inside(r, p)) || parks.iter().any(|r| inside(r, p)) || !clear {
            continue;
        }
        let world = glam::Vec3::new(p[0] as f32, 0.0, -p[1] as f32);
        let Some(pixel) =
            cam.to_pixel(world, image.width, image.height).and_then(|(x, y)| image.pixel(x as u32, y as u32))
        else {
            continue; // outside the picture
        };
        checked += 1;
        wet += usize::from(is_water(pixel));
    }
    assert!(wet >= 36, "{wet} of {checked} points in the river are water-coloured (expected {:?})", palette::WATER);
}

#[test]
fn the_cbd_preset_is_full_of_buildings() {
    let (_, with) = render("cbd", &[]);
    let (_, without) = render("cbd", &[Layer::Buildings]);
    let differ = with.pixels.chunks(4).zip(without.pixels.chunks(4)).filter(|(a, b)| a != b).count();
    let share = differ as f64 / (with.width * with.height) as f64;
    assert!(share > 0.4, "buildings cover only {:.0}% of the CBD view", share * 100.0);
}

#[test]
fn orange_isle_is_a_landmark_in_the_river() {
    let (cam, image) = render("orange-isle", &[Layer::Sensors]);
    let (x, y) = cam.to_pixel(cam.target, image.width, image.height).unwrap();
    let centre = image.pixel(x as u32, y as u32).unwrap();
    assert!(!is_water(centre), "the isle itself is land: {centre:?}");
    // The isle is 50-200 m wide in a river about a kilometre wide: 300 m east and west of it is water.
    for dx in [-300.0f32, 300.0] {
        let (x, y) = cam.to_pixel(cam.target + glam::Vec3::new(dx, 0.0, 0.0), image.width, image.height).unwrap();
        let p = image.pixel(x as u32, y as u32).unwrap();
        assert!(is_water(p), "{dx} m from the isle's centre is the river: {p:?}");
    }
}

/// The selection's pink (palette::SELECTION), lit or in shade; no AQI red, roof or water passes.
fn is_selection(p: [u8; 4]) -> bool {
    let (r, g, b) = (i32::from(p[0]), i32::from(p[1]), i32::from(p[2]));
    r > g + 90 && b > g + 40
}

#[test]
fn a_picked_building_is_highlighted_where_it_was_clicked() {
    let f = fixture();
    let cam = Camera::preset(&f.scene, "cbd").unwrap();
    let size = (480, 270);
    // Click around the middle of the CBD view until a click lands on a building (most do).
    let (at, building, cost) = (0..40)
        .map(|k| (240.0 + (k % 8) as f32 * 9.0, 135.0 + (k / 8) as f32 * 11.0))
        .find_map(|at| match pick_counted(&f.scene, &cam, size, at, Pickable { buildings: true, sensors: false }) {
            (Some(Picked::Building(i)), cost) => Some((at, i, cost)),
            _ => None,
        })
        .expect("a building near the middle of the CBD view");
    assert!(cost.buildings_tested < 200, "a pick among 75,000 buildings tested {}", cost.buildings_tested);
    let plain = snapshot::render(&f.gpu, &f.scene, &cam, size, &[], None).unwrap();
    let picked = Some(Picked::Building(building));
    let lit = snapshot::render(&f.gpu, &f.scene, &cam, size, &[], picked).unwrap();
    let (x, y) = (at.0 as u32, at.1 as u32);
    assert!(!is_selection(plain.pixel(x, y).unwrap()), "nothing is selected: {:?}", plain.pixel(x, y));
    assert!(is_selection(lit.pixel(x, y).unwrap()), "the clicked pixel shows the selection: {:?}", lit.pixel(x, y));
    // Only that building changes: a small share of the picture, all of it in the selection colour.
    let changed: Vec<[u8; 4]> = lit
        .pixels
        .chunks(4)
        .zip(plain.pixels.chunks(4))
        .filter(|(a, b)| a != b)
        .map(|(a, _)| a.try_into().unwrap())
        .collect();
    let share = changed.len() as f64 / f64::from(size.0 * size.1);
    assert!(changed.len() >= 4 && share < 0.1, "{} pixels changed", changed.len());
    let coloured = changed.iter().filter(|p| is_selection(**p)).count();
    assert!(
        coloured * 10 >= changed.len() * 8,
        "{coloured} of {} changed pixels are selection-coloured",
        changed.len()
    );
}
