//! Transport: traffic counters, signals, parking and buses.

use std::f64::consts::TAU;

use twin_model::{GeoPoint, Shape};

use crate::clock::{Local, daily_bump};
use crate::model::{Ctx, Out, plateau, round_to};
use crate::noise::salt;

/// Metres per degree of latitude.
const M_PER_DEG_LAT: f64 = 110_540.0;
/// Metres per degree of longitude at the equator.
const M_PER_DEG_LON: f64 = 111_320.0;

/// `TrafficFlowObserved`: flow follows local demand; speed falls and occupancy rises as it nears
/// capacity; the congestion level follows the speed ratio (China's urban traffic performance index).
pub(crate) fn traffic_flow(c: &Ctx<'_>, out: &mut Out) {
    let lanes = 1.0 + (c.plate.unit(salt("lanes")) * 4.0).floor();
    let free_speed = [40.0, 50.0, 60.0, 80.0][(c.plate.unit(salt("class")) * 4.0) as usize % 4];
    let lane_capacity = c.plate.range(salt("capacity"), 1500.0, 1900.0);
    let load = c.plate.range(salt("load"), 0.75, 1.3);
    let wet = (c.env.weather(c.t).rain_mm_h / 5.0).min(1.0);
    let jitter = 1.0 + 0.05 * c.key.noise(salt("flow"), c.t as f64 / 300_000.0);
    let x = (c.env.traffic_demand_at(c.t, c.at) * load * (1.0 + 0.1 * wet) * jitter).clamp(0.0, 1.25);
    let intensity = (lanes * lane_capacity * x.min(0.97)).round();
    let ratio = ((1.0 - 0.8 * x.powf(2.5)).clamp(0.12, 1.0) * (1.0 - 0.15 * wet)).max(0.1);
    let speed = round_to(free_speed * ratio, 1);
    let per_lane = intensity / lanes;
    // Density (veh/km per lane) times an effective vehicle length of 6.5 m.
    let occupancy = round_to((per_lane / speed.max(3.0) * 0.0065).clamp(0.0, 0.95), 3);
    let headway = if per_lane > 1.0 { (3600.0 / per_lane).min(3600.0) } else { 3600.0 };
    let level = match ratio {
        r if r >= 0.7 => "free",
        r if r >= 0.5 => "basicallyFree",
        r if r >= 0.4 => "lightlyCongested",
        r if r >= 0.3 => "moderatelyCongested",
        _ => "severelyCongested",
    };
    out.num("intensity", intensity);
    out.num("averageVehicleSpeed", speed);
    out.num("occupancy", occupancy);
    out.num("averageHeadwayTime", round_to(headway, 1));
    out.flag("congested", ratio < 0.5);
    out.text("congestionLevel", level);
}

/// `TrafficSignal`: the main approach cycles green, amber, red on the cycle time; adaptive signals
/// lengthen the cycle with demand, fixed ones run a longer peak plan; some flash amber late at night.
pub(crate) fn traffic_signal(c: &Ctx<'_>, out: &mut Out) {
    let local = Local::at(c.t);
    let adaptive = c.plate.unit(salt("mode")) < 0.6;
    let night_flash = c.plate.unit(salt("flash")) < 0.3 && (1.0..5.0).contains(&local.hour);
    let fault = fault_window(c, salt("signal.fault"), 0.01);
    let base = c.plate.range(salt("cycle"), 80.0, 130.0).round();
    let cycle = if adaptive {
        (60.0 + 100.0 * c.env.traffic_demand_at(c.t, c.at)).round()
    } else {
        let peak = !local.is_weekend() && ((7.0..9.5).contains(&local.hour) || (17.0..19.5).contains(&local.hour));
        if peak { (base * 1.25).round() } else { base }
    };
    let (phase, remaining) = if night_flash || fault {
        ("flashing", 0.0)
    } else {
        let offset = c.plate.unit(salt("offset")) * cycle;
        let pos = (c.t as f64 / 1000.0 + offset).rem_euclid(cycle);
        let green = cycle * c.plate.range(salt("split"), 0.42, 0.6) - 3.0;
        if pos < green {
            ("green", green - pos)
        } else if pos < green + 3.0 {
            ("amber", green + 3.0 - pos)
        } else {
            ("red", cycle - pos)
        }
    };
    out.text("phase", phase);
    out.num("phaseRemainingS", round_to(remaining, 1));
    out.num("cycleTimeS", cycle);
    out.text("mode", if adaptive { "adaptive" } else { "fixed" });
    out.text("status", if fault { "lampFault" } else { "ok" });
}

