//! City-wide conditions: weather, rain episodes, pollution episodes, traffic demand and the sun.
//!
//! Every quantity is a pure function of `(seed, t)` (and a position where it varies in space). State
//! that depends on the past (rain over the last hours) is computed in closed form from episodes laid
//! on a fixed grid of time blocks, so any instant costs the same to evaluate.

use std::f64::consts::PI;

use twin_model::{GeoPoint, UnixMs};

use crate::clock::{HOUR_MS, Local, daily_bump, seasonal};
use crate::noise::{Key, salt};

/// Rain episodes live in blocks of this many hours; at most one per block, wholly inside it.
const RAIN_BLOCK_H: i64 = 12;
/// Pollution episodes live in blocks of this many hours; at most one per block, wholly inside it.
const SMOG_BLOCK_H: i64 = 96;
/// The city centre, used when a position is not given.
pub const CHANGSHA: GeoPoint = GeoPoint { lon: 112.95, lat: 28.2 };

/// The weather at one instant, city-wide.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weather {
    /// Air temperature at 2 m, degrees Celsius.
    pub temperature_c: f64,
    /// Relative humidity, percent (0..100).
    pub relative_humidity_pct: f64,
    /// Mean wind speed at 10 m, m/s.
    pub wind_speed_ms: f64,
    /// Direction the wind blows from, degrees clockwise from north, `0..360`.
    pub wind_direction_deg: f64,
    /// Rain intensity, mm/h.
    pub rain_mm_h: f64,
    /// Station-level air pressure, hPa.
    pub pressure_hpa: f64,
    /// Cloud cover as a fraction of the sky (0 clear .. 1 overcast).
    pub cloud_cover: f64,
}

/// One rain episode: a smooth shower of `peak_mm_h` lasting from `start` to `end`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct RainEpisode {
    start: UnixMs,
    end: UnixMs,
    peak_mm_h: f64,
}

impl RainEpisode {
    fn duration_h(&self) -> f64 {
        (self.end - self.start) as f64 / HOUR_MS as f64
    }

    /// Intensity at `t`: `peak * sin^2(pi * s / d)` over the episode, zero outside.
    fn intensity(&self, t: UnixMs) -> f64 {
        if t <= self.start || t >= self.end {
            return 0.0;
        }
        let s = (t - self.start) as f64 / HOUR_MS as f64;
        self.peak_mm_h * (PI * s / self.duration_h()).sin().powi(2)
    }

    /// Rain in mm from the start of the episode to `t` (closed-form integral of `intensity`).
    fn cumulative_mm(&self, t: UnixMs) -> f64 {
        let d = self.duration_h();
        let s = ((t - self.start) as f64 / HOUR_MS as f64).clamp(0.0, d);
        self.peak_mm_h * (s / 2.0 - d / (4.0 * PI) * (2.0 * PI * s / d).sin())
    }
}

/// City-wide conditions at a time, pure functions of `(seed, time)`: weather (temperature, humidity,
/// wind, rain episodes lasting hours, pollution episodes lasting days), traffic demand (rush hours
/// 7:30-9:30 and 17:00-19:30 local on weekdays, lighter weekends, low at night) and the sun.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Environment {
    seed: u64,
    key: Key,
}

impl Environment {
    /// The environment of a simulation seed.
    pub fn new(seed: u64) -> Self {
        Environment { seed, key: Key::new(seed) }
    }

    /// The seed this environment was made from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The weather at `t`.
    pub fn weather(&self, t: UnixMs) -> Weather {
        let k = self.key;
        let local = Local::at(t);
        let hours = t as f64 / HOUR_MS as f64;
        let rain_mm_h = self.rain_mm_h(t);
        let cloud_cover = self.cloud_cover(t);
        let wet = (rain_mm_h / 4.0).min(1.0);

        // Changsha: about 5 C in January, 30 C in July; 4-5 C of daily swing, less under cloud.
        let mean = 17.5 + 12.5 * seasonal(t, 196.0);
        let swing = 4.5 * (1.0 - 0.6 * cloud_cover);
        let synoptic = 3.0 * k.noise(salt("temp.synoptic"), hours / 40.0);
        let temperature_c = mean + swing * (2.0 * PI * (local.hour - 14.5) / 24.0).cos() + synoptic - 2.5 * wet;

        let daily_rh = 10.0 * (2.0 * PI * (local.hour - 5.0) / 24.0).cos();
        let relative_humidity_pct =
            (76.0 + daily_rh + 8.0 * k.noise(salt("rh"), hours / 30.0) + 10.0 * cloud_cover - 5.0 + 20.0 * wet)
                .clamp(25.0, 100.0);

        let wind_speed_ms =
            (2.2 + 1.2 * k.noise(salt("wind"), hours / 9.0) + 0.8 * daily_bump(local.hour, 15.0, 3.0) + 2.5 * wet)
                .max(0.2);
        // Winter monsoon from the north-north-west, summer monsoon from the south.
        let prevailing = if seasonal(t, 196.0) > 0.0 { 170.0 } else { 340.0 };
        let wind_direction_deg = (prevailing + 70.0 * k.noise(salt("wind.dir"), hours / 12.0)).rem_euclid(360.0);

        let pressure_hpa = 1011.0 + 9.0 * seasonal(t, 15.0) + 5.0 * k.noise(salt("pressure"), hours / 48.0) - 3.0 * wet;

        Weather {
            temperature_c,
            relative_humidity_pct,
            wind_speed_ms,
            wind_direction_deg,
            rain_mm_h,
            pressure_hpa,
            cloud_cover,
        }
    }

