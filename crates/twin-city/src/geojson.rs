//! Import a GeoJSON FeatureCollection of building footprints (e.g. an OpenStreetMap export) as a city of
//! `Building` entities.
//!
//! - Geometry: `Polygon` (the exterior ring; holes are ignored) or `MultiPolygon` (one building per
//!   part, ids suffixed `:1`, `:2`, ...). Rings must be closed and hold at least four positions (three
//!   distinct corners); positions are `[lon, lat]` in WGS84 (a third element, altitude, is ignored).
//! - Height: the `height` property (a number, or text such as `"24"`, `"24 m"`, `"24.5m"`), else
//!   `building:levels` x [`LEVEL_HEIGHT_M`], else [`DEFAULT_LEVELS`] levels. Floors: `building:levels`,
//!   else height / [`LEVEL_HEIGHT_M`].
//! - Use: the `building` tag mapped to the catalog's categories (`apartments` -> residential, `school`
//!   -> education, `yes` -> mixed, ...); `name` becomes the building name.
//! - Id: `urn:ngsi-ld:Building:{city}:{feature id}`, from the feature's `id`, else the property `@id`
//!   or `id`, else `f{index}`; characters outside printable ASCII become `_`, `/` becomes `-`.
//!
//! Every problem is an [`ImportError`] naming the feature (index and id when present) and what is wrong.

use std::{collections::HashSet, fmt};

use serde_json::{Map, Value as Json};
use twin_model::{GeoPoint, Geometry, Shape, Value};

use crate::{
    City,
    make::{Make, entity_id},
};

/// Storey height used to turn levels into metres and back.
pub const LEVEL_HEIGHT_M: f64 = 3.2;
/// Levels assumed when a feature has neither `height` nor `building:levels`.
pub const DEFAULT_LEVELS: i64 = 3;
/// The tallest accepted height in metres (the catalog's limit).
pub const MAX_HEIGHT_M: f64 = 1_000.0;
/// The most accepted levels (the catalog's limit).
pub const MAX_LEVELS: i64 = 200;

/// Which feature a problem is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureRef {
    /// Position in the `features` array, from 0.
    pub index: usize,
    /// The feature's id, if it has one.
    pub id: Option<String>,
}

impl fmt::Display for FeatureRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.id {
            Some(id) => write!(f, "feature {} (id {id:?})", self.index),
            None => write!(f, "feature {}", self.index),
        }
    }
}

/// Why a GeoJSON document could not be imported.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImportError {
    /// The text is not valid JSON.
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Json {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// The document is not a FeatureCollection with a `features` array.
    #[error("not a GeoJSON FeatureCollection: {0}")]
    NotFeatureCollection(String),
    /// A feature is not an object of type `Feature`.
    #[error("{feature}: not a GeoJSON Feature")]
    NotFeature {
        /// The feature.
        feature: FeatureRef,
    },
    /// A feature has no geometry (absent or null).
    #[error("{feature}: missing geometry")]
    MissingGeometry {
        /// The feature.
        feature: FeatureRef,
    },
    /// The geometry is not a Polygon or MultiPolygon.
    #[error("{feature}: unsupported geometry type {geometry_type:?}; expected Polygon or MultiPolygon")]
    UnsupportedGeometry {
        /// The feature.
        feature: FeatureRef,
        /// The type found.
        geometry_type: String,
    },
    /// The `coordinates` member is missing or not nested as the geometry type requires.
    #[error("{feature}: malformed coordinates: {problem}")]
    MalformedCoordinates {
        /// The feature.
        feature: FeatureRef,
        /// What is wrong.
        problem: String,
    },
    /// A ring's last position differs from its first.
    #[error("{feature}: ring {ring} is not closed (first position {first:?}, last {last:?})")]
    UnclosedRing {
        /// The feature.
        feature: FeatureRef,
        /// Which ring, e.g. `0` or `polygon 1 ring 0`.
        ring: String,
        /// The first position.
        first: [f64; 2],
        /// The last position.
        last: [f64; 2],
    },
    /// A ring has too few positions.
    #[error("{feature}: ring {ring} has {got} positions; a closed ring needs at least 4 (3 distinct)")]
    TooFewPositions {
        /// The feature.
        feature: FeatureRef,
        /// Which ring.
        ring: String,
        /// How many it has (distinct positions when the count is high enough but they repeat).
        got: usize,
    },
    /// A position is not `[lon, lat]` with finite numbers inside WGS84.
    #[error("{feature}: ring {ring} position {position}: {problem}")]
    BadCoordinates {
        /// The feature.
        feature: FeatureRef,
        /// Which ring.
        ring: String,
        /// The position index within the ring.
        position: usize,
        /// What is wrong.
        problem: String,
    },
    /// The `height` property is not a non-negative number of metres within the limit.
    #[error("{feature}: bad height {value}: expected metres from 0 to {MAX_HEIGHT_M}")]
    BadHeight {
        /// The feature.
        feature: FeatureRef,
        /// The value as given.
        value: String,
    },
    /// The `building:levels` property is not a whole number within the limit.
    #[error("{feature}: bad building:levels {value}: expected a whole number from 0 to {MAX_LEVELS}")]
    BadLevels {
        /// The feature.
        feature: FeatureRef,
        /// The value as given.
        value: String,
    },
    /// The city name gives no usable id part.
    #[error("city name {0:?} has no letter or digit to use in entity ids")]
    BadCityName(String),
}

