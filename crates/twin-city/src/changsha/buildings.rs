//! Buildings: footprints inside the blocks between roads.
//!
//! Each block's land (between its four grid lines, inset by each road's half width plus a setback) is
//! cut into lots whose size depends on the area's [`Character`]; a lot holds one rectangular footprint
//! with at least 2 m to the lot edge, or stays empty (green). Blocks in parks are skipped; footprints in
//! blocks near water are checked exactly against the water and dropped if they touch it; every
//! footprint is finally checked against the road index (a safety net: by construction none touches a
//! road). Heights follow the character: CBD towers of 150-452 m within [`CBD_RADIUS_M`] of Wuyi Square
//! (the tallest, Changsha IFS Tower T1 at 452 m, nearest the square), mid-rise Yuelu campuses, Meixi
//! Lake high-rises, older low-rise Tianxin, and lower, sparser outskirts; nothing outside the CBD reaches
//! 150 m. Floors are height / 3.2 m. Orange Isle keeps six low pavilions in its park.

use twin_model::{Entity, EntityId, Geometry, Shape};

use super::{
    CBD_RADIUS_M, Frame, Ids, WUYI_SQUARE, districts::District, parks::Park, roads::Grid, roads::Roads,
    water::MEIXI_CENTRE,
};
use crate::{
    geo::{Rect, Xy, point_in_ring},
    make::Make,
    rng::Rng,
};

/// The main use of a building (the catalog's `category`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// Homes.
    Residential,
    /// Offices.
    Office,
    /// Shops, malls, hotels.
    Commercial,
    /// Factories, warehouses.
    Industrial,
    /// Schools, universities.
    Education,
    /// Hospitals.
    Hospital,
    /// Government and civic buildings.
    Public,
    /// Mixed use.
    Mixed,
}

impl Category {
    const ALL: [Category; 8] = [
        Category::Residential,
        Category::Office,
        Category::Commercial,
        Category::Industrial,
        Category::Education,
        Category::Hospital,
        Category::Public,
        Category::Mixed,
    ];

    /// The catalog value.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Residential => "residential",
            Category::Office => "office",
            Category::Commercial => "commercial",
            Category::Industrial => "industrial",
            Category::Education => "education",
            Category::Hospital => "hospital",
            Category::Public => "public",
            Category::Mixed => "mixed",
        }
    }
}

/// The character of an area, which sets lot size, density, heights and uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Character {
    /// Wuyi Square CBD towers.
    Cbd,
    /// Furong's dense centre.
    Core,
    /// Kaifu's residential north.
    North,
    /// Tianxin's older low-rise south.
    OldTown,
    /// Yuhua's mixed south-east.
    SouthEast,
    /// The Yuelu university campuses between the mountain and the river.
    Campus,
    /// The Meixi Lake new town.
    LakeTown,
    /// The rest of the west bank.
    WestBank,
}

struct Params {
    lot: (f64, f64),
    coverage: (f64, f64),
    empty: f64,
    setback: f64,
    /// Category weights in [`Category::ALL`] order.
    uses: [f64; 8],
}

impl Character {
    fn params(self) -> Params {
        let p = |lot, coverage, empty, setback, uses| Params { lot, coverage, empty, setback, uses };
        match self {
            Character::Cbd => p((60.0, 60.0), (0.55, 0.8), 0.1, 10.0, [0.0, 0.6, 0.25, 0.0, 0.0, 0.0, 0.0, 0.15]),
            Character::Core => p((42.0, 38.0), (0.5, 0.8), 0.12, 8.0, [0.4, 0.15, 0.3, 0.0, 0.02, 0.0, 0.04, 0.09]),
            Character::North => p((48.0, 44.0), (0.45, 0.7), 0.15, 8.0, [0.6, 0.05, 0.15, 0.1, 0.03, 0.0, 0.03, 0.04]),
            Character::OldTown => p((30.0, 28.0), (0.6, 0.85), 0.1, 6.0, [0.6, 0.02, 0.25, 0.0, 0.03, 0.0, 0.04, 0.06]),
            Character::SouthEast => {
                p((50.0, 45.0), (0.45, 0.7), 0.18, 8.0, [0.45, 0.1, 0.15, 0.2, 0.02, 0.0, 0.03, 0.05])
            }
            Character::Campus => p((62.0, 46.0), (0.35, 0.6), 0.3, 10.0, [0.2, 0.0, 0.0, 0.0, 0.7, 0.0, 0.1, 0.0]),
            Character::LakeTown => p((52.0, 46.0), (0.4, 0.6), 0.2, 10.0, [0.6, 0.1, 0.2, 0.0, 0.02, 0.0, 0.03, 0.05]),
            Character::WestBank => {
                p((48.0, 44.0), (0.45, 0.7), 0.2, 8.0, [0.55, 0.02, 0.15, 0.1, 0.1, 0.0, 0.03, 0.05])
            }
        }
    }

