//! Water: river gauges, rain gauges and sponge-city retention parks, all driven by the rain episodes
//! of the [`Environment`](crate::Environment) through closed-form rain totals.

use crate::clock::{Local, seasonal};
use crate::model::{Ctx, Out, round_to};
use crate::noise::salt;

/// `RiverGauge`: the level rises with the rain of the last 12, 48 and 72 hours over a seasonal base
/// (high in the summer flood season); the flow follows the level through a rating curve.
pub(crate) fn river_gauge(c: &Ctx<'_>, out: &mut Out) {
    let normal = c.plate.range(salt("river.normal"), 28.0, 34.0);
    let per_mm = c.plate.range(salt("river.sensitivity"), 0.015, 0.05);
    let normal_flow = c.plate.range(salt("river.flow"), 50.0, 2500.0);
    let base = normal + 1.5 * seasonal(c.t, 170.0);
    let rain = |h| c.env.rain_last_hours_mm(c.t, h);
    let rise = per_mm * (0.25 * rain(12) + 0.5 * rain(48) + 0.25 * rain(72));
    let level = base + rise + 0.01 * c.key.noise(salt("river.j"), c.t as f64 / 3_600_000.0);
    // Rating curve: zero flow three metres below the normal level.
    let flow = normal_flow * ((level - (normal - 3.0)).max(0.0) / 3.0).powf(1.6);
    let above = level - normal;
    let alert = if above > 5.0 {
        "danger"
    } else if above > 3.5 {
        "warning"
    } else if above > 2.0 {
        "watch"
    } else {
        "normal"
    };
    out.num("waterLevel", round_to(level, 2));
    out.num("flow", round_to(flow, 1));
    out.text("alertLevel", alert);
}

/// `RainGauge`: the city's rain, scaled by a per-gauge factor (rain is patchy); the daily total is
/// the closed-form rain since local midnight with the same factor.
pub(crate) fn rain_gauge(c: &Ctx<'_>, out: &mut Out) {
    let factor = c.plate.range(salt("gauge.factor"), 0.8, 1.2);
    let midnight = Local::midnight(Local::at(c.t).day);
    out.num("precipitation", round_to(c.env.weather(c.t).rain_mm_h * factor, 1));
    out.num("dailyPrecipitation", round_to(c.env.rain_between_mm(midnight, c.t) * factor, 1));
}

/// `RetentionPark`: storm water from its catchment fills the basin above a permanent pool and drains
/// over a couple of days (an exponential release approximated by windows of past rain); the outlet
/// gate stays shut while it rains so the river is spared the peak.
pub(crate) fn retention_park(c: &Ctx<'_>, out: &mut Out) {
    let capacity = c.nameplate(
        out,
        "capacity",
        (c.plate.range(salt("basin.capacity"), 20_000.0, 300_000.0) / 1000.0).round() * 1000.0,
    );
    let catchment_m2 = c.plate.range(salt("basin.catchment"), 0.2e6, 3.0e6);
    let pool = capacity * c.plate.range(salt("basin.pool"), 0.15, 0.3);
    let depth_m = c.plate.range(salt("basin.depth"), 2.0, 6.0);
    let m3_per_mm = catchment_m2 * 0.6 / 1000.0;
    let rain = |h| c.env.rain_last_hours_mm(c.t, h);
    let (r6, r24, r48, r96) = (rain(6), rain(24), rain(48), rain(96));
    let runoff = r6 + 0.6 * (r24 - r6) + 0.3 * (r48 - r24) + 0.1 * (r96 - r48);
    let stored = (pool + m3_per_mm * runoff).min(capacity);
    let raining = c.env.weather(c.t).rain_mm_h;
    let gate_open = raining < 2.0 && stored > pool * 1.02;
    let outflow = if gate_open { (stored - pool) / (36.0 * 3600.0) } else { 0.0 };
    let inflow = raining * m3_per_mm / 3600.0;
    let fill = stored / capacity;
    out.num("storedVolume", stored.round());
    out.num("capacity", capacity);
    out.num("fillRatio", round_to(fill, 4));
    out.num("waterLevel", round_to(depth_m * fill.powf(0.7), 2));
    out.num("inflow", round_to(inflow, 3));
    out.num("outflow", round_to(outflow, 3));
    out.flag("outletGateOpen", gate_open);
}