    /// The rain episode of a block, if it has one.
    fn rain_episode(&self, block: i64) -> Option<RainEpisode> {
        let k = self.key;
        let block_start = block * RAIN_BLOCK_H * HOUR_MS;
        // Wettest from April to June (plum rains), driest in autumn and winter.
        let p = 0.27 + 0.13 * seasonal(block_start, 140.0);
        if k.unit_at(salt("rain.p"), block) >= p {
            return None;
        }
        let duration_h = 1.5 + 6.5 * k.unit_at(salt("rain.d"), block).powi(2);
        let offset_h = (RAIN_BLOCK_H as f64 - duration_h) * k.unit_at(salt("rain.o"), block);
        let peak_mm_h = 1.0 + 24.0 * k.unit_at(salt("rain.i"), block).powf(2.5);
        let start = block_start + (offset_h * HOUR_MS as f64) as i64;
        Some(RainEpisode { start, end: start + (duration_h * HOUR_MS as f64) as i64, peak_mm_h })
    }

    fn rain_block(t: UnixMs) -> i64 {
        t.div_euclid(RAIN_BLOCK_H * HOUR_MS)
    }

    fn rain_mm_h(&self, t: UnixMs) -> f64 {
        self.rain_episode(Self::rain_block(t)).map_or(0.0, |e| e.intensity(t))
    }

    /// Rain that fell between `from` and `to`, in mm (closed form).
    pub fn rain_between_mm(&self, from: UnixMs, to: UnixMs) -> f64 {
        if to <= from {
            return 0.0;
        }
        let mut total = 0.0;
        for block in Self::rain_block(from)..=Self::rain_block(to) {
            if let Some(e) = self.rain_episode(block) {
                total += e.cumulative_mm(to) - e.cumulative_mm(from);
            }
        }
        total.max(0.0)
    }

    /// Rain that fell over the last `hours` before `t`, in mm (for river levels and retention parks).
    pub fn rain_last_hours_mm(&self, t: UnixMs, hours: u32) -> f64 {
        self.rain_between_mm(t - i64::from(hours) * HOUR_MS, t)
    }

    /// The start and end of the rain episodes that overlap `from..to`, in time order.
    pub fn rain_episodes(&self, from: UnixMs, to: UnixMs) -> Vec<(UnixMs, UnixMs)> {
        (Self::rain_block(from)..=Self::rain_block(to))
            .filter_map(|b| self.rain_episode(b))
            .filter(|e| e.end > from && e.start < to)
            .map(|e| (e.start, e.end))
            .collect()
    }

    /// Cloud cover at `t` (0..1): drifting cloud, overcast around rain.
    fn cloud_cover(&self, t: UnixMs) -> f64 {
        let hours = t as f64 / HOUR_MS as f64;
        let base = 0.45 + 0.4 * self.key.noise(salt("cloud"), hours / 7.0) + 0.1 * seasonal(t, 140.0);
        let block = Self::rain_block(t);
        let mut near_rain: f64 = 0.0;
        for b in block - 1..=block + 1 {
            if let Some(e) = self.rain_episode(b) {
                let gap_h = if t < e.start {
                    (e.start - t) as f64
                } else if t > e.end {
                    (t - e.end) as f64
                } else {
                    0.0
                } / HOUR_MS as f64;
                near_rain = near_rain.max(1.0 - gap_h / 4.0);
            }
        }
        base.max(near_rain).clamp(0.0, 1.0)
    }

