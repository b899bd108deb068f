//! The compact wire encoding of update batches on one ingest stream.
//!
//! 5G bytes cost money, and most of a naive update is names: an NGSI-LD entity id is 40-60 bytes and
//! repeats in every reading. On a stream, each entity id and attribute name is sent once as a `Symbol`
//! (a small number) in the first batch that uses it; later updates carry only the numbers. Observed times
//! are offsets (zigzag varints) from the batch's earliest time. Symbols live as long as the stream: a
//! [`SessionEncoder`] belongs to one stream and is dropped on reconnect, so a batch replayed on a new stream
//! defines its symbols again. Encoding happens at send time, from the stored updates, which is what makes
//! replays safe.

use std::sync::Arc;

use twin_model::{AttrName, EntityId, UnixMs, Value};
use twin_proto::pb;

/// One update to encode.
#[derive(Debug, Clone, Copy)]
pub struct UpdateRef<'a> {
    /// The entity.
    pub entity: &'a EntityId,
    /// The attribute.
    pub attribute: &'a AttrName,
    /// The value.
    pub value: &'a Value,
    /// When it was observed.
    pub observed_at: UnixMs,
}

impl<'a> From<&'a twin_outbox::OutboxUpdate> for UpdateRef<'a> {
    fn from(u: &'a twin_outbox::OutboxUpdate) -> Self {
        UpdateRef { entity: &u.entity, attribute: &u.attribute, value: &u.value, observed_at: u.observed_at }
    }
}

/// The symbol table of one ingest stream.
#[derive(Debug, Default)]
pub struct SessionEncoder {
    symbols: foldhash::HashMap<Arc<str>, u32>,
    next: u32,
}

impl SessionEncoder {
    /// A fresh table, for a new stream.
    pub fn new() -> Self {
        SessionEncoder::default()
    }

    /// How many names the stream has defined.
    pub fn defined(&self) -> usize {
        self.symbols.len()
    }

    fn symbol(&mut self, name: &str, new: &mut Vec<pb::Symbol>) -> u32 {
        if let Some(id) = self.symbols.get(name) {
            return *id;
        }
        let id = self.next;
        self.next += 1;
        self.symbols.insert(Arc::from(name), id);
        new.push(pb::Symbol { id, name: name.to_owned() });
        id
    }

    /// Encodes `updates` as batch `seq`, defining the names this stream has not seen yet.
    pub fn encode<'a>(&mut self, seq: u64, updates: impl IntoIterator<Item = UpdateRef<'a>> + Clone) -> pb::Batch {
        let base = updates.clone().into_iter().map(|u| u.observed_at).min().unwrap_or(0);
        let mut batch = pb::Batch { seq, base_time_unix_ms: base, ..Default::default() };
        for u in updates {
            let entity = self.symbol(u.entity, &mut batch.symbols);
            let attribute = self.symbol(u.attribute, &mut batch.symbols);
            batch.updates.push(pb::Update {
                entity: Some(pb::update::Entity::EntitySymbol(entity)),
                attribute: Some(pb::update::Attribute::AttributeSymbol(attribute)),
                value: Some(u.value.into()),
                observed_offset_ms: u.observed_at - base,
            });
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use prost::Message;

    use super::*;

    /// Resolves a batch the way the cloud does, with the stream's symbols so far.
    fn decode(batch: &pb::Batch, names: &mut HashMap<u32, String>) -> Vec<(String, String, Value, UnixMs)> {
        for s in &batch.symbols {
            names.insert(s.id, s.name.clone());
        }
        batch
            .updates
            .iter()
            .map(|u| {
                let (Some(pb::update::Entity::EntitySymbol(e)), Some(pb::update::Attribute::AttributeSymbol(a))) =
                    (&u.entity, &u.attribute)
                else {
                    panic!("names are sent as symbols")
                };
                let value = Value::try_from(u.value.clone().unwrap()).unwrap();
                (names[e].clone(), names[a].clone(), value, batch.base_time_unix_ms + u.observed_offset_ms)
            })
            .collect()
    }

    #[test]
    fn names_are_defined_once_per_stream_and_round_trip() {
        let ids: Vec<EntityId> = (0..3)
            .map(|i| EntityId::new(&format!("urn:ngsi-ld:AirQualityObserved:changsha:yuelu:{i:04}")).unwrap())
            .collect();
        let (pm25, no2) = (AttrName::new("pm25").unwrap(), AttrName::new("no2").unwrap());
        let values: Vec<Value> = (0..6).map(|i| Value::Number(10.0 + i as f64)).collect();
        let t0 = 1_763_800_000_000;
        let updates = |k: i64| -> Vec<UpdateRef<'_>> {
            (0..6)
                .map(|i| UpdateRef {
                    entity: &ids[i % 3],
                    attribute: if i < 3 { &pm25 } else { &no2 },
                    value: &values[i],
                    observed_at: t0 + k * 60_000 + i as i64 * 10,
                })
                .collect()
        };
        let mut encoder = SessionEncoder::new();
        let first = encoder.encode(1, updates(0));
        assert_eq!(first.symbols.len(), 5, "3 entities and 2 attributes");
        let second = encoder.encode(2, updates(1));
        assert!(second.symbols.is_empty(), "names are not sent again on the same stream");
        let mut names = HashMap::new();
        for (batch, k) in [(&first, 0), (&second, 1)] {
            let decoded = decode(batch, &mut names);
            let expected: Vec<_> = updates(k)
                .iter()
                .map(|u| (u.entity.to_string(), u.attribute.to_string(), u.value.clone(), u.observed_at))
                .collect();
            assert_eq!(decoded, expected);
        }
        // A new stream (after a reconnect) defines its names again.
        let replay = SessionEncoder::new().encode(2, updates(1));
        assert_eq!(replay.symbols.len(), 5);
        assert_eq!(decode(&replay, &mut HashMap::new()).len(), 6);
        // With names as symbols an update costs about 20 bytes (8 of them the f64), against about 70 with
        // the names in full.
        let mut named = second.clone();
        for u in &mut named.updates {
            let (Some(pb::update::Entity::EntitySymbol(e)), Some(pb::update::Attribute::AttributeSymbol(a))) =
                (u.entity.clone(), u.attribute.clone())
            else {
                panic!("names are sent as symbols")
            };
            u.entity = Some(pb::update::Entity::EntityId(names[&e].clone()));
            u.attribute = Some(pb::update::Attribute::AttributeName(names[&a].clone()));
        }
        let per_update = second.encoded_len() as f64 / second.updates.len() as f64;
        let per_named = named.encoded_len() as f64 / named.updates.len() as f64;
        assert!(per_update <= 21.0 && per_update * 3.0 < per_named, "{per_update} vs {per_named} bytes per update");
    }
}
