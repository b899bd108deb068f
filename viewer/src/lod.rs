//! Level of detail for the buildings: what a frame draws of 75,000 extruded footprints.
//!
//! On a software adapter the frame's cost is mostly per triangle, and most building triangles are walls
//! that cover less than a pixel: seen from above, a wall `h` metres tall spans at most `h` metres of ground
//! across, so at the whole-city view's 20-odd metres a pixel the walls of all but the towers vanish in
//! their roofs' pixels. So the buildings are filed in square ground tiles, and each frame:
//!
//! - a tile outside the view is skipped (the CBD view leaves most of the city out);
//! - every building in a visible tile draws its roof;
//! - its walls are drawn only if they could span [`WALL_MIN_PX`] pixels: taller than that many pixels'
//!   worth of metres at the tile's nearest point to the eye. Within a tile the buildings are sorted
//!   tallest first, so the walls drawn are one index range per tile.
//!
//! Roofs and walls are two index buffers over the one vertex buffer of [`crate::scene::Scene::buildings`],
//! so recolouring a building's vertices (the selection) shows whichever parts are drawn. Consecutive
//! ranges are merged, so a frame issues at most a few hundred draws.
//!
//! Sensor glyphs get the same treatment as a whole: when even the nearest glyph would be under
//! [`GLYPH_MIN_PX`] wide ([`glyphs_are_subpixel`]), every glyph is drawn as a camera-facing quad the size of
//! its box's outline (two triangles instead of ten, four vertices instead of twenty).

use std::ops::Range;

use glam::{Vec2, Vec3, Vec4};

use crate::{camera::Camera, pick::Footprint};

/// The buildings' ground is cut into this many tiles a side (fewer where it is small).
pub const TILES_PER_SIDE: usize = 16;
/// A building's walls are drawn when they could be this many pixels tall on screen.
pub const WALL_MIN_PX: f32 = 1.0;
/// Glyphs are drawn as boxes when the nearest could be this many pixels wide on screen.
pub const GLYPH_MIN_PX: f32 = 1.0;

/// Whether glyphs `size_m` wide anywhere in the box `lo`..`hi` are all under [`GLYPH_MIN_PX`] wide seen
/// from `camera` in an image `height` pixels tall: then quads do for boxes.
pub fn glyphs_are_subpixel(camera: &Camera, (lo, hi): (Vec3, Vec3), size_m: f32, height: u32) -> bool {
    let eye = camera.eye();
    let forward = (camera.target - eye).normalize_or_zero();
    // Depth is linear, so the box's nearest point in depth is a corner.
    let depth = corners(lo, hi).iter().map(|c| (*c - eye).dot(forward)).fold(f32::INFINITY, f32::min);
    let metres_per_px_per_m = 2.0 * (camera.fov_y / 2.0).tan() / height.max(1) as f32;
    depth > 0.0 && size_m / (depth * metres_per_px_per_m) < GLYPH_MIN_PX
}

/// One tile of buildings.
#[derive(Debug, Clone, PartialEq)]
pub struct Tile {
    /// The smallest corner of its buildings' bounds (ground level).
    pub lo: Vec3,
    /// The largest corner (the tallest roof).
    pub hi: Vec3,
    /// Its roofs in [`BuildingTiles::roof_indices`].
    pub roofs: Range<u32>,
    /// Its buildings' heights, tallest first.
    pub heights: Vec<f32>,
    /// Where its walls start in [`BuildingTiles::wall_indices`].
    pub walls_start: u32,
    /// Where each building's walls end there, in the order of `heights`.
    pub wall_ends: Vec<u32>,
}

/// The buildings filed by tile, with their roofs and walls as separate index lists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildingTiles {
    /// The tiles that hold buildings.
    pub tiles: Vec<Tile>,
    /// Roof triangles (indices into the buildings' vertices), tile by tile.
    pub roof_indices: Vec<u32>,
    /// Wall triangles, tile by tile, tallest building first within a tile.
    pub wall_indices: Vec<u32>,
}

/// Where one building's triangles are in the merged mesh's index list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildingParts {
    /// Its roof triangles.
    pub roof: Range<u32>,
    /// Its wall triangles.
    pub walls: Range<u32>,
}

/// What one frame draws of the buildings: ranges of the roof and wall index lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildingDraws {
    /// Ranges of [`BuildingTiles::roof_indices`].
    pub roofs: Vec<Range<u32>>,
    /// Ranges of [`BuildingTiles::wall_indices`].
    pub walls: Vec<Range<u32>>,
}

impl BuildingDraws {
    /// The triangles these draws rasterise.
    pub fn triangles(&self) -> usize {
        self.roofs.iter().chain(&self.walls).map(|r| r.len()).sum::<usize>() / 3
    }
}

