//! How a sensor's live values colour its glyph, per layer, with the legends an operator reads them by.
//!
//! - air quality: China AQI bands (HJ 633-2012) from `aqi`;
//! - traffic: `averageVehicleSpeed` (red under 20 km/h, amber under 40, green above);
//! - waste: `fillingLevel` (green to red);
//! - street lights: off dark grey, on yellow brightening with `illuminanceLevel`;
//! - river gauges: `alertLevel`;
//! - edge boxes: `linkState`.
//!
//! Anything else keeps its domain colour.

use twin_model::Value;

use crate::scene::srgb;

/// One entry of a legend: a label and its sRGB colour.
pub type LegendEntry = (&'static str, (u8, u8, u8));

/// China AQI bands: upper bound (inclusive), label, colour.
pub const AQI_BANDS: [(i64, &str, (u8, u8, u8)); 6] = [
    (50, "excellent (0-50)", (0, 228, 0)),
    (100, "good (51-100)", (255, 255, 0)),
    (150, "lightly polluted (101-150)", (255, 126, 0)),
    (200, "moderately polluted (151-200)", (255, 0, 0)),
    (300, "heavily polluted (201-300)", (153, 0, 76)),
    (i64::MAX, "severely polluted (>300)", (126, 0, 35)),
];

/// The legend of a layer's glyph colours, for the operator window.
pub fn legend(entity_type: &str) -> Vec<LegendEntry> {
    match entity_type {
        "AirQualityObserved" => AQI_BANDS.iter().map(|(_, l, c)| (*l, *c)).collect(),
        "TrafficFlowObserved" => {
            vec![("< 20 km/h", (220, 30, 30)), ("20-40 km/h", (245, 170, 0)), ("> 40 km/h", (40, 180, 60))]
        }
        "WasteContainer" => vec![("empty", (40, 180, 60)), ("half", (245, 200, 0)), ("full", (220, 30, 30))],
        "Streetlight" => vec![("off", (60, 60, 66)), ("on", (255, 230, 80))],
        "RiverGauge" => {
            vec![
                ("normal", (30, 90, 220)),
                ("watch", (245, 200, 0)),
                ("warning", (245, 120, 0)),
                ("danger", (220, 30, 30)),
            ]
        }
        "EdgeNode" => vec![("connected", (40, 180, 60)), ("degraded", (245, 170, 0)), ("disconnected", (220, 30, 30))],
        _ => Vec::new(),
    }
}

fn number(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(x) => Some(*x),
        Value::Integer(x) => Some(*x as f64),
        _ => None,
    }
}

fn text(v: Option<&Value>) -> Option<&str> {
    match v? {
        Value::Text(s) => Some(s),
        _ => None,
    }
}

fn mix(a: (u8, u8, u8), b: (u8, u8, u8), t: f64) -> (u8, u8, u8) {
    let t = t.clamp(0.0, 1.0);
    let m = |x: u8, y: u8| (f64::from(x) + (f64::from(y) - f64::from(x)) * t).round() as u8;
    (m(a.0, b.0), m(a.1, b.1), m(a.2, b.2))
}

/// The sRGB colour of a sensor from its live values (`value(name)` gives an attribute's reported value),
/// or `None` when its type has no live colouring or the value is missing.
pub fn live_srgb<'a>(entity_type: &str, value: impl Fn(&str) -> Option<&'a Value>) -> Option<(u8, u8, u8)> {
    let pick = |labels: &[LegendEntry], label: &str| labels.iter().find(|(l, _)| *l == label).map(|(_, c)| *c);
    match entity_type {
        "AirQualityObserved" => {
            let aqi = number(value("aqi"))? as i64;
            AQI_BANDS.iter().find(|(upper, _, _)| aqi <= *upper).map(|(_, _, c)| *c)
        }
        "TrafficFlowObserved" => {
            let speed = number(value("averageVehicleSpeed"))?;
            let l = legend(entity_type);
            Some(if speed < 20.0 {
                l[0].1
            } else if speed < 40.0 {
                l[1].1
            } else {
                l[2].1
            })
        }
        "WasteContainer" => {
            let fill = number(value("fillingLevel"))?;
            Some(if fill < 0.5 {
                mix((40, 180, 60), (245, 200, 0), fill * 2.0)
            } else {
                mix((245, 200, 0), (220, 30, 30), fill * 2.0 - 1.0)
            })
        }
        "Streetlight" => match value("powerState")? {
            Value::Bool(false) => Some((60, 60, 66)),
            Value::Bool(true) => {
                let level = number(value("illuminanceLevel")).unwrap_or(1.0);
                Some(mix((150, 130, 60), (255, 230, 80), level))
            }
            _ => None,
        },
        "RiverGauge" => pick(&legend(entity_type), text(value("alertLevel"))?),
        "EdgeNode" => pick(&legend(entity_type), text(value("linkState"))?),
        _ => None,
    }
}

/// As [`live_srgb`], in linear RGBA for the GPU.
pub fn live_color<'a>(entity_type: &str, value: impl Fn(&str) -> Option<&'a Value>) -> Option<[f32; 4]> {
    live_srgb(entity_type, value).map(|(r, g, b)| srgb(r, g, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aqi_bands_follow_hj_633() {
        let colour = |aqi: i64| {
            let v = Value::Integer(aqi);
            live_srgb("AirQualityObserved", |n| (n == "aqi").then_some(&v))
        };
        assert_eq!(colour(0), Some((0, 228, 0)));
        assert_eq!(colour(50), Some((0, 228, 0)));
        assert_eq!(colour(51), Some((255, 255, 0)));
        assert_eq!(colour(180), Some((255, 0, 0)));
        assert_eq!(colour(450), Some((126, 0, 35)));
        assert_eq!(live_srgb("AirQualityObserved", |_| None), None);
    }

    #[test]
    fn other_layers_have_their_scales() {
        let slow = Value::Number(12.0);
        assert_eq!(
            live_srgb("TrafficFlowObserved", |n| (n == "averageVehicleSpeed").then_some(&slow)),
            Some((220, 30, 30))
        );
        let off = Value::Bool(false);
        assert_eq!(live_srgb("Streetlight", |n| (n == "powerState").then_some(&off)), Some((60, 60, 66)));
        let danger = Value::Text("danger".into());
        assert_eq!(live_srgb("RiverGauge", |n| (n == "alertLevel").then_some(&danger)), Some((220, 30, 30)));
        let full = Value::Number(1.0);
        assert_eq!(live_srgb("WasteContainer", |n| (n == "fillingLevel").then_some(&full)), Some((220, 30, 30)));
        assert_eq!(live_srgb("Bus", |_| None), None);
    }
}
