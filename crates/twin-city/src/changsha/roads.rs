//! Roads: an axis-aligned street grid with ring roads, named arterials and bridges.
//!
//! Grid lines run north-south (`xs`) and east-west (`ys`) every 200-270 m (seeded). By index, every
//! fourth line is an arterial, every second a collector, the rest local streets; the lines nearest the
//! 2nd and 3rd ring roads and the named avenues are promoted. A segment joins two consecutive grid
//! nodes that are on land, outside Orange Isle and outside road-free parks. A segment whose carriageway
//! touches water is dropped, except where it becomes a bridge: the six east-west lines nearest the real
//! Xiang crossings, and any ring or arterial crossing the Liuyang. Each bridge segment gets a `Bridge`.
//!
//! Every segment is a `RoadSegment` with its line geometry, class, lanes, speed limit, length and width;
//! a spatial index answers "which segments are near here" for sensors and for checking buildings.

use std::collections::HashMap;

use twin_model::{Entity, EntityId, Geometry, Shape};

use super::{Frame, Ids, bounds, districts::District, parks::Park, water::WaterKind};
use crate::{
    geo::{Rect, Xy, dist_point_segment, rect_intersects_ring},
    make::Make,
    rng::Rng,
};

/// A road's functional class (a subset of the catalog's `roadClass` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RoadClass {
    /// A local street.
    Local,
    /// A collector road.
    Collector,
    /// An arterial avenue.
    Arterial,
    /// A ring road.
    Ring,
}

impl RoadClass {
    /// The catalog value.
    pub fn as_str(self) -> &'static str {
        match self {
            RoadClass::Local => "local",
            RoadClass::Collector => "collector",
            RoadClass::Arterial => "arterial",
            RoadClass::Ring => "ring",
        }
    }

    /// Carriageway width in metres.
    pub fn width_m(self) -> f64 {
        match self {
            RoadClass::Local => 9.0,
            RoadClass::Collector => 16.0,
            RoadClass::Arterial => 28.0,
            RoadClass::Ring => 36.0,
        }
    }

    /// Lanes, both directions.
    pub fn lanes(self) -> i64 {
        match self {
            RoadClass::Local => 2,
            RoadClass::Collector => 4,
            RoadClass::Arterial => 6,
            RoadClass::Ring => 8,
        }
    }

    /// Speed limit in km/h.
    pub fn speed_kmh(self) -> f64 {
        match self {
            RoadClass::Local => 30.0,
            RoadClass::Collector => 50.0,
            RoadClass::Arterial => 60.0,
            RoadClass::Ring => 80.0,
        }
    }
}

/// One grid line.
#[derive(Debug, Clone)]
pub struct Line {
    /// x of a north-south line, y of an east-west line.
    pub pos: f64,
    /// Its class away from ring stretches.
    pub class: RoadClass,
    /// Its road name.
    pub name: String,
    /// The Xiang bridge it carries, if any (east-west lines only).
    pub xiang_bridge: Option<&'static str>,
    /// Whether part of it is a ring road.
    pub ring: bool,
}

/// A ring road: two north-south and two east-west lines.
#[derive(Debug, Clone, Copy)]
pub struct RingRoad {
    /// Indices into `xs`.
    pub x_lines: [usize; 2],
    /// Indices into `ys`.
    pub y_lines: [usize; 2],
}

/// The street grid.
#[derive(Debug, Clone)]
pub struct Grid {
    /// North-south lines, west to east.
    pub xs: Vec<Line>,
    /// East-west lines, south to north.
    pub ys: Vec<Line>,
    /// The ring roads.
    pub rings: Vec<RingRoad>,
}

const XIANG_BRIDGES: [(f64, &str); 6] = [
    (28.117, "Xiangfu Road Bridge"),
    (28.152, "Nanhu Road Bridge"),
    (28.187, "Juzizhou Bridge"),
    (28.219, "Yinpenling Bridge"),
    (28.265, "Fuyuan Road Bridge"),
    (28.292, "Sanchaji Bridge"),
];
/// North-south avenues: longitude and name.
const NS_AVENUES: [(f64, &str); 6] = [
    (112.940, "Lushan Road"),
    (112.985, "Furong Road"),
    (113.005, "Shaoshan Road"),
    (113.022, "Wanjiali Road"),
    (112.905, "Yuelu Avenue North-South"),
    (112.970, "Huangxing Road"),
];
/// East-west avenues: latitude and name.
const EW_AVENUES: [(f64, &str); 6] = [
    (28.196, "Wuyi Avenue"),
    (28.190, "Renmin Road"),
    (28.170, "Laodong Road"),
    (28.206, "Yingpan Road"),
    (28.230, "Xiangya Road"),
    (28.140, "Shaoshan South Road"),
];
/// Ring roads: west, east longitude; south, north latitude.
const RINGS: [(f64, f64, f64, f64); 2] = [(112.915, 113.020, 28.150, 28.245), (112.870, 113.040, 28.112, 28.285)];

