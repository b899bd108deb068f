//! The entity-type catalog and the validation of updates against it.
//!
//! The built-in catalog (`catalog/builtin.toml`, compiled in) covers the smart-city domains: transport,
//! environment, energy, waste, water, health and safety, buildings, city structure and the edge boxes.
//! Deployments add types from a TOML file in the same format at start-up ([`Catalog::extend_from_toml`]).
//!
//! File format: one table per type, its attributes as inline tables.
//!
//! ```toml
//! [AirQualityObserved]
//! domain = "environment"
//! description = "An air-quality monitoring station"
//! relationships = ["refDistrict"]
//! [AirQualityObserved.attributes]
//! pm25 = { kind = "number", unit = "ug/m3", min = 0, max = 1000, description = "PM2.5" }
//! aqiCategory = { kind = "text", values = ["excellent", "good"] }
//! ```

use std::{collections::BTreeMap, fmt};

use serde::{Deserialize, Serialize};

use crate::{AttrName, TypeName, Value, ValueKind};

/// The longest text value accepted when a type does not say otherwise, in bytes.
pub const DEFAULT_MAX_TEXT_LEN: usize = 256;

/// One attribute of an entity type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeDef {
    /// The kind of value.
    pub kind: ValueKind,
    /// The unit, e.g. `ug/m3`, `km/h`, `%` (UCUM-style symbols where one exists).
    #[serde(default)]
    pub unit: Option<String>,
    /// The smallest valid value (numeric kinds).
    #[serde(default)]
    pub min: Option<f64>,
    /// The largest valid value (numeric kinds).
    #[serde(default)]
    pub max: Option<f64>,
    /// For text: the only accepted values, if the set is closed.
    #[serde(default)]
    pub values: Option<Vec<String>>,
    /// For text: the longest accepted value in bytes (default 256).
    #[serde(default)]
    pub max_len: Option<usize>,
    /// Whether an operator may set a desired value (command the device).
    #[serde(default)]
    pub commandable: bool,
    /// What the attribute means.
    #[serde(default)]
    pub description: String,
}

/// An entity type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityTypeDef {
    /// The domain, e.g. `transport`, `environment`.
    pub domain: String,
    /// What the type models.
    #[serde(default)]
    pub description: String,
    /// Relationship names entities of this type usually carry (informative; not enforced).
    #[serde(default)]
    pub relationships: Vec<String>,
    /// The attributes by name.
    #[serde(default)]
    pub attributes: BTreeMap<AttrName, AttributeDef>,
}

/// A problem with a catalog file.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The TOML does not parse or does not match the format.
    #[error("catalog {source_name} is not valid: {message}")]
    Parse {
        /// Where the catalog came from (a path, or "built-in").
        source_name: String,
        /// The parser's message.
        message: String,
    },
    /// A type name is invalid.
    #[error("catalog {source_name}: type name {name:?} is invalid: {reason}")]
    BadTypeName {
        /// Where the catalog came from.
        source_name: String,
        /// The name.
        name: String,
        /// Why.
        reason: crate::IdError,
    },
    /// A type is defined twice.
    #[error("catalog {source_name}: type {name} is already defined")]
    Duplicate {
        /// Where the catalog came from.
        source_name: String,
        /// The type.
        name: TypeName,
    },
    /// An attribute definition is inconsistent.
    #[error("catalog {source_name}: {type_name}.{attribute}: {message}")]
    BadAttribute {
        /// Where the catalog came from.
        source_name: String,
        /// The type.
        type_name: TypeName,
        /// The attribute.
        attribute: AttrName,
        /// What is wrong.
        message: String,
    },
}

