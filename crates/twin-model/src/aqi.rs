//! The China Air Quality Index per HJ 633-2012 (*Technical Regulation on Ambient Air Quality Index*).
//!
//! Each pollutant concentration maps to an Individual Air Quality Index (IAQI) by linear interpolation
//! between the breakpoints of HJ 633-2012 Table 1:
//!
//! ```text
//! IAQI = (IAQI_hi - IAQI_lo) / (BP_hi - BP_lo) * (C - BP_lo) + IAQI_lo
//! ```
//!
//! rounded **up** to an integer, as HJ 633 requires. The AQI is the largest IAQI; when it is above 50
//! the pollutants with that IAQI are the primary pollutants. The AQI falls in one of six levels
//! ([`AqiCategory`]): 0-50, 51-100, 101-150, 151-200, 201-300 and above 300.
//!
//! Units: micrograms per cubic metre (`ug/m3`) for every pollutant except CO, which is in `mg/m3`.
//!
//! Two special cases come from the notes to Table 1:
//! - 1-hour SO2 above 800 ug/m3 has no IAQI; the 24-hour SO2 IAQI is reported instead.
//! - 8-hour O3 above 800 ug/m3 has no IAQI; the 1-hour O3 IAQI is reported instead.
//!
//! [`iaqi`] returns [`AqiError::NotDefined`] for those; [`china_aqi`] skips such a value when the
//! replacement concentration is given and fails otherwise. Every other concentration above the top
//! breakpoint caps at 500.
//!
//! ```
//! use twin_model::aqi::{china_aqi, iaqi, AqiCategory, Concentrations, Pollutant};
//!
//! assert_eq!(iaqi(Pollutant::Pm25, 50.0), Ok(69));
//! let report = china_aqi(&Concentrations { pm25: Some(50.0), pm10: Some(60.0), ..Default::default() }).unwrap();
//! assert_eq!(report.aqi, 69);
//! assert_eq!(report.category, AqiCategory::Good);
//! assert_eq!(report.primary_pollutants, vec![Pollutant::Pm25]);
//! ```

use std::fmt;

/// The IAQI value at each breakpoint of HJ 633-2012 Table 1.
const IAQI_STEPS: [f64; 8] = [0.0, 50.0, 100.0, 150.0, 200.0, 300.0, 400.0, 500.0];

/// The highest AQI/IAQI value; concentrations above the top breakpoint cap here.
pub const AQI_MAX: u32 = 500;

/// A pollutant and averaging period with a row in HJ 633-2012 Table 1.
#[allow(non_camel_case_types)] // `O3_8h` reads as the standard writes it; `O38h` would not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pollutant {
    /// Sulphur dioxide, 24-hour mean, ug/m3.
    So2,
    /// Sulphur dioxide, 1-hour mean, ug/m3 (no IAQI above 800; see [`AqiError::NotDefined`]).
    So2_1h,
    /// Nitrogen dioxide, 24-hour mean, ug/m3.
    No2,
    /// Nitrogen dioxide, 1-hour mean, ug/m3.
    No2_1h,
    /// Particulate matter up to 10 um, 24-hour mean, ug/m3.
    Pm10,
    /// Carbon monoxide, 24-hour mean, **mg/m3**.
    Co,
    /// Carbon monoxide, 1-hour mean, **mg/m3**.
    Co_1h,
    /// Ozone, 1-hour mean, ug/m3.
    O3_1h,
    /// Ozone, 8-hour moving mean, ug/m3 (no IAQI above 800; see [`AqiError::NotDefined`]).
    O3_8h,
    /// Particulate matter up to 2.5 um, 24-hour mean, ug/m3.
    Pm25,
}

impl Pollutant {
    /// Every pollutant row, in the order of HJ 633-2012 Table 1.
    pub const ALL: [Pollutant; 10] = [
        Pollutant::So2,
        Pollutant::So2_1h,
        Pollutant::No2,
        Pollutant::No2_1h,
        Pollutant::Pm10,
        Pollutant::Co,
        Pollutant::Co_1h,
        Pollutant::O3_1h,
        Pollutant::O3_8h,
        Pollutant::Pm25,
    ];