fn lines(rng: &mut Rng, from: f64, to: f64, prefix: &str) -> Vec<Line> {
    let mut out = Vec::new();
    let mut pos = from + 100.0;
    while pos < to - 60.0 {
        let i = out.len();
        let class = if i % 4 == 0 {
            RoadClass::Arterial
        } else if i % 2 == 0 {
            RoadClass::Collector
        } else {
            RoadClass::Local
        };
        out.push(Line { pos, class, name: format!("{prefix} {} Road", i + 1), xiang_bridge: None, ring: false });
        pos += rng.range(200.0, 270.0);
    }
    out
}

fn nearest(lines: &[Line], pos: f64) -> usize {
    let mut best = 0;
    for (i, l) in lines.iter().enumerate() {
        if (l.pos - pos).abs() < (lines[best].pos - pos).abs() {
            best = i;
        }
    }
    best
}

impl Grid {
    pub(crate) fn new(frame: &Frame, seed: u64) -> Self {
        let mut rng = Rng::new(seed, 0x0A0D);
        let b = bounds();
        let p = &frame.proj;
        let mut xs = lines(&mut rng, p.x_of(b.min_lon), p.x_of(b.max_lon), "Jing");
        let mut ys = lines(&mut rng, p.y_of(b.min_lat), p.y_of(b.max_lat), "Wei");
        for (lon, name) in NS_AVENUES {
            let i = nearest(&xs, p.x_of(lon));
            xs[i].name = name.to_owned();
            xs[i].class = xs[i].class.max(RoadClass::Arterial);
        }
        for (lat, name) in EW_AVENUES {
            let j = nearest(&ys, p.y_of(lat));
            ys[j].name = name.to_owned();
            ys[j].class = ys[j].class.max(RoadClass::Arterial);
        }
        for (lat, name) in XIANG_BRIDGES {
            let j = nearest(&ys, p.y_of(lat));
            ys[j].xiang_bridge = Some(name);
            ys[j].class = ys[j].class.max(RoadClass::Arterial);
        }
        let mut rings = Vec::new();
        for (k, (w, e, s, n)) in RINGS.iter().enumerate() {
            let x_lines = [nearest(&xs, p.x_of(*w)), nearest(&xs, p.x_of(*e))];
            let y_lines = [nearest(&ys, p.y_of(*s)), nearest(&ys, p.y_of(*n))];
            let ring_name = if k == 0 { "2nd Ring Road" } else { "3rd Ring Road" };
            for i in x_lines {
                xs[i].ring = true;
                xs[i].class = xs[i].class.max(RoadClass::Arterial);
                xs[i].name = ring_name.to_owned();
            }
            for j in y_lines {
                ys[j].ring = true;
                ys[j].class = ys[j].class.max(RoadClass::Arterial);
                ys[j].name = ring_name.to_owned();
            }
            rings.push(RingRoad { x_lines, y_lines });
        }
        Grid { xs, ys, rings }
    }

    /// Half of the widest carriageway on a line.
    pub fn half_width(line: &Line) -> f64 {
        if line.ring { RoadClass::Ring.width_m() / 2.0 } else { line.class.width_m() / 2.0 }
    }

    /// The class of a segment on north-south line `i` (or east-west line `i` when `horizontal`) at `along`.
    fn class_at(&self, horizontal: bool, i: usize, along: f64) -> RoadClass {
        for r in &self.rings {
            let (own, other, other_lines) =
                if horizontal { (&r.y_lines, &self.xs, &r.x_lines) } else { (&r.x_lines, &self.ys, &r.y_lines) };
            if own.contains(&i) && (other[other_lines[0]].pos..=other[other_lines[1]].pos).contains(&along) {
                return RoadClass::Ring;
            }
        }
        if horizontal { self.ys[i].class } else { self.xs[i].class }
    }

    /// How many blocks across (west-east) and down (south-north).
    pub fn block_dims(&self) -> (usize, usize) {
        (self.xs.len().saturating_sub(1), self.ys.len().saturating_sub(1))
    }

    /// The land of block `(i, j)` between lines `i`, `i + 1` and `j`, `j + 1`, inset by each line's half
    /// width plus `setback` metres.
    pub fn block_inner(&self, i: usize, j: usize, setback: f64) -> Rect {
        let (w, e) = (&self.xs[i], &self.xs[i + 1]);
        let (s, n) = (&self.ys[j], &self.ys[j + 1]);
        Rect::new(
            w.pos + Grid::half_width(w) + setback,
            s.pos + Grid::half_width(s) + setback,
            e.pos - Grid::half_width(e) - setback,
            n.pos - Grid::half_width(n) - setback,
        )
    }
}

