//! Frame time of the whole demonstration city, and the cost of live sensor changes, for BENCHMARKS.md.
//!
//! `cargo run --release -p viewer --example frame_time -- [WIDTH HEIGHT FRAMES] [--target]`
//!
//! With `--target`, the scene is the size of the GPU target instead: exactly 100,000 buildings (the
//! city's, plus copies of some of them east of it) and 20,000 sensors (the first of the city's).
//!
//! Renders the offline city (about 75,000 extruded buildings, 69,000 sensor glyphs) offscreen with 4x
//! MSAA from the `city` and `cbd` presets, with level of detail off (every wall, every glyph a box: the
//! reference) and on (the default), waiting for the GPU after every frame, on whatever adapter wgpu
//! picks (lavapipe on a machine without a GPU). Then applies 10,000 random sensor colour changes the way
//! a Watch stream does (scene + one 32-byte instance write each) and times that.

use std::time::Instant;

use rand::{Rng, SeedableRng, rngs::SmallRng};
use twin_model::{Entity, EntityId, Shape};
use viewer::{
    camera::Camera,
    render::{COLOR_FORMAT, CityRenderer, Gpu, Offscreen},
    scene::{Scene, srgb},
};

fn main() -> anyhow::Result<()> {
    let target_size = std::env::args().any(|a| a == "--target");
    let args: Vec<u32> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (width, height, frames) =
        (*args.first().unwrap_or(&1920), *args.get(1).unwrap_or(&1080), *args.get(2).unwrap_or(&20));
    let t = Instant::now();
    let mut entities = twin_city::changsha(twin_city::DEFAULT_SEED).entities;
    if target_size {
        entities = at_target_size(entities, 100_000, 20_000)?;
    }
    let mut scene = Scene::build(&entities);
    println!(
        "scene: {} building triangles, {} land+road triangles, {} glyphs, built in {:.2} s",
        scene.buildings.triangles(),
        scene.land.triangles() + scene.roads.triangles(),
        scene.glyphs.len(),
        t.elapsed().as_secs_f64()
    );
    let gpu = Gpu::headless()?;
    println!("adapter: {} ({:?}, {:?})", gpu.adapter.name, gpu.adapter.backend, gpu.adapter.device_type);
    let t = Instant::now();
    let mut renderer = CityRenderer::new(&gpu, &scene, COLOR_FORMAT);
    let target = Offscreen::new(&gpu, width, height);
    println!("upload: {:.2} s", t.elapsed().as_secs_f64());
    for (preset, lod) in [("city", false), ("city", true), ("cbd", false), ("cbd", true)] {
        let camera = Camera::preset(&scene, preset).ok_or_else(|| anyhow::anyhow!("no {preset} preset"))?;
        renderer.set_level_of_detail(lod);
        target.draw(&gpu, &renderer, &camera)?; // first frame: pipeline compilation
        let mut times: Vec<f64> = Vec::new();
        for _ in 0..frames {
            let t = Instant::now();
            target.draw(&gpu, &renderer, &camera)?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{preset:>5} {width}x{height}, level of detail {}: frame p50 {:.1} ms, p90 {:.1} ms, min {:.1} ms ({frames} \
             frames, 4x MSAA), {} building triangles drawn, glyphs as {}",
            if lod { "on " } else { "off" },
            times[times.len() / 2],
            times[times.len() * 9 / 10],
            times[0],
            renderer.building_triangles(&camera, width, height),
            if renderer.glyphs_as_quads(&camera, height) { "quads" } else { "boxes" },
        );
    }
    // 10,000 live changes, as Watch delivers them: colour in the scene, one instance write each.
    let mut rng = SmallRng::seed_from_u64(1);
    let ids: Vec<String> =
        (0..10_000).map(|_| scene.glyph_ids[rng.random_range(0..scene.glyph_ids.len())].clone()).collect();
    let t = Instant::now();
    for (k, id) in ids.iter().enumerate() {
        let color = srgb((k % 255) as u8, 100, 200);
        if let Some(i) = scene.set_glyph_color(id, color) {
            renderer.update_glyph(&gpu, i, &scene.glyphs[i]);
        }
    }
    let apply = t.elapsed().as_secs_f64() * 1e3;
    let camera = Camera::preset(&scene, "city").ok_or_else(|| anyhow::anyhow!("no city preset"))?;
    let t = Instant::now();
    target.draw(&gpu, &renderer, &camera)?;
    println!(
        "10,000 sensor changes: applied in {apply:.1} ms (scene + instance writes), next frame {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}

/// The city with exactly `buildings` buildings (copies of the first ones, moved east of the city, make up
/// the difference) and its first `sensors` point entities.
fn at_target_size(entities: Vec<Entity>, buildings: usize, sensors: usize) -> anyhow::Result<Vec<Entity>> {
    let is_building = |e: &Entity| e.header.entity_type.as_str() == "Building";
    let is_point = |e: &Entity| matches!(e.header.geometry.as_ref().map(|g| &g.shape), Some(Shape::Point(_)));
    let (mut out, mut kept_buildings, mut kept_sensors) = (Vec::new(), Vec::new(), 0);
    for e in entities {
        if is_building(&e) {
            kept_buildings.push(e);
        } else if is_point(&e) {
            if kept_sensors < sensors {
                kept_sensors += 1;
                out.push(e);
            }
        } else {
            out.push(e);
        }
    }
    kept_buildings.truncate(buildings);
    let missing = buildings - kept_buildings.len();
    // East of the city by its own width (about 0.3 degrees of longitude), so the copies do not overlap it.
    let copies: Vec<Entity> = kept_buildings
        .iter()
        .cycle()
        .take(missing)
        .enumerate()
        .map(|(k, e)| {
            let mut copy = e.clone();
            copy.header.id = EntityId::new(&format!("{}:copy{k}", e.header.id))?;
            if let Some(Shape::Polygon(ring)) = copy.header.geometry.as_mut().map(|g| &mut g.shape) {
                ring.iter_mut().for_each(|p| p.lon += 0.3);
            }
            Ok(copy)
        })
        .collect::<anyhow::Result<_>>()?;
    out.extend(kept_buildings);
    out.extend(copies);
    Ok(out)
}