    /// The pollutant as HJ 633 names it in reports, without the averaging period: `SO2`, `NO2`,
    /// `PM10`, `CO`, `O3` or `PM2.5`.
    pub fn name(self) -> &'static str {
        match self {
            Pollutant::So2 | Pollutant::So2_1h => "SO2",
            Pollutant::No2 | Pollutant::No2_1h => "NO2",
            Pollutant::Pm10 => "PM10",
            Pollutant::Co | Pollutant::Co_1h => "CO",
            Pollutant::O3_1h | Pollutant::O3_8h => "O3",
            Pollutant::Pm25 => "PM2.5",
        }
    }

    /// The averaging period of the concentration, in hours (1, 8 or 24).
    pub fn averaging_hours(self) -> u8 {
        match self {
            Pollutant::So2_1h | Pollutant::No2_1h | Pollutant::Co_1h | Pollutant::O3_1h => 1,
            Pollutant::O3_8h => 8,
            Pollutant::So2 | Pollutant::No2 | Pollutant::Pm10 | Pollutant::Co | Pollutant::Pm25 => 24,
        }
    }

    /// The unit of the concentration: `mg/m3` for CO, `ug/m3` for the others.
    pub fn unit(self) -> &'static str {
        match self {
            Pollutant::Co | Pollutant::Co_1h => "mg/m3",
            _ => "ug/m3",
        }
    }

    /// The concentration breakpoints of HJ 633-2012 Table 1; the `i`th maps to `IAQI_STEPS[i]`.
    fn breakpoints(self) -> &'static [f64] {
        match self {
            Pollutant::So2 => &[0.0, 50.0, 150.0, 475.0, 800.0, 1600.0, 2100.0, 2620.0],
            Pollutant::So2_1h => &[0.0, 150.0, 500.0, 650.0, 800.0],
            Pollutant::No2 => &[0.0, 40.0, 80.0, 180.0, 280.0, 565.0, 750.0, 940.0],
            Pollutant::No2_1h => &[0.0, 100.0, 200.0, 700.0, 1200.0, 2340.0, 3090.0, 3840.0],
            Pollutant::Pm10 => &[0.0, 50.0, 150.0, 250.0, 350.0, 420.0, 500.0, 600.0],
            Pollutant::Co => &[0.0, 2.0, 4.0, 14.0, 24.0, 36.0, 48.0, 60.0],
            Pollutant::Co_1h => &[0.0, 5.0, 10.0, 35.0, 60.0, 90.0, 120.0, 150.0],
            Pollutant::O3_1h => &[0.0, 160.0, 200.0, 300.0, 400.0, 800.0, 1000.0, 1200.0],
            Pollutant::O3_8h => &[0.0, 100.0, 160.0, 215.0, 265.0, 800.0],
            Pollutant::Pm25 => &[0.0, 35.0, 75.0, 115.0, 150.0, 250.0, 350.0, 500.0],
        }
    }

    /// The row HJ 633 reports instead when this one's table ends before IAQI 500.
    fn replacement(self) -> Option<Pollutant> {
        match self {
            Pollutant::So2_1h => Some(Pollutant::So2),
            Pollutant::O3_8h => Some(Pollutant::O3_1h),
            _ => None,
        }
    }
}

impl fmt::Display for Pollutant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} h)", self.name(), self.averaging_hours())
    }
}

/// Why an AQI could not be computed.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum AqiError {
    /// The concentration is NaN or infinite.
    #[error("{pollutant} concentration must be a finite number, got {value}")]
    NotFinite {
        /// The pollutant.
        pollutant: Pollutant,
        /// The value given.
        value: f64,
    },
    /// The concentration is below zero.
    #[error("{pollutant} concentration must not be negative, got {value} {}", .pollutant.unit())]
    Negative {
        /// The pollutant.
        pollutant: Pollutant,
        /// The value given.
        value: f64,
    },
    /// HJ 633 defines no IAQI for this concentration (1-hour SO2 or 8-hour O3 above 800 ug/m3) and
    /// reports the IAQI of `use_instead` in its place.
    #[error("HJ 633 defines no IAQI for {pollutant} at {value} {}; use {use_instead} instead", .pollutant.unit())]
    NotDefined {
        /// The pollutant.
        pollutant: Pollutant,
        /// The value given.
        value: f64,
        /// The pollutant whose IAQI HJ 633 reports instead.
        use_instead: Pollutant,
    },
    /// No concentration was given, or none that yields an IAQI.
    #[error("no pollutant concentration to compute an AQI from")]
    NoConcentrations,
}

