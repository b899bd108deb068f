//! What every sensor model works with: the sampling context and a range-checked output buffer.

use std::{
    collections::{BTreeMap, HashMap},
    sync::OnceLock,
};

use twin_model::{AttrName, AttributeState, Catalog, EntityStatic, GeoPoint, UnixMs, Value};

use crate::environment::{CHANGSHA, Environment};
use crate::noise::Key;

/// One sampling request: the entity, the time, and its random keys.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    pub(crate) env: &'a Environment,
    pub(crate) entity: &'a EntityStatic,
    pub(crate) t: UnixMs,
    /// Randomness that varies with the seed (behaviour).
    pub(crate) key: Key,
    /// Randomness that depends on the id only (nameplate values: sizes, capacities, ratings), so an
    /// entity keeps its size whatever the simulation seed.
    pub(crate) plate: Key,
    /// The entity's reference position (the city centre when it has no geometry).
    pub(crate) at: GeoPoint,
    /// The entity's static attribute values, when the caller has them: a nameplate given there (a car
    /// park's total spaces from its footprint) overrides the one derived from `plate`.
    statics: Option<&'a BTreeMap<AttrName, AttributeState>>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(
        env: &'a Environment,
        entity: &'a EntityStatic,
        statics: Option<&'a BTreeMap<AttrName, AttributeState>>,
        t: UnixMs,
    ) -> Self {
        Ctx {
            env,
            entity,
            t,
            key: Key::for_entity(env.seed(), entity.id.as_str()),
            plate: Key::for_entity(0, entity.id.as_str()),
            at: entity.geometry.as_ref().map_or(CHANGSHA, |g| g.reference_point()),
            statics,
        }
    }

    /// The nameplate value `name` from the entity's own static attributes, or `derived` (from the id)
    /// when it has none. A static value is used only when it is a number above zero inside the
    /// catalog's range, so the values computed from it (free spaces, fill ratios) stay in range too.
    pub(crate) fn nameplate(&self, out: &Out, name: &str, derived: f64) -> f64 {
        let given =
            self.statics.and_then(|s| s.get(name)).and_then(|a| a.reported.as_ref()).and_then(|r| r.value.as_f64());
        match (given, out.slot(name)) {
            (Some(v), Some(slot)) if v.is_finite() && v > 0.0 && v >= slot.min && v <= slot.max => v,
            _ => derived,
        }
    }
}

/// One live attribute: its validated name and the numeric range the catalog allows.
#[derive(Debug)]
struct Slot {
    name: &'static str,
    attr: AttrName,
    min: f64,
    max: f64,
}

/// The live attributes of every type, resolved against the built-in catalog once.
fn slots() -> &'static HashMap<&'static str, Vec<Slot>> {
    static SLOTS: OnceLock<HashMap<&'static str, Vec<Slot>>> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let catalog = Catalog::builtin();
        let mut by_type = HashMap::new();
        for &(type_name, names) in crate::LIVE {
            let Some(def) = catalog.get(type_name) else { continue };
            let mut slots = Vec::with_capacity(names.len());
            for &name in names {
                let (Some(a), Ok(attr)) = (def.attributes.get(name), AttrName::new(name)) else { continue };
                slots.push(Slot {
                    name,
                    attr,
                    min: a.min.unwrap_or(f64::NEG_INFINITY),
                    max: a.max.unwrap_or(f64::INFINITY),
                });
            }
            by_type.insert(type_name, slots);
        }
        by_type
    })
}

/// Collects the sampled values of one entity, clamping numbers into the catalog's range (a last line
/// of defence: the models already stay inside it) and dropping names the type does not define.
#[derive(Debug)]
pub(crate) struct Out {
    slots: &'static [Slot],
    pub(crate) values: Vec<(AttrName, Value)>,
}

impl Out {
    /// A buffer for `entity_type` that takes over `values` (cleared, its allocation reused), or `None`
    /// (leaving `values` alone) when the type has no live signal.
    pub(crate) fn for_type(entity_type: &str, values: &mut Vec<(AttrName, Value)>) -> Option<Self> {
        let slots = slots().get(entity_type)?;
        let mut values = std::mem::take(values);
        values.clear();
        values.reserve(slots.len());
        Some(Out { slots, values })
    }

    fn slot(&self, name: &str) -> Option<&'static Slot> {
        let found = self.slots.iter().find(|s| s.name == name);
        debug_assert!(found.is_some(), "attribute {name} is not live for this type");
        found
    }

    /// A number, clamped into range; non-finite values become the nearest bound to zero.
    pub(crate) fn num(&mut self, name: &str, v: f64) {
        if let Some(s) = self.slot(name) {
            let v = if v.is_finite() { v } else { 0.0 };
            self.values.push((s.attr.clone(), Value::Number(v.clamp(s.min, s.max))));
        }
    }

    /// An integer, clamped into range.
    pub(crate) fn int(&mut self, name: &str, v: i64) {
        if let Some(s) = self.slot(name) {
            let v = (v as f64).clamp(s.min, s.max) as i64;
            self.values.push((s.attr.clone(), Value::Integer(v)));
        }
    }

    /// A boolean.
    pub(crate) fn flag(&mut self, name: &str, v: bool) {
        if let Some(s) = self.slot(name) {
            self.values.push((s.attr.clone(), Value::Bool(v)));
        }
    }

    /// A text value (the models only use values from the catalog's closed sets).
    pub(crate) fn text(&mut self, name: &str, v: &str) {
        if let Some(s) = self.slot(name) {
            self.values.push((s.attr.clone(), Value::Text(v.to_owned())));
        }
    }

    /// A position.
    pub(crate) fn point(&mut self, name: &str, p: GeoPoint) {
        if let Some(s) = self.slot(name) {
            let p = GeoPoint { lon: p.lon.clamp(-180.0, 180.0), lat: p.lat.clamp(-90.0, 90.0) };
            self.values.push((s.attr.clone(), Value::Point(p)));
        }
    }
}

/// Rounds to `digits` decimal places (instruments report finite precision).
pub(crate) fn round_to(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

/// A smooth step from 0 (at `h = a - w`) to 1 (at `h = a + w`).
pub(crate) fn ramp(h: f64, a: f64, w: f64) -> f64 {
    let x = ((h - a) / (2.0 * w) + 0.5).clamp(0.0, 1.0);
    x * x * (3.0 - 2.0 * x)
}

/// A smooth plateau: about 1 between `from` and `to` hours, 0 outside, edges `w` hours wide.
pub(crate) fn plateau(h: f64, from: f64, to: f64, w: f64) -> f64 {
    ramp(h, from, w) * (1.0 - ramp(h, to, w))
}

/// Timestamps in the catalog are bounded to 2000-01-01 .. 2100-01-01.
pub(crate) fn clamp_timestamp(t: UnixMs) -> i64 {
    t.clamp(twin_model::MIN_OBSERVED_AT, 4_102_444_800_000)
}
