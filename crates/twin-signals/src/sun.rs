//! The sun's position: the low-precision formulas of the Astronomical Almanac (about 0.01 degree
//! between 1950 and 2050), which is far better than lights, solar panels and ozone need.

use twin_model::{GeoPoint, UnixMs};

/// 2000-01-01 12:00 UTC (J2000.0) in Unix milliseconds.
const J2000_MS: f64 = 946_728_000_000.0;

/// The sun's elevation above the horizon at `at`, in degrees (-90..90), without refraction.
pub fn sun_elevation_deg(t: UnixMs, at: GeoPoint) -> f64 {
    let n = (t as f64 - J2000_MS) / 86_400_000.0;
    let mean_longitude = (280.460 + 0.985_647_4 * n).rem_euclid(360.0);
    let mean_anomaly = (357.528 + 0.985_600_3 * n).rem_euclid(360.0).to_radians();
    let ecliptic_longitude =
        (mean_longitude + 1.915 * mean_anomaly.sin() + 0.020 * (2.0 * mean_anomaly).sin()).to_radians();
    let obliquity = (23.439 - 0.000_000_4 * n).to_radians();
    let declination = (obliquity.sin() * ecliptic_longitude.sin()).asin();
    let right_ascension = (obliquity.cos() * ecliptic_longitude.sin()).atan2(ecliptic_longitude.cos()).to_degrees();
    let sidereal_deg = (280.460_618_37 + 360.985_647_366_29 * n).rem_euclid(360.0);
    let hour_angle = (sidereal_deg + at.lon - right_ascension).to_radians();
    let lat = at.lat.to_radians();
    let sin_elevation = lat.sin() * declination.sin() + lat.cos() * declination.cos() * hour_angle.cos();
    sin_elevation.clamp(-1.0, 1.0).asin().to_degrees()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHANGSHA: GeoPoint = GeoPoint { lon: 112.95, lat: 28.2 };

    #[test]
    fn changsha_noon_and_midnight() {
        // 2024-06-21 12:30 local (04:30 UTC): near the summer solstice the sun is almost overhead
        // (90 - 28.2 + 23.44 = 85.2 degrees at solar noon).
        let noon = 1_718_944_200_000;
        let e = sun_elevation_deg(noon, CHANGSHA);
        assert!((80.0..=86.0).contains(&e), "{e}");
        // Twelve hours later it is deep below the horizon.
        let e = sun_elevation_deg(noon + 12 * 3_600_000, CHANGSHA);
        assert!(e < -30.0, "{e}");
        // 2024-12-21 solar noon: 90 - 28.2 - 23.44 = 38.4 degrees.
        let winter = 1_734_755_400_000;
        let e = sun_elevation_deg(winter, CHANGSHA);
        assert!((36.0..=39.0).contains(&e), "{e}");
    }
}