/// Appends `r` to `ranges`, extending the last range if they touch (one draw instead of two).
fn push_merged(ranges: &mut Vec<Range<u32>>, r: Range<u32>) {
    if r.is_empty() {
        return;
    }
    match ranges.last_mut() {
        Some(last) if last.end == r.start => last.end = r.end,
        _ => ranges.push(r),
    }
}

impl BuildingTiles {
    /// Files the buildings (`footprints[i]` has its triangles at `parts[i]` of `indices`).
    pub fn build(footprints: &[Footprint], parts: &[BuildingParts], indices: &[u32]) -> BuildingTiles {
        let bounds: Vec<(Vec2, Vec2)> = footprints.iter().map(Footprint::bounds).collect();
        let Some((lo, hi)) = bounds.iter().copied().reduce(|(a, b), (c, d)| (a.min(c), b.max(d))) else {
            return BuildingTiles::default();
        };
        let side = ((hi - lo).max_element() / TILES_PER_SIDE as f32).max(1.0);
        let tile_of = |(a, b): (Vec2, Vec2)| {
            let c = (((a + b) / 2.0 - lo) / side).floor();
            let (x, z) =
                ((c.x.max(0.0) as usize).min(TILES_PER_SIDE - 1), (c.y.max(0.0) as usize).min(TILES_PER_SIDE - 1));
            z * TILES_PER_SIDE + x
        };
        // Tile by tile, tallest first.
        let mut order: Vec<usize> = (0..footprints.len().min(parts.len())).collect();
        order.sort_by(|&a, &b| {
            tile_of(bounds[a]).cmp(&tile_of(bounds[b])).then(footprints[b].height_m.total_cmp(&footprints[a].height_m))
        });
        let mut out = BuildingTiles::default();
        let slice = |r: &Range<u32>| indices.get(r.start as usize..r.end as usize).unwrap_or(&[]);
        let mut i = 0;
        while i < order.len() {
            let key = tile_of(bounds[order[i]]);
            let (roofs_start, walls_start) = (out.roof_indices.len() as u32, out.wall_indices.len() as u32);
            let mut tile = Tile {
                lo: Vec3::splat(f32::MAX),
                hi: Vec3::splat(f32::MIN),
                roofs: roofs_start..roofs_start,
                heights: Vec::new(),
                walls_start,
                wall_ends: Vec::new(),
            };
            while i < order.len() && tile_of(bounds[order[i]]) == key {
                let b = order[i];
                let (a, c) = bounds[b];
                tile.lo = tile.lo.min(Vec3::new(a.x, 0.0, a.y));
                tile.hi = tile.hi.max(Vec3::new(c.x, footprints[b].height_m, c.y));
                out.roof_indices.extend_from_slice(slice(&parts[b].roof));
                out.wall_indices.extend_from_slice(slice(&parts[b].walls));
                tile.heights.push(footprints[b].height_m);
                tile.wall_ends.push(out.wall_indices.len() as u32);
                i += 1;
            }
            tile.roofs.end = out.roof_indices.len() as u32;
            out.tiles.push(tile);
        }
        out
    }

    /// Everything, as drawn without level of detail.
    pub fn all(&self) -> BuildingDraws {
        let mut draws = BuildingDraws::default();
        push_merged(&mut draws.roofs, 0..self.roof_indices.len() as u32);
        push_merged(&mut draws.walls, 0..self.wall_indices.len() as u32);
        draws
    }

    /// What `camera` needs drawn into a `width` x `height` image (see [`plan`]).
    pub fn plan(&self, camera: &Camera, width: u32, height: u32) -> BuildingDraws {
        plan(&self.tiles, camera, width, height)
    }
}

