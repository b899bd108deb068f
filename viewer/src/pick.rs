//! Picking: which entity is under the cursor.
//!
//! A click becomes a [`Ray`] from the camera. Buildings are hit exactly, as extruded footprints (prisms
//! from the ground to their roof); the nearest hit wins. To stay fast for a whole city (75,000 buildings),
//! the footprints are filed in a [`BuildingGrid`] of square cells over the ground, and the ray walks only
//! the cells it crosses, front to back (a 2D DDA), stopping as soon as the nearest hit lies before the
//! next cell. Sensor glyphs are only a few metres wide, invisible targets from afar, so they are picked
//! on screen within a few pixels, or where the ray hits their box; a sensor wins over a building only if
//! it stands in front of the building's hit, so a glyph hidden behind a tower cannot be clicked through it.

use glam::{Vec2, Vec3, Vec3Swizzles, Vec4Swizzles};

use crate::{
    camera::Camera,
    render::marker_unit_px,
    scene::{EDGE_MARKER_UNITS, Scene},
};

/// A half-line in world space.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ray {
    /// Where it starts.
    pub origin: Vec3,
    /// Its direction, unit length.
    pub dir: Vec3,
}

impl Ray {
    /// The point `t` metres along the ray.
    pub fn at(&self, t: f32) -> Vec3 {
        self.origin + self.dir * t
    }
}

/// An extruded building footprint as picking sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Footprint {
    /// The building's entity id.
    pub id: String,
    /// Its corners in the ground plane, world (x, z), an open ring of either winding.
    pub ring: Vec<Vec2>,
    /// Roof height, metres.
    pub height_m: f32,
    /// Its vertices in [`Scene::buildings`] (for the highlight).
    pub vertices: std::ops::Range<u32>,
}

impl Footprint {
    /// The smallest and largest world (x, z) of the footprint.
    pub fn bounds(&self) -> (Vec2, Vec2) {
        self.ring.iter().fold((Vec2::splat(f32::MAX), Vec2::splat(f32::MIN)), |(lo, hi), p| (lo.min(*p), hi.max(*p)))
    }

    /// The centre of its roof.
    pub fn roof_center(&self) -> Vec3 {
        let (lo, hi) = self.bounds();
        let c = (lo + hi) / 2.0;
        Vec3::new(c.x, self.height_m, c.y)
    }

    /// Whether `p` (world x, z) lies inside the footprint (even-odd rule).
    pub fn contains(&self, p: Vec2) -> bool {
        let ring = &self.ring;
        let mut inside = false;
        for i in 0..ring.len() {
            let (a, b) = (ring[i], ring[(i + 1) % ring.len()]);
            if (a.y > p.y) != (b.y > p.y) && p.x < (b.x - a.x) * (p.y - a.y) / (b.y - a.y) + a.x {
                inside = !inside;
            }
        }
        inside
    }

    /// Where the ray first meets the prism (roof or a wall), as a distance along the ray.
    pub fn hit(&self, ray: &Ray) -> Option<f32> {
        // The bounding box first: most footprints a ray is tested against are missed there. A centimetre
        // of slack keeps grazing hits that rounding would push just outside.
        let (lo, hi) = self.bounds();
        let slack = Vec3::splat(0.01);
        slab(ray, Vec3::new(lo.x, 0.0, lo.y) - slack, Vec3::new(hi.x, self.height_m, hi.y) + slack)?;
        let mut best = f32::INFINITY;
        // The roof (and the floor, for a ray from below): a horizontal plane inside the footprint.
        if ray.dir.y != 0.0 {
            for y in [self.height_m, 0.0] {
                let t = (y - ray.origin.y) / ray.dir.y;
                if t >= 0.0 && t < best && self.contains(ray.at(t).xz()) {
                    best = t;
                }
            }
        }
        // The walls: the ray's ground track crosses an edge at a height within the wall.
        let (o, d) = (ray.origin.xz(), ray.dir.xz());
        for i in 0..self.ring.len() {
            let (a, b) = (self.ring[i], self.ring[(i + 1) % self.ring.len()]);
            let e = b - a;
            let denom = d.perp_dot(e);
            if denom.abs() < 1e-12 {
                continue; // parallel to the wall
            }
            let ao = a - o;
            let t = ao.perp_dot(e) / denom;
            let s = ao.perp_dot(d) / denom;
            if (0.0..=1.0).contains(&s) && t >= 0.0 && t < best {
                let y = ray.origin.y + ray.dir.y * t;
                if (-1e-3..=self.height_m + 1e-3).contains(&y) {
                    best = t;
                }
            }
        }
        best.is_finite().then_some(best)
    }
}

