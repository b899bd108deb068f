//! What sources produce: readings of entity attributes, sent in groups over a bounded channel to the
//! agent, which filters them through the deadband and appends them to the outbox.
//!
//! A source never blocks on the network or the disk: it sends a group of [`Readings`] per poll (a simulator
//! tick, an MQTT message) and, when the channel is full, waits, which slows that source alone. A source that
//! must confirm delivery upstream (the MQTT bridge acknowledges a QoS 1 message to its broker) attaches a
//! [`Readings::on_stored`] notifier and confirms only once the agent has made the group durable.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};
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

/// A group of readings from one poll of a source.
#[derive(Debug, Default)]
pub struct Readings {
    /// The readings.
    pub readings: Vec<Reading>,
    /// Fired once the group is dealt with for good: every reading stored durably in the outbox, or held
    /// back by the deadband, or refused by a full outbox under its stated policy. Dropped unfired if the
    /// agent fails first, so the source must not confirm the group upstream.
    pub on_stored: Option<oneshot::Sender<()>>,
}

impl From<Vec<Reading>> for Readings {
    fn from(readings: Vec<Reading>) -> Self {
        Readings { readings, on_stored: None }
    }
}

impl std::ops::Deref for Readings {
    type Target = Vec<Reading>;

    fn deref(&self) -> &Vec<Reading> {
        &self.readings
    }
}

impl IntoIterator for Readings {
    type Item = Reading;
    type IntoIter = std::vec::IntoIter<Reading>;

    fn into_iter(self) -> Self::IntoIter {
        self.readings.into_iter()
    }
}

/// Where sources send their readings.
pub type ReadingSender = mpsc::Sender<Readings>;
/// Where the agent receives them.
pub type ReadingReceiver = mpsc::Receiver<Readings>;

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
