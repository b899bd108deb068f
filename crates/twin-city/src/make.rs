//! Entity construction: ids, relationships and static attribute values.
//!
//! Static attributes (a building's height, a road's lane count) are stored as reported values observed
//! at [`STATIC_OBSERVED_AT`] (2000-01-01), so any live reading, which is always newer, wins under the
//! twin's last-writer-wins rule.

use twin_model::{
    AttrName, AttributeState, Entity, EntityId, EntityStatic, Geometry, Reported, TypeName, UnixMs, Value,
};

/// When static attribute values count as observed: 2000-01-01T00:00:00Z, in Unix ms.
pub const STATIC_OBSERVED_AT: UnixMs = twin_model::MIN_OBSERVED_AT;

/// A validated entity id from a generated string. Generated ids are printable ASCII by construction.
pub(crate) fn entity_id(s: &str) -> EntityId {
    #[allow(clippy::expect_used)]
    EntityId::new(s).expect("generated ids are printable ascii and short")
}

fn attr_name(s: &str) -> AttrName {
    #[allow(clippy::expect_used)]
    AttrName::new(s).expect("attribute names in this crate are valid identifiers")
}

/// Builds one entity.
#[derive(Debug)]
pub(crate) struct Make(Entity);

impl Make {
    /// An entity of `entity_type` with `id` and `geometry`.
    pub(crate) fn new(id: EntityId, entity_type: &str, geometry: Option<Geometry>) -> Self {
        #[allow(clippy::expect_used)]
        let entity_type = TypeName::new(entity_type).expect("type names in this crate are valid identifiers");
        Make(Entity::new(EntityStatic { id, entity_type, geometry, relationships: Default::default() }))
    }

    /// Adds a relationship.
    pub(crate) fn rel(mut self, name: &str, target: &EntityId) -> Self {
        self.0.header.relationships.insert(attr_name(name), target.clone());
        self
    }

    /// Adds a static attribute value.
    pub(crate) fn attr(mut self, name: &str, value: Value) -> Self {
        let reported = Reported { value, observed_at: STATIC_OBSERVED_AT, received_at: 0, revision: 0 };
        self.0.attributes.insert(attr_name(name), AttributeState { reported: Some(reported), desired: None });
        self
    }

    /// Adds a number, rounded to 0.01.
    pub(crate) fn num(self, name: &str, v: f64) -> Self {
        self.attr(name, Value::Number((v * 100.0).round() / 100.0))
    }

    /// Adds an integer.
    pub(crate) fn int(self, name: &str, v: i64) -> Self {
        self.attr(name, Value::Integer(v))
    }

    /// Adds a text.
    pub(crate) fn text(self, name: &str, v: &str) -> Self {
        self.attr(name, Value::Text(v.to_owned()))
    }

    /// The id of the entity being built.
    pub(crate) fn id(&self) -> &EntityId {
        &self.0.header.id
    }

    /// The entity.
    pub(crate) fn build(self) -> Entity {
        self.0
    }
}
