//! The deadband filter: a reading is sent when it moved beyond its attribute's threshold since the last
//! value sent, or when the attribute's heartbeat is due, so a quiet sensor still shows it is alive while
//! a noisy one does not flood the 5G link.
//!
//! Rules come from configuration per `Type.attribute`, then per type, then a default. Without any rule, a
//! numeric attribute's threshold is [`DEFAULT_RANGE_FRACTION`] of its valid range in the catalog (so
//! `pm25`, 0..1000 ug/m3, moves by 5 before it is sent), text, boolean and position values are sent on
//! every change, and the heartbeat is [`DEFAULT_HEARTBEAT`]. Time is the readings' observed time (for the
//! simulator, the real clock even when it runs sped up), so heartbeats are about the link, not the signal.

use std::{collections::HashMap, time::Duration};

use serde::{Deserialize, Serialize};
use twin_model::{AttrName, Catalog, EntityId, TypeName, UnixMs, Value};

/// The fraction of an attribute's valid range it must move by, by default, before it is sent again.
pub const DEFAULT_RANGE_FRACTION: f64 = 0.005;

/// How often an unchanged value is sent anyway, by default.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(300);

/// How much a value must move before it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Threshold {
    /// By at least this much, in the attribute's unit.
    Absolute(f64),
    /// By at least this fraction of the last value sent (e.g. 0.02 for 2%).
    Relative(f64),
    /// Any change at all.
    AnyChange,
}

/// The rule for one attribute (or a type, or the default).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// How much a value must move. Unset: derived from the catalog range.
    #[serde(default)]
    pub threshold: Option<Threshold>,
    /// How often an unchanged value is sent anyway, e.g. `5m`.
    #[serde(default, with = "humantime_serde")]
    pub heartbeat: Option<Duration>,
}

/// Deadband configuration, e.g. in TOML:
///
/// ```toml
/// [default]
/// heartbeat = "5m"
/// [types.TrafficFlowObserved]
/// threshold = { relative = 0.05 }
/// [attributes."AirQualityObserved.pm25"]
/// threshold = { absolute = 2.0 }
/// heartbeat = "1m"
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadbandConfig {
    /// The rule for everything not named below.
    #[serde(default)]
    pub default: Option<Rule>,
    /// Rules per entity type.
    #[serde(default)]
    pub types: HashMap<String, Rule>,
    /// Rules per `Type.attribute`.
    #[serde(default)]
    pub attributes: HashMap<String, Rule>,
}

/// A problem with the deadband configuration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeadbandError {
    /// A threshold is negative or not finite.
    #[error("deadband rule {rule}: threshold {value} must be a finite number >= 0")]
    BadThreshold {
        /// The rule's key (`default`, a type, or `Type.attribute`).
        rule: String,
        /// The value given.
        value: f64,
    },
    /// A heartbeat of zero would send every reading.
    #[error("deadband rule {rule}: heartbeat must be longer than zero")]
    ZeroHeartbeat {
        /// The rule's key.
        rule: String,
    },
    /// A rule names a type or attribute the catalog does not know.
    #[error("deadband rule {rule}: {problem}")]
    Unknown {
        /// The rule's key.
        rule: String,
        /// What is unknown.
        problem: String,
    },
}

/// The effective rule of one attribute.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Effective {
    threshold: Threshold,
    heartbeat_ms: i64,
}

/// The filter: remembers the last value sent per (entity, attribute).
#[derive(Debug)]
pub struct Deadband {
    rules: foldhash::HashMap<(TypeName, AttrName), Effective>,
    fallback: Effective,
    last_sent: foldhash::HashMap<(EntityId, AttrName), (Value, UnixMs)>,
}

fn check(rule_name: &str, rule: &Rule) -> Result<(), DeadbandError> {
    if let Some(Threshold::Absolute(v) | Threshold::Relative(v)) = rule.threshold
        && !(v.is_finite() && v >= 0.0)
    {
        return Err(DeadbandError::BadThreshold { rule: rule_name.to_owned(), value: v });
    }
    if rule.heartbeat == Some(Duration::ZERO) {
        return Err(DeadbandError::ZeroHeartbeat { rule: rule_name.to_owned() });
    }
    Ok(())
}