/// Why an attribute value breaks the catalog. The caller adds which entity it was.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Violation {
    /// The entity type is not in the catalog.
    #[error("unknown entity type {0}")]
    UnknownType(TypeName),
    /// The type has no such attribute.
    #[error("type {entity_type} has no attribute {attribute}")]
    UnknownAttribute {
        /// The type.
        entity_type: TypeName,
        /// The attribute.
        attribute: AttrName,
    },
    /// The value has the wrong kind.
    #[error("attribute {attribute} takes a {expected} value, got {got}")]
    WrongKind {
        /// The attribute.
        attribute: AttrName,
        /// What the catalog declares.
        expected: ValueKind,
        /// What was sent.
        got: ValueKind,
    },
    /// The value is NaN or infinite.
    #[error("attribute {attribute} must be a finite number, got {value}")]
    NotFinite {
        /// The attribute.
        attribute: AttrName,
        /// The value as text.
        value: String,
    },
    /// The value is outside the declared range.
    #[error("attribute {attribute} value {value} is outside its valid range {min}..={max}")]
    OutOfRange {
        /// The attribute.
        attribute: AttrName,
        /// The value.
        value: f64,
        /// Range start (or -inf).
        min: f64,
        /// Range end (or inf).
        max: f64,
    },
    /// Text longer than allowed.
    #[error("attribute {attribute} text is {len} bytes; the limit is {max}")]
    TextTooLong {
        /// The attribute.
        attribute: AttrName,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Text not in the closed set of values.
    #[error("attribute {attribute} value {value:?} is not one of {allowed:?}")]
    NotAllowed {
        /// The attribute.
        attribute: AttrName,
        /// The value.
        value: String,
        /// What is accepted.
        allowed: Vec<String>,
    },
    /// A position value is outside WGS84.
    #[error("attribute {attribute}: {source}")]
    BadPosition {
        /// The attribute.
        attribute: AttrName,
        /// Why.
        source: crate::GeometryError,
    },
}

impl Violation {
    /// A short stable code for the rule broken, for APIs and counters.
    pub fn code(&self) -> &'static str {
        match self {
            Violation::UnknownType(_) => "unknown_type",
            Violation::UnknownAttribute { .. } => "unknown_attribute",
            Violation::WrongKind { .. } => "wrong_kind",
            Violation::NotFinite { .. } => "not_finite",
            Violation::OutOfRange { .. } => "out_of_range",
            Violation::TextTooLong { .. } => "text_too_long",
            Violation::NotAllowed { .. } => "not_allowed",
            Violation::BadPosition { .. } => "bad_position",
        }
    }
}

/// The set of known entity types.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    types: BTreeMap<TypeName, EntityTypeDef>,
}

const BUILTIN: &str = include_str!("../catalog/builtin.toml");

impl Catalog {
    /// The built-in smart-city catalog.
    pub fn builtin() -> Self {
        let mut c = Catalog::default();
        // The built-in file is part of the binary and covered by tests, so failing here is a build bug.
        #[allow(clippy::expect_used)]
        c.extend_from_toml(BUILTIN, "built-in").expect("the built-in catalog is valid");
        c
    }

    /// Adds the types defined in `toml_text`; `source_name` names the file in errors. Nothing is added
    /// when any type is invalid.
    pub fn extend_from_toml(&mut self, toml_text: &str, source_name: &str) -> Result<usize, CatalogError> {
        let parsed: BTreeMap<String, EntityTypeDef> = toml::from_str(toml_text)
            .map_err(|e| CatalogError::Parse { source_name: source_name.to_owned(), message: e.to_string() })?;
        let mut new = Vec::with_capacity(parsed.len());
        for (name, def) in parsed {
            let type_name = TypeName::new(&name).map_err(|reason| CatalogError::BadTypeName {
                source_name: source_name.to_owned(),
                name: name.clone(),
                reason,
            })?;
            if self.types.contains_key(&type_name) {
                return Err(CatalogError::Duplicate { source_name: source_name.to_owned(), name: type_name });
            }
            for (attribute, a) in &def.attributes {
                check_definition(a).map_err(|message| CatalogError::BadAttribute {
                    source_name: source_name.to_owned(),
                    type_name: type_name.clone(),
                    attribute: attribute.clone(),
                    message,
                })?;
            }
            new.push((type_name, def));
        }
        let n = new.len();
        self.types.extend(new);
        Ok(n)
    }