/// Imports `json` as a city named `city_name`.
pub fn import(json: &str, city_name: &str) -> Result<City, ImportError> {
    let slug = slug(city_name);
    if slug.is_empty() {
        return Err(ImportError::BadCityName(city_name.to_owned()));
    }
    let doc: Json = serde_json::from_str(json).map_err(|e| ImportError::Json {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    let Some(obj) = doc.as_object() else {
        return Err(ImportError::NotFeatureCollection("the document is not a JSON object".into()));
    };
    match obj.get("type").and_then(Json::as_str) {
        Some("FeatureCollection") => {}
        Some(other) => return Err(ImportError::NotFeatureCollection(format!("its type is {other:?}"))),
        None => return Err(ImportError::NotFeatureCollection("it has no \"type\"".into())),
    }
    let Some(features) = obj.get("features").and_then(Json::as_array) else {
        return Err(ImportError::NotFeatureCollection("it has no \"features\" array".into()));
    };
    let mut entities = Vec::with_capacity(features.len());
    let mut seen = HashSet::new();
    for (index, f) in features.iter().enumerate() {
        let feature = FeatureRef { index, id: f.as_object().and_then(feature_id) };
        let Some(fo) = f.as_object().filter(|o| o.get("type").and_then(Json::as_str) == Some("Feature")) else {
            return Err(ImportError::NotFeature { feature });
        };
        let empty = Map::new();
        let props = fo.get("properties").and_then(Json::as_object).unwrap_or(&empty);
        let (height, floors) = height_and_floors(props, &feature)?;
        let polygons = polygons(fo, &feature)?;
        let mut base = format!("urn:ngsi-ld:Building:{slug}:{}", id_part(feature.id.as_deref(), index));
        if !seen.insert(base.clone()) {
            base = format!("{base}-{index}");
            seen.insert(base.clone());
        }
        let multi = polygons.len() > 1;
        for (k, ring) in polygons.into_iter().enumerate() {
            let id = if multi { format!("{base}:{}", k + 1) } else { base.clone() };
            let id = truncate_id(id);
            let geometry = Geometry { shape: Shape::Polygon(ring), height_m: height };
            let mut m = Make::new(entity_id(&id), "Building", Some(geometry))
                .text("category", category(props.get("building").and_then(Json::as_str)))
                .attr("height", Value::Number(height))
                .int("floorsAboveGround", floors);
            if let Some(name) = props.get("name").and_then(Json::as_str).filter(|n| !n.is_empty()) {
                m = m.text("name", truncate(name, 128));
            }
            entities.push(m.build());
        }
    }
    Ok(City { name: city_name.to_owned(), entities })
}

fn feature_id(o: &Map<String, Json>) -> Option<String> {
    let props = o.get("properties").and_then(Json::as_object);
    let raw = o.get("id").or_else(|| props.and_then(|p| p.get("@id").or_else(|| p.get("id"))))?;
    match raw {
        Json::String(s) if !s.is_empty() => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn slug(name: &str) -> String {
    let s: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    s.trim_matches('-').to_owned()
}

fn id_part(id: Option<&str>, index: usize) -> String {
    match id {
        Some(id) => id
            .chars()
            .map(|c| {
                if c == '/' {
                    '-'
                } else if ('!'..='~').contains(&c) {
                    c
                } else {
                    '_'
                }
            })
            .collect(),
        None => format!("f{index}"),
    }
}

fn truncate_id(mut id: String) -> String {
    // Ids are ASCII, so any byte index is a character boundary.
    id.truncate(twin_model::EntityId::MAX_LEN);
    id
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn category(building: Option<&str>) -> &'static str {
    match building.unwrap_or("yes") {
        "residential" | "apartments" | "house" | "detached" | "semidetached_house" | "terrace" | "dormitory" => {
            "residential"
        }
        "office" => "office",
        "commercial" | "retail" | "supermarket" | "hotel" | "kiosk" => "commercial",
        "industrial" | "warehouse" | "factory" | "manufacture" => "industrial",
        "school" | "university" | "college" | "kindergarten" => "education",
        "hospital" | "clinic" => "hospital",
        "public" | "civic" | "government" | "church" | "temple" | "train_station" | "fire_station" => "public",
        _ => "mixed",
    }
}

fn number_like(v: &Json) -> Option<f64> {
    match v {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => {
            let s = s.trim();
            let s = s.strip_suffix('m').unwrap_or(s).trim_end();
            s.parse::<f64>().ok()
        }
        _ => None,
    }
}

fn height_and_floors(props: &Map<String, Json>, feature: &FeatureRef) -> Result<(f64, i64), ImportError> {
    let levels = match props.get("building:levels") {
        None | Some(Json::Null) => None,
        Some(v) => {
            let bad = || ImportError::BadLevels { feature: feature.clone(), value: v.to_string() };
            let n = number_like(v).ok_or_else(bad)?;
            if n.fract() != 0.0 || !(0.0..=MAX_LEVELS as f64).contains(&n) {
                return Err(bad());
            }
            Some(n as i64)
        }
    };
    let height = match props.get("height") {
        None | Some(Json::Null) => None,
        Some(v) => {
            let h = number_like(v).filter(|h| h.is_finite() && (0.0..=MAX_HEIGHT_M).contains(h));
            Some(h.ok_or_else(|| ImportError::BadHeight { feature: feature.clone(), value: v.to_string() })?)
        }
    };
    let height =
        height.unwrap_or_else(|| (levels.unwrap_or(DEFAULT_LEVELS) as f64 * LEVEL_HEIGHT_M * 100.0).round() / 100.0);
    let floors = levels.unwrap_or_else(|| ((height / LEVEL_HEIGHT_M).round() as i64).clamp(0, MAX_LEVELS));
    Ok((height, floors))
}

fn polygons(fo: &Map<String, Json>, feature: &FeatureRef) -> Result<Vec<Vec<GeoPoint>>, ImportError> {
    let Some(geometry) = fo.get("geometry").filter(|g| !g.is_null()) else {
        return Err(ImportError::MissingGeometry { feature: feature.clone() });
    };
    let malformed =
        |problem: &str| ImportError::MalformedCoordinates { feature: feature.clone(), problem: problem.into() };
    let kind = geometry.get("type").and_then(Json::as_str).ok_or_else(|| malformed("the geometry has no \"type\""))?;
    let coords = geometry.get("coordinates");
    match kind {
        "Polygon" => {
            let rings = coords.and_then(Json::as_array).ok_or_else(|| malformed("expected an array of rings"))?;
            let exterior = rings.first().ok_or_else(|| malformed("the polygon has no ring"))?;
            Ok(vec![ring(exterior, "0".into(), feature)?])
        }
        "MultiPolygon" => {
            let polys = coords.and_then(Json::as_array).ok_or_else(|| malformed("expected an array of polygons"))?;
            if polys.is_empty() {
                return Err(malformed("the multipolygon has no polygon"));
            }
            polys
                .iter()
                .enumerate()
                .map(|(k, p)| {
                    let exterior = p
                        .as_array()
                        .and_then(|r| r.first())
                        .ok_or_else(|| malformed(&format!("polygon {k} is not an array of rings")))?;
                    ring(exterior, format!("polygon {k} ring 0"), feature)
                })
                .collect()
        }
        other => Err(ImportError::UnsupportedGeometry { feature: feature.clone(), geometry_type: other.to_owned() }),
    }
}

fn ring(v: &Json, name: String, feature: &FeatureRef) -> Result<Vec<GeoPoint>, ImportError> {
    let Some(positions) = v.as_array() else {
        return Err(ImportError::MalformedCoordinates {
            feature: feature.clone(),
            problem: format!("ring {name} is not an array of positions"),
        });
    };
    let mut out = Vec::with_capacity(positions.len());
    for (position, p) in positions.iter().enumerate() {
        let bad = |problem: String| ImportError::BadCoordinates {
            feature: feature.clone(),
            ring: name.clone(),
            position,
            problem,
        };
        let Some(arr) = p.as_array().filter(|a| a.len() >= 2) else {
            return Err(bad(format!("expected [lon, lat], got {p}")));
        };
        let (Some(lon), Some(lat)) = (arr[0].as_f64(), arr[1].as_f64()) else {
            return Err(bad(format!("expected numbers, got {p}")));
        };
        if !(-180.0..=180.0).contains(&lon) || !(-90.0..=90.0).contains(&lat) {
            return Err(bad(format!("({lon}, {lat}) is outside WGS84 (lon -180..180, lat -90..90)")));
        }
        out.push(GeoPoint { lon, lat });
    }
    if out.len() < 4 {
        return Err(ImportError::TooFewPositions { feature: feature.clone(), ring: name, got: out.len() });
    }
    let (first, last) = (out[0], out[out.len() - 1]);
    if first != last {
        return Err(ImportError::UnclosedRing {
            feature: feature.clone(),
            ring: name,
            first: [first.lon, first.lat],
            last: [last.lon, last.lat],
        });
    }
    out.pop();
    let mut distinct: Vec<GeoPoint> = Vec::with_capacity(out.len());
    for p in &out {
        if !distinct.contains(p) {
            distinct.push(*p);
        }
    }
    if distinct.len() < 3 {
        return Err(ImportError::TooFewPositions { feature: feature.clone(), ring: name, got: distinct.len() });
    }
    Ok(out)
}