/// Where a ray enters and leaves an axis-aligned box (`t` along the ray, entry clamped to 0).
fn slab(ray: &Ray, lo: Vec3, hi: Vec3) -> Option<(f32, f32)> {
    let inv = ray.dir.recip();
    let (a, b) = ((lo - ray.origin) * inv, (hi - ray.origin) * inv);
    // A zero direction component gives inf or NaN: NaN means the origin lies on a face, treat as inside.
    let near = a.min(b);
    let far = a.max(b);
    let t0 = [near.x, near.y, near.z].into_iter().filter(|v| !v.is_nan()).fold(0.0f32, f32::max);
    let t1 = [far.x, far.y, far.z].into_iter().filter(|v| !v.is_nan()).fold(f32::INFINITY, f32::min);
    (t0 <= t1).then_some((t0, t1))
}

/// Building footprints filed by the square cells of the ground they overlap.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildingGrid {
    origin: Vec2,
    cell_m: f32,
    cols: usize,
    rows: usize,
    /// Cell `i`'s buildings are `items[starts[i]..starts[i + 1]]` (one flat list, no vector per cell).
    starts: Vec<u32>,
    items: Vec<u32>,
    max_height_m: f32,
}

/// How much work one pick did: the count a test can bound, in place of a timing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PickCost {
    /// Grid cells the ray walked through.
    pub cells: usize,
    /// Footprints tested exactly.
    pub buildings_tested: usize,
}

/// At most this many cells, whatever the city's size (a 32 MB ceiling on the starts).
const MAX_CELLS: usize = 8_000_000;

impl BuildingGrid {
    /// Files `footprints`. The cell size follows the density, about one footprint per cell on average,
    /// so a ray tests a handful of footprints per cell it crosses.
    pub fn build(footprints: &[Footprint]) -> BuildingGrid {
        let bounds: Vec<(Vec2, Vec2)> = footprints.iter().map(Footprint::bounds).collect();
        let Some((lo, hi)) = bounds.iter().copied().reduce(|(a, b), (c, d)| (a.min(c), b.max(d))) else {
            return BuildingGrid::default();
        };
        let size = (hi - lo).max(Vec2::splat(1.0));
        let per_cell = (size.x * size.y / footprints.len() as f32).sqrt();
        let cell_m = per_cell.max((size.x * size.y / MAX_CELLS as f32).sqrt()).clamp(10.0, 1_000.0);
        let (cols, rows) = ((size.x / cell_m) as usize + 1, (size.y / cell_m) as usize + 1);
        let cell_of = |p: Vec2| {
            let c = ((p - lo) / cell_m).floor();
            ((c.x.max(0.0) as usize).min(cols - 1), (c.y.max(0.0) as usize).min(rows - 1))
        };
        // Two passes: count per cell, then fill, so the lists are one allocation.
        let mut counts = vec![0u32; cols * rows + 1];
        for (a, b) in &bounds {
            let ((c0, r0), (c1, r1)) = (cell_of(*a), cell_of(*b));
            for r in r0..=r1 {
                for c in c0..=c1 {
                    counts[r * cols + c] += 1;
                }
            }
        }
        let mut starts = Vec::with_capacity(counts.len());
        let mut total = 0u32;
        for n in &counts {
            starts.push(total);
            total += n;
        }
        let mut next = starts.clone();
        let mut items = vec![0u32; total as usize];
        for (i, (a, b)) in bounds.iter().enumerate() {
            let ((c0, r0), (c1, r1)) = (cell_of(*a), cell_of(*b));
            for r in r0..=r1 {
                for c in c0..=c1 {
                    let slot = &mut next[r * cols + c];
                    items[*slot as usize] = i as u32;
                    *slot += 1;
                }
            }
        }
        let max_height_m = footprints.iter().map(|f| f.height_m).fold(0.0, f32::max);
        BuildingGrid { origin: lo, cell_m, cols, rows, starts, items, max_height_m }
    }

