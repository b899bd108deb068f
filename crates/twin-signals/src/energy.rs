//! Energy: street lights, substations, distributed solar and EV chargers.

use crate::clock::{HOUR_MS, Local, daily_bump};
use crate::model::{Ctx, Out, plateau, round_to};
use crate::noise::salt;
use crate::transport::fault_window;

/// `Streetlight`: on from dusk to dawn (sun below a per-lamp threshold of -4..-1 degrees), dimmed
/// between midnight and 05:00; the power drawn follows the dimming level (standby when off or faulty).
pub(crate) fn streetlight(c: &Ctx<'_>, out: &mut Out) {
    let threshold = c.plate.range(salt("light.threshold"), -4.0, -1.0);
    let rated_w = (c.plate.range(salt("light.rated"), 60.0, 250.0) / 10.0).round() * 10.0;
    let standby_w = c.plate.range(salt("light.standby"), 0.5, 1.5);
    let on = c.env.sun_elevation_deg(c.t, c.at) < threshold;
    let hour = Local::at(c.t).hour;
    let level = match (on, hour < 5.0) {
        (false, _) => 0.0,
        (true, true) => round_to(c.plate.range(salt("light.dim"), 0.4, 0.6), 2),
        (true, false) => 1.0,
    };
    let faulty = fault_window(c, salt("light.fault"), 0.003);
    let power = if on && !faulty { rated_w * (0.08 + 0.92 * level) } else { standby_w };
    out.flag("powerState", on);
    out.num("illuminanceLevel", level);
    out.num("powerConsumption", round_to(power, 1));
    out.text("status", if faulty { "faulty" } else { "ok" });
}

/// `Substation`: load follows the daily demand curve (night trough, day plateau, evening peak) and
/// air conditioning on hot days; busbar voltage sags and oil warms with load.
pub(crate) fn substation(c: &Ctx<'_>, out: &mut Out) {
    let local = Local::at(c.t);
    let h = local.hour;
    let rated_kw =
        [20_000.0, 40_000.0, 63_000.0, 100_000.0, 150_000.0][(c.plate.unit(salt("sub.rating")) * 5.0) as usize % 5];
    let nominal_kv = [10.0, 35.0, 110.0, 220.0][(c.plate.unit(salt("sub.kv")) * 4.0) as usize % 4];
    let utilisation = c.plate.range(salt("sub.use"), 0.55, 0.85);
    let w = c.env.weather(c.t);
    let weekday = if local.is_weekend() { 0.9 } else { 1.0 };
    let profile = 0.55
        + 0.2 * plateau(h, 8.0, 18.0, 1.0) * weekday
        + 0.25 * daily_bump(h, 20.5, 2.0)
        + 0.08 * daily_bump(h, 11.0, 1.5);
    let climate = 0.015 * (w.temperature_c - 24.0).max(0.0) + 0.008 * (8.0 - w.temperature_c).max(0.0);
    let jitter = 0.02 * c.key.noise(salt("sub.j"), c.t as f64 / 900_000.0);
    let maintenance = fault_window(c, salt("sub.maint"), 0.002);
    let mut load_factor = (utilisation * (profile + climate) + jitter).clamp(0.05, 1.35);
    if maintenance {
        load_factor *= 0.3;
    }
    let oil_c = w.temperature_c + 8.0 + 50.0 * load_factor * load_factor;
    let voltage = nominal_kv * (1.03 - 0.04 * load_factor + 0.004 * c.key.noise(salt("sub.v"), c.t as f64 / 300_000.0));
    let status = if maintenance {
        "maintenance"
    } else if load_factor > 1.2 || oil_c > 105.0 {
        "alarm"
    } else if load_factor > 1.0 || oil_c > 90.0 {
        "warning"
    } else {
        "ok"
    };
    out.num("load", (load_factor * rated_kw).round());
    out.num("loadFactor", round_to(load_factor, 3));
    out.num("voltage", round_to(voltage, 2));
    out.num("temperature", round_to(oil_c, 1));
    out.text("status", status);
}

