//! The mapper: pure conversion of one MQTT message (topic, JSON payload, arrival time) into readings,
//! with everything that can be checked at start (topic filters, catalog names, field paths, templates)
//! checked once in [`Mapper::new`], so the per-message work is lookups and conversions.
//!
//! Partial messages: each mapped attribute field is converted and checked on its own. The good ones
//! become readings and each bad one is reported in [`Mapped::bad_fields`], so one broken field never
//! hides the others. A field that is absent or `null` is skipped (devices often report a subset). A
//! message fails as a whole ([`Unmappable`]) when what all its readings share is broken (the topic, the
//! payload, the entity id, the observed time) or when none of the mapped fields is present.

use serde_json::Value as Json;
use twin_model::{
    AttrName, AttributeDef, Catalog, EntityId, GeoPoint, IdError, MIN_OBSERVED_AT, TypeName, UnixMs, Value, ValueKind,
    Violation,
};
use twin_outbox::OutboxUpdate;

use super::config::{DEFAULT_MAX_PAYLOAD_BYTES, EntityIdSource, Mapping, MqttConfigError, TimeFormat};
use crate::source::Reading;

/// How far after its arrival a message's observed time may be: the cloud refuses readings more than a
/// day ahead of its clock, so such a reading would only be refused later, farther from its cause.
pub const MAX_AHEAD_OF_ARRIVAL_MS: i64 = 24 * 3600 * 1000;

/// The longest excerpt of a topic or value quoted in an [`Unmappable`] message, so a hostile message
/// cannot make log lines huge.
const MAX_QUOTE: usize = 120;

/// The readings of one message, and the fields that could not be mapped.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    /// One reading per mapped attribute that was present and valid, in attribute-name order.
    pub readings: Vec<Reading>,
    /// One error per mapped attribute that was present but of the wrong kind or invalid.
    pub bad_fields: Vec<Unmappable>,
}

/// Why a message, or one field of it, cannot be mapped. Messages name the topic and the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Unmappable {
    /// No mapping's topic filter matches the topic (the broker delivered a message the mappings do not
    /// cover, e.g. one of overlapping subscriptions of another client id).
    #[error("topic {topic:?}: no mapping matches it")]
    NoMapping {
        /// The topic (clipped).
        topic: String,
    },
    /// The payload is larger than `max_payload_bytes`.
    #[error("topic {topic:?}: payload is {len} bytes; the limit is {max}")]
    TooLarge {
        /// The topic (clipped).
        topic: String,
        /// The payload's size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The payload does not parse as JSON.
    #[error("topic {topic:?}: payload is not JSON: {error}")]
    NotJson {
        /// The topic (clipped).
        topic: String,
        /// serde_json's message, with line and column.
        error: String,
        /// The line of the error, from 1.
        line: usize,
        /// The column of the error, from 1.
        column: usize,
    },
    /// The payload is JSON but not an object.
    #[error("topic {topic:?}: payload is a JSON {found}, not an object")]
    NotObject {
        /// The topic (clipped).
        topic: String,
        /// What it is.
        found: &'static str,
    },
    /// The entity id's field or topic level is absent or empty.
    #[error("topic {topic:?}: entity id {from} is missing or empty")]
    EntityIdMissing {
        /// The topic (clipped).
        topic: String,
        /// Where it should have been: `field "id"` or `topic level 2`.
        from: String,
    },
    /// The entity id field holds neither a string nor an integer.
    #[error("topic {topic:?}: entity id field {field:?} is {found}, not a string or an integer")]
    EntityIdWrongKind {
        /// The topic (clipped).
        topic: String,
        /// The field's path.
        field: String,
        /// What it holds.
        found: &'static str,
    },
    /// The entity id is not a valid id.
    #[error("topic {topic:?}: entity id {id:?} is invalid: {reason}")]
    EntityIdInvalid {
        /// The topic (clipped).
        topic: String,
        /// The id as built (clipped).
        id: String,
        /// Why it is invalid.
        reason: IdError,
    },
    /// The observed-time field is absent or null.
    #[error("topic {topic:?}: timestamp field {field:?} is missing")]
    TimestampMissing {
        /// The topic (clipped).
        topic: String,
        /// The field's path.
        field: String,
    },
    /// The observed-time field does not hold a time in the configured format.
    #[error(
        "topic {topic:?}: timestamp field {field:?} value {value} is not a {format} time{hint}",
        hint = .format.hint()
    )]
    TimestampUnparseable {
        /// The topic (clipped).
        topic: String,
        /// The field's path.
        field: String,
        /// The value as JSON (clipped).
        value: String,
        /// The configured format.
        format: TimeFormat,
    },
    /// The observed time is before 2000 or more than [`MAX_AHEAD_OF_ARRIVAL_MS`] after the arrival.
    #[error(
        "topic {topic:?}: timestamp field {field:?} is {observed_at} ms since 1970, before 2000 or more than a day \
         after the message arrived ({arrival} ms): check the device's clock and the format"
    )]
    TimestampImplausible {
        /// The topic (clipped).
        topic: String,
        /// The field's path.
        field: String,
        /// The time read.
        observed_at: UnixMs,
        /// When the message arrived.
        arrival: UnixMs,
    },
    /// None of the mapping's attribute fields is present in the payload.
    #[error("topic {topic:?}: none of the mapped attribute fields ({fields}) is present")]
    NoAttributes {
        /// The topic (clipped).
        topic: String,
        /// The fields looked for, comma-separated.
        fields: String,
    },
    /// A field holds a JSON value that cannot be the attribute's kind.
    #[error("topic {topic:?}: field {field:?} is {found}, but attribute {attribute} takes {expected} values")]
    WrongKind {
        /// The topic (clipped).
        topic: String,
        /// The field's path.
        field: String,
        /// The attribute.
        attribute: AttrName,
        /// The catalog's kind.
        expected: ValueKind,
        /// What the field holds.
        found: &'static str,
    },
    /// A field's value breaks the catalog (out of range, not finite, not an allowed text, ...).
    #[error("topic {topic:?}: field {field:?}: {violation}")]
    Invalid {
        /// The topic (clipped).
        topic: String,
        /// The field's path.
        field: String,
        /// The catalog's verdict.
        violation: Violation,
    },
}

