//! Wire requests into store queries: filters, field masks and page tokens, validated with messages that
//! name the field.

use std::collections::BTreeSet;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use prost::Message;
use tonic::Status;
use twin_model::{AttrName, BoundingBox, Catalog, Entity, EntityId, GeoPoint, TypeName, Value};
use twin_proto::{
    convert::{attribute_to_pb, header_to_pb},
    pb,
};
use twin_store::{CompareOp, Condition, Filter};

use crate::status;

/// The largest radius a circle filter may have (half the Earth's circumference), in metres.
const MAX_RADIUS_M: f64 = 20_037_509.0;

/// Converts and checks a wire filter. Types must exist in the catalog.
pub fn filter(f: Option<pb::Filter>, catalog: &Catalog) -> Result<Filter, Status> {
    let Some(f) = f else { return Ok(Filter::default()) };
    let mut out = Filter { id_prefix: f.id_prefix, ..Default::default() };
    for t in &f.types {
        let name = TypeName::new(t).map_err(|e| status::from_id("filter.types", e))?;
        if catalog.get(&name).is_none() {
            return Err(Status::invalid_argument(format!("filter.types: unknown entity type {name}")));
        }
        out.types.push(name);
    }
    if let Some(b) = f.bbox {
        let bbox = BoundingBox::new(b.min_lon, b.min_lat, b.max_lon, b.max_lat)
            .map_err(|e| Status::invalid_argument(format!("filter.bbox: {e}")))?;
        out.bbox = Some(bbox);
    }
    if let Some(c) = f.within {
        let center: GeoPoint =
            c.center.ok_or_else(|| Status::invalid_argument("filter.within.center is required"))?.into();
        center.validate(0).map_err(|e| Status::invalid_argument(format!("filter.within.center: {e}")))?;
        if !(c.radius_m.is_finite() && c.radius_m > 0.0 && c.radius_m <= MAX_RADIUS_M) {
            return Err(Status::invalid_argument(format!(
                "filter.within.radius_m: {} is not a distance in metres within (0, {MAX_RADIUS_M}]",
                c.radius_m
            )));
        }
        out.within = Some((center, c.radius_m));
    }
    for (i, c) in f.conditions.into_iter().enumerate() {
        let attribute = AttrName::new(&c.attribute).map_err(|e| status::from_id("filter.conditions.attribute", e))?;
        let op = match pb::attribute_condition::Operator::try_from(c.op) {
            Ok(pb::attribute_condition::Operator::Eq) => CompareOp::Eq,
            Ok(pb::attribute_condition::Operator::Ne) => CompareOp::Ne,
            Ok(pb::attribute_condition::Operator::Lt) => CompareOp::Lt,
            Ok(pb::attribute_condition::Operator::Le) => CompareOp::Le,
            Ok(pb::attribute_condition::Operator::Gt) => CompareOp::Gt,
            Ok(pb::attribute_condition::Operator::Ge) => CompareOp::Ge,
            _ => {
                return Err(Status::invalid_argument(format!(
                    "filter.conditions[{i}].op must be EQ, NE, LT, LE, GT or GE"
                )));
            }
        };
        let value = c
            .value
            .ok_or_else(|| Status::invalid_argument(format!("filter.conditions[{i}].value is required")))
            .and_then(|v| Value::try_from(v).map_err(|e| status::from_convert("filter.conditions.value", e)))?;
        if value.as_f64().is_some_and(|v| !v.is_finite()) {
            return Err(Status::invalid_argument(format!("filter.conditions[{i}].value must be finite")));
        }
        out.conditions.push(Condition { attribute, op, value });
    }
    Ok(out)
}

/// Which parts of an entity a response carries.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    everything: bool,
    geometry: bool,
    relationships: bool,
    revision: bool,
    all_attributes: bool,
    attributes: BTreeSet<String>,
}

impl Selection {
    /// Selects everything.
    pub fn default_all() -> Selection {
        Selection { everything: true, ..Default::default() }
    }

    /// Parses a field mask; no mask (or an empty one) selects everything.
    pub fn from_mask(mask: Option<prost_types::FieldMask>) -> Result<Selection, Status> {
        let paths = mask.map(|m| m.paths).unwrap_or_default();
        let mut s = Selection { everything: paths.is_empty(), ..Default::default() };
        for p in paths {
            match p.as_str() {
                "id" | "type" => {}
                "geometry" => s.geometry = true,
                "relationships" => s.relationships = true,
                "revision" => s.revision = true,
                "attributes" => s.all_attributes = true,
                other => match other.strip_prefix("attributes.") {
                    Some(name) if AttrName::new(name).is_ok() => {
                        s.attributes.insert(name.to_owned());
                    }
                    _ => {
                        return Err(Status::invalid_argument(format!(
                            "field_mask: path {other:?} is not one of id, type, geometry, relationships, revision, attributes, attributes.NAME"
                        )));
                    }
                },
            }
        }
        Ok(s)
    }

