//! Local civil time in the city (UTC+8, China Standard Time, no daylight saving) and the seasons.

use twin_model::UnixMs;

/// One hour in milliseconds.
pub(crate) const HOUR_MS: i64 = 3_600_000;
/// One day in milliseconds.
pub(crate) const DAY_MS: i64 = 24 * HOUR_MS;
/// The offset of local time from UTC: China Standard Time is UTC+8 all year.
pub(crate) const LOCAL_OFFSET_MS: i64 = 8 * HOUR_MS;
/// The mean tropical year in days.
const YEAR_DAYS: f64 = 365.2422;

/// The local calendar position of an instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Local {
    /// Local days since 1970-01-01 (local).
    pub(crate) day: i64,
    /// Local hour of day, `0.0..24.0`.
    pub(crate) hour: f64,
    /// Day of the week, 0 = Monday .. 6 = Sunday.
    pub(crate) weekday: i64,
}

impl Local {
    /// The local time at `t`.
    pub(crate) fn at(t: UnixMs) -> Self {
        let local = t.saturating_add(LOCAL_OFFSET_MS);
        let day = local.div_euclid(DAY_MS);
        let hour = local.rem_euclid(DAY_MS) as f64 / HOUR_MS as f64;
        // 1970-01-01 was a Thursday.
        Local { day, hour, weekday: (day + 3).rem_euclid(7) }
    }

    /// Whether the day is a Saturday or a Sunday.
    pub(crate) fn is_weekend(&self) -> bool {
        self.weekday >= 5
    }

    /// The UTC instant of local midnight starting `day`.
    pub(crate) fn midnight(day: i64) -> UnixMs {
        day * DAY_MS - LOCAL_OFFSET_MS
    }

    /// The UTC instant of local `hour` on `day`.
    pub(crate) fn instant(day: i64, hour: f64) -> UnixMs {
        Local::midnight(day) + (hour * HOUR_MS as f64) as i64
    }
}

/// The phase of the year at `t`: 0 on January 1st, rising to 1 over the year.
pub(crate) fn year_phase(t: UnixMs) -> f64 {
    let days = t as f64 / DAY_MS as f64;
    (days / YEAR_DAYS).rem_euclid(1.0)
}

/// A seasonal cosine: 1 at the phase of the year `peak_day` (day of year), -1 half a year later.
pub(crate) fn seasonal(t: UnixMs, peak_day: f64) -> f64 {
    (std::f64::consts::TAU * (year_phase(t) - peak_day / YEAR_DAYS)).cos()
}

/// A Gaussian bump of width `sigma` hours centred on `centre`, measured around the 24-hour clock.
pub(crate) fn daily_bump(hour: f64, centre: f64, sigma: f64) -> f64 {
    let mut d = (hour - centre).rem_euclid(24.0);
    if d > 12.0 {
        d -= 24.0;
    }
    (-0.5 * (d / sigma).powi(2)).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_time_is_utc_plus_eight() {
        // 2024-06-03 00:00 UTC is a Monday, 08:00 in Changsha.
        let t = 1_717_372_800_000;
        let l = Local::at(t);
        assert_eq!(l.weekday, 0);
        assert!((l.hour - 8.0).abs() < 1e-9);
        assert_eq!(Local::instant(l.day, 8.0), t);
        // 2024-06-08 is a Saturday.
        assert!(Local::at(t + 5 * DAY_MS).is_weekend());
    }
}