/// The Individual Air Quality Index of one pollutant at `concentration` (ug/m3, or mg/m3 for CO),
/// rounded up to an integer. Concentrations above the top breakpoint give 500, except where HJ 633
/// says to use another averaging period ([`AqiError::NotDefined`]).
pub fn iaqi(pollutant: Pollutant, concentration: f64) -> Result<u32, AqiError> {
    let c = concentration;
    if !c.is_finite() {
        return Err(AqiError::NotFinite { pollutant, value: c });
    }
    if c < 0.0 {
        return Err(AqiError::Negative { pollutant, value: c });
    }
    let bp = pollutant.breakpoints();
    // The first segment whose upper breakpoint is at or above `c`; both segments agree at a breakpoint.
    let Some(hi) = (1..bp.len()).find(|&i| c <= bp[i]) else {
        return match pollutant.replacement() {
            Some(use_instead) => Err(AqiError::NotDefined { pollutant, value: c, use_instead }),
            None => Ok(AQI_MAX),
        };
    };
    let lo = hi - 1;
    // Multiply before dividing so a concentration on a breakpoint gives that breakpoint's IAQI exactly.
    let exact = IAQI_STEPS[lo] + (IAQI_STEPS[hi] - IAQI_STEPS[lo]) * (c - bp[lo]) / (bp[hi] - bp[lo]);
    // Round up, ignoring float noise far below the precision of any instrument.
    let rounded = (exact - 1e-9).ceil().clamp(0.0, AQI_MAX as f64);
    Ok(rounded as u32)
}

/// The six AQI levels of HJ 633-2012 Table 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AqiCategory {
    /// Level 1, AQI 0-50 (优).
    Excellent,
    /// Level 2, AQI 51-100 (良).
    Good,
    /// Level 3, AQI 101-150 (轻度污染).
    LightlyPolluted,
    /// Level 4, AQI 151-200 (中度污染).
    ModeratelyPolluted,
    /// Level 5, AQI 201-300 (重度污染).
    HeavilyPolluted,
    /// Level 6, AQI above 300 (严重污染).
    SeverelyPolluted,
}

impl AqiCategory {
    /// Every category, from level 1 to level 6.
    pub const ALL: [AqiCategory; 6] = [
        AqiCategory::Excellent,
        AqiCategory::Good,
        AqiCategory::LightlyPolluted,
        AqiCategory::ModeratelyPolluted,
        AqiCategory::HeavilyPolluted,
        AqiCategory::SeverelyPolluted,
    ];

    /// The category of an AQI value.
    pub fn from_aqi(aqi: u32) -> Self {
        match aqi {
            0..=50 => AqiCategory::Excellent,
            51..=100 => AqiCategory::Good,
            101..=150 => AqiCategory::LightlyPolluted,
            151..=200 => AqiCategory::ModeratelyPolluted,
            201..=300 => AqiCategory::HeavilyPolluted,
            _ => AqiCategory::SeverelyPolluted,
        }
    }

    /// The level, 1 (excellent) to 6 (severely polluted).
    pub fn level(self) -> u8 {
        match self {
            AqiCategory::Excellent => 1,
            AqiCategory::Good => 2,
            AqiCategory::LightlyPolluted => 3,
            AqiCategory::ModeratelyPolluted => 4,
            AqiCategory::HeavilyPolluted => 5,
            AqiCategory::SeverelyPolluted => 6,
        }
    }