/// Whether a rare fault lasting a few hours is active now: each local day has probability `p` of one.
pub(crate) fn fault_window(c: &Ctx<'_>, s: u64, p: f64) -> bool {
    let local = Local::at(c.t);
    if c.key.unit_at(s, local.day) >= p {
        return false;
    }
    let start = c.key.unit_at(s ^ 1, local.day) * 20.0;
    let hours = 2.0 + 4.0 * c.key.unit_at(s ^ 2, local.day);
    (start..start + hours).contains(&local.hour)
}

/// The share of parking occupied near an entity at `t`, mixing work, home and shopping patterns
/// by the entity's location profile (fixed per entity).
fn parking_demand(c: &Ctx<'_>) -> f64 {
    let local = Local::at(c.t);
    let h = local.hour;
    let weekend = local.is_weekend();
    let work = if weekend { 0.2 + 0.2 * plateau(h, 9.5, 17.0, 1.0) } else { 0.12 + 0.8 * plateau(h, 8.3, 18.0, 0.7) };
    let home = if weekend { 0.8 - 0.25 * plateau(h, 10.0, 20.0, 1.5) } else { 0.88 - 0.5 * plateau(h, 8.0, 18.0, 0.8) };
    let shop = 0.08 + if weekend { 0.85 } else { 0.6 } * daily_bump(h, 15.0, 3.5) + 0.3 * daily_bump(h, 19.5, 1.5);
    let (w, r) = (c.plate.unit(salt("park.work")), c.plate.unit(salt("park.home")));
    let total = w + r + 0.5;
    ((w * work + r * home + 0.5 * shop) / total).clamp(0.0, 1.0)
}

/// `ParkingSpot`: taken or free per 40-minute stay slot, with the area's parking demand as probability.
pub(crate) fn parking_spot(c: &Ctx<'_>, out: &mut Out) {
    let slot_ms = 40 * 60_000;
    let slot = (c.t + (c.plate.unit(salt("slot")) * slot_ms as f64) as i64).div_euclid(slot_ms);
    let status = if fault_window(c, salt("spot.fault"), 0.005) {
        "unknown"
    } else if c.key.unit_at(salt("stay"), slot) < parking_demand(c) * 0.95 {
        "occupied"
    } else {
        "free"
    };
    out.text("status", status);
}

/// `OffStreetParking`: occupancy follows work and shopping hours; free spaces and the guidance sign
/// are consistent with it.
pub(crate) fn off_street_parking(c: &Ctx<'_>, out: &mut Out) {
    let total = c
        .nameplate(out, "totalSpotNumber", (c.plate.range(salt("spots"), 80.0, 1500.0) / 10.0).round() * 10.0)
        .round()
        .max(1.0);
    let jitter = 0.04 * c.key.noise(salt("lot"), c.t as f64 / (25.0 * 60_000.0));
    let occupancy = (parking_demand(c) * c.plate.range(salt("popularity"), 0.8, 1.05) + jitter).clamp(0.0, 1.0);
    let available = (total * (1.0 - occupancy)).round();
    let status = if available <= 0.0 {
        "full"
    } else if available < 0.05 * total {
        "almostFull"
    } else {
        "spacesAvailable"
    };
    out.int("availableSpotNumber", available as i64);
    out.int("totalSpotNumber", total as i64);
    out.num("occupancy", round_to((total - available) / total, 3));
    out.text("status", status);
}

/// A path a vehicle follows, in metres from its start.
#[derive(Debug)]
pub(crate) enum Path<'a> {
    /// A polyline (bus route): driven out and back.
    Line(&'a [GeoPoint]),
    /// A circle around a point (when the entity has no line).
    Circle { centre: GeoPoint, radius_m: f64 },
}