impl Deadband {
    /// Resolves the configuration against the catalog: every attribute of every type gets its rule.
    pub fn new(config: &DeadbandConfig, catalog: &Catalog) -> Result<Deadband, DeadbandError> {
        let default = config.default.unwrap_or(Rule { threshold: None, heartbeat: None });
        check("default", &default)?;
        for (name, rule) in &config.types {
            check(name, rule)?;
            if catalog.get(name).is_none() {
                return Err(DeadbandError::Unknown {
                    rule: name.clone(),
                    problem: format!("unknown entity type {name}"),
                });
            }
        }
        for (name, rule) in &config.attributes {
            check(name, rule)?;
            let known = name
                .split_once('.')
                .and_then(|(t, a)| catalog.get(t).map(|def| def.attributes.contains_key(a)))
                .unwrap_or(false);
            if !known {
                return Err(DeadbandError::Unknown {
                    rule: name.clone(),
                    problem: "not a Type.attribute the catalog knows".into(),
                });
            }
        }
        let heartbeat_ms = |d: Duration| d.as_millis().min(i64::MAX as u128) as i64;
        let mut rules = foldhash::HashMap::default();
        for (type_name, def) in catalog.types() {
            let type_rule = config.types.get(type_name.as_str());
            for (attr, a) in &def.attributes {
                let attr_rule = config.attributes.get(&format!("{type_name}.{attr}"));
                let pick = |f: fn(&Rule) -> Option<Threshold>| {
                    attr_rule.and_then(f).or_else(|| type_rule.and_then(f)).or_else(|| f(&default))
                };
                let threshold = pick(|r| r.threshold).unwrap_or(match (a.min, a.max) {
                    (Some(min), Some(max)) if max > min => Threshold::Absolute((max - min) * DEFAULT_RANGE_FRACTION),
                    _ => Threshold::AnyChange,
                });
                let heartbeat = attr_rule
                    .and_then(|r| r.heartbeat)
                    .or_else(|| type_rule.and_then(|r| r.heartbeat))
                    .or(default.heartbeat)
                    .unwrap_or(DEFAULT_HEARTBEAT);
                rules.insert(
                    (type_name.clone(), attr.clone()),
                    Effective { threshold, heartbeat_ms: heartbeat_ms(heartbeat) },
                );
            }
        }
        let fallback = Effective {
            threshold: default.threshold.unwrap_or(Threshold::AnyChange),
            heartbeat_ms: heartbeat_ms(default.heartbeat.unwrap_or(DEFAULT_HEARTBEAT)),
        };
        Ok(Deadband { rules, fallback, last_sent: foldhash::HashMap::default() })
    }

    /// Whether this reading should be sent; if so it becomes the attribute's last value sent.
    pub fn admit(
        &mut self,
        entity_type: &TypeName,
        entity: &EntityId,
        attribute: &AttrName,
        value: &Value,
        observed_at: UnixMs,
    ) -> bool {
        let rule = self.rules.get(&(entity_type.clone(), attribute.clone())).copied().unwrap_or(self.fallback);
        let key = (entity.clone(), attribute.clone());
        let send = match self.last_sent.get(&key) {
            None => true,
            Some((last, at)) => {
                observed_at.saturating_sub(*at) >= rule.heartbeat_ms || moved(rule.threshold, last, value)
            }
        };
        if send {
            self.last_sent.insert(key, (value.clone(), observed_at));
        }
        send
    }

    /// How many attributes the filter tracks.
    pub fn tracked(&self) -> usize {
        self.last_sent.len()
    }
}