    /// The value stored in the `aqiCategory` attribute of `AirQualityObserved`, e.g. `lightlyPolluted`.
    pub fn as_str(self) -> &'static str {
        match self {
            AqiCategory::Excellent => "excellent",
            AqiCategory::Good => "good",
            AqiCategory::LightlyPolluted => "lightlyPolluted",
            AqiCategory::ModeratelyPolluted => "moderatelyPolluted",
            AqiCategory::HeavilyPolluted => "heavilyPolluted",
            AqiCategory::SeverelyPolluted => "severelyPolluted",
        }
    }

    /// The English name HJ 633 gives the category, e.g. `lightly polluted`.
    pub fn label(self) -> &'static str {
        match self {
            AqiCategory::Excellent => "excellent",
            AqiCategory::Good => "good",
            AqiCategory::LightlyPolluted => "lightly polluted",
            AqiCategory::ModeratelyPolluted => "moderately polluted",
            AqiCategory::HeavilyPolluted => "heavily polluted",
            AqiCategory::SeverelyPolluted => "severely polluted",
        }
    }
}

impl fmt::Display for AqiCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Pollutant concentrations at one station; `None` where not measured. ug/m3, except CO in mg/m3.
///
/// A daily AQI uses the 24-hour means, the daily maximum 1-hour O3 and the daily maximum 8-hour O3;
/// an hourly AQI uses the 1-hour SO2, NO2, CO and O3, the 8-hour moving O3 and the 24-hour moving
/// PM2.5 and PM10 means.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Concentrations {
    /// PM2.5, 24-hour mean, ug/m3.
    pub pm25: Option<f64>,
    /// PM10, 24-hour mean, ug/m3.
    pub pm10: Option<f64>,
    /// SO2, 24-hour mean, ug/m3.
    pub so2: Option<f64>,
    /// SO2, 1-hour mean, ug/m3.
    pub so2_1h: Option<f64>,
    /// NO2, 24-hour mean, ug/m3.
    pub no2: Option<f64>,
    /// NO2, 1-hour mean, ug/m3.
    pub no2_1h: Option<f64>,
    /// CO, 24-hour mean, mg/m3.
    pub co: Option<f64>,
    /// CO, 1-hour mean, mg/m3.
    pub co_1h: Option<f64>,
    /// O3, 1-hour mean, ug/m3.
    pub o3_1h: Option<f64>,
    /// O3, 8-hour moving mean, ug/m3.
    pub o3_8h: Option<f64>,
}

impl Concentrations {
    /// The concentration given for `p`, if any.
    pub fn get(&self, p: Pollutant) -> Option<f64> {
        match p {
            Pollutant::So2 => self.so2,
            Pollutant::So2_1h => self.so2_1h,
            Pollutant::No2 => self.no2,
            Pollutant::No2_1h => self.no2_1h,
            Pollutant::Pm10 => self.pm10,
            Pollutant::Co => self.co,
            Pollutant::Co_1h => self.co_1h,
            Pollutant::O3_1h => self.o3_1h,
            Pollutant::O3_8h => self.o3_8h,
            Pollutant::Pm25 => self.pm25,
        }
    }
}

/// The result of [`china_aqi`].
#[derive(Debug, Clone, PartialEq)]
pub struct AqiReport {
    /// The AQI, 0 to 500: the largest IAQI.
    pub aqi: u32,
    /// The level, 1 to 6 (same as `category.level()`).
    pub level: u8,
    /// The category.
    pub category: AqiCategory,
    /// The pollutants whose IAQI equals the AQI, in [`Pollutant::ALL`] order; empty when the AQI is 50
    /// or below (HJ 633 names no primary pollutant then).
    pub primary_pollutants: Vec<Pollutant>,
    /// The IAQI of every pollutant that entered the AQI, in [`Pollutant::ALL`] order.
    pub iaqis: Vec<(Pollutant, u32)>,
}

impl AqiReport {
    /// The primary pollutants as stored in `AirQualityObserved.primaryPollutant`: the distinct HJ 633
    /// names joined by commas (e.g. `PM2.5` or `PM2.5,PM10`), or an empty string when there is none.
    pub fn primary_pollutant_text(&self) -> String {
        let mut names: Vec<&str> = Vec::with_capacity(self.primary_pollutants.len());
        for p in &self.primary_pollutants {
            if !names.contains(&p.name()) {
                names.push(p.name());
            }
        }
        names.join(",")
    }
}