impl Unmappable {
    /// A short stable code for counters and tests.
    pub fn code(&self) -> &'static str {
        match self {
            Unmappable::NoMapping { .. } => "no_mapping",
            Unmappable::TooLarge { .. } => "too_large",
            Unmappable::NotJson { .. } => "not_json",
            Unmappable::NotObject { .. } => "not_object",
            Unmappable::EntityIdMissing { .. } => "entity_id_missing",
            Unmappable::EntityIdWrongKind { .. } => "entity_id_wrong_kind",
            Unmappable::EntityIdInvalid { .. } => "entity_id_invalid",
            Unmappable::TimestampMissing { .. } => "timestamp_missing",
            Unmappable::TimestampUnparseable { .. } => "timestamp_unparseable",
            Unmappable::TimestampImplausible { .. } => "timestamp_implausible",
            Unmappable::NoAttributes { .. } => "no_attributes",
            Unmappable::WrongKind { .. } => "wrong_kind",
            Unmappable::Invalid { .. } => "invalid",
        }
    }
}

impl TimeFormat {
    fn hint(self) -> &'static str {
        match self {
            TimeFormat::UnixMs => " (milliseconds since 1970 as a number)",
            TimeFormat::UnixS => " (seconds since 1970 as a number)",
            TimeFormat::Rfc3339 => " (e.g. 2024-05-01T08:00:00Z or 2024-05-01T16:00:00.5+08:00; the zone is required)",
        }
    }
}

/// Turns MQTT messages into readings by the configured mappings. Built once at start; immutable.
#[derive(Debug, Clone)]
pub struct Mapper {
    mappings: Vec<CompiledMapping>,
    max_payload_bytes: usize,
}

#[derive(Debug, Clone)]
struct CompiledMapping {
    filter: TopicFilter,
    entity_type: TypeName,
    entity_id: IdSource,
    observed_at: Option<(FieldPath, TimeFormat)>,
    attributes: Vec<CompiledAttribute>,
}

#[derive(Debug, Clone)]
struct IdSource {
    from: IdFrom,
    /// The template split around its `{}`.
    template: Option<(String, String)>,
}

#[derive(Debug, Clone)]
enum IdFrom {
    Field(FieldPath),
    TopicLevel(usize),
}