/// Whether `value` moved beyond `threshold` from `last`.
fn moved(threshold: Threshold, last: &Value, value: &Value) -> bool {
    match (last.as_f64(), value.as_f64(), last, value) {
        // Booleans compare as 0/1 but any flip matters.
        (_, _, Value::Bool(a), Value::Bool(b)) => a != b,
        (Some(a), Some(b), _, _) => match threshold {
            Threshold::AnyChange => a != b,
            Threshold::Absolute(t) => (b - a).abs() >= t && a != b,
            Threshold::Relative(f) => {
                let base = a.abs().max(f64::MIN_POSITIVE);
                (b - a).abs() / base >= f && a != b
            }
        },
        _ => last != value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (TypeName, EntityId, AttrName) {
        (
            TypeName::new("AirQualityObserved").unwrap(),
            EntityId::new("urn:ngsi-ld:AirQualityObserved:t:1").unwrap(),
            AttrName::new("pm25").unwrap(),
        )
    }

    #[test]
    fn default_threshold_comes_from_the_catalog_range() {
        let mut d = Deadband::new(&DeadbandConfig::default(), &Catalog::builtin()).unwrap();
        let (t, e, a) = ids();
        assert!(d.admit(&t, &e, &a, &Value::Number(30.0), 0), "the first reading is always sent");
        // pm25 ranges over 0..1000, so the default deadband is 5.
        assert!(!d.admit(&t, &e, &a, &Value::Number(34.9), 1_000));
        assert!(d.admit(&t, &e, &a, &Value::Number(35.0), 2_000));
        // Small moves do not accumulate against a moving baseline: 35 is now the last value sent.
        assert!(!d.admit(&t, &e, &a, &Value::Number(31.0), 3_000));
        assert!(d.admit(&t, &e, &a, &Value::Number(29.9), 4_000));
    }

    #[test]
    fn heartbeat_sends_an_unchanged_value() {
        let config: DeadbandConfig = toml::from_str(
            "[attributes.\"AirQualityObserved.pm25\"]\nthreshold = { absolute = 2.0 }\nheartbeat = \"1m\"\n",
        )
        .unwrap();
        let mut d = Deadband::new(&config, &Catalog::builtin()).unwrap();
        let (t, e, a) = ids();
        assert!(d.admit(&t, &e, &a, &Value::Number(10.0), 0));
        assert!(!d.admit(&t, &e, &a, &Value::Number(11.0), 59_999));
        assert!(d.admit(&t, &e, &a, &Value::Number(11.0), 60_000), "heartbeat due");
        assert!(!d.admit(&t, &e, &a, &Value::Number(12.9), 61_000));
        assert!(d.admit(&t, &e, &a, &Value::Number(13.0), 62_000), "moved by the configured 2.0");
    }

    #[test]
    fn type_rules_relative_thresholds_and_text() {
        let config: DeadbandConfig =
            toml::from_str("[types.TrafficFlowObserved]\nthreshold = { relative = 0.1 }\n").unwrap();
        let mut d = Deadband::new(&config, &Catalog::builtin()).unwrap();
        let t = TypeName::new("TrafficFlowObserved").unwrap();
        let e = EntityId::new("urn:ngsi-ld:TrafficFlowObserved:t:1").unwrap();
        let a = AttrName::new("intensity").unwrap();
        assert!(d.admit(&t, &e, &a, &Value::Number(1_000.0), 0));
        assert!(!d.admit(&t, &e, &a, &Value::Number(1_090.0), 1));
        assert!(d.admit(&t, &e, &a, &Value::Number(1_100.0), 2));
        let level = AttrName::new("congestionLevel").unwrap();
        let text = |s: &str| Value::Text(s.into());
        assert!(d.admit(&t, &e, &level, &text("free"), 0));
        assert!(!d.admit(&t, &e, &level, &text("free"), 1));
        assert!(d.admit(&t, &e, &level, &text("heavy"), 2), "text is sent on any change");
        assert_eq!(d.tracked(), 2);
    }

    #[test]
    fn bad_rules_are_clear_errors() {
        let catalog = Catalog::builtin();
        let parse = |s: &str| toml::from_str::<DeadbandConfig>(s).unwrap();
        let err = Deadband::new(&parse("[types.Unicorn]\nheartbeat = \"1m\"\n"), &catalog).unwrap_err();
        assert_eq!(err.to_string(), "deadband rule Unicorn: unknown entity type Unicorn");
        let err = Deadband::new(&parse("[attributes.\"AirQualityObserved.colour\"]\n"), &catalog).unwrap_err();
        assert!(matches!(err, DeadbandError::Unknown { .. }), "{err}");
        let err = Deadband::new(&parse("[default]\nthreshold = { absolute = -1.0 }\n"), &catalog).unwrap_err();
        assert_eq!(err, DeadbandError::BadThreshold { rule: "default".into(), value: -1.0 });
        let err = Deadband::new(&parse("[default]\nheartbeat = \"0s\"\n"), &catalog).unwrap_err();
        assert_eq!(err, DeadbandError::ZeroHeartbeat { rule: "default".into() });
        assert!(toml::from_str::<DeadbandConfig>("[default]\nthreshhold = 1\n").is_err(), "unknown keys are refused");
    }
}