/// The China AQI of a set of concentrations per HJ 633-2012.
///
/// Fails on the first negative or non-finite concentration, when none is given, or when a 1-hour SO2 or
/// 8-hour O3 above 800 ug/m3 comes without the concentration HJ 633 reports in its place (24-hour SO2,
/// 1-hour O3).
pub fn china_aqi(c: &Concentrations) -> Result<AqiReport, AqiError> {
    let mut iaqis = Vec::with_capacity(Pollutant::ALL.len());
    for p in Pollutant::ALL {
        let Some(value) = c.get(p) else { continue };
        match iaqi(p, value) {
            Ok(i) => iaqis.push((p, i)),
            // The replacement is computed in its own right; the same loop checks it.
            Err(AqiError::NotDefined { use_instead, .. }) if c.get(use_instead).is_some() => {}
            Err(e) => return Err(e),
        }
    }
    let aqi = iaqis.iter().map(|&(_, i)| i).max().ok_or(AqiError::NoConcentrations)?;
    let primary_pollutants =
        if aqi > 50 { iaqis.iter().filter(|&&(_, i)| i == aqi).map(|&(p, _)| p).collect() } else { Vec::new() };
    let category = AqiCategory::from_aqi(aqi);
    Ok(AqiReport { aqi, level: category.level(), category, primary_pollutants, iaqis })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breakpoints_map_exactly() {
        for p in Pollutant::ALL {
            for (i, &c) in p.breakpoints().iter().enumerate() {
                assert_eq!(iaqi(p, c), Ok(IAQI_STEPS[i] as u32), "{p} at {c}");
            }
        }
        assert_eq!(iaqi(Pollutant::Pm25, 35.0), Ok(50));
        assert_eq!(iaqi(Pollutant::Pm25, 75.0), Ok(100));
        assert_eq!(iaqi(Pollutant::Pm25, 115.0), Ok(150));
        assert_eq!(iaqi(Pollutant::Pm25, 500.0), Ok(500));
        assert_eq!(iaqi(Pollutant::Pm10, 150.0), Ok(100));
        assert_eq!(iaqi(Pollutant::Co, 4.0), Ok(100));
        assert_eq!(iaqi(Pollutant::O3_8h, 160.0), Ok(100));
        assert_eq!(iaqi(Pollutant::O3_8h, 800.0), Ok(300));
        assert_eq!(iaqi(Pollutant::So2_1h, 800.0), Ok(200));
        assert_eq!(iaqi(Pollutant::No2_1h, 200.0), Ok(100));
        assert_eq!(iaqi(Pollutant::Pm25, 0.0), Ok(0));
    }

    #[test]
    fn tables_rise_strictly() {
        for p in Pollutant::ALL {
            let bp = p.breakpoints();
            assert!(bp.windows(2).all(|w| w[0] < w[1]), "{p}");
            assert_eq!(bp[0], 0.0, "{p}");
            // Only the rows with a replacement end before IAQI 500.
            assert_eq!(bp.len() == IAQI_STEPS.len(), p.replacement().is_none(), "{p}");
        }
    }

    #[test]
    fn interpolation_rounds_up() {
        // (100 - 50) / (75 - 35) * (50 - 35) + 50 = 68.75
        assert_eq!(iaqi(Pollutant::Pm25, 50.0), Ok(69));
        // 50 / 35 * 1 = 1.43
        assert_eq!(iaqi(Pollutant::Pm25, 1.0), Ok(2));
        assert_eq!(iaqi(Pollutant::Pm25, 0.001), Ok(1));
        // Just above a breakpoint is the next integer, never the breakpoint's IAQI.
        assert_eq!(iaqi(Pollutant::Pm25, 35.1), Ok(51));
        // (150 - 100) / (250 - 150) * (200 - 150) + 100 = 125 exactly: not bumped to 126.
        assert_eq!(iaqi(Pollutant::Pm10, 200.0), Ok(125));
        // CO in mg/m3: (100 - 50) / (4 - 2) * (3.1 - 2) + 50 = 77.5
        assert_eq!(iaqi(Pollutant::Co, 3.1), Ok(78));
        // O3 8 h: (150 - 100) / (215 - 160) * (180 - 160) + 100 = 118.18
        assert_eq!(iaqi(Pollutant::O3_8h, 180.0), Ok(119));
        // Monotonic over a fine sweep.
        for p in Pollutant::ALL {
            let top = *p.breakpoints().last().unwrap_or(&0.0);
            let mut last = 0;
            for step in 0..=2000 {
                let c = top * f64::from(step) / 2000.0;
                let i = iaqi(p, c).unwrap();
                assert!(i >= last, "{p} at {c}: {i} < {last}");
                last = i;
            }
        }
    }

    #[test]
    fn above_the_table_caps_at_500() {
        assert_eq!(iaqi(Pollutant::Pm25, 500.1), Ok(500));
        assert_eq!(iaqi(Pollutant::Pm25, 1_000.0), Ok(500));
        assert_eq!(iaqi(Pollutant::Pm10, 5_000.0), Ok(500));
        assert_eq!(iaqi(Pollutant::Co, 61.0), Ok(500));
        assert_eq!(iaqi(Pollutant::O3_1h, 1_300.0), Ok(500));
        assert_eq!(iaqi(Pollutant::Pm25, f64::MAX), Ok(500));
    }

    #[test]
    fn no_iaqi_where_hj633_uses_another_period() {
        assert_eq!(
            iaqi(Pollutant::So2_1h, 801.0),
            Err(AqiError::NotDefined { pollutant: Pollutant::So2_1h, value: 801.0, use_instead: Pollutant::So2 })
        );
        assert_eq!(
            iaqi(Pollutant::O3_8h, 900.0),
            Err(AqiError::NotDefined { pollutant: Pollutant::O3_8h, value: 900.0, use_instead: Pollutant::O3_1h })
        );
        // With the replacement given, the AQI uses it.
        let c = Concentrations { o3_8h: Some(900.0), o3_1h: Some(1_000.0), ..Default::default() };
        let r = china_aqi(&c).unwrap();
        assert_eq!(r.aqi, 400);
        assert_eq!(r.iaqis, vec![(Pollutant::O3_1h, 400)]);
        let c = Concentrations { so2_1h: Some(900.0), so2: Some(700.0), ..Default::default() };
        assert_eq!(china_aqi(&c).unwrap().iaqis, vec![(Pollutant::So2, 185)]);
        // Without it, the AQI cannot be told.
        let c = Concentrations { o3_8h: Some(900.0), pm25: Some(10.0), ..Default::default() };
        assert!(matches!(china_aqi(&c), Err(AqiError::NotDefined { use_instead: Pollutant::O3_1h, .. })));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert_eq!(iaqi(Pollutant::Pm25, -1.0), Err(AqiError::Negative { pollutant: Pollutant::Pm25, value: -1.0 }));
        assert!(matches!(iaqi(Pollutant::No2, f64::NAN), Err(AqiError::NotFinite { pollutant: Pollutant::No2, .. })));
        assert!(matches!(iaqi(Pollutant::Co, f64::INFINITY), Err(AqiError::NotFinite { .. })));
        assert!(matches!(iaqi(Pollutant::Co, f64::NEG_INFINITY), Err(AqiError::NotFinite { .. })));
        assert_eq!(iaqi(Pollutant::Pm25, -0.0), Ok(0));
        let err = iaqi(Pollutant::Co, -0.5).unwrap_err();
        assert_eq!(err.to_string(), "CO (24 h) concentration must not be negative, got -0.5 mg/m3");
        let c = Concentrations { pm25: Some(40.0), so2: Some(f64::NAN), ..Default::default() };
        assert!(matches!(china_aqi(&c), Err(AqiError::NotFinite { pollutant: Pollutant::So2, .. })));
        assert_eq!(china_aqi(&Concentrations::default()), Err(AqiError::NoConcentrations));
    }

    #[test]
    fn aqi_is_the_max_and_names_the_primary_pollutants() {
        let c = Concentrations {
            pm25: Some(50.0),  // 69
            pm10: Some(60.0),  // 55
            so2: Some(10.0),   // 10
            no2: Some(30.0),   // 38 (37.5)
            co: Some(0.8),     // 20
            o3_8h: Some(90.0), // 45
            ..Default::default()
        };
        let r = china_aqi(&c).unwrap();
        assert_eq!(r.aqi, 69);
        assert_eq!(r.level, 2);
        assert_eq!(r.category, AqiCategory::Good);
        assert_eq!(r.primary_pollutants, vec![Pollutant::Pm25]);
        assert_eq!(r.primary_pollutant_text(), "PM2.5");
        assert_eq!(
            r.iaqis,
            vec![
                (Pollutant::So2, 10),
                (Pollutant::No2, 38),
                (Pollutant::Pm10, 55),
                (Pollutant::Co, 20),
                (Pollutant::O3_8h, 45),
                (Pollutant::Pm25, 69),
            ]
        );

        // A tie names every pollutant at the top, once per name in the text.
        let c = Concentrations { pm25: Some(75.0), pm10: Some(150.0), no2: Some(20.0), ..Default::default() };
        let r = china_aqi(&c).unwrap();
        assert_eq!(r.aqi, 100);
        assert_eq!(r.primary_pollutants, vec![Pollutant::Pm10, Pollutant::Pm25]);
        assert_eq!(r.primary_pollutant_text(), "PM10,PM2.5");
        let c = Concentrations { o3_1h: Some(300.0), o3_8h: Some(215.0), ..Default::default() };
        let r = china_aqi(&c).unwrap();
        assert_eq!(r.primary_pollutants, vec![Pollutant::O3_1h, Pollutant::O3_8h]);
        assert_eq!(r.primary_pollutant_text(), "O3");

        // At 50 or below there is no primary pollutant.
        let r = china_aqi(&Concentrations { pm25: Some(35.0), pm10: Some(20.0), ..Default::default() }).unwrap();
        assert_eq!((r.aqi, r.category), (50, AqiCategory::Excellent));
        assert!(r.primary_pollutants.is_empty());
        assert_eq!(r.primary_pollutant_text(), "");
    }

    #[test]
    fn categories_follow_the_aqi_bands() {
        let cases = [
            (0, AqiCategory::Excellent),
            (50, AqiCategory::Excellent),
            (51, AqiCategory::Good),
            (100, AqiCategory::Good),
            (101, AqiCategory::LightlyPolluted),
            (150, AqiCategory::LightlyPolluted),
            (151, AqiCategory::ModeratelyPolluted),
            (200, AqiCategory::ModeratelyPolluted),
            (201, AqiCategory::HeavilyPolluted),
            (300, AqiCategory::HeavilyPolluted),
            (301, AqiCategory::SeverelyPolluted),
            (500, AqiCategory::SeverelyPolluted),
        ];
        for (aqi, want) in cases {
            assert_eq!(AqiCategory::from_aqi(aqi), want, "AQI {aqi}");
        }
        for (i, c) in AqiCategory::ALL.into_iter().enumerate() {
            assert_eq!(usize::from(c.level()), i + 1);
        }
        assert_eq!(AqiCategory::LightlyPolluted.as_str(), "lightlyPolluted");
        assert_eq!(AqiCategory::SeverelyPolluted.to_string(), "severely polluted");
        // Through china_aqi: PM2.5 at 250 is IAQI 300 (heavily), just above is severely polluted.
        let r = china_aqi(&Concentrations { pm25: Some(250.0), ..Default::default() }).unwrap();
        assert_eq!((r.aqi, r.level, r.category), (300, 5, AqiCategory::HeavilyPolluted));
        let r = china_aqi(&Concentrations { pm25: Some(251.0), ..Default::default() }).unwrap();
        assert_eq!((r.aqi, r.level, r.category), (301, 6, AqiCategory::SeverelyPolluted));
        let r = china_aqi(&Concentrations { pm25: Some(900.0), ..Default::default() }).unwrap();
        assert_eq!((r.aqi, r.level, r.category), (500, 6, AqiCategory::SeverelyPolluted));
    }
}