#[derive(Debug, Clone)]
struct CompiledAttribute {
    name: AttrName,
    def: AttributeDef,
    path: FieldPath,
}

impl Mapper {
    /// Checks every mapping against MQTT's topic-filter rules and the catalog, and compiles it. The limit
    /// on payloads is [`DEFAULT_MAX_PAYLOAD_BYTES`] until [`Mapper::with_max_payload_bytes`] sets it.
    pub fn new(mappings: &[Mapping], catalog: &Catalog) -> Result<Mapper, MqttConfigError> {
        if mappings.is_empty() {
            return Err(MqttConfigError::NoMappings);
        }
        let mut compiled: Vec<CompiledMapping> = Vec::with_capacity(mappings.len());
        for (i, m) in mappings.iter().enumerate() {
            let name = label(i, m);
            let err = |problem: String| MqttConfigError::Mapping { mapping: name.clone(), problem };
            let c = compile(m, catalog).map_err(err)?;
            // A filter that an earlier one covers would never map anything: almost certainly a mistake.
            if let Some((j, earlier)) = compiled.iter().enumerate().find(|(_, e)| e.filter.covers(&c.filter)) {
                return Err(err(format!(
                    "topic filter {} can never match: {} (filter {}) comes first and takes every topic it would",
                    m.topic,
                    label(j, &mappings[j]),
                    earlier.filter.text
                )));
            }
            compiled.push(c);
        }
        Ok(Mapper { mappings: compiled, max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES })
    }

    /// Sets the largest payload mapped; larger ones are [`Unmappable::TooLarge`].
    pub fn with_max_payload_bytes(mut self, max_payload_bytes: usize) -> Mapper {
        self.max_payload_bytes = max_payload_bytes;
        self
    }

    /// The largest payload mapped.
    pub fn max_payload_bytes(&self) -> usize {
        self.max_payload_bytes
    }

    /// The topic filters to subscribe to, one per mapping, in order.
    pub fn filters(&self) -> impl Iterator<Item = &str> {
        self.mappings.iter().map(|m| m.filter.text.as_str())
    }

    /// Maps one message. `arrival` stamps the readings when the mapping reads no time from the payload.
    /// Pure: no I/O, no clock; never panics, whatever the bytes.
    pub fn map(&self, topic: &str, payload: &[u8], arrival: UnixMs) -> Result<Mapped, Unmappable> {
        if payload.len() > self.max_payload_bytes {
            return Err(Unmappable::TooLarge { topic: clip(topic), len: payload.len(), max: self.max_payload_bytes });
        }
        let Some(m) = self.mappings.iter().find(|m| m.filter.matches(topic)) else {
            return Err(Unmappable::NoMapping { topic: clip(topic) });
        };
        let doc: Json = serde_json::from_slice(payload).map_err(|e| Unmappable::NotJson {
            topic: clip(topic),
            error: e.to_string(),
            line: e.line(),
            column: e.column(),
        })?;
        if !doc.is_object() {
            return Err(Unmappable::NotObject { topic: clip(topic), found: json_kind(&doc) });
        }
        let entity = m.entity_id.resolve(topic, &doc)?;
        let observed_at = match &m.observed_at {
            None => arrival,
            Some((path, format)) => observed_at(topic, &doc, path, *format, arrival)?,
        };
        let mut readings = Vec::with_capacity(m.attributes.len());
        let mut bad_fields = Vec::new();
        let mut present = 0usize;
        for a in &m.attributes {
            let Some(json) = a.path.lookup(&doc).filter(|v| !v.is_null()) else { continue };
            present += 1;
            match a.convert(topic, json) {
                Ok(value) => readings.push(Reading {
                    entity_type: m.entity_type.clone(),
                    update: OutboxUpdate { entity: entity.clone(), attribute: a.name.clone(), value, observed_at },
                }),
                Err(e) => bad_fields.push(e),
            }
        }
        if present == 0 {
            let fields = m.attributes.iter().map(|a| a.path.text.as_str()).collect::<Vec<_>>().join(", ");
            return Err(Unmappable::NoAttributes { topic: clip(topic), fields });
        }
        Ok(Mapped { readings, bad_fields })
    }
}