impl Path<'_> {
    pub(crate) fn for_entity<'a>(c: &Ctx<'a>) -> Path<'a> {
        match c.entity.geometry.as_ref().map(|g| &g.shape) {
            Some(Shape::Line(points)) if points.len() >= 2 => Path::Line(points),
            _ => Path::Circle { centre: c.at, radius_m: c.plate.range(salt("radius"), 1200.0, 3000.0) },
        }
    }

    /// Whether the path is driven as a loop (otherwise out and back).
    fn is_loop(&self) -> bool {
        matches!(self, Path::Circle { .. })
    }

    pub(crate) fn length_m(&self) -> f64 {
        match self {
            Path::Line(points) => points.windows(2).map(|w| segment_m(w[0], w[1]).0).sum(),
            Path::Circle { radius_m, .. } => TAU * radius_m,
        }
    }

    /// The position and heading (degrees, direction of increasing distance) `s` metres along.
    pub(crate) fn locate(&self, s: f64) -> (GeoPoint, f64) {
        match self {
            Path::Line(points) => {
                let mut left = s.max(0.0);
                let mut last = (points[points.len() - 1], 0.0);
                for w in points.windows(2) {
                    let (len, heading) = segment_m(w[0], w[1]);
                    if left <= len && len > 0.0 {
                        let f = left / len;
                        let p = GeoPoint {
                            lon: w[0].lon + f * (w[1].lon - w[0].lon),
                            lat: w[0].lat + f * (w[1].lat - w[0].lat),
                        };
                        return (p, heading);
                    }
                    left -= len;
                    last = (w[1], heading);
                }
                last
            }
            Path::Circle { centre, radius_m } => {
                // Counter-clockwise from due east.
                let a = s / radius_m;
                let p = offset_m(*centre, radius_m * a.cos(), radius_m * a.sin());
                (p, (360.0 - a.to_degrees()).rem_euclid(360.0))
            }
        }
    }
}

/// Length (m) and heading (degrees from north) of a short segment, equirectangular.
pub(crate) fn segment_m(a: GeoPoint, b: GeoPoint) -> (f64, f64) {
    let east = (b.lon - a.lon) * M_PER_DEG_LON * a.lat.to_radians().cos();
    let north = (b.lat - a.lat) * M_PER_DEG_LAT;
    (east.hypot(north), east.atan2(north).to_degrees().rem_euclid(360.0))
}

/// The point `east`/`north` metres from `p`.
pub(crate) fn offset_m(p: GeoPoint, east: f64, north: f64) -> GeoPoint {
    GeoPoint { lon: p.lon + east / (M_PER_DEG_LON * p.lat.to_radians().cos()), lat: p.lat + north / M_PER_DEG_LAT }
}

/// Service hours of the bus network, local.
const SERVICE: (f64, f64) = (6.0, 22.5);
/// Dwell at each stop, seconds.
const DWELL_S: f64 = 30.0;
/// Layover at each terminus of an out-and-back route, seconds.
const LAYOVER_S: f64 = 240.0;

/// Where a bus is on its timetable at scheduled time `tau` (seconds since service start).
struct BusState {
    distance_m: f64,
    reversed: bool,
    at_stop: bool,
    /// Scheduled speed, m/s.
    speed_ms: f64,
}

fn bus_state(path_len: f64, is_loop: bool, tau: f64) -> BusState {
    let stops = (path_len / 500.0).round().max(2.0);
    let leg = path_len / stops;
    let run = leg / 6.0; // 21.6 km/h mean running speed between stops
    let leg_time = run + DWELL_S;
    let trip = stops * leg_time;
    let cycle = if is_loop { trip } else { 2.0 * (trip + LAYOVER_S) };
    let u = tau.rem_euclid(cycle);
    let (q, reversed) = if is_loop || u < trip + LAYOVER_S { (u, false) } else { (u - trip - LAYOVER_S, true) };
    if q >= trip {
        return BusState { distance_m: path_len, reversed, at_stop: true, speed_ms: 0.0 };
    }
    let n = (q / leg_time).floor();
    let within = q - n * leg_time;
    if within < DWELL_S {
        return BusState { distance_m: n * leg, reversed, at_stop: true, speed_ms: 0.0 };
    }
    let f = (within - DWELL_S) / run;
    let eased = f * f * (3.0 - 2.0 * f);
    BusState { distance_m: (n + eased) * leg, reversed, at_stop: false, speed_ms: leg / run * 6.0 * f * (1.0 - f) }
}

