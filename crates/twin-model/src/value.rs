//! Attribute values.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::geometry::GeoPoint;

/// A reported or desired attribute value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// A measurement, e.g. a concentration or a speed. Never NaN or infinite once validated.
    Number(f64),
    /// A count or a code.
    Integer(i64),
    /// An on/off state.
    Bool(bool),
    /// A short label, e.g. a status.
    Text(String),
    /// A position, e.g. of a bus.
    Point(GeoPoint),
}

/// The kind of a [`Value`], as declared in the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueKind {
    /// [`Value::Number`]; an integer value is accepted and widened.
    Number,
    /// [`Value::Integer`].
    Integer,
    /// [`Value::Bool`].
    Bool,
    /// [`Value::Text`].
    Text,
    /// [`Value::Point`].
    Point,
}

impl Value {
    /// The kind of this value.
    pub fn kind(&self) -> ValueKind {
        match self {
            Value::Number(_) => ValueKind::Number,
            Value::Integer(_) => ValueKind::Integer,
            Value::Bool(_) => ValueKind::Bool,
            Value::Text(_) => ValueKind::Text,
            Value::Point(_) => ValueKind::Point,
        }
    }

    /// The value as a number, for numeric comparisons and aggregates: numbers, integers and booleans
    /// (as 0/1) have one; text and points do not.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Number(v) => Some(v),
            Value::Integer(v) => Some(v as f64),
            Value::Bool(v) => Some(if v { 1.0 } else { 0.0 }),
            Value::Text(_) | Value::Point(_) => None,
        }
    }
}

impl fmt::Display for ValueKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueKind::Number => "number",
            ValueKind::Integer => "integer",
            ValueKind::Bool => "bool",
            ValueKind::Text => "text",
            ValueKind::Point => "point",
        })
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Number(v) => write!(f, "{v}"),
            Value::Integer(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::Text(v) => write!(f, "{v:?}"),
            Value::Point(p) => write!(f, "({}, {})", p.lon, p.lat),
        }
    }
}
