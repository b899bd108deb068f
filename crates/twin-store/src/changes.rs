//! Change records: what the change log stores and what watchers receive.
//!
//! Every change that alters the latest state gets its own revision. The committer writes the changes of a
//! group as log records of at most [`MAX_CHANGES_PER_RECORD`] changes, keyed by their first revision
//! (small records stay inline in sled's log rather than becoming separate blob files), and broadcasts the
//! group to live watchers after it is durable.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use twin_model::{AttrName, EntityId, EntityStatic, Reported, UnixMs, Value};

/// The most changes in one change-log record.
pub const MAX_CHANGES_PER_RECORD: usize = 512;

/// One change to the latest state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Change {
    /// An entity was created or its static part changed.
    Upsert {
        /// The revision of this change.
        revision: u64,
        /// The new static part.
        header: EntityStatic,
    },
    /// An attribute's reported value changed.
    Attribute {
        /// The revision of this change.
        revision: u64,
        /// The entity.
        entity: EntityId,
        /// The attribute.
        attribute: AttrName,
        /// The new reported value.
        reported: Reported,
    },
}

impl Change {
    /// The revision of this change.
    pub fn revision(&self) -> u64 {
        match self {
            Change::Upsert { revision, .. } | Change::Attribute { revision, .. } => *revision,
        }
    }

    /// The entity changed.
    pub fn entity(&self) -> &EntityId {
        match self {
            Change::Upsert { header, .. } => &header.id,
            Change::Attribute { entity, .. } => entity,
        }
    }
}

/// The changes of one committed group, in revision order; what watchers receive.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChangeGroup {
    /// The store revision after the group.
    pub revision: u64,
    /// The changes (possibly none, e.g. when every update was stale).
    pub changes: Vec<Change>,
}

/// A shared, immutable change group.
pub type SharedChanges = Arc<ChangeGroup>;

/// An accepted observation older than the attribute's latest value: it goes to history only, so it is not a
/// change and has no revision; the `W` records keep it durable until the next checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StalePoint {
    /// The entity.
    pub entity: EntityId,
    /// The attribute.
    pub attribute: AttrName,
    /// When it was observed.
    pub observed_at: UnixMs,
    /// The value.
    pub value: Value,
}