    /// The side of a cell, metres.
    pub fn cell_m(&self) -> f32 {
        self.cell_m
    }

    fn cell(&self, c: usize, r: usize) -> &[u32] {
        let i = r * self.cols + c;
        match (self.starts.get(i), self.starts.get(i + 1)) {
            (Some(&a), Some(&b)) => self.items.get(a as usize..b as usize).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// The nearest footprint the ray hits and how far along the ray, walking the cells front to back.
    pub fn first_hit(&self, footprints: &[Footprint], ray: &Ray, cost: &mut PickCost) -> Option<(usize, f32)> {
        if self.cols == 0 {
            return None;
        }
        let size = Vec2::new(self.cols as f32, self.rows as f32) * self.cell_m;
        let lo = Vec3::new(self.origin.x, 0.0, self.origin.y);
        let hi = Vec3::new(self.origin.x + size.x, self.max_height_m, self.origin.y + size.y);
        let (t_in, t_out) = slab(ray, lo, hi)?;
        let start = (ray.at(t_in).xz() - self.origin) / self.cell_m;
        let (mut c, mut r) = (
            (start.x.floor().max(0.0) as usize).min(self.cols - 1),
            (start.y.floor().max(0.0) as usize).min(self.rows - 1),
        );
        // Per axis: the step, the t of the next cell boundary, and the t between boundaries.
        let axis = |d: f32, o: f32, grid_o: f32, cell: usize| -> (isize, f32, f32) {
            if d > 0.0 {
                (1, (grid_o + (cell + 1) as f32 * self.cell_m - o) / d, self.cell_m / d)
            } else if d < 0.0 {
                (-1, (grid_o + cell as f32 * self.cell_m - o) / d, -self.cell_m / d)
            } else {
                (0, f32::INFINITY, f32::INFINITY)
            }
        };
        let (step_c, mut next_c, delta_c) = axis(ray.dir.x, ray.origin.x, self.origin.x, c);
        let (step_r, mut next_r, delta_r) = axis(ray.dir.z, ray.origin.z, self.origin.y, r);
        let mut best: Option<(usize, f32)> = None;
        let mut tested: Vec<u32> = Vec::new();
        loop {
            cost.cells += 1;
            for &i in self.cell(c, r) {
                // A footprint spanning several cells is tested once.
                if tested.contains(&i) {
                    continue;
                }
                tested.push(i);
                cost.buildings_tested += 1;
                if let Some(t) = footprints.get(i as usize).and_then(|f| f.hit(ray))
                    && best.is_none_or(|(_, b)| t < b)
                {
                    best = Some((i as usize, t));
                }
            }
            let exit = next_c.min(next_r);
            // Nothing in a later cell can be nearer than a hit before this cell's far side.
            if best.is_some_and(|(_, t)| t <= exit) || exit > t_out {
                return best;
            }
            if next_c < next_r {
                let Some(n) = c.checked_add_signed(step_c).filter(|n| *n < self.cols) else { return best };
                c = n;
                next_c += delta_c;
            } else {
                let Some(n) = r.checked_add_signed(step_r).filter(|n| *n < self.rows) else { return best };
                r = n;
                next_r += delta_r;
            }
            // Only the cells of the current stretch matter for deduplication: keep the list short.
            if tested.len() > 256 {
                tested.clear();
            }
        }
    }
}

/// What a click picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Picked {
    /// A sensor or device: its glyph index.
    Sensor(usize),
    /// A building: its footprint index.
    Building(usize),
}

/// Which layers can be picked (hidden layers cannot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pickable {
    /// Buildings can be picked.
    pub buildings: bool,
    /// Sensors can be picked.
    pub sensors: bool,
}

impl Default for Pickable {
    fn default() -> Self {
        Pickable { buildings: true, sensors: true }
    }
}

/// How close to a glyph's middle, in pixels, a click still picks it.
pub const SENSOR_TOLERANCE_PX: f32 = 12.0;