/// How a mapping is named in errors: its name, else its index and topic filter.
fn label(i: usize, m: &Mapping) -> String {
    match &m.name {
        Some(name) => format!("{name:?}"),
        None => format!("#{i} ({})", m.topic),
    }
}

fn compile(m: &Mapping, catalog: &Catalog) -> Result<CompiledMapping, String> {
    let filter = TopicFilter::parse(&m.topic)?;
    let entity_type = TypeName::new(&m.entity_type).map_err(|e| format!("entity_type {:?}: {e}", m.entity_type))?;
    let Some(def) = catalog.get(&m.entity_type) else {
        return Err(format!("unknown entity type {}", m.entity_type));
    };
    let entity_id = compile_id(&m.entity_id, &filter)?;
    let observed_at = match &m.observed_at {
        None => None,
        Some(o) => Some((FieldPath::parse(&o.field).map_err(|e| format!("observed_at.field: {e}"))?, o.format)),
    };
    if m.attributes.is_empty() {
        return Err("no attributes: map at least one catalog attribute to a JSON field".into());
    }
    let mut attributes = Vec::with_capacity(m.attributes.len());
    for (name, field) in &m.attributes {
        let Some((attr_name, attr_def)) = def.attributes.get_key_value(name.as_str()) else {
            let known = def.attributes.keys().map(AttrName::as_str).collect::<Vec<_>>().join(", ");
            return Err(format!("type {} has no attribute {name} (it has: {known})", m.entity_type));
        };
        let path = FieldPath::parse(field).map_err(|e| format!("attribute {name}: {e}"))?;
        attributes.push(CompiledAttribute { name: attr_name.clone(), def: attr_def.clone(), path });
    }
    Ok(CompiledMapping { filter, entity_type, entity_id, observed_at, attributes })
}

fn compile_id(source: &EntityIdSource, filter: &TopicFilter) -> Result<IdSource, String> {
    let from = match (&source.field, source.topic_level) {
        (Some(field), None) => IdFrom::Field(FieldPath::parse(field).map_err(|e| format!("entity_id.field: {e}"))?),
        (None, Some(level)) => {
            // Past a `#` the level may or may not exist in a given topic: checked per message.
            let last = filter.levels.len() - 1;
            if filter.hash_at().is_none() && level > last {
                return Err(format!(
                    "entity_id.topic_level {level} is beyond the topic filter {} (levels 0..={last})",
                    filter.text
                ));
            }
            IdFrom::TopicLevel(level)
        }
        _ => return Err("entity_id needs exactly one of field or topic_level".into()),
    };
    let template = match &source.template {
        None => None,
        Some(t) => {
            let Some((prefix, suffix)) = t.split_once("{}") else {
                return Err(format!("entity_id.template {t:?} has no {{}} to put the value in"));
            };
            if suffix.contains("{}") {
                return Err(format!("entity_id.template {t:?} has more than one {{}}"));
            }
            // A template with a character no id may hold would fail every message: refuse it now.
            EntityId::new(&format!("{prefix}x{suffix}"))
                .map_err(|e| format!("entity_id.template {t:?} cannot make a valid id: {e}"))?;
            Some((prefix.to_owned(), suffix.to_owned()))
        }
    };
    Ok(IdSource { from, template })
}

impl IdSource {
    fn resolve(&self, topic: &str, doc: &Json) -> Result<EntityId, Unmappable> {
        let integer: String;
        let raw: &str = match &self.from {
            IdFrom::TopicLevel(level) => topic.split('/').nth(*level).ok_or_else(|| Unmappable::EntityIdMissing {
                topic: clip(topic),
                from: format!("topic level {level}"),
            })?,
            IdFrom::Field(path) => match path.lookup(doc) {
                None | Some(Json::Null) => {
                    return Err(Unmappable::EntityIdMissing {
                        topic: clip(topic),
                        from: format!("field {:?}", path.text),
                    });
                }
                Some(Json::String(s)) => s,
                Some(Json::Number(n)) if n.is_i64() || n.is_u64() => {
                    integer = n.to_string();
                    &integer
                }
                Some(other) => {
                    return Err(Unmappable::EntityIdWrongKind {
                        topic: clip(topic),
                        field: path.text.clone(),
                        found: json_kind(other),
                    });
                }
            },
        };
        if raw.is_empty() {
            // With a template an empty value would still make a valid id, of no entity in particular.
            let from = match &self.from {
                IdFrom::TopicLevel(level) => format!("topic level {level}"),
                IdFrom::Field(path) => format!("field {:?}", path.text),
            };
            return Err(Unmappable::EntityIdMissing { topic: clip(topic), from });
        }
        let invalid = |id: &str, reason| Unmappable::EntityIdInvalid { topic: clip(topic), id: clip(id), reason };
        match &self.template {
            None => EntityId::new(raw).map_err(|e| invalid(raw, e)),
            Some((prefix, suffix)) => {
                let mut id = String::with_capacity(prefix.len() + raw.len() + suffix.len());
                id.push_str(prefix);
                id.push_str(raw);
                id.push_str(suffix);
                EntityId::new(&id).map_err(|e| invalid(&id, e))
            }
        }
    }
}

