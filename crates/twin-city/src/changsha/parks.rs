//! Parks: Yuelu Mountain's scenic area and Orange Isle (no roads), Martyrs' Park (a 5 x 5 block area
//! east of the CBD whose inner streets are closed) and sponge-city retention parks (single blocks, three
//! per district, chosen by the seed). No block building stands in a park; Orange Isle keeps a few low
//! pavilions (see [`buildings`](super::buildings)).

use twin_model::{Entity, EntityId, GeoPoint, Geometry, Shape};

use super::{Frame, districts::District, roads::Grid};
use crate::{
    geo::{Rect, Xy, point_in_ring, rect_intersects_ring, ring_area},
    make::{Make, entity_id},
    rng::Rng,
};

/// Martyrs' Park's centre.
pub const MARTYRS_PARK: GeoPoint = GeoPoint { lon: 113.006, lat: 28.212 };

/// Retention parks per district.
pub const RETENTION_PER_DISTRICT: usize = 3;

/// A park in the local frame.
#[derive(Debug, Clone)]
pub struct Park {
    /// Its entity id.
    pub id: EntityId,
    /// Its name.
    pub name: String,
    /// Its outline.
    pub ring: Vec<Xy>,
    /// The outline's bounding box.
    pub bbox: Rect,
    /// Its district.
    pub district: District,
    /// Whether roads may cross it.
    pub roads_allowed: bool,
    /// Whether it is a sponge-city retention park.
    pub retention: bool,
}

impl Park {
    fn new(frame: &Frame, slug: &str, name: String, ring: Vec<Xy>, roads_allowed: bool, retention: bool) -> Self {
        let bbox = Rect::around(&ring);
        let district = frame.district_at(bbox.centre());
        let id = entity_id(&format!("urn:ngsi-ld:Park:changsha:{}:{slug}", district.slug()));
        Park { id, name, ring, bbox, district, roads_allowed, retention }
    }

    /// Whether `p` is in the park.
    pub fn contains(&self, p: Xy) -> bool {
        self.bbox.contains(p) && point_in_ring(p, &self.ring)
    }

    /// Whether the park overlaps `r`.
    pub fn overlaps(&self, r: &Rect) -> bool {
        self.bbox.intersects(r) && rect_intersects_ring(r, &self.ring)
    }
}

/// The parks of the city.
pub(crate) fn plan(frame: &Frame, grid: &Grid, seed: u64) -> Vec<Park> {
    let mut parks = vec![
        Park::new(
            frame,
            "yuelu-mountain",
            "Yuelu Mountain Scenic Area".into(),
            frame.terrain.scenic_area(),
            false,
            false,
        ),
        Park::new(frame, "orange-isle", "Orange Isle (Juzizhou) Park".into(), frame.water.isle.clone(), false, false),
    ];
    let (bx, by) = grid.block_dims();
    let c = frame.proj.to_local(MARTYRS_PARK);
    let bi = grid.xs.iter().rposition(|l| l.pos <= c.x).unwrap_or(0).clamp(2, bx.saturating_sub(3));
    let bj = grid.ys.iter().rposition(|l| l.pos <= c.y).unwrap_or(0).clamp(2, by.saturating_sub(3));
    let lo = grid.block_inner(bi - 2, bj - 2, 5.0);
    let hi = grid.block_inner(bi + 2, bj + 2, 5.0);
    let martyrs = Rect { min: lo.min, max: hi.max };
    parks.push(Park::new(frame, "martyrs-park", "Martyrs' Park".into(), martyrs.corners().to_vec(), false, false));
    let mut rng = Rng::new(seed, 0x9A2C);
    let mut candidates: Vec<Vec<Rect>> = vec![Vec::new(); District::ALL.len()];
    for j in 0..by {
        for i in 0..bx {
            let r = grid.block_inner(i, j, 5.0);
            if r.width() < 60.0 || r.height() < 60.0 {
                continue;
            }
            if frame.water.rect_touches(&r.expand(20.0)).is_some() || parks.iter().any(|p| p.overlaps(&r.expand(20.0)))
            {
                continue;
            }
            candidates[frame.district_at(r.centre()).index()].push(r);
        }
    }
    for d in District::ALL {
        let list = &mut candidates[d.index()];
        for k in 0..RETENTION_PER_DISTRICT.min(list.len()) {
            let r = list.swap_remove(rng.below(list.len()));
            let name = format!("{} Sponge Park {}", &d.name()[..d.name().len() - " District".len()], k + 1);
            let slug = format!("retention-{:02}", k + 1);
            parks.push(Park::new(frame, &slug, name, r.corners().to_vec(), true, true));
        }
    }
    parks
}

/// The `Park` entities.
pub(crate) fn entities(frame: &Frame, parks: &[Park]) -> Vec<Entity> {
    parks
        .iter()
        .map(|p| {
            let geometry = Geometry {
                shape: Shape::Polygon(p.ring.iter().map(|q| frame.proj.to_geo(*q)).collect()),
                height_m: 0.0,
            };
            Make::new(p.id.clone(), "Park", Some(geometry))
                .rel("refDistrict", frame.districts.id(p.district))
                .text("name", &p.name)
                .num("areaKm2", ring_area(&p.ring) / 1e6)
                .text("status", "open")
                .build()
        })
        .collect()
}
