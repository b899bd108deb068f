//! What sources produce: readings of entity attributes, sent in groups over a bounded channel to the
//! agent, which filters them through the deadband and appends them to the outbox.
//!
//! A source never blocks on the network or the disk: it sends a `Vec<Reading>` per poll (a simulator
//! tick, an MQTT message) and, when the channel is full, waits, which slows that source alone.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;
use twin_model::TypeName;
use twin_outbox::OutboxUpdate;

/// One value read by a source.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// The entity's type in the catalog (the deadband's rules are per type and attribute).
    pub entity_type: TypeName,
    /// The value, as it will be stored in the outbox and sent.
    pub update: OutboxUpdate,
}

/// Where sources send their readings.
pub type ReadingSender = mpsc::Sender<Vec<Reading>>;
/// Where the agent receives them.
pub type ReadingReceiver = mpsc::Receiver<Vec<Reading>>;

/// A counter shared between a source task and whoever reports on it.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}