fn observed_at(
    topic: &str,
    doc: &Json,
    path: &FieldPath,
    format: TimeFormat,
    arrival: UnixMs,
) -> Result<UnixMs, Unmappable> {
    let json = match path.lookup(doc) {
        None | Some(Json::Null) => {
            return Err(Unmappable::TimestampMissing { topic: clip(topic), field: path.text.clone() });
        }
        Some(j) => j,
    };
    let unparseable = || Unmappable::TimestampUnparseable {
        topic: clip(topic),
        field: path.text.clone(),
        value: clip(&json.to_string()),
        format,
    };
    let at = parse_time(json, format).ok_or_else(unparseable)?;
    if at < MIN_OBSERVED_AT || at > arrival.saturating_add(MAX_AHEAD_OF_ARRIVAL_MS) {
        return Err(Unmappable::TimestampImplausible {
            topic: clip(topic),
            field: path.text.clone(),
            observed_at: at,
            arrival,
        });
    }
    Ok(at)
}

/// A time in the given format, or `None` when the value is not one. Out-of-range numbers saturate, so
/// they are reported as implausible rather than unparseable.
fn parse_time(json: &Json, format: TimeFormat) -> Option<UnixMs> {
    match format {
        TimeFormat::UnixMs | TimeFormat::UnixS => {
            let scale = if format == TimeFormat::UnixS { 1000 } else { 1 };
            let (int, float) = match json {
                Json::Number(n) => (n.as_i64(), n.as_f64()),
                // Some devices quote their numbers.
                Json::String(s) => (s.parse::<i64>().ok(), s.parse::<f64>().ok()),
                _ => return None,
            };
            match (int, float) {
                (Some(i), _) => Some(i.saturating_mul(scale)),
                // `as` saturates, and NaN (from a string "NaN") becomes 0, which is implausible.
                (None, Some(f)) if !f.is_nan() => Some((f * scale as f64).round() as i64),
                _ => None,
            }
        }
        TimeFormat::Rfc3339 => json.as_str().and_then(parse_rfc3339),
    }
}