/// One road segment, in the local frame.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Its entity id.
    pub id: EntityId,
    /// Start.
    pub a: Xy,
    /// End.
    pub b: Xy,
    /// Class.
    pub class: RoadClass,
    /// District at the midpoint.
    pub district: District,
    /// Whether it runs east-west.
    pub horizontal: bool,
    /// The grid line index.
    pub line: usize,
    /// The water it bridges, if any.
    pub bridge: Option<WaterKind>,
}

impl Segment {
    /// The carriageway as a rectangle.
    pub fn rect(&self) -> Rect {
        let hw = self.class.width_m() / 2.0;
        if self.horizontal {
            Rect::new(self.a.x, self.a.y - hw, self.b.x, self.a.y + hw)
        } else {
            Rect::new(self.a.x - hw, self.a.y, self.a.x + hw, self.b.y)
        }
    }

    /// Length in metres.
    pub fn length_m(&self) -> f64 {
        self.a.dist(self.b)
    }
}

/// The road layer.
#[derive(Debug)]
pub struct Roads {
    /// `RoadSegment` then `Bridge` entities.
    pub entities: Vec<Entity>,
    /// Segments, in entity order.
    pub segments: Vec<Segment>,
    /// Segments meeting at each grid node `(i, j)`.
    pub junctions: Vec<((usize, usize), Vec<usize>)>,
    index: HashMap<(i32, i32), Vec<u32>>,
}

const CELL_M: f64 = 250.0;

fn cell(v: f64) -> i32 {
    (v / CELL_M).floor() as i32
}

