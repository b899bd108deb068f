//! The outbox's error type.

/// Why an outbox operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// sled reported an error.
    #[error("outbox storage error")]
    Storage(#[from] sled::Error),
    /// Fsyncing or opening a file failed.
    #[error("outbox i/o error")]
    Io(#[from] std::io::Error),
    /// A stored record could not be decoded.
    #[error("corrupt outbox record {key}: {reason}")]
    Corrupt {
        /// The record's key, escaped.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The configuration is unusable.
    #[error("invalid outbox config: {0}")]
    InvalidConfig(String),
    /// The append would take the outbox over its disk budget and the policy refused it (or, with
    /// [`crate::WhenFull::DropOldestHistory`], dropping every droppable batch would not make room).
    #[error("outbox full: {needed_bytes} bytes needed, {used_bytes} of {budget_bytes} in use")]
    Full {
        /// The encoded size of the refused updates.
        needed_bytes: u64,
        /// The bytes in use.
        used_bytes: u64,
        /// The configured budget.
        budget_bytes: u64,
    },
    /// One update alone is larger than a batch may be.
    #[error("update for {entity}/{attribute} is {bytes} bytes encoded; a batch holds at most {max}")]
    UpdateTooLarge {
        /// The update's entity.
        entity: String,
        /// The update's attribute.
        attribute: String,
        /// Its encoded size.
        bytes: usize,
        /// `max_batch_bytes` less the record header.
        max: usize,
    },
    /// An earlier write failed, so memory and disk may disagree; the outbox refuses further writes.
    /// Reopen it to recover from disk.
    #[error("outbox stopped after a storage error; reopen it")]
    Failed,
}