/// What `camera` needs drawn of `tiles` into a `width` x `height` image: the visible tiles' roofs, and the
/// walls that could span [`WALL_MIN_PX`] on screen.
///
/// A wall `h` metres tall, at depth `z` in front of the eye and seen along a line whose horizontal part
/// is the fraction `c` of its length, spans about `h * c / (z * m)` pixels, where `m` is the metres a
/// pixel covers per metre of depth. For a tile, the smallest depth and the largest `c` of its box's
/// corners bound that from above for every building in it, so no wall left out would span the minimum.
pub fn plan(tiles: &[Tile], camera: &Camera, width: u32, height: u32) -> BuildingDraws {
    let view_proj = camera.view_proj(width as f32 / height.max(1) as f32);
    let eye = camera.eye();
    let forward = (camera.target - eye).normalize_or_zero();
    let metres_per_px_per_m = 2.0 * (camera.fov_y / 2.0).tan() / height.max(1) as f32;
    let mut draws = BuildingDraws::default();
    for tile in tiles {
        if !visible(&view_proj, tile.lo, tile.hi) {
            continue;
        }
        push_merged(&mut draws.roofs, tile.roofs.clone());
        let (mut depth, mut across) = (f32::INFINITY, 0.0f32);
        for corner in corners(tile.lo, tile.hi) {
            let to = corner - eye;
            depth = depth.min(to.dot(forward));
            across = across.max(Vec2::new(to.x, to.z).length() / to.length().max(1e-3));
        }
        // A tile reaching behind the eye, or seen straight down, keeps all its walls.
        let min_height =
            if depth > 1.0 && across > 1e-3 { WALL_MIN_PX * depth * metres_per_px_per_m / across } else { 0.0 };
        let tall = tile.heights.partition_point(|h| *h >= min_height);
        let end = if tall == 0 { tile.walls_start } else { tile.wall_ends[tall - 1] };
        push_merged(&mut draws.walls, tile.walls_start..end);
    }
    draws
}

fn corners(lo: Vec3, hi: Vec3) -> [Vec3; 8] {
    std::array::from_fn(|i| {
        Vec3::new(
            if i & 1 == 0 { lo.x } else { hi.x },
            if i & 2 == 0 { lo.y } else { hi.y },
            if i & 4 == 0 { lo.z } else { hi.z },
        )
    })
}

