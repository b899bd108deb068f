//! Entities and their attribute state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{AttrName, EntityId, Geometry, TypeName, UnixMs, Value};

/// The static part of an entity: what it is and where. Attributes change often; this rarely does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityStatic {
    /// The entity id.
    pub id: EntityId,
    /// Its type in the catalog.
    pub entity_type: TypeName,
    /// Where it is, if it has a place.
    pub geometry: Option<Geometry>,
    /// Named links to other entities, e.g. `refDistrict`.
    pub relationships: BTreeMap<AttrName, EntityId>,
}

/// A value as reported by the source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reported {
    /// The value.
    pub value: Value,
    /// When the source observed it.
    pub observed_at: UnixMs,
    /// When the cloud received it.
    pub received_at: UnixMs,
    /// The store revision that wrote it.
    pub revision: u64,
}

/// Reported and desired state of one attribute (like a device shadow).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AttributeState {
    /// The latest value the device reported, by `observed_at`.
    pub reported: Option<Reported>,
    /// The value an operator asked for, if any.
    pub desired: Option<Reported>,
}

/// An entity with its live state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    /// Identity, type, geometry and relationships.
    pub header: EntityStatic,
    /// Attribute state by name.
    pub attributes: BTreeMap<AttrName, AttributeState>,
    /// The store revision of the last change to this entity.
    pub revision: u64,
}

impl Entity {
    /// A new entity with no attribute state.
    pub fn new(header: EntityStatic) -> Self {
        Entity { header, attributes: BTreeMap::new(), revision: 0 }
    }

    /// The entity id.
    pub fn id(&self) -> &EntityId {
        &self.header.id
    }

    /// The reported value of `attribute`, if any.
    pub fn reported(&self, attribute: &str) -> Option<&Value> {
        self.attributes.get(attribute).and_then(|a| a.reported.as_ref()).map(|r| &r.value)
    }
}