    /// A height in metres for a building at distance `d_cbd` from Wuyi Square.
    fn height(self, rng: &mut Rng, d_cbd: f64) -> f64 {
        let u = rng.f64();
        match self {
            Character::Cbd => {
                if rng.chance(0.7) {
                    let core = (1.0 - d_cbd / CBD_RADIUS_M).max(0.0).powf(1.3);
                    (150.0 + 290.0 * core * rng.range(0.45, 1.0)).clamp(150.0, 440.0)
                } else {
                    18.0 + 42.0 * u
                }
            }
            Character::Core => 18.0 + 102.0 * u * u,
            Character::North => 18.0 + 82.0 * u.powf(1.5),
            Character::OldTown => {
                if rng.chance(0.05) {
                    30.0 + 30.0 * u
                } else {
                    6.0 + 24.0 * u.powf(1.5)
                }
            }
            Character::SouthEast => 15.0 + 85.0 * u.powf(1.7),
            Character::Campus => 12.0 + 28.0 * u,
            Character::LakeTown => 30.0 + 90.0 * u,
            Character::WestBank => 15.0 + 65.0 * u.powf(1.5),
        }
    }
}

/// A generated building, for placing sensors.
#[derive(Debug, Clone)]
pub struct BuildingInfo {
    /// Its entity id.
    pub id: EntityId,
    /// Its district.
    pub district: District,
    /// Its footprint.
    pub rect: Rect,
    /// Its height in metres.
    pub height: f64,
    /// Its main use.
    pub category: Category,
    /// The block `(i, j)` it stands in (`None` on Orange Isle).
    pub block: Option<(usize, usize)>,
}

/// The building layer.
#[derive(Debug)]
pub struct Buildings {
    /// `Building` entities.
    pub entities: Vec<Entity>,
    /// The same buildings, in entity order.
    pub infos: Vec<BuildingInfo>,
    /// Blocks that hold buildings, with their land.
    pub blocks: Vec<((usize, usize), Rect, District)>,
}

struct Plan {
    rect: Rect,
    height: f64,
    category: Category,
    district: District,
    name: Option<&'static str>,
    block: Option<(usize, usize)>,
}

fn character(frame: &Frame, d: District, p: Xy, d_cbd: f64) -> Character {
    match d {
        District::Yuelu => {
            let g = frame.proj.to_geo(p);
            if (112.925..112.956).contains(&g.lon) && (28.160..28.205).contains(&g.lat) {
                Character::Campus
            } else if p.dist(frame.proj.to_local(MEIXI_CENTRE)) < 2_800.0 {
                Character::LakeTown
            } else {
                Character::WestBank
            }
        }
        _ if d_cbd < CBD_RADIUS_M => Character::Cbd,
        District::Furong => Character::Core,
        District::Kaifu => Character::North,
        District::Tianxin => Character::OldTown,
        District::Yuhua => Character::SouthEast,
    }
}

/// Places buildings in every block of `grid`.
pub(crate) fn build(frame: &Frame, grid: &Grid, parks: &[Park], roads: &Roads, seed: u64, ids: &mut Ids) -> Buildings {
    let mut rng = Rng::new(seed, 0xB01D);
    let cbd = frame.proj.to_local(WUYI_SQUARE);
    let isle_zone = frame.water.isle_box().expand(300.0);
    let (bx, by) = grid.block_dims();
    let mut plans: Vec<Plan> = Vec::new();
    let mut blocks = Vec::new();
    for j in 0..by {
        for i in 0..bx {
            let centre = grid.block_inner(i, j, 0.0).centre();
            let district = frame.district_at(centre);
            let d_cbd = centre.dist(cbd);
            let ch = character(frame, district, centre, d_cbd);
            let params = ch.params();
            let land = grid.block_inner(i, j, params.setback);
            if land.width() < 20.0 || land.height() < 20.0 || land.intersects(&isle_zone) {
                continue;
            }
            if parks.iter().any(|p| p.overlaps(&land)) {
                continue;
            }
            let near_water = frame.water.rect_touches(&land).is_some();
            if near_water
                && frame.water.water_at(centre).is_some()
                && frame.water.rect_touches(&land.expand(-40.0)).is_some()
            {
                continue;
            }
            let d_centre = centre.dist(Xy::new(0.0, 0.0)).max(d_cbd);
            let empty = params.empty + if d_centre > 7_500.0 { 0.3 } else { 0.0 };
            let nx = (land.width() / params.lot.0).floor().max(1.0) as usize;
            let ny = (land.height() / params.lot.1).floor().max(1.0) as usize;
            let (lw, lh) = (land.width() / nx as f64, land.height() / ny as f64);
            let before = plans.len();
            for ly in 0..ny {
                for lx in 0..nx {
                    if rng.chance(empty) {
                        continue;
                    }
                    let w = (lw * rng.range(params.coverage.0, params.coverage.1)).min(lw - 4.0);
                    let h = (lh * rng.range(params.coverage.0, params.coverage.1)).min(lh - 4.0);
                    if w < 8.0 || h < 8.0 {
                        continue;
                    }
                    let x0 = land.min.x + lx as f64 * lw + 2.0 + rng.f64() * (lw - 4.0 - w);
                    let y0 = land.min.y + ly as f64 * lh + 2.0 + rng.f64() * (lh - 4.0 - h);
                    let rect = Rect::new(x0, y0, x0 + w, y0 + h);
                    let category = Category::ALL[rng.weighted(&params.uses)];
                    let mut height = ch.height(&mut rng, rect.centre().dist(cbd));
                    if d_centre > 7_500.0 {
                        height = (height * 0.7).max(6.0);
                    }
                    if near_water && frame.water.rect_touches(&rect.expand(2.0)).is_some() {
                        continue;
                    }
                    if !roads.clear_of(&rect, 2.0) {
                        continue;
                    }
                    plans.push(Plan { rect, height, category, district, name: None, block: Some((i, j)) });
                }
            }
            if plans.len() > before {
                blocks.push(((i, j), land, district));
            }
        }
    }
    add_hospitals(&mut plans, &mut rng);
    name_landmark(&mut plans, cbd);
    plans.extend(isle_pavilions(frame, roads));
    let mut entities = Vec::with_capacity(plans.len());
    let mut infos = Vec::with_capacity(plans.len());
    for p in plans {
        let id = ids.next("Building", p.district, 6);
        let floors = (p.height / 3.2).round().max(1.0) as i64;
        let below = if p.height > 100.0 {
            3
        } else if p.height > 30.0 {
            1
        } else {
            0
        };
        let ring = p.rect.corners().iter().map(|q| frame.proj.to_geo(*q)).collect();
        let geometry = Geometry { shape: Shape::Polygon(ring), height_m: (p.height * 10.0).round() / 10.0 };
        let mut m = Make::new(id.clone(), "Building", Some(geometry))
            .rel("refDistrict", frame.districts.id(p.district))
            .text("category", p.category.as_str())
            .num("height", (p.height * 10.0).round() / 10.0)
            .int("floorsAboveGround", floors)
            .int("floorsBelowGround", below);
        if let Some(name) = p.name {
            m = m.text("name", name);
        }
        entities.push(m.build());
        infos.push(BuildingInfo {
            id,
            district: p.district,
            rect: p.rect,
            height: p.height,
            category: p.category,
            block: p.block,
        });
    }
    Buildings { entities, infos, blocks }
}