/// `Bus`: runs its route (out and back along its line, or round a circle about its point) on a
/// timetable from 06:00 to 22:30 with stops every 500 m, late by up to ~15 min in the rush; crowded
/// in the rush; electric buses discharge through the day and charge at night.
pub(crate) fn bus(c: &Ctx<'_>, out: &mut Out) {
    let local = Local::at(c.t);
    let path = Path::for_entity(c);
    let len = path.length_m().max(100.0);
    let electric = c.plate.unit(salt("electric")) < 0.85;
    let delay_at = |t: i64| {
        let d = c.env.traffic_demand_at(t, c.at);
        c.plate.range(salt("punctuality"), -30.0, 90.0)
            + 700.0 * d * d
            + 45.0 * c.key.noise(salt("delay"), t as f64 / 900_000.0)
    };
    let in_service = (SERVICE.0..SERVICE.1).contains(&local.hour);
    let broken = in_service && fault_window(c, salt("bus.broken"), 0.004);
    let phase = c.key.unit(salt("phase")) * 7200.0;
    let elapsed = (local.hour - SERVICE.0) * 3600.0 + phase;

    let (location, heading, speed_kmh, status, occupancy, delay) = if in_service {
        let delay = delay_at(c.t);
        let s = bus_state(len, path.is_loop(), elapsed - delay);
        let along = if s.reversed { len - s.distance_m } else { s.distance_m };
        let (p, mut heading) = path.locate(along);
        if s.reversed {
            heading = (heading + 180.0).rem_euclid(360.0);
        }
        // The timetable runs slower while the delay grows: d(position)/dt = v(tau) * (1 - d(delay)/dt).
        let slope = (delay_at(c.t + 30_000) - delay_at(c.t - 30_000)) / 60.0;
        let speed = if broken { 0.0 } else { s.speed_ms * (1.0 - slope).max(0.0) * 3.6 };
        let demand = c.env.traffic_demand_at(c.t, c.at);
        let popularity = c.plate.range(salt("popularity"), 0.7, 1.3);
        let occupancy =
            0.08 + 0.95 * demand.powf(1.3) * popularity + 0.06 * c.key.noise(salt("load"), c.t as f64 / 600_000.0);
        let status = if broken {
            "broken"
        } else if s.at_stop {
            "atStop"
        } else {
            "onRoute"
        };
        (p, heading, speed, status, occupancy.clamp(0.0, 1.45), delay)
    } else {
        let (depot, heading) = path.locate(0.0);
        (depot, heading, 0.0, "parked", 0.0, 0.0)
    };
    out.point("location", location);
    out.num("speed", round_to(speed_kmh, 1));
    out.num("heading", round_to(heading, 1).min(359.9));
    out.num("occupancy", round_to(occupancy, 2));
    out.num("delayS", delay.round());
    out.text("status", status);
    if electric {
        out.num("stateOfCharge", round_to(bus_charge(local.hour), 3));
    }
}

/// An electric bus's charge by local hour: full at 06:00, 4.5 %/h through service, recharged over
/// four hours after 22:30.
fn bus_charge(h: f64) -> f64 {
    let full = 0.98;
    let spent = full - 0.045 * (SERVICE.1 - SERVICE.0);
    let rate = (full - spent) / 4.0;
    if (SERVICE.0..SERVICE.1).contains(&h) {
        full - 0.045 * (h - SERVICE.0)
    } else {
        let since_end = (h - SERVICE.1).rem_euclid(24.0);
        (spent + rate * since_end).min(full)
    }
}
