//! Waste: street containers filling through the day and emptied on their collection rounds.

use std::f64::consts::TAU;

use crate::clock::{HOUR_MS, Local};
use crate::model::{Ctx, Out, clamp_timestamp, round_to};
use crate::noise::salt;

/// Left in a container after it is emptied, as a fraction.
const RESIDUE: f64 = 0.02;

/// Cumulative waste deposited up to local hour `x` (hours since the local epoch), in days of deposits.
/// Deposits follow `1 + 0.8 cos(2 pi (h - 14) / 24)`: busiest mid-afternoon, slowest at 2am. The
/// closed form makes the fill since any round a difference of two values.
fn deposits(x: f64) -> f64 {
    (x + 0.8 * 24.0 / TAU * (TAU * (x - 14.0) / 24.0).sin()) / 24.0
}

/// `WasteContainer`: fill rises with deposits since the last round (one round a day at a fixed early
/// hour, busy containers a second one in the afternoon; a few rounds are missed), drops on each round;
/// weight follows the fill and the waste stream, the lid stays open when full.
pub(crate) fn container(c: &Ctx<'_>, out: &mut Out) {
    let local = Local::at(c.t);
    let rounds = [c.plate.range(salt("bin.round"), 4.5, 8.0), c.plate.range(salt("bin.round2"), 14.0, 16.0)];
    let busy = c.plate.unit(salt("bin.busy")) < 0.3;
    let per_day = c.plate.range(salt("bin.rate"), 0.35, 0.95) * if busy { 1.6 } else { 1.0 };
    let volume_l = [240.0, 660.0, 1100.0][(c.plate.unit(salt("bin.volume")) * 3.0) as usize % 3];
    let density = [0.12, 0.05, 0.5, 0.2][(c.plate.unit(salt("bin.stream")) * 4.0) as usize % 4];

    // The last round at or before `t` that was not missed (3 % are), searching back up to a week.
    let mut last = None;
    'days: for day in (local.day - 7..=local.day).rev() {
        for (i, &hour) in rounds.iter().enumerate().rev() {
            if i == 1 && !busy {
                continue;
            }
            let at = Local::instant(day, hour);
            if at <= c.t && c.key.unit_at(salt("bin.missed") ^ i as u64, day) >= 0.03 {
                last = Some(at);
                break 'days;
            }
        }
    }
    let last = last.unwrap_or(Local::midnight(local.day - 7));
    let hours = |t: i64| (t + crate::clock::LOCAL_OFFSET_MS) as f64 / HOUR_MS as f64;
    let fill = (RESIDUE + per_day * (deposits(hours(c.t)) - deposits(hours(last)))).clamp(0.0, 1.0);
    let w = c.env.weather(c.t);
    let sun = c.env.sun_elevation_deg(c.t, c.at).to_radians().sin().max(0.0) * (1.0 - w.cloud_cover);
    out.num("fillingLevel", round_to(fill, 3));
    out.num("temperature", round_to(w.temperature_c + 1.5 * fill + 4.0 * sun, 1));
    out.num("cargoWeight", round_to(fill * volume_l * density, 1));
    out.text("status", if fill > 0.97 { "lidOpen" } else { "ok" });
    out.int("lastEmptiedAt", clamp_timestamp(last));
}
