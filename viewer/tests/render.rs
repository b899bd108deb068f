//! Render tests on whatever adapter the machine has (lavapipe in CI): they fail, never skip, when there is
//! none. They assert on the pixels: not blank, water where the river is, buildings in the CBD, a picked
//! building in the selection colour, edge boxes in the colour of their link state, and the buildings'
//! level of detail leaving the whole-city picture as it was.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;

use glam::Vec3;
use rand::{Rng, SeedableRng, rngs::SmallRng};
use twin_model::{Entity, GeoPoint, Geometry, Shape};
use twin_proto::pb;
use viewer::{
    camera::Camera,
    live::LiveState,
    pick::{Pickable, Picked, pick_counted},
    render::{COLOR_FORMAT, CityRenderer, Gpu, Image, Offscreen, marker_unit_m},
    scene::{EDGE_MARKER_UNITS, Layer, Scene, palette},
    snapshot,
    testing::entity,
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

#[test]
fn level_of_detail_leaves_the_whole_city_picture_as_it_was_with_far_fewer_triangles() {
    let f = fixture();
    let cam = Camera::preset(&f.scene, "city").unwrap();
    let mut city = CityRenderer::new(&f.gpu, &f.scene, COLOR_FORMAT);
    let target = Offscreen::new(&f.gpu, 480, 270);
    let lod = target.render(&f.gpu, &city, &cam).unwrap();
    let drawn = city.building_triangles(&cam, 480, 270);
    assert!(city.glyphs_as_quads(&cam, 270), "from this far every glyph is under a pixel");
    assert!(!city.glyphs_as_quads(&Camera::preset(&f.scene, "cbd").unwrap(), 270), "but not in the CBD");
    city.set_level_of_detail(false);
    let full = target.render(&f.gpu, &city, &cam).unwrap();
    let all = city.building_triangles(&cam, 480, 270);
    assert!(drawn * 3 < all, "{drawn} of {all} building triangles drawn");
    // Only walls under a pixel tall are left out: a few pixels shift a little, none changes much.
    let differ = |by: i32| {
        lod.pixels
            .chunks(4)
            .zip(full.pixels.chunks(4))
            .filter(|(a, b)| (0..3).any(|k| (i32::from(a[k]) - i32::from(b[k])).abs() > by))
            .count() as f64
            / f64::from(480 * 270)
    };
    assert!(
        differ(24) < 0.005 && differ(8) < 0.1,
        "{:.2}% differ by 24, {:.2}% by 8",
        differ(24) * 100.0,
        differ(8) * 100.0
    );
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

const DISTRICT: &str = "urn:ngsi-ld:District:test:central";

/// An edge box at (lon, lat) in the test district, reporting `link_state`.
fn edge_box(name: &str, lon: f64, lat: f64, link_state: &str) -> Entity {
    viewer::testing::edge_box(name, lon, lat, DISTRICT, Some(link_state))
}

fn is_green(p: [u8; 4]) -> bool {
    let (r, g, b) = (i32::from(p[0]), i32::from(p[1]), i32::from(p[2]));
    g > r + 60 && g > b + 60
}

fn is_red(p: [u8; 4]) -> bool {
    let (r, g, b) = (i32::from(p[0]), i32::from(p[1]), i32::from(p[2]));
    r > g + 80 && r > b + 80
}

/// The pixels on the middle of an edge box's ring, every 30 degrees.
fn ring_pixels(scene: &Scene, cam: &Camera, image: &Image, id: &str) -> Vec<[u8; 4]> {
    let centre = scene.glyph_position(id).unwrap();
    let (_, inner, outer) = EDGE_MARKER_UNITS;
    let r = (inner + outer) / 2.0 * marker_unit_m(cam, centre, image.height);
    (0..12)
        .map(|k| {
            let a = k as f32 * 30f32.to_radians();
            let p = centre + Vec3::new(a.cos() * r, 0.0, a.sin() * r);
            let (x, y) = cam.to_pixel(p, image.width, image.height).unwrap();
            image.pixel(x as u32, y as u32).unwrap()
        })
        .collect()
}

#[test]
fn edge_boxes_draw_their_ring_and_link_line_in_the_colour_of_their_link_state() {
    let gpu = &fixture().gpu;
    let square = [(112.95, 28.18), (112.99, 28.18), (112.99, 28.22), (112.95, 28.22)];
    let district = Geometry {
        shape: Shape::Polygon(square.iter().map(|&(lon, lat)| GeoPoint { lon, lat }).collect()),
        height_m: 0.0,
    };
    // A 150 m tower on the east side of the connected box's ring: the marker must show over it.
    let (east, north) = (1.0 / (111_320.0 * 28.197f64.to_radians().cos()), 1.0 / 110_540.0);
    let tower = [(60.0, -20.0), (110.0, -20.0), (110.0, 20.0), (60.0, 20.0)]
        .map(|(e, n)| GeoPoint { lon: 112.963 + e * east, lat: 28.197 + n * north });
    let entities = vec![
        entity(DISTRICT, "District", district),
        entity(
            "urn:ngsi-ld:Building:test:tower",
            "Building",
            Geometry { shape: Shape::Polygon(tower.to_vec()), height_m: 150.0 },
        ),
        edge_box("up", 112.963, 28.197, "connected"),
        edge_box("down", 112.977, 28.197, "disconnected"),
    ];
    let scene = Scene::build(&entities);
    assert_eq!(scene.edges.len(), 2);
    let (up, down) = ("urn:ngsi-ld:EdgeNode:up", "urn:ngsi-ld:EdgeNode:down");
    let middle = (scene.glyph_position(up).unwrap() + scene.glyph_position(down).unwrap()) / 2.0;
    let cam = Camera::framing(middle, 900.0, 80.0);
    let mut renderer = CityRenderer::new(gpu, &scene, COLOR_FORMAT);
    let target = Offscreen::new(gpu, 480, 270);
    let image = target.render(gpu, &renderer, &cam).unwrap();

    let count = |id: &str, image: &Image, test: fn([u8; 4]) -> bool| {
        ring_pixels(&scene, &cam, image, id).into_iter().filter(|p| test(*p)).count()
    };
    assert!(count(up, &image, is_green) >= 10, "connected is green: {:?}", ring_pixels(&scene, &cam, &image, up));
    assert!(count(down, &image, is_red) >= 10, "disconnected is red: {:?}", ring_pixels(&scene, &cam, &image, down));
    assert_eq!(count(up, &image, is_red) + count(down, &image, is_green), 0, "each ring in one colour");
    // The link line: halfway from the connected box to its district's centre, in its colour.
    let centre = scene.edges.iter().find_map(|e| e.district_center).unwrap();
    let halfway = (scene.glyph_position(up).unwrap() + centre) / 2.0;
    let (x, y) = cam.to_pixel(halfway, 480, 270).unwrap();
    assert!(is_green(image.pixel(x as u32, y as u32).unwrap()), "the link line: {:?}", image.pixel(x as u32, y as u32));
    // Without the sensors layer, neither ring is drawn: the colours are the boxes', not the ground's; and
    // the ring's east side lies under the tower, which the marker is drawn over.
    renderer.set_visible(Layer::Sensors, false);
    let bare = target.render(gpu, &renderer, &cam).unwrap();
    assert_eq!(count(up, &bare, is_green) + count(down, &bare, is_red), 0);
    let east_of = |image: &Image| ring_pixels(&scene, &cam, image, up)[0];
    let is_building = |p: [u8; 4]| p[0] > 150 && p[0] > p[1];
    assert!(is_building(east_of(&bare)), "the tower hides the ground there: {:?}", east_of(&bare));
    assert!(is_green(east_of(&image)), "the marker shows over the tower: {:?}", east_of(&image));
    renderer.set_visible(Layer::Sensors, true);

    // The connected box loses its link: Watch brings the change, its ring turns red.
    let mut live_scene = scene.clone();
    let mut live = LiveState::new(&entities, &live_scene, 1);
    let change = pb::Change {
        kind: pb::change::Kind::Attributes as i32,
        revision: 2,
        entity_id: up.into(),
        entity_type: "EdgeNode".into(),
        attributes: vec![pb::Attribute {
            name: "linkState".into(),
            reported: Some(pb::Value { kind: Some(pb::value::Kind::Text("disconnected".into())) }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let response = pb::WatchResponse { changes: vec![change], revision: 2, snapshot_complete: false };
    let dirty = live.apply(&mut live_scene, &response).dirty;
    assert_eq!(dirty.len(), 1);
    renderer.apply(gpu, &live_scene, &dirty);
    let after = target.render(gpu, &renderer, &cam).unwrap();
    assert!(count(up, &after, is_red) >= 10, "now disconnected: {:?}", ring_pixels(&scene, &cam, &after, up));
    assert_eq!(count(up, &after, is_green), 0);

    // A box that registers while the viewer runs: its upsert and link state arrive by Watch, and its ring
    // is drawn without a re-list.
    let late = edge_box("late", 112.970, 28.205, "connected");
    let mut link = response.changes[0].clone();
    link.revision = 4;
    link.entity_id = late.header.id.to_string();
    link.attributes[0].reported = Some(pb::Value { kind: Some(pb::value::Kind::Text("connected".into())) });
    let registered = pb::Change {
        kind: pb::change::Kind::Upsert as i32,
        revision: 3,
        entity_id: late.header.id.to_string(),
        entity_type: "EdgeNode".into(),
        entity: Some(twin_proto::convert::header_to_pb(&late.header, 3)),
        attributes: Vec::new(),
    };
    let late_id = late.header.id.as_str();
    let response = pb::WatchResponse { changes: vec![registered], revision: 3, snapshot_complete: false };
    let applied = live.apply(&mut live_scene, &response);
    assert_eq!(applied.added.len(), 1);
    assert!(applied.dirty.is_empty(), "no link state yet");
    renderer.reload_glyphs(gpu, &live_scene);
    let registered_image = target.render(gpu, &renderer, &cam).unwrap();
    let (was, now) =
        (ring_pixels(&live_scene, &cam, &after, late_id), ring_pixels(&live_scene, &cam, &registered_image, late_id));
    let drawn = was.iter().zip(&now).filter(|(a, b)| a != b).count();
    assert!(drawn >= 10, "a ring where there was none: {was:?} -> {now:?}");
    let response = pb::WatchResponse { changes: vec![link], revision: 4, snapshot_complete: false };
    let dirty = live.apply(&mut live_scene, &response).dirty;
    assert_eq!(dirty, vec![live_scene.glyph_index[late_id]]);
    renderer.apply(gpu, &live_scene, &dirty);
    let later = target.render(gpu, &renderer, &cam).unwrap();
    let late_ring = ring_pixels(&live_scene, &cam, &later, late_id);
    assert!(late_ring.iter().filter(|p| is_green(**p)).count() >= 10, "its link state colours it: {late_ring:?}");
    assert!(count(up, &later, is_red) >= 10, "the others are drawn as before");
}