impl Roads {
    /// Segments whose carriageway comes within `margin` metres of `r`.
    pub fn near(&self, r: &Rect, margin: f64) -> impl Iterator<Item = usize> + '_ {
        let g = r.expand(margin + 20.0);
        let mut out = Vec::new();
        for cx in cell(g.min.x)..=cell(g.max.x) {
            for cy in cell(g.min.y)..=cell(g.max.y) {
                if let Some(v) = self.index.get(&(cx, cy)) {
                    out.extend(v.iter().map(|s| *s as usize));
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        let r = r.expand(margin);
        out.into_iter().filter(move |s| self.segments[*s].rect().intersects(&r))
    }

    /// Whether `r` keeps at least `margin` metres from every carriageway.
    pub fn clear_of(&self, r: &Rect, margin: f64) -> bool {
        self.near(r, margin).next().is_none()
    }

    /// The nearest segment to `p` within 600 m that `keep` accepts.
    pub fn nearest(&self, p: Xy, keep: impl Fn(&Segment) -> bool) -> Option<usize> {
        let r = Rect::new(p.x, p.y, p.x, p.y);
        let mut best: Option<(f64, usize)> = None;
        for s in self.near(&r, 600.0) {
            let seg = &self.segments[s];
            if !keep(seg) {
                continue;
            }
            let d = dist_point_segment(p, seg.a, seg.b);
            if best.is_none_or(|(bd, _)| d < bd) {
                best = Some((d, s));
            }
        }
        best.map(|(_, s)| s)
    }
}

/// Builds segments and bridges on `grid`, avoiding water (except bridges) and road-free parks.
pub(crate) fn build(frame: &Frame, grid: &Grid, parks: &[Park], ids: &mut Ids) -> Roads {
    let (nx, ny) = (grid.xs.len(), grid.ys.len());
    let node_ok = |i: usize, j: usize| {
        let p = Xy::new(grid.xs[i].pos, grid.ys[j].pos);
        frame.water.water_at(p).is_none()
            && !frame.water.on_isle(p)
            && !parks.iter().any(|k| !k.roads_allowed && k.contains(p))
    };
    let ok: Vec<bool> = (0..ny).flat_map(|j| (0..nx).map(move |i| (i, j))).map(|(i, j)| node_ok(i, j)).collect();
    let mut segments = Vec::new();
    let mut junctions: HashMap<(usize, usize), Vec<usize>> = HashMap::new();
    for horizontal in [false, true] {
        let (count, across) = if horizontal { (ny, nx) } else { (nx, ny) };
        for line in 0..count {
            let node = |k: usize| if horizontal { (k, line) } else { (line, k) };
            let nodes: Vec<usize> = (0..across)
                .filter(|k| {
                    let (i, j) = node(*k);
                    ok[j * nx + i]
                })
                .collect();
            for w in nodes.windows(2) {
                let ((ia, ja), (ib, jb)) = (node(w[0]), node(w[1]));
                let a = Xy::new(grid.xs[ia].pos, grid.ys[ja].pos);
                let b = Xy::new(grid.xs[ib].pos, grid.ys[jb].pos);
                let mid = a.lerp(b, 0.5);
                let class = grid.class_at(horizontal, line, if horizontal { mid.x } else { mid.y });
                let mut seg = Segment {
                    id: crate::make::entity_id("pending"),
                    a,
                    b,
                    class,
                    district: frame.district_at(mid),
                    horizontal,
                    line,
                    bridge: None,
                };
                let rect = seg.rect();
                // A bridge must cross its river's centre line; a segment that only grazes water is dropped.
                match frame.water.rect_touches(&rect.expand(3.0)) {
                    None => {}
                    Some(WaterKind::Xiang)
                        if horizontal
                            && grid.ys[line].xiang_bridge.is_some()
                            && a.x < frame.water.centre_x(a.y)
                            && b.x > frame.water.centre_x(a.y) =>
                    {
                        seg.bridge = Some(WaterKind::Xiang);
                    }
                    Some(WaterKind::Liuyang)
                        if class >= RoadClass::Arterial && crosses(a, b, &frame.water.liuyang_line) =>
                    {
                        seg.bridge = Some(WaterKind::Liuyang)
                    }
                    Some(_) => continue,
                }
                // Roads stay out of road-free parks, except Xiang bridges passing over Orange Isle.
                let isle_ok = |k: &Park| seg.bridge == Some(WaterKind::Xiang) && k.ring == frame.water.isle;
                if parks.iter().any(|k| !k.roads_allowed && !isle_ok(k) && rect_intersects_ring(&rect, &k.ring)) {
                    continue;
                }
                seg.id = ids.next("RoadSegment", seg.district, 5);
                let s = segments.len();
                junctions.entry((ia, ja)).or_default().push(s);
                junctions.entry((ib, jb)).or_default().push(s);
                segments.push(seg);
            }
        }
    }
    let mut index: HashMap<(i32, i32), Vec<u32>> = HashMap::new();
    for (s, seg) in segments.iter().enumerate() {
        let r = seg.rect();
        for cx in cell(r.min.x)..=cell(r.max.x) {
            for cy in cell(r.min.y)..=cell(r.max.y) {
                index.entry((cx, cy)).or_default().push(s as u32);
            }
        }
    }
    let mut entities = Vec::with_capacity(segments.len() + 64);
    for seg in &segments {
        let line = if seg.horizontal { &grid.ys[seg.line] } else { &grid.xs[seg.line] };
        let geometry =
            Geometry { shape: Shape::Line(vec![frame.proj.to_geo(seg.a), frame.proj.to_geo(seg.b)]), height_m: 0.0 };
        entities.push(
            Make::new(seg.id.clone(), "RoadSegment", Some(geometry))
                .rel("refDistrict", frame.districts.id(seg.district))
                .text("name", &line.name)
                .text("roadClass", seg.class.as_str())
                .int("laneCount", seg.class.lanes())
                .num("maximumAllowedSpeed", seg.class.speed_kmh())
                .num("lengthM", seg.length_m())
                .num("widthM", seg.class.width_m())
                .text("status", "open")
                .build(),
        );
    }
    for seg in &segments {
        let Some(water) = seg.bridge else { continue };
        let line = if seg.horizontal { &grid.ys[seg.line] } else { &grid.xs[seg.line] };
        let (name, clearance) = match (water, line.xiang_bridge) {
            (WaterKind::Xiang, Some(name)) => (name.to_owned(), 22.0),
            _ => (format!("{} {} Bridge", line.name, water.name()), 9.0),
        };
        let geometry =
            Geometry { shape: Shape::Line(vec![frame.proj.to_geo(seg.a), frame.proj.to_geo(seg.b)]), height_m: 0.0 };
        entities.push(
            Make::new(ids.next("Bridge", seg.district, 4), "Bridge", Some(geometry))
                .rel("refDistrict", frame.districts.id(seg.district))
                .rel("refRoadSegment", &seg.id)
                .rel("refWaterBody", &super::water::Water::id(water))
                .text("name", &name)
                .num("lengthM", seg.length_m())
                .num("clearanceM", clearance)
                .num("loadLimitT", if seg.class == RoadClass::Ring { 80.0 } else { 55.0 })
                .text("status", "open")
                .build(),
        );
    }
    let mut junctions: Vec<_> = junctions.into_iter().collect();
    junctions.sort_unstable_by_key(|(k, _)| (k.1, k.0));
    Roads { entities, segments, junctions, index }
}

/// Whether segment `ab` crosses the polyline.
fn crosses(a: Xy, b: Xy, line: &[Xy]) -> bool {
    line.windows(2).any(|w| crate::geo::segments_intersect(a, b, w[0], w[1]))
}
