//! Environment sensors: air quality (China AQI per HJ 633), noise and weather stations.

use std::f64::consts::PI;

use twin_model::aqi::{Concentrations, china_aqi};

use crate::clock::{HOUR_MS, Local, seasonal};
use crate::model::{Ctx, Out, round_to};
use crate::noise::salt;

/// How well the air mixes at a local hour: the boundary layer is low at night and in the early morning
/// (primary pollutants pile up) and deep in the afternoon (they dilute). About 0.7..1.3.
fn stagnation(hour: f64) -> f64 {
    1.0 + 0.3 * (2.0 * PI * (hour - 4.0) / 24.0).cos()
}

/// Regional particulate load at `t`, ug/m3 of PM2.5 (hourly): seasonal background times the pollution
/// episode, washed out by rain over the last hours and dispersed by wind.
fn particulate(c: &Ctx<'_>, t: i64) -> f64 {
    let w = c.env.weather(t);
    let background = 38.0 + 22.0 * seasonal(t, 15.0);
    let washout = 1.0 / (1.0 + c.env.rain_last_hours_mm(t, 6) / 8.0);
    let dispersion = 1.0 / (0.7 + 0.12 * w.wind_speed_ms);
    let hour = Local::at(t).hour;
    background * c.env.pollution_episode(t) * washout * dispersion * (0.85 + 0.15 * stagnation(hour))
}

/// Hourly ozone at `t`, ug/m3: photochemistry with the sun (lagging it by about two hours, so peaking
/// mid-afternoon), stronger when warm and clear; titrated by fresh NO from traffic.
fn ozone(c: &Ctx<'_>, t: i64, traffic: f64) -> f64 {
    let w = c.env.weather(t);
    let lagged = c.env.sun_elevation_deg(t - 2 * HOUR_MS, c.at).to_radians().sin().max(0.0);
    let warmth = ((w.temperature_c - 5.0) / 25.0).clamp(0.2, 1.4);
    let photo = 150.0 * lagged.powf(1.3) * warmth * (1.0 - 0.6 * w.cloud_cover);
    (25.0 + photo - 25.0 * traffic * stagnation(Local::at(t).hour)).max(3.0)
}

/// `AirQualityObserved`: PM2.5/PM10 (24 h means) follow multi-day pollution episodes; NO2 and CO
/// (1 h) peak with the rush hours and rise with traffic near the station (the congestion correlation);
/// O3 peaks mid-afternoon with the sun. The AQI fields are the hourly China AQI (HJ 633-2012) of
/// exactly the reported (rounded) concentrations: 24 h PM2.5 and PM10, 1 h NO2, SO2, CO and O3 and
/// the 8 h O3 mean.
pub(crate) fn air_quality(c: &Ctx<'_>, out: &mut Out) {
    let local = Local::at(c.t);
    let station = c.plate.range(salt("aq.station"), 0.85, 1.15);
    let exposure = c.plate.range(salt("aq.exposure"), 0.5, 1.5); // roadside vs background station
    let w = c.env.weather(c.t);
    let traffic = c.env.traffic_demand_at(c.t, c.at);
    let dispersion = 1.0 / (0.7 + 0.12 * w.wind_speed_ms);
    let stag = stagnation(local.hour);
    let episode = c.env.pollution_episode(c.t);

    // 24 h means: the average of the hourly model at eight points over the last day.
    let pm25_24h = (0..8).map(|i| particulate(c, c.t - i * 3 * HOUR_MS)).sum::<f64>() / 8.0 * station;
    let coarse = c.plate.range(salt("aq.coarse"), 1.4, 1.8) * (1.0 + 0.05 * w.wind_speed_ms);
    let pm25 = pm25_24h.clamp(2.0, 900.0).round();
    let pm10 = (pm25_24h * coarse).clamp(pm25, 2000.0).round();

    let no2 = ((12.0 + 85.0 * traffic * exposure) * stag * dispersion * episode.sqrt()
        + 3.0 * c.key.noise(salt("no2"), c.t as f64 / 1_200_000.0))
    .clamp(2.0, 600.0)
    .round();
    let so2 = ((6.0 + 4.0 * seasonal(c.t, 15.0) + 4.0 * traffic) * episode.powf(0.7) * stag * station)
        .clamp(1.0, 300.0)
        .round();
    let co = round_to(((0.35 + 0.9 * traffic * exposure) * stag * dispersion * episode.sqrt()).clamp(0.1, 20.0), 2);
    let o3 = ozone(c, c.t, traffic * exposure).clamp(1.0, 500.0).round();
    let o3_8h = ((0..8)
        .map(|i| {
            let t = c.t - i * HOUR_MS;
            ozone(c, t, c.env.traffic_demand_at(t, c.at) * exposure)
        })
        .sum::<f64>()
        / 8.0)
        .clamp(1.0, 500.0)
        .round();

    out.num("pm25", pm25);
    out.num("pm10", pm10);
    out.num("no2", no2);
    out.num("so2", so2);
    out.num("co", co);
    out.num("o3", o3);
    out.num("o3Avg8h", o3_8h);
    out.num("temperature", round_to(w.temperature_c + c.plate.range(salt("aq.heat"), -0.3, 0.8), 1));
    out.num("relativeHumidity", round_to(w.relative_humidity_pct, 0));
    let report = china_aqi(&Concentrations {
        pm25: Some(pm25),
        pm10: Some(pm10),
        so2_1h: Some(so2),
        no2_1h: Some(no2),
        co_1h: Some(co),
        o3_1h: Some(o3),
        o3_8h: Some(o3_8h),
        ..Concentrations::default()
    });
    // Every concentration is finite, non-negative and below 800, so the AQI is always defined.
    if let Ok(report) = report {
        out.int("aqi", i64::from(report.aqi));
        out.int("aqiLevel", i64::from(report.level));
        out.text("aqiCategory", report.category.as_str());
        out.text("primaryPollutant", &report.primary_pollutant_text());
    }
}

