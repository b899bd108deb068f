//! Render tests on whatever adapter the machine has (lavapipe in CI): they fail, never skip, when there is
//! none. They assert on the pixels: not blank, water where the river is, buildings in the CBD.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;

use rand::{Rng, SeedableRng, rngs::SmallRng};
use twin_model::{Entity, Shape};
use viewer::{
    camera::Camera,
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
    (cam, snapshot::render(&f.gpu, &f.scene, &cam, 480, 270, hidden).unwrap())
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
