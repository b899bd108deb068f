//! Health and safety: defibrillators, ambulances and fire hydrants.

use crate::clock::{DAY_MS, HOUR_MS, Local, daily_bump};
use crate::model::{Ctx, Out, clamp_timestamp, plateau, round_to};
use crate::noise::salt;
use crate::transport::{fault_window, offset_m, segment_m};

/// One year in ms.
const YEAR_MS: i64 = 365 * DAY_MS;

/// `Defibrillator`: available almost always; now and then used for 20-60 minutes (cabinet open);
/// the battery drains slowly over its 3.5-5 year life and is then replaced; pads are replaced every
/// two years, six months before they expire; a self-test runs every night.
pub(crate) fn defibrillator(c: &Ctx<'_>, out: &mut Out) {
    let local = Local::at(c.t);
    let life = (c.plate.range(salt("aed.life"), 3.5, 5.0) * YEAR_MS as f64) as i64;
    let since_battery = (c.t + (c.plate.unit(salt("aed.battery")) * life as f64) as i64).rem_euclid(life);
    let battery = 1.0 - 0.75 * since_battery as f64 / life as f64;
    let pads_cycle = 2 * YEAR_MS;
    let since_pads = (c.t + (c.plate.unit(salt("aed.pads")) * pads_cycle as f64) as i64).rem_euclid(pads_cycle);
    let pads_expire = c.t - since_pads + pads_cycle + YEAR_MS / 2;
    let test_hour = 3.0 + c.plate.unit(salt("aed.test"));
    let today_test = Local::instant(local.day, test_hour);
    let last_test = if today_test <= c.t { today_test } else { today_test - DAY_MS };
    let in_use = c.key.unit_at(salt("aed.use"), local.day) < 0.01 && {
        let start = 7.0 + 15.0 * c.key.unit_at(salt("aed.use.at"), local.day);
        let minutes = 20.0 + 40.0 * c.key.unit_at(salt("aed.use.len"), local.day);
        (start..start + minutes / 60.0).contains(&local.hour)
    };
    let faulty = fault_window(c, salt("aed.fault"), 0.002);
    let status = if in_use {
        "inUse"
    } else if faulty {
        "faulty"
    } else {
        "available"
    };
    out.text("status", status);
    out.num("batteryLevel", round_to(battery, 3));
    out.int("padsExpireAt", clamp_timestamp(pads_expire));
    out.int("lastSelfTestAt", clamp_timestamp(last_test));
    out.flag("cabinetOpen", in_use);
}

/// `Ambulance`: based at its point (its hospital); in each two-hour slot it may take one call
/// (likelier by day): dispatched to a scene 1.5-6 km away, at the scene, transporting back, at the
/// hospital, then available again.
pub(crate) fn ambulance(c: &Ctx<'_>, out: &mut Out) {
    let slot_ms = 2 * HOUR_MS;
    let slot = c.t.div_euclid(slot_ms);
    let minutes = (c.t - slot * slot_ms) as f64 / 60_000.0;
    let hour = Local::at(c.t).hour;
    let p = 0.3 + 0.35 * plateau(hour, 8.0, 20.0, 1.5);
    let u = |name: &str| c.key.unit_at(salt("amb") ^ salt(name), slot);
    let base = c.at;
    let parked = c.plate.range(salt("amb.heading"), 0.0, 359.0);
    let offline = fault_window(c, salt("amb.offline"), 0.01);
    let mut state = (base, parked, 0.0, if offline { "offline" } else { "available" });
    if !offline && u("call") < p {
        let legs = [6.0 + 8.0 * u("d1"), 10.0 + 15.0 * u("d2"), 8.0 + 12.0 * u("d3"), 10.0 + 15.0 * u("d4")];
        let total: f64 = legs.iter().sum();
        let start = (120.0 - total) * u("start");
        let bearing = u("bearing") * std::f64::consts::TAU;
        let distance = 1500.0 + 4500.0 * u("distance");
        let scene = offset_m(base, distance * bearing.sin(), distance * bearing.cos());
        let moving = |from, to, f: f64, leg_min: f64, status| {
            let (len, heading) = segment_m(from, to);
            let eased = f * f * (3.0 - 2.0 * f);
            let at = twin_model::GeoPoint {
                lon: from.lon + eased * (to.lon - from.lon),
                lat: from.lat + eased * (to.lat - from.lat),
            };
            (at, heading, len / (leg_min * 60.0) * 6.0 * f * (1.0 - f) * 3.6, status)
        };
        let s = minutes - start;
        if s >= 0.0 && s < total {
            state = if s < legs[0] {
                moving(base, scene, s / legs[0], legs[0], "dispatched")
            } else if s < legs[0] + legs[1] {
                (scene, parked, 0.0, "atScene")
            } else if s < legs[0] + legs[1] + legs[2] {
                moving(scene, base, (s - legs[0] - legs[1]) / legs[2], legs[2], "transporting")
            } else {
                (base, parked, 0.0, "atHospital")
            };
        }
    }
    let (location, heading, speed, status) = state;
    out.point("location", location);
    out.num("speed", round_to(speed, 1));
    out.num("heading", round_to(heading, 1).min(359.9));
    out.text("status", status);
}

/// `FireHydrant`: mains pressure sags with the daily water demand (morning and evening peaks); rare
/// use (fire fighting, street washing) drops it further.
pub(crate) fn fire_hydrant(c: &Ctx<'_>, out: &mut Out) {
    let h = Local::at(c.t).hour;
    let nominal = c.plate.range(salt("hydrant.nominal"), 3.0, 5.0);
    let demand =
        0.2 + 0.7 * daily_bump(h, 7.5, 1.2) + 0.6 * daily_bump(h, 19.5, 1.5) + 0.3 * plateau(h, 9.0, 17.0, 1.0);
    let in_use = fault_window(c, salt("hydrant.use"), 0.004);
    let mut pressure = nominal - 0.8 * demand + 0.05 * c.key.noise(salt("hydrant.j"), c.t as f64 / 600_000.0);
    if in_use {
        pressure *= 0.45;
    }
    let status = if in_use {
        "inUse"
    } else if pressure < 2.0 {
        "lowPressure"
    } else {
        "ok"
    };
    out.num("pressure", round_to(pressure.max(0.0), 2));
    out.text("status", status);
}
