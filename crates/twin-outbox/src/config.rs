//! Outbox settings and the policy when the disk budget is reached.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::OutboxError;

/// What [`crate::Outbox::append`] does when the new updates would take the outbox over its disk budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Delete the oldest sealed batches until the new updates fit, but first carry every update in them
    /// that is still the latest value of its attribute forward into the open batch, so the latest value of
    /// every attribute survives and only history is lost. Dropped updates are counted in
    /// [`crate::OutboxStats::dropped_by_policy`].
    #[default]
    DropOldestHistory,
    /// Refuse the append with [`OutboxError::Full`]; nothing already stored is touched. Refused updates
    /// are counted in [`crate::OutboxStats::rejected_when_full`].
    RejectNew,
}

/// How an [`crate::Outbox`] is opened.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxConfig {
    /// The sled directory; created if missing. One outbox per directory (sled locks it).
    pub path: PathBuf,
    /// The most bytes of batch records (sealed and open, as encoded) the outbox keeps. sled's files take
    /// more than this on disk (its log is garbage-collected lazily): allow about twice the budget.
    pub disk_budget_bytes: u64,
    /// What to do when an append would exceed `disk_budget_bytes`.
    pub when_full: WhenFull,
    /// The most updates one sealed batch holds; the open batch is sealed when it reaches this.
    pub max_batch_updates: usize,
    /// The most encoded bytes one batch record holds (keep it under sled's ~128 KiB blob threshold, since
    /// sled never fsyncs blob files of its own accord).
    pub max_batch_bytes: usize,
    /// Fsync the database files before [`crate::Outbox::append`] and [`crate::Outbox::seal`] return
    /// (survives power loss). Without it writes survive a process crash but not a power cut.
    pub fsync: bool,
    /// The most dead letters kept; beyond it the oldest are deleted and counted.
    pub max_dead_letters: usize,
    /// sled's page cache, in bytes.
    pub cache_bytes: u64,
}

impl OutboxConfig {
    /// The defaults for a directory: a 1 GiB budget, [`WhenFull::DropOldestHistory`], batches of at most
    /// 250 updates or 100 KB, fsync on, 10,000 dead letters, a 32 MiB cache.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        OutboxConfig {
            path: path.into(),
            disk_budget_bytes: 1 << 30,
            when_full: WhenFull::default(),
            max_batch_updates: 250,
            max_batch_bytes: 100_000,
            fsync: true,
            max_dead_letters: 10_000,
            cache_bytes: 32 << 20,
        }
    }

    /// Checks the settings are usable together.
    pub(crate) fn validate(&self) -> Result<(), OutboxError> {
        let invalid = |msg: String| Err(OutboxError::InvalidConfig(msg));
        if self.max_batch_updates == 0 {
            return invalid("max_batch_updates must be at least 1".into());
        }
        if self.max_batch_bytes < 1_024 || self.max_batch_bytes > 120 * 1_024 {
            return invalid(format!(
                "max_batch_bytes is {}; it must be between 1 KiB and 120 KiB (sled does not fsync larger values)",
                self.max_batch_bytes
            ));
        }
        if self.disk_budget_bytes < 4 * self.max_batch_bytes as u64 {
            return invalid(format!(
                "disk_budget_bytes ({}) must be at least four batches (4 x max_batch_bytes = {})",
                self.disk_budget_bytes,
                4 * self.max_batch_bytes
            ));
        }
        Ok(())
    }
}