    /// The pollution episode factor at `t`: 1 on clean days, up to about 4 during a multi-day smog
    /// episode (stagnant air, more often in winter). Rain and wind lower the concentrations this scales.
    pub fn pollution_episode(&self, t: UnixMs) -> f64 {
        let k = self.key;
        let block = t.div_euclid(SMOG_BLOCK_H * HOUR_MS);
        let block_start = block * SMOG_BLOCK_H * HOUR_MS;
        let winter = seasonal(block_start, 15.0);
        if k.unit_at(salt("smog.p"), block) >= 0.4 + 0.2 * winter {
            return 1.0;
        }
        let duration_h = 36.0 + 48.0 * k.unit_at(salt("smog.d"), block);
        let offset_h = (SMOG_BLOCK_H as f64 - duration_h) * k.unit_at(salt("smog.o"), block);
        let strength = (0.6 + 2.4 * k.unit_at(salt("smog.s"), block)) * (1.0 + 0.4 * winter);
        let s = (t - block_start) as f64 / HOUR_MS as f64 - offset_h;
        if s <= 0.0 || s >= duration_h {
            return 1.0;
        }
        1.0 + strength * (PI * s / duration_h).sin().powi(2)
    }

    /// City-wide traffic demand at `t`, 0..1: weekday rush hours 7:30-9:30 and 17:00-19:30 local,
    /// lighter and later on weekends, low at night.
    pub fn traffic_demand(&self, t: UnixMs) -> f64 {
        let local = Local::at(t);
        let h = local.hour;
        let profile = if local.is_weekend() {
            0.05 + 0.5 * daily_bump(h, 11.5, 2.2) + 0.55 * daily_bump(h, 16.5, 2.5) + 0.2 * daily_bump(h, 20.5, 1.5)
        } else {
            0.05 + 0.88 * daily_bump(h, 8.5, 0.75)
                + 0.45 * daily_bump(h, 13.0, 2.6)
                + 0.85 * daily_bump(h, 18.25, 0.95)
                + 0.25 * daily_bump(h, 21.0, 1.3)
        };
        let jitter = 0.04 * self.key.noise(salt("traffic"), t as f64 / (30.0 * 60_000.0));
        (profile + jitter).clamp(0.0, 1.0)
    }

    /// Traffic demand near `at`, 0..1: the city-wide demand scaled by how busy the area is (a smooth
    /// field over a few kilometres, so neighbouring counters, noise monitors and air-quality stations
    /// agree: congestion raises NO2 and noise nearby).
    pub fn traffic_demand_at(&self, t: UnixMs, at: GeoPoint) -> f64 {
        let busy = 0.8 + 0.25 * self.key.noise2(salt("traffic.field"), at.lon / 0.03, at.lat / 0.03);
        let local = 0.05 * self.key.noise2(salt("traffic.local"), at.lon / 0.01, t as f64 / (20.0 * 60_000.0));
        (self.traffic_demand(t) * busy + local).clamp(0.0, 1.0)
    }

    /// The sun's elevation above the horizon at `at`, degrees.
    pub fn sun_elevation_deg(&self, t: UnixMs, at: GeoPoint) -> f64 {
        crate::sun::sun_elevation_deg(t, at)
    }

    /// Global horizontal irradiance at `at`, W/m2: a clear-sky model (Haurwitz) dimmed by cloud (Kasten).
    pub fn solar_irradiance_w_m2(&self, t: UnixMs, at: GeoPoint, cloud_cover: f64) -> f64 {
        let sin_e = self.sun_elevation_deg(t, at).to_radians().sin();
        if sin_e <= 0.0 {
            return 0.0;
        }
        let clear = 1098.0 * sin_e * (-0.057 / sin_e).exp();
        clear * (1.0 - 0.75 * cloud_cover.clamp(0.0, 1.0).powf(3.4))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::DAY_MS;

    const MONDAY: UnixMs = 1_717_344_000_000; // 2024-06-03 00:00 local

    #[test]
    fn rain_integral_matches_intensity() {
        let env = Environment::new(3);
        let from = MONDAY;
        let to = MONDAY + 7 * DAY_MS;
        let step = 60_000;
        let mut riemann = 0.0;
        let mut t = from;
        while t < to {
            riemann += env.weather(t + step / 2).rain_mm_h * step as f64 / HOUR_MS as f64;
            t += step;
        }
        let closed = env.rain_between_mm(from, to);
        assert!(closed > 1.0, "a June week has rain: {closed}");
        assert!((riemann - closed).abs() < 0.01 * closed + 0.01, "{riemann} vs {closed}");
    }

    #[test]
    fn weekday_rush_hour_beats_night() {
        let env = Environment::new(1);
        let at = |h: f64| env.traffic_demand(MONDAY + (h * HOUR_MS as f64) as i64);
        assert!(at(8.5) > 0.8 && at(18.25) > 0.75, "{} {}", at(8.5), at(18.25));
        assert!(at(3.0) < 0.15 && at(13.0) < at(8.5));
        let saturday = |h: f64| env.traffic_demand(MONDAY + 5 * DAY_MS + (h * HOUR_MS as f64) as i64);
        assert!(saturday(8.5) < at(8.5));
    }
}