/// What lies under pixel `at` (x right, y down) of a `width` x `height` view from `camera`.
pub fn pick(scene: &Scene, camera: &Camera, size: (u32, u32), at: (f32, f32), pickable: Pickable) -> Option<Picked> {
    pick_counted(scene, camera, size, at, pickable).0
}

/// As [`pick`], with the work it took.
pub fn pick_counted(
    scene: &Scene,
    camera: &Camera,
    (width, height): (u32, u32),
    at: (f32, f32),
    pickable: Pickable,
) -> (Option<Picked>, PickCost) {
    let mut cost = PickCost::default();
    // Edge boxes' markers are drawn over everything: a click on one picks its box, whatever is behind.
    if pickable.sensors
        && let Some(i) = edge_marker_under(scene, camera, (width, height), at)
    {
        return (Some(Picked::Sensor(i)), cost);
    }
    let ray = camera.ray(at, width, height);
    let building =
        if pickable.buildings { scene.building_grid.first_hit(&scene.footprints, &ray, &mut cost) } else { None };
    let sensor = if pickable.sensors { nearest_glyph(scene, camera, (width, height), at, &ray) } else { None };
    match (sensor, building) {
        (Some((s, ts)), Some((_, tb))) if ts <= tb => (Some(Picked::Sensor(s)), cost),
        (_, Some((b, _))) => (Some(Picked::Building(b)), cost),
        (Some((s, _)), None) => (Some(Picked::Sensor(s)), cost),
        (None, None) => (None, cost),
    }
}

/// The glyph of the edge box whose marker (dot and ring, [`EDGE_MARKER_UNITS`]) covers the cursor; the
/// closest on screen wins.
fn edge_marker_under(scene: &Scene, camera: &Camera, (w, h): (u32, u32), at: (f32, f32)) -> Option<usize> {
    let cursor = Vec2::new(at.0, at.1);
    let outer = EDGE_MARKER_UNITS.2;
    scene
        .edges
        .iter()
        .filter_map(|edge| {
            let anchor = scene.edge_anchor(edge)?;
            let (x, y) = camera.to_pixel(anchor, w, h)?;
            let d = Vec2::new(x, y).distance(cursor);
            (d <= outer * marker_unit_px(camera, anchor, h)).then_some((d, edge.glyph))
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, glyph)| glyph)
}

/// The glyph under the cursor: hit by the ray, or within [`SENSOR_TOLERANCE_PX`] of its middle on screen;
/// the closest on screen, then the nearest, wins. Returns its index and its distance along the ray.
fn nearest_glyph(
    scene: &Scene,
    camera: &Camera,
    (w, h): (u32, u32),
    at: (f32, f32),
    ray: &Ray,
) -> Option<(usize, f32)> {
    let view_proj = camera.view_proj(w as f32 / h.max(1) as f32);
    let cursor = Vec2::new(at.0, at.1);
    let mut best: Option<(f32, f32, usize)> = None;
    for (i, g) in scene.glyphs.iter().enumerate() {
        let base = Vec3::from(g.center);
        let half = g.size / 2.0;
        let middle = base + Vec3::Y * g.size;
        let boxed = slab(ray, base - Vec3::new(half, 0.0, half), base + Vec3::new(half, 2.0 * g.size, half));
        let (screen, t) = match boxed {
            Some((t, _)) => (0.0, t),
            None => {
                let clip = view_proj * middle.extend(1.0);
                if clip.w <= 0.0 {
                    continue;
                }
                let ndc = clip.xy() / clip.w;
                let px = Vec2::new((ndc.x + 1.0) / 2.0 * w as f32, (1.0 - ndc.y) / 2.0 * h as f32);
                let d = px.distance(cursor);
                if d > SENSOR_TOLERANCE_PX {
                    continue;
                }
                (d, (middle - ray.origin).dot(ray.dir))
            }
        };
        if best.is_none_or(|(bd, bt, _)| (screen, t) < (bd, bt)) {
            best = Some((screen, t, i));
        }
    }
    best.map(|(_, t, i)| (i, t))
}

#[cfg(test)]
mod tests;