/// The AC power of a solar installation at `t`, kW, and its status.
fn pv_power(c: &Ctx<'_>, t: i64, peak_kw: f64) -> (f64, &'static str) {
    let day = Local::at(t).day;
    let w = c.env.weather(t);
    let irradiance = c.env.solar_irradiance_w_m2(t, c.at, w.cloud_cover) * (1.0 - (w.rain_mm_h / 10.0).min(0.5));
    let cell_c = w.temperature_c + 0.03 * irradiance;
    let derate = 1.0 - 0.004 * (cell_c - 25.0).max(0.0);
    let power = peak_kw * 0.8 * irradiance / 1000.0 * derate;
    if c.key.unit_at(salt("pv.fault"), day) < 0.004 {
        (0.0, "faulty")
    } else if c.key.unit_at(salt("pv.soiled"), day) < 0.03 {
        (power * 0.6, "degraded")
    } else {
        (power.max(0.0), "ok")
    }
}

/// `PhotovoltaicMeasurement`: power by sun elevation, cloud and rain (zero at night); the energy since
/// local midnight integrates the power model (trapezoids every 20 minutes, so it only ever grows
/// through the day).
pub(crate) fn photovoltaic(c: &Ctx<'_>, out: &mut Out) {
    let peak_kw = c.nameplate(out, "peakPower", round_to(c.plate.range(salt("pv.peak"), 5.0, 500.0), 1));
    let (power, status) = pv_power(c, c.t, peak_kw);
    let midnight = Local::midnight(Local::at(c.t).day);
    let step = HOUR_MS / 3;
    let mut energy = 0.0;
    let mut t0 = midnight + 4 * HOUR_MS; // the sun is never up before 04:00 local in Changsha
    let mut p0 = pv_power(c, t0, peak_kw).0;
    while t0 < c.t {
        let t1 = (t0 + step).min(c.t);
        let p1 = if t1 == c.t { power } else { pv_power(c, t1, peak_kw).0 };
        energy += (p0 + p1) / 2.0 * (t1 - t0) as f64 / HOUR_MS as f64;
        (t0, p0) = (t1, p1);
    }
    out.num("activePower", round_to(power, 2));
    out.num("dailyEnergy", round_to(energy, 2));
    out.num("peakPower", peak_kw);
    out.text("status", status);
}

/// `EVChargingStation`: busy at midday and through the cheap night tariff (23:00-07:00, taxis and
/// ride-hailing cars); each connector holds a session for 30-minute slots; the power sums the
/// sessions.
pub(crate) fn ev_charging(c: &Ctx<'_>, out: &mut Out) {
    let h = Local::at(c.t).hour;
    let derived = 2 + (c.plate.unit(salt("ev.cap")) * 19.0) as i64;
    let capacity = (c.nameplate(out, "capacity", derived as f64).round() as i64).max(1);
    let fast = c.plate.unit(salt("ev.fast")) < 0.6;
    let connector_kw = if fast { 60.0 } else { 7.0 };
    let demand =
        (0.1 + 0.45 * daily_bump(h, 12.5, 2.0) + 0.4 * daily_bump(h, 1.5, 2.5) + 0.25 * daily_bump(h, 19.0, 1.5))
            .clamp(0.0, 0.95)
            * c.plate.range(salt("ev.popularity"), 0.7, 1.05);
    let out_of_service = fault_window(c, salt("ev.fault"), 0.005);
    let slot_ms = 30 * 60_000;
    let mut busy = 0;
    let mut power = 0.0;
    for i in 0..capacity {
        let offset = (c.plate.unit(salt("ev.offset") ^ i as u64) * slot_ms as f64) as i64;
        let slot = (c.t + offset).div_euclid(slot_ms);
        if !out_of_service && c.key.unit_at(salt("ev.session") ^ i as u64, slot) < demand {
            busy += 1;
            power += connector_kw * (0.35 + 0.65 * c.key.unit_at(salt("ev.taper") ^ i as u64, slot));
        }
    }
    let available = if out_of_service { 0 } else { capacity - busy };
    let status = if out_of_service {
        "outOfService"
    } else if available == 0 {
        "full"
    } else if available * 10 <= capacity {
        "almostFull"
    } else {
        "working"
    };
    out.int("capacity", capacity);
    out.int("availableCapacity", available);
    out.num("power", round_to(power, 1));
    out.text("status", status);
    out.flag("enabled", !out_of_service);
}