    /// The definition of `name`, if known.
    pub fn get(&self, name: &str) -> Option<&EntityTypeDef> {
        self.types.get(name)
    }

    /// Every type, by name.
    pub fn types(&self) -> impl Iterator<Item = (&TypeName, &EntityTypeDef)> {
        self.types.iter()
    }

    /// How many types the catalog holds.
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// Whether the catalog holds no type.
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    /// Checks a type name is known.
    pub fn check_type(&self, entity_type: &TypeName) -> Result<&EntityTypeDef, Violation> {
        self.types.get(entity_type).ok_or_else(|| Violation::UnknownType(entity_type.clone()))
    }

    /// Checks one attribute value against the type's definition. An integer sent for a number attribute
    /// is accepted and returned widened, so stored kinds always match the catalog.
    pub fn check_value(&self, entity_type: &TypeName, attribute: &AttrName, value: Value) -> Result<Value, Violation> {
        let def = self.check_type(entity_type)?;
        let Some(a) = def.attributes.get(attribute) else {
            return Err(Violation::UnknownAttribute { entity_type: entity_type.clone(), attribute: attribute.clone() });
        };
        a.check(attribute, value)
    }
}

impl AttributeDef {
    /// Checks `value` against this definition; see [`Catalog::check_value`].
    pub fn check(&self, attribute: &AttrName, value: Value) -> Result<Value, Violation> {
        let value = match (self.kind, value) {
            (ValueKind::Number, Value::Integer(i)) => Value::Number(i as f64),
            (_, v) => v,
        };
        if value.kind() != self.kind {
            return Err(Violation::WrongKind { attribute: attribute.clone(), expected: self.kind, got: value.kind() });
        }
        match &value {
            Value::Number(v) => {
                if !v.is_finite() {
                    return Err(Violation::NotFinite { attribute: attribute.clone(), value: v.to_string() });
                }
                self.check_range(attribute, *v)?;
            }
            Value::Integer(v) => self.check_range(attribute, *v as f64)?,
            Value::Text(t) => {
                let max = self.max_len.unwrap_or(DEFAULT_MAX_TEXT_LEN);
                if t.len() > max {
                    return Err(Violation::TextTooLong { attribute: attribute.clone(), len: t.len(), max });
                }
                if let Some(allowed) = &self.values
                    && !allowed.iter().any(|a| a == t)
                {
                    return Err(Violation::NotAllowed {
                        attribute: attribute.clone(),
                        value: t.clone(),
                        allowed: allowed.clone(),
                    });
                }
            }
            Value::Point(p) => {
                p.validate(0).map_err(|source| Violation::BadPosition { attribute: attribute.clone(), source })?
            }
            Value::Bool(_) => {}
        }
        Ok(value)
    }

    fn check_range(&self, attribute: &AttrName, v: f64) -> Result<(), Violation> {
        let (min, max) = (self.min.unwrap_or(f64::NEG_INFINITY), self.max.unwrap_or(f64::INFINITY));
        if v < min || v > max {
            return Err(Violation::OutOfRange { attribute: attribute.clone(), value: v, min, max });
        }
        Ok(())
    }
}

fn check_definition(a: &AttributeDef) -> Result<(), String> {
    let numeric = matches!(a.kind, ValueKind::Number | ValueKind::Integer);
    if !numeric && (a.min.is_some() || a.max.is_some()) {
        return Err(format!("min/max apply to number and integer attributes, not {}", a.kind));
    }
    if let (Some(min), Some(max)) = (a.min, a.max)
        && (min.is_nan() || max.is_nan() || min > max)
    {
        return Err(format!("min {min} is above max {max}"));
    }
    if a.kind != ValueKind::Text && (a.values.is_some() || a.max_len.is_some()) {
        return Err(format!("values/max_len apply to text attributes, not {}", a.kind));
    }
    Ok(())
}

impl fmt::Display for EntityTypeDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} attributes)", self.domain, self.attributes.len())
    }
}

#[cfg(test)]
mod tests;