/// Whether any of the box `lo`..`hi` can be in view: false only when all eight corners lie outside one
/// side of the frustum (left, right, bottom, top, or behind the near plane), in clip space.
fn visible(view_proj: &glam::Mat4, lo: Vec3, hi: Vec3) -> bool {
    let corners: [Vec4; 8] = corners(lo, hi).map(|p| *view_proj * p.extend(1.0));
    let outside = |f: fn(&Vec4) -> bool| corners.iter().all(f);
    !(outside(|c| c.x < -c.w)
        || outside(|c| c.x > c.w)
        || outside(|c| c.y < -c.w)
        || outside(|c| c.y > c.w)
        || outside(|c| c.w < c.z))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `side` x `side` buildings 20 m wide on a 40 m pitch, 6 to 126 m tall, half of them under 36 m (the
    /// demonstration city's median is 26 m), each with one roof triangle pair and eight wall triangles, as
    /// the scene's extrusions have.
    fn city(side: usize) -> (Vec<Footprint>, Vec<BuildingParts>, Vec<u32>) {
        let mut footprints = Vec::new();
        let mut parts = Vec::new();
        let mut indices = Vec::new();
        for i in 0..side * side {
            let (x, z) = ((i % side) as f32 * 40.0, (i / side) as f32 * 40.0);
            let u = ((i as u64).wrapping_mul(2_654_435_761) % 1_000) as f32 / 1_000.0;
            let height_m = 6.0 + 120.0 * u * u;
            let ring =
                vec![Vec2::new(x, z), Vec2::new(x + 20.0, z), Vec2::new(x + 20.0, z + 20.0), Vec2::new(x, z + 20.0)];
            footprints.push(Footprint { id: format!("b{i}"), ring, height_m, vertices: 0..0 });
            let start = indices.len() as u32;
            // Distinct index values per building, so the test can tell whose triangles were drawn.
            indices.extend(std::iter::repeat_n(i as u32, 30));
            parts.push(BuildingParts { roof: start..start + 6, walls: start + 6..start + 30 });
        }
        (footprints, parts, indices)
    }

    #[test]
    fn every_roof_and_wall_is_filed_once_and_walls_go_tallest_first() {
        let (footprints, parts, indices) = city(50);
        let tiles = BuildingTiles::build(&footprints, &parts, &indices);
        assert_eq!(tiles.roof_indices.len(), 2_500 * 6);
        assert_eq!(tiles.wall_indices.len(), 2_500 * 24);
        let mut seen: Vec<u32> = tiles.roof_indices.iter().step_by(6).copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..2_500).collect::<Vec<_>>());
        for t in &tiles.tiles {
            assert!(t.heights.windows(2).all(|w| w[0] >= w[1]), "tallest first");
            assert_eq!(t.wall_ends.len(), t.heights.len());
        }
        assert!(tiles.tiles.len() > 100, "{} tiles", tiles.tiles.len());
        assert_eq!(tiles.all().triangles(), 2_500 * 10);
    }

    /// The buildings whose walls `draws` draw (the synthetic indices are building numbers).
    fn with_walls(tiles: &BuildingTiles, draws: &BuildingDraws) -> std::collections::HashSet<u32> {
        draws.walls.iter().flat_map(|r| tiles.wall_indices[r.start as usize..r.end as usize].iter().copied()).collect()
    }

    #[test]
    fn from_afar_every_roof_is_drawn_and_only_the_walls_that_would_span_a_pixel() {
        let (footprints, parts, indices) = city(274); // 75,076 buildings, 11 km a side
        let tiles = BuildingTiles::build(&footprints, &parts, &indices);
        let all = tiles.all().triangles();
        let centre = Vec3::new(274.0 * 20.0, 0.0, 274.0 * 20.0);
        let (w, h) = (1920, 1080);
        // From 28 km, as the demonstration city's whole-city view (about 19 m a pixel at its centre).
        let whole = Camera::framing(centre, 9_000.0, 60.0);
        let draws = tiles.plan(&whole, w, h);
        let roofs: usize = draws.roofs.iter().map(|r| r.len()).sum::<usize>() / 3;
        assert_eq!(roofs, 75_076 * 2, "every roof is in view");
        let walls = with_walls(&tiles, &draws);
        eprintln!("whole city: {} of {all} triangles, {} buildings with walls", draws.triangles(), walls.len());
        assert!(draws.roofs.len() + draws.walls.len() <= 2 * tiles.tiles.len(), "ranges are merged");
        // Every wall left out is under a pixel tall on screen, at each corner of its building.
        for (i, f) in footprints.iter().enumerate().filter(|(i, _)| !walls.contains(&(*i as u32))) {
            for c in &f.ring {
                let foot = whole.to_pixel(Vec3::new(c.x, 0.0, c.y), w, h).unwrap();
                let top = whole.to_pixel(Vec3::new(c.x, f.height_m, c.y), w, h).unwrap();
                let px = (foot.0 - top.0).hypot(foot.1 - top.1);
                assert!(px < WALL_MIN_PX, "building {i}, {} m tall: its walls span {px:.2} px", f.height_m);
            }
        }
        // Half the buildings are under 36 m: at about 19 m a pixel, their walls go.
        assert!(draws.triangles() < all * 2 / 3, "{} of {all} triangles", draws.triangles());
    }

    #[test]
    fn close_up_the_city_out_of_view_is_skipped_and_the_near_walls_are_drawn() {
        let (footprints, parts, indices) = city(274);
        let tiles = BuildingTiles::build(&footprints, &parts, &indices);
        let all = tiles.all().triangles();
        let corner = Camera::framing(Vec3::new(200.0, 0.0, 200.0), 200.0, 45.0);
        let near = tiles.plan(&corner, 1920, 1080);
        assert!(near.triangles() < all / 20, "{} of {all} triangles near a corner", near.triangles());
        let walls = with_walls(&tiles, &near);
        assert!([0, 1, 274, 275].iter().all(|b| walls.contains(b)), "the corner buildings have walls");
    }

    #[test]
    fn glyphs_are_quads_only_when_even_the_nearest_is_under_a_pixel() {
        // A city 20 km across, the demonstration city's size; glyphs 8 m wide.
        let bounds = (Vec3::new(-10_000.0, 0.0, -11_500.0), Vec3::new(10_000.0, 30.0, 11_500.0));
        let whole = Camera::framing(Vec3::ZERO, 9_200.0, 60.0);
        assert!(glyphs_are_subpixel(&whole, bounds, 8.0, 1080));
        // A frame twice as tall makes them two pixels wide: boxes again.
        assert!(!glyphs_are_subpixel(&whole, bounds, 8.0, 2160));
        let cbd = Camera::framing(Vec3::new(2_000.0, 0.0, -1_000.0), 800.0, 35.0);
        assert!(!glyphs_are_subpixel(&cbd, bounds, 8.0, 1080));
        // Standing inside the box: some glyph is right in front of the eye.
        assert!(!glyphs_are_subpixel(&Camera::focus(Vec3::ZERO, 100.0), bounds, 8.0, 1080));
    }

    #[test]
    fn a_box_behind_the_camera_or_beside_the_view_is_not_visible() {
        let cam = Camera::framing(Vec3::ZERO, 100.0, 45.0);
        let vp = cam.view_proj(16.0 / 9.0);
        assert!(visible(&vp, Vec3::new(-10.0, 0.0, -10.0), Vec3::new(10.0, 10.0, 10.0)));
        // The camera stands south of the target, looking north: far south is behind it.
        assert!(!visible(&vp, Vec3::new(-10.0, 0.0, 5_000.0), Vec3::new(10.0, 10.0, 5_010.0)));
        assert!(!visible(&vp, Vec3::new(5_000.0, 0.0, -10.0), Vec3::new(5_010.0, 10.0, 10.0)));
        // A box enclosing the eye is visible.
        assert!(visible(&vp, Vec3::splat(-10_000.0), Vec3::splat(10_000.0)));
    }
}
