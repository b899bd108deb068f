use twin_model::{AttrName, EntityId, TypeName};

/// Errors from the store. Rejected updates are not errors: see [`crate::Rejected`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed.
    #[error("storage error: {0}")]
    Sled(#[from] sled::Error),
    /// A file operation (fsync, directory listing) failed.
    #[error("storage i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// A record on disk does not decode.
    #[error("corrupt record under key {key:?}: {reason}")]
    Corrupt {
        /// The key, escaped.
        key: String,
        /// Why it does not decode.
        reason: String,
    },
    /// An earlier storage failure stopped the store; memory and disk may disagree until it is reopened.
    #[error("the store stopped after a storage failure; restart the service to recover from disk")]
    Failed,
    /// The store is shutting down.
    #[error("the store is shutting down")]
    Closed,
    /// No such entity.
    #[error("entity {0} not found")]
    NotFound(EntityId),
    /// The entity's type has no such attribute.
    #[error("type {entity_type} of entity {entity} has no attribute {attribute}")]
    UnknownAttribute {
        /// The entity.
        entity: EntityId,
        /// Its type.
        entity_type: TypeName,
        /// The attribute asked for.
        attribute: AttrName,
    },
    /// Downsampling asked of an attribute that is not numeric.
    #[error("attribute {attribute} is not numeric, so it cannot be downsampled into min/max/avg buckets")]
    NotNumeric {
        /// The attribute.
        attribute: AttrName,
    },
    /// A resume point older than the change log reaches.
    #[error(
        "the change log no longer reaches back to revision {requested} (oldest kept: {oldest}); re-list and watch again"
    )]
    ResumeTooOld {
        /// The revision asked for.
        requested: u64,
        /// The oldest revision still in the log.
        oldest: u64,
    },
    /// A resume point beyond the current revision.
    #[error("revision {requested} is ahead of the store (current revision {current})")]
    ResumeAhead {
        /// The revision asked for.
        requested: u64,
        /// The current revision.
        current: u64,
    },
}