/// RFC 3339 with a `Z` or `+hh:mm`/`-hh:mm` zone (humantime only knows UTC, so the offset is applied
/// here). A time without a zone is refused: guessing UTC for a device on local time would shift its
/// readings by hours without anyone noticing.
pub(crate) fn parse_rfc3339(s: &str) -> Option<UnixMs> {
    let b = s.as_bytes();
    let (body, offset_min) = if let Some(body) = s.strip_suffix(['Z', 'z']) {
        (body, 0i64)
    } else if b.len() > 6 {
        let t = &b[b.len() - 6..];
        let digit = |c: u8| c.is_ascii_digit().then(|| i64::from(c - b'0'));
        let sign = match t[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        if t[3] != b':' {
            return None;
        }
        let (hh, mm) = (digit(t[1])? * 10 + digit(t[2])?, digit(t[4])? * 10 + digit(t[5])?);
        if hh > 23 || mm > 59 {
            return None;
        }
        // t[0] is ASCII, so this is a char boundary.
        (&s[..s.len() - 6], sign * (hh * 60 + mm))
    } else {
        return None;
    };
    // After the seconds only a fraction may follow (humantime would take a second zone there).
    let tail = body.as_bytes().get(19..)?;
    if !(tail.is_empty() || (tail.len() > 1 && tail[0] == b'.' && tail[1..].iter().all(u8::is_ascii_digit))) {
        return None;
    }
    // RFC 3339 allows a lower-case `t`; humantime does not.
    let upper;
    let body = if body.as_bytes().get(10) == Some(&b't') {
        upper = body.replacen('t', "T", 1);
        upper.as_str()
    } else {
        body
    };
    let t = humantime::parse_rfc3339_weak(body).ok()?;
    let ms = i64::try_from(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis()).ok()?;
    Some(ms - offset_min * 60_000)
}

impl CompiledAttribute {
    fn convert(&self, topic: &str, json: &Json) -> Result<Value, Unmappable> {
        let wrong = |found| Unmappable::WrongKind {
            topic: clip(topic),
            field: self.path.text.clone(),
            attribute: self.name.clone(),
            expected: self.def.kind,
            found,
        };
        let value = match (self.def.kind, json) {
            (ValueKind::Number, Json::Number(n)) => Value::Number(n.as_f64().ok_or_else(|| wrong("a number"))?),
            (ValueKind::Integer, Json::Number(n)) => {
                if let Some(i) = n.as_i64() {
                    Value::Integer(i)
                } else if n.is_u64() {
                    return Err(wrong("an integer beyond 64 bits"));
                } else {
                    // 12.0 is an integer written as a float: accept it; 12.5 is not.
                    let f = n.as_f64().unwrap_or(f64::NAN);
                    if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 {
                        Value::Integer(f as i64)
                    } else {
                        return Err(wrong("a number with a fraction"));
                    }
                }
            }
            (ValueKind::Bool, Json::Bool(b)) => Value::Bool(*b),
            (ValueKind::Text, Json::String(s)) => Value::Text(s.clone()),
            (ValueKind::Point, j @ (Json::Object(_) | Json::Array(_))) => {
                Value::Point(point(j).ok_or_else(|| wrong("neither {\"lon\":..,\"lat\":..}, [lon, lat] nor GeoJSON"))?)
            }
            (_, other) => return Err(wrong(json_kind_article(other))),
        };
        self.def.check(&self.name, value).map_err(|violation| Unmappable::Invalid {
            topic: clip(topic),
            field: self.path.text.clone(),
            violation,
        })
    }
}

/// A point from `{"lon": .., "lat": ..}`, `[lon, lat]` (GeoJSON order, an altitude may follow) or a
/// GeoJSON Point `{"type": "Point", "coordinates": [lon, lat]}`.
fn point(json: &Json) -> Option<GeoPoint> {
    match json {
        Json::Object(o) => match o.get("coordinates") {
            Some(c) => point_array(c),
            None => Some(GeoPoint { lon: o.get("lon")?.as_f64()?, lat: o.get("lat")?.as_f64()? }),
        },
        other => point_array(other),
    }
}

fn point_array(json: &Json) -> Option<GeoPoint> {
    match json.as_array()?.as_slice() {
        [lon, lat] | [lon, lat, _] => Some(GeoPoint { lon: lon.as_f64()?, lat: lat.as_f64()? }),
        _ => None,
    }
}

fn json_kind(j: &Json) -> &'static str {
    match j {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

fn json_kind_article(j: &Json) -> &'static str {
    match j {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// `s`, cut to at most [`MAX_QUOTE`] bytes on a character boundary.
fn clip(s: &str) -> String {
    if s.len() <= MAX_QUOTE {
        return s.to_owned();
    }
    let mut end = MAX_QUOTE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// A field of a JSON payload: a dotted path (`pm25.value`) or a JSON pointer (`/pm25/value`), parsed once.
#[derive(Debug, Clone)]
struct FieldPath {
    text: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone)]
struct Segment {
    key: String,
    /// The key as an array index, when it is one.
    index: Option<usize>,
}

impl FieldPath {
    fn parse(text: &str) -> Result<FieldPath, String> {
        if text.is_empty() {
            return Err("the field is empty".into());
        }
        let keys: Vec<String> = if let Some(pointer) = text.strip_prefix('/') {
            pointer
                .split('/')
                .map(|k| unescape_pointer(k).ok_or_else(|| bad_pointer(text)))
                .collect::<Result<_, _>>()?
        } else {
            if text.split('.').any(str::is_empty) {
                return Err(format!(
                    "field {text:?} has an empty part; write keys with dots as a JSON pointer (/a.b/c)"
                ));
            }
            text.split('.').map(str::to_owned).collect()
        };
        let segments = keys
            .into_iter()
            .map(|key| {
                // RFC 6901: an index has no sign and no leading zero.
                let is_index =
                    !key.is_empty() && key.bytes().all(|c| c.is_ascii_digit()) && (key == "0" || !key.starts_with('0'));
                let index = if is_index { key.parse().ok() } else { None };
                Segment { key, index }
            })
            .collect();
        Ok(FieldPath { text: text.to_owned(), segments })
    }

    fn lookup<'a>(&self, doc: &'a Json) -> Option<&'a Json> {
        self.segments.iter().try_fold(doc, |at, s| match at {
            Json::Object(o) => o.get(&s.key),
            Json::Array(a) => a.get(s.index?),
            _ => None,
        })
    }
}

fn bad_pointer(text: &str) -> String {
    format!("field {text:?} is not a valid JSON pointer: ~ must be followed by 0 (for ~) or 1 (for /)")
}

fn unescape_pointer(k: &str) -> Option<String> {
    if !k.contains('~') {
        return Some(k.to_owned());
    }
    let mut out = String::with_capacity(k.len());
    let mut chars = k.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// An MQTT topic filter (MQTT 3.1.1 section 4.7), parsed once.
#[derive(Debug, Clone)]
struct TopicFilter {
    text: String,
    levels: Vec<Level>,
}

#[derive(Debug, Clone, PartialEq)]
enum Level {
    Literal(String),
    /// `+`: exactly one level.
    Plus,
    /// `#`: this level and all below, or none (`a/#` matches `a`).
    Hash,
}

impl TopicFilter {
    fn parse(text: &str) -> Result<TopicFilter, String> {
        let bad = |why: &str| Err(format!("topic filter {text:?} is invalid: {why}"));
        if text.is_empty() {
            return bad("it is empty");
        }
        if text.len() > u16::MAX as usize {
            return bad("it is longer than 65535 bytes");
        }
        if text.contains('\0') {
            return bad("it holds a NUL character");
        }
        let parts: Vec<&str> = text.split('/').collect();
        let mut levels = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            levels.push(match *part {
                "#" if i + 1 == parts.len() => Level::Hash,
                "#" => return bad("# must be the last level"),
                "+" => Level::Plus,
                p if p.contains(['#', '+']) => return bad("+ and # must each fill a whole level (a/+/c, a/#)"),
                p => Level::Literal(p.to_owned()),
            });
        }
        Ok(TopicFilter { text: text.to_owned(), levels })
    }

    fn hash_at(&self) -> Option<usize> {
        self.levels.iter().position(|l| *l == Level::Hash)
    }

    /// Whether `topic` matches, without allocating. Wildcards at the first level do not match topics
    /// starting with `$` (broker-internal topics such as `$SYS`), as MQTT requires.
    fn matches(&self, topic: &str) -> bool {
        if topic.starts_with('$') && matches!(self.levels.first(), Some(Level::Plus | Level::Hash)) {
            return false;
        }
        let mut parts = topic.split('/');
        for level in &self.levels {
            match level {
                Level::Hash => return true,
                Level::Plus => {
                    if parts.next().is_none() {
                        return false;
                    }
                }
                Level::Literal(l) => {
                    if parts.next() != Some(l.as_str()) {
                        return false;
                    }
                }
            }
        }
        parts.next().is_none()
    }

    /// Whether every topic `other` matches, this filter matches too.
    fn covers(&self, other: &TopicFilter) -> bool {
        if matches!(other.levels.first(), Some(Level::Literal(l)) if l.starts_with('$'))
            && matches!(self.levels.first(), Some(Level::Plus | Level::Hash))
        {
            return false;
        }
        let mut theirs = other.levels.iter();
        for mine in &self.levels {
            match (mine, theirs.next()) {
                (Level::Hash, _) => return true,
                (_, None | Some(Level::Hash)) => return false,
                (Level::Plus, Some(_)) => {}
                (Level::Literal(a), Some(Level::Literal(b))) if a == b => {}
                (Level::Literal(_), Some(_)) => return false,
            }
        }
        theirs.next().is_none()
    }
}