/// Combines sound levels energetically, dB.
fn db_sum(a: f64, b: f64) -> f64 {
    10.0 * (10f64.powf(a / 10.0) + 10f64.powf(b / 10.0)).log10()
}

/// `NoiseLevelObserved`: road traffic noise over a quiet background; loud in the rush, quiet at night;
/// rain adds a little.
pub(crate) fn noise_level(c: &Ctx<'_>, out: &mut Out) {
    let period_s =
        c.nameplate(out, "periodS", [60.0, 300.0, 900.0][(c.plate.unit(salt("noise.period")) * 3.0) as usize % 3]);
    let road_level = c.plate.range(salt("noise.road"), 62.0, 74.0);
    let background = c.plate.range(salt("noise.bg"), 33.0, 42.0);
    let traffic = c.env.traffic_demand_at(c.t, c.at).max(0.005);
    let rain = c.env.weather(c.t).rain_mm_h;
    let slot = c.t.div_euclid((period_s * 1000.0) as i64);
    let jitter = 2.0 * (c.key.unit_at(salt("noise.j"), slot) - 0.5);
    let traffic_db = road_level + 10.0 * traffic.log10();
    let bg = background + 3.0 * (rain / 3.0).min(2.0);
    let laeq = db_sum(traffic_db, bg) + jitter;
    let la90 = (db_sum(traffic_db - 9.0, bg) + 0.5 * jitter).min(laeq - 2.0);
    let lamax = laeq + 8.0 + 12.0 * c.key.unit_at(salt("noise.max"), slot);
    out.num("LAeq", round_to(laeq, 1));
    out.num("LAmax", round_to(lamax, 1));
    out.num("LA90", round_to(la90, 1));
    out.num("periodS", period_s);
}

/// `WeatherObserved`: the city weather plus a small station offset, with derived dew point, gusts,
/// irradiance and visibility (lowered by rain, humidity and haze).
pub(crate) fn weather_station(c: &Ctx<'_>, out: &mut Out) {
    let w = c.env.weather(c.t);
    let temperature = w.temperature_c + c.plate.range(salt("wx.heat"), -0.4, 0.6);
    let rh = w.relative_humidity_pct.clamp(1.0, 100.0);
    // Magnus formula.
    let gamma = (rh / 100.0).ln() + 17.62 * temperature / (243.12 + temperature);
    let dew_point = 243.12 * gamma / (17.62 - gamma);
    let gust = w.wind_speed_ms * (1.4 + 0.4 * c.key.unit_at(salt("wx.gust"), c.t.div_euclid(600_000)));
    let radiation = c.env.solar_irradiance_w_m2(c.t, c.at, w.cloud_cover);
    let haze = c.env.pollution_episode(c.t);
    let visibility = 30_000.0 / haze / (1.0 + w.rain_mm_h / 4.0) * if rh > 95.0 { 0.4 } else { 1.0 };
    out.num("temperature", round_to(temperature, 1));
    out.num("relativeHumidity", round_to(rh, 0));
    out.num("dewPoint", round_to(dew_point.min(temperature), 1));
    out.num("windSpeed", round_to(w.wind_speed_ms, 1));
    out.num("windGust", round_to(gust, 1));
    out.num("windDirection", round_to(w.wind_direction_deg, 0).rem_euclid(360.0));
    out.num("precipitation", round_to(w.rain_mm_h, 1));
    out.num("atmosphericPressure", round_to(w.pressure_hpa, 1));
    out.num("solarRadiation", radiation.round());
    out.num("visibility", (visibility.clamp(50.0, 50_000.0) / 10.0).round() * 10.0);
}