    /// The selected parts of `e` in wire form, with units from the catalog.
    pub fn render(&self, e: &Entity, catalog: &Catalog) -> pb::Entity {
        let def = catalog.get(&e.header.entity_type);
        let unit = |n: &AttrName| def.and_then(|d| d.attributes.get(n)).and_then(|a| a.unit.as_deref());
        let mut out = header_to_pb(&e.header, e.revision);
        out.attributes = e
            .attributes
            .iter()
            .filter(|(n, _)| self.everything || self.all_attributes || self.attributes.contains(n.as_str()))
            .map(|(n, s)| attribute_to_pb(n, s, unit(n)))
            .collect();
        if !self.everything {
            if !self.geometry {
                out.geometry = None;
            }
            if !self.relationships {
                out.relationships.clear();
            }
            if !self.revision {
                out.revision = 0;
            }
        }
        out
    }
}

/// Page tokens: the filter's fingerprint and the last id returned, so a token cannot be replayed against a
/// different filter.
pub mod page_token {
    use super::*;

    fn fingerprint(filter: &Option<pb::Filter>) -> u64 {
        // FNV-1a over the encoded filter: stable for equal filters within one server version.
        let bytes = filter.as_ref().map(Message::encode_to_vec).unwrap_or_default();
        bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
    }

    /// Encodes a token to continue after `last`.
    pub fn encode(filter: &Option<pb::Filter>, last: &EntityId) -> String {
        let mut raw = fingerprint(filter).to_be_bytes().to_vec();
        raw.extend_from_slice(last.as_bytes());
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Decodes a token; empty means the first page.
    pub fn decode(filter: &Option<pb::Filter>, token: &str) -> Result<Option<EntityId>, Status> {
        if token.is_empty() {
            return Ok(None);
        }
        let malformed =
            || Status::invalid_argument("page_token is malformed; pass the next_page_token of a List response");
        let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| malformed())?;
        if raw.len() <= 8 {
            return Err(malformed());
        }
        let (hash, id) = raw.split_at(8);
        if hash != fingerprint(filter).to_be_bytes() {
            return Err(Status::invalid_argument("page_token was issued for a different filter"));
        }
        let id = std::str::from_utf8(id).map_err(|_| malformed())?;
        EntityId::new(id).map(Some).map_err(|_| malformed())
    }
}

/// The client's deadline from the `grpc-timeout` header, for streams: tonic enforces it only until the
/// response starts, so long-lived streams check it themselves.
pub fn deadline(metadata: &tonic::metadata::MetadataMap) -> Result<Option<tokio::time::Instant>, Status> {
    let Some(value) = metadata.get("grpc-timeout") else { return Ok(None) };
    let bad = || {
        Status::invalid_argument("grpc-timeout header is malformed (want up to 8 digits and a unit H, M, S, m, u or n)")
    };
    let text = value.to_str().map_err(|_| bad())?;
    if text.len() < 2 || text.len() > 9 {
        return Err(bad());
    }
    let (digits, unit) = text.split_at(text.len() - 1);
    let amount: u64 = digits.parse().map_err(|_| bad())?;
    let timeout = match unit {
        "H" => std::time::Duration::from_secs(amount.saturating_mul(3600)),
        "M" => std::time::Duration::from_secs(amount.saturating_mul(60)),
        "S" => std::time::Duration::from_secs(amount),
        "m" => std::time::Duration::from_millis(amount),
        "u" => std::time::Duration::from_micros(amount),
        "n" => std::time::Duration::from_nanos(amount),
        _ => return Err(bad()),
    };
    Ok(tokio::time::Instant::now().checked_add(timeout))
}

/// Sleeps until the deadline, or forever without one.
pub async fn until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(v: &str) -> tonic::metadata::MetadataMap {
        let mut m = tonic::metadata::MetadataMap::new();
        m.insert("grpc-timeout", v.parse().unwrap());
        m
    }

    #[test]
    fn grpc_timeout_parses_every_unit_and_rejects_garbage() {
        let now = tokio::time::Instant::now();
        let d = deadline(&meta("1500m")).unwrap().unwrap();
        assert!(d >= now + std::time::Duration::from_millis(1_500) && d < now + std::time::Duration::from_secs(3));
        assert!(deadline(&meta("2H")).unwrap().is_some());
        assert!(deadline(&tonic::metadata::MetadataMap::new()).unwrap().is_none());
        for bad in ["", "5", "12x", "abcS", "123456789S"] {
            let mut m = tonic::metadata::MetadataMap::new();
            if !bad.is_empty() {
                m.insert("grpc-timeout", bad.parse().unwrap());
                assert!(deadline(&m).is_err(), "{bad}");
            }
        }
    }
}
