//! The five urban districts. Yuelu is everything west of the Xiang's centre line; east of it Kaifu lies
//! north of 28.222 N, Tianxin south of 28.180 N, Yuhua east of 113.010 E (112.995 E south of Tianxin's
//! northern edge) and Furong in the middle. The district polygons follow exactly the same lines (the
//! Xiang's sampled centre line and straight parallels and meridians), so [`Districts::at`] and a
//! point-in-polygon test of the published polygons agree.

use twin_model::{Entity, EntityId, Geometry, Shape};

use super::{bounds, water::Water};
use crate::{
    geo::{Xy, ring_area},
    make::{Make, entity_id},
};

/// A district of the demonstration city.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum District {
    /// West bank: Yuelu Mountain, the university campuses, Meixi Lake.
    Yuelu,
    /// North of the centre.
    Kaifu,
    /// The centre, with the Wuyi Square CBD.
    Furong,
    /// South of the centre: older low-rise.
    Tianxin,
    /// South-east.
    Yuhua,
}

impl District {
    /// All districts, in city order.
    pub const ALL: [District; 5] =
        [District::Yuelu, District::Kaifu, District::Furong, District::Tianxin, District::Yuhua];

    /// The id slug, e.g. `yuelu`.
    pub fn slug(self) -> &'static str {
        match self {
            District::Yuelu => "yuelu",
            District::Kaifu => "kaifu",
            District::Furong => "furong",
            District::Tianxin => "tianxin",
            District::Yuhua => "yuhua",
        }
    }

    /// The official name.
    pub fn name(self) -> &'static str {
        match self {
            District::Yuelu => "Yuelu District",
            District::Kaifu => "Kaifu District",
            District::Furong => "Furong District",
            District::Tianxin => "Tianxin District",
            District::Yuhua => "Yuhua District",
        }
    }

    /// Resident population (2020 census, rounded).
    pub fn population(self) -> i64 {
        match self {
            District::Yuelu => 1_500_000,
            District::Kaifu => 800_000,
            District::Furong => 630_000,
            District::Tianxin => 760_000,
            District::Yuhua => 1_400_000,
        }
    }

    /// The position in [`District::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Kaifu's southern edge.
pub const KAIFU_LAT: f64 = 28.222;
/// Tianxin's northern edge.
pub const TIANXIN_LAT: f64 = 28.180;
/// Yuhua's western edge north of [`TIANXIN_LAT`].
pub const YUHUA_LON_NORTH: f64 = 113.010;
/// Yuhua's western edge south of [`TIANXIN_LAT`].
pub const YUHUA_LON_SOUTH: f64 = 112.995;

/// The district layer in the local frame.
#[derive(Debug, Clone)]
pub struct Districts {
    /// Polygons by [`District::index`].
    pub rings: Vec<Vec<Xy>>,
    /// Entity ids by [`District::index`].
    pub ids: Vec<EntityId>,
    y_kaifu: f64,
    y_tianxin: f64,
    x_yuhua_n: f64,
    x_yuhua_s: f64,
}

impl Districts {
    pub(crate) fn new(p: &crate::geo::Projection, water: &Water) -> Self {
        let b = bounds();
        let (x0, x1, y0, y1) = (p.x_of(b.min_lon), p.x_of(b.max_lon), p.y_of(b.min_lat), p.y_of(b.max_lat));
        let (yk, yt, xn, xs) =
            (p.y_of(KAIFU_LAT), p.y_of(TIANXIN_LAT), p.x_of(YUHUA_LON_NORTH), p.x_of(YUHUA_LON_SOUTH));
        let chain = |a: f64, b: f64| water.centre_chain(a, b);
        let mut yuelu = vec![Xy::new(x0, y0)];
        yuelu.extend(chain(y0, y1));
        yuelu.push(Xy::new(x0, y1));
        let mut kaifu = chain(yk, y1);
        kaifu.extend([Xy::new(x1, y1), Xy::new(x1, yk)]);
        let mut furong = chain(yt, yk);
        furong.extend([Xy::new(xn, yk), Xy::new(xn, yt)]);
        let mut tianxin = chain(y0, yt);
        tianxin.extend([Xy::new(xs, yt), Xy::new(xs, y0)]);
        let yuhua =
            vec![Xy::new(xs, y0), Xy::new(x1, y0), Xy::new(x1, yk), Xy::new(xn, yk), Xy::new(xn, yt), Xy::new(xs, yt)];
        let ids =
            District::ALL.iter().map(|d| entity_id(&format!("urn:ngsi-ld:District:changsha:{}", d.slug()))).collect();
        Districts {
            rings: vec![yuelu, kaifu, furong, tianxin, yuhua],
            ids,
            y_kaifu: yk,
            y_tianxin: yt,
            x_yuhua_n: xn,
            x_yuhua_s: xs,
        }
    }

    /// The district `p` lies in.
    pub fn at(&self, water: &Water, p: Xy) -> District {
        if p.x < water.centre_x(p.y) {
            District::Yuelu
        } else if p.y >= self.y_kaifu {
            District::Kaifu
        } else if p.y >= self.y_tianxin {
            if p.x >= self.x_yuhua_n { District::Yuhua } else { District::Furong }
        } else if p.x >= self.x_yuhua_s {
            District::Yuhua
        } else {
            District::Tianxin
        }
    }

    /// The entity id of `d`.
    pub fn id(&self, d: District) -> &EntityId {
        &self.ids[d.index()]
    }

    pub(crate) fn entities(&self, proj: &crate::geo::Projection) -> Vec<Entity> {
        District::ALL
            .iter()
            .map(|d| {
                let ring = &self.rings[d.index()];
                let geometry =
                    Geometry { shape: Shape::Polygon(ring.iter().map(|p| proj.to_geo(*p)).collect()), height_m: 0.0 };
                Make::new(self.id(*d).clone(), "District", Some(geometry))
                    .text("name", d.name())
                    .int("population", d.population())
                    .num("areaKm2", ring_area(ring) / 1e6)
                    .build()
            })
            .collect()
    }
}
