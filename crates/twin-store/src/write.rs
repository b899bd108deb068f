//! Write batches and what became of them.

use std::fmt;

use twin_model::{AttrName, EdgeId, EntityId, EntityStatic, TypeName, UnixMs, Value, Violation};

/// Observed times before this (2000-01-01) are rejected as implausible.
pub use twin_model::MIN_OBSERVED_AT;
/// Observed times more than this far ahead of the cloud's clock are rejected.
pub const MAX_CLOCK_AHEAD_MS: i64 = 24 * 3600 * 1000;

/// One reported attribute value.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeUpdate {
    /// The entity.
    pub entity: EntityId,
    /// The attribute.
    pub attribute: AttrName,
    /// The value, checked against the catalog by the store.
    pub value: Value,
    /// When the source observed it.
    pub observed_at: UnixMs,
}

/// A group of changes applied atomically.
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    /// The edge and batch sequence number, for exactly-once application of replays. `None` for writes
    /// that are idempotent by themselves (bulk loads).
    pub origin: Option<(EdgeId, u64)>,
    /// Entities to create or update, applied first.
    pub upserts: Vec<EntityStatic>,
    /// Attribute updates.
    pub updates: Vec<AttributeUpdate>,
}

/// Which item of a [`WriteBatch`] a rejection refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `upserts[i]`.
    Upsert(usize),
    /// `updates[i]`.
    Update(usize),
}

/// Why an item was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RejectReason {
    /// The entity does not exist.
    #[error("entity {0} does not exist; upsert or load it first")]
    UnknownEntity(EntityId),
    /// The value or type breaks the catalog.
    #[error("entity {entity}: {violation}")]
    Catalog {
        /// The entity.
        entity: EntityId,
        /// The rule broken.
        violation: Violation,
    },
    /// An upsert would change an existing entity's type.
    #[error("entity {entity} has type {existing}; it cannot become {requested}")]
    TypeChange {
        /// The entity.
        entity: EntityId,
        /// Its type.
        existing: TypeName,
        /// The type sent.
        requested: TypeName,
    },
    /// The observed time is implausible.
    #[error(
        "entity {entity} attribute {attribute}: observed time {observed_at} ms is before 2000 or more than a day ahead of the cloud clock"
    )]
    InvalidTimestamp {
        /// The entity.
        entity: EntityId,
        /// The attribute.
        attribute: AttrName,
        /// The observed time sent.
        observed_at: UnixMs,
    },
}

/// A rejected item and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// Which item.
    pub target: Target,
    /// Why.
    pub reason: RejectReason,
}

/// What an applied batch did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteSummary {
    /// The store revision after the batch.
    pub revision: u64,
    /// Updates that changed the latest state.
    pub applied: u32,
    /// Updates kept in history only, because the latest state holds a newer (or the same) observation.
    pub stale: u32,
    /// Updates equal (value and observed time) to the attribute's latest stored observation: ignored, as
    /// they were applied before.
    pub repeated: u32,
    /// Upserts that created or changed an entity.
    pub upserts_changed: u32,
    /// Upserts identical to the stored entity.
    pub upserts_unchanged: u32,
    /// Rejected items, in batch order.
    pub rejected: Vec<Rejected>,
}

/// The outcome of a write.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOutcome {
    /// The batch was applied (possibly with rejections) and is durable.
    Applied(WriteSummary),
    /// The batch's sequence number was applied before; nothing was applied again.
    Duplicate {
        /// The edge's highest applied sequence number.
        last_applied_seq: u64,
        /// The store revision.
        revision: u64,
    },
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Upsert(i) => write!(f, "upserts[{i}]"),
            Target::Update(i) => write!(f, "updates[{i}]"),
        }
    }
}