/// Makes sure each district has at least four hospitals: mid-rise, large-footprint buildings.
fn add_hospitals(plans: &mut [Plan], rng: &mut Rng) {
    for d in District::ALL {
        let mut candidates: Vec<usize> = (0..plans.len())
            .filter(|k| {
                let p = &plans[*k];
                p.district == d && (12.0..=80.0).contains(&p.height) && p.rect.width() * p.rect.height() > 500.0
            })
            .collect();
        for _ in 0..4 {
            if candidates.is_empty() {
                break;
            }
            let k = candidates.swap_remove(rng.below(candidates.len()));
            plans[k].category = Category::Hospital;
        }
    }
}

/// The CBD tower nearest Wuyi Square becomes Changsha IFS Tower T1, 452 m, the tallest building.
fn name_landmark(plans: &mut [Plan], cbd: Xy) {
    let tower = (0..plans.len())
        .filter(|k| plans[*k].height >= 150.0)
        .min_by(|a, b| plans[*a].rect.centre().dist(cbd).total_cmp(&plans[*b].rect.centre().dist(cbd)));
    if let Some(k) = tower {
        plans[k].height = 452.0;
        plans[k].category = Category::Commercial;
        plans[k].name = Some("Changsha IFS Tower T1");
    }
}

/// Six low pavilions along Orange Isle's wide middle, clear of the water's edge and of the bridge.
fn isle_pavilions(frame: &Frame, roads: &Roads) -> Vec<Plan> {
    let isle = &frame.water.isle;
    let b = frame.water.isle_box();
    let mut out = Vec::new();
    for k in 0..12 {
        if out.len() == 6 {
            break;
        }
        let y = b.min.y + b.height() * (0.3 + 0.04 * k as f64);
        let (w, e) = isle_span(isle, y);
        let x = (w + e) / 2.0;
        let rect = Rect::new(x - 12.0, y - 8.0, x + 12.0, y + 8.0);
        let margin = rect.expand(8.0);
        let inside =
            margin.corners().iter().all(|c| point_in_ring(*c, isle)) && !isle.iter().any(|v| margin.contains(*v));
        if inside && roads.clear_of(&rect, 10.0) {
            let name = if out.is_empty() { Some("Orange Isle Visitor Centre") } else { None };
            let district = frame.district_at(rect.centre());
            out.push(Plan {
                rect,
                height: 6.0 + (k % 3) as f64 * 2.0,
                category: Category::Public,
                district,
                name,
                block: None,
            });
        }
    }
    out
}

/// The isle's west and east edge at `y`.
fn isle_span(isle: &[Xy], y: f64) -> (f64, f64) {
    let (mut w, mut e) = (f64::INFINITY, f64::NEG_INFINITY);
    for (a, b) in crate::geo::ring_edges(isle) {
        if (a.y - y) * (b.y - y) <= 0.0 && a.y != b.y {
            let x = a.x + (b.x - a.x) * (y - a.y) / (b.y - a.y);
            w = w.min(x);
            e = e.max(x);
        }
    }
    (w, e)
}
