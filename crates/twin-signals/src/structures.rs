//! Structures with live signals: buildings (energy use, occupancy), bridges (structural health) and
//! parks (visitors).

use twin_model::Shape;

use crate::clock::{Local, daily_bump};
use crate::model::{Ctx, Out, plateau, round_to};
use crate::noise::salt;
use crate::transport::segment_m;

/// A polygon's area in m2 (shoelace on a local flat projection).
fn footprint_m2(ring: &[twin_model::GeoPoint]) -> f64 {
    let Some(&origin) = ring.first() else { return 0.0 };
    let xy: Vec<(f64, f64)> = ring
        .iter()
        .map(|&p| {
            let (d, heading) = segment_m(origin, p);
            (d * heading.to_radians().sin(), d * heading.to_radians().cos())
        })
        .collect();
    let twice: f64 = (0..xy.len())
        .map(|i| {
            let (a, b) = (xy[i], xy[(i + 1) % xy.len()]);
            a.0 * b.1 - b.0 * a.1
        })
        .sum();
    twice.abs() / 2.0
}

/// `Building`: occupancy follows office hours or home hours (by building, fixed per id); power follows
/// floor area (footprint times floors), occupancy and air conditioning.
pub(crate) fn building(c: &Ctx<'_>, out: &mut Out) {
    let local = Local::at(c.t);
    let h = local.hour;
    let floor_area = match c.entity.geometry.as_ref() {
        Some(g) => match &g.shape {
            Shape::Polygon(ring) => footprint_m2(ring) * (g.height_m / 3.2).round().max(1.0),
            _ => c.plate.range(salt("bld.area"), 500.0, 20_000.0),
        },
        None => c.plate.range(salt("bld.area"), 500.0, 20_000.0),
    };
    let office = c.plate.unit(salt("bld.office")) < 0.4;
    let occupancy = if office {
        if local.is_weekend() {
            0.05 + 0.15 * plateau(h, 9.5, 17.0, 1.0)
        } else {
            0.05 + 0.8 * plateau(h, 8.5, 18.0, 0.6)
        }
    } else if local.is_weekend() {
        0.75 - 0.25 * plateau(h, 10.0, 20.0, 1.5)
    } else {
        0.85 - 0.5 * plateau(h, 8.0, 18.0, 0.8)
    };
    let w = c.env.weather(c.t);
    let cooling = 0.8 * (w.temperature_c - 24.0).max(0.0) + 0.3 * (10.0 - w.temperature_c).max(0.0);
    let w_per_m2 = 4.0 + 22.0 * occupancy + cooling * (0.3 + occupancy);
    out.num("energyUse", round_to(floor_area * w_per_m2 / 1000.0, 1));
    out.num("occupancyRatio", round_to(occupancy, 3));
}

/// `Bridge`: the deck deflects under traffic (down) and with temperature (thermal camber); vibration
/// grows with traffic.
pub(crate) fn bridge(c: &Ctx<'_>, out: &mut Out) {
    let traffic = c.env.traffic_demand_at(c.t, c.at);
    let stiffness = c.plate.range(salt("bridge.sag"), 2.0, 12.0);
    let t = c.env.weather(c.t).temperature_c;
    let jitter = c.key.noise(salt("bridge.j"), c.t as f64 / 60_000.0);
    out.num("deckDisplacement", round_to(-stiffness * traffic + 0.3 * (t - 20.0) + 0.3 * jitter, 2));
    out.num("vibrationAcceleration", round_to(0.01 + 0.25 * traffic * (1.0 + 0.4 * jitter).max(0.2), 3));
}

/// `Park`: morning exercise, afternoon strolls (many more at weekends) and evening square dancing;
/// rain keeps people away.
pub(crate) fn park(c: &Ctx<'_>, out: &mut Out) {
    let local = Local::at(c.t);
    let h = local.hour;
    let capacity = c.plate.range(salt("park.capacity"), 2_000.0, 40_000.0);
    let day = if local.is_weekend() { 0.55 } else { 0.2 };
    let share = 0.15 * daily_bump(h, 6.5, 1.0) + day * daily_bump(h, 15.0, 2.5) + 0.3 * daily_bump(h, 19.5, 1.0);
    let rain = c.env.weather(c.t).rain_mm_h;
    let visitors = capacity * share / (1.0 + rain);
    out.int("visitorCount", visitors.round() as i64);
}
