use std::{path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

/// When an acknowledged write is safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Durability {
    /// Flush sled and fsync (fdatasync) its files before acknowledging: an acknowledged write survives a
    /// power cut. One fsync serves a whole group of batches.
    #[default]
    Fsync,
    /// Flush sled to the operating system before acknowledging, without fsync: an acknowledged write
    /// survives the process being killed, but writes from the last moments before a power cut or kernel
    /// crash may be lost. Faster on slow disks; for test rigs and caches, not for a city's record.
    OsBuffered,
}

/// How to open a [`crate::Store`].
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The sled directory.
    pub path: PathBuf,
    /// When writes are acknowledged.
    pub durability: Durability,
    /// The most write batches committed together in one group (one sled batch, one fsync).
    pub max_group_batches: usize,
    /// How many write batches may wait for the committer before writers wait (backpressure).
    pub queue_batches: usize,
    /// History older than this (by observed time) is deleted.
    pub history_retention: Duration,
    /// How many revisions the change log keeps for watch resume.
    pub changelog_revisions: u64,
    /// How often retention runs.
    pub retention_interval: Duration,
    /// How many committed groups the live change broadcast buffers; a watcher further behind is told to
    /// resync.
    pub watch_buffer_groups: usize,
    /// sled's page cache size in bytes.
    pub cache_bytes: u64,
    /// How often the latest state and history are checkpointed from the change log; a restart replays at
    /// most this much of the log. Shorter restarts after a crash cost CPU all the time: each checkpoint
    /// rewrites every attribute changed since the last one.
    pub checkpoint_interval: Duration,
}

impl StoreConfig {
    /// `history_retention` in milliseconds, as observed times are kept.
    pub(crate) fn history_retention_ms(&self) -> i64 {
        self.history_retention.as_millis().min(i64::MAX as u128) as i64
    }

    /// Defaults for a store at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StoreConfig {
            path: path.into(),
            durability: Durability::Fsync,
            max_group_batches: 256,
            queue_batches: 1024,
            history_retention: Duration::from_secs(7 * 24 * 3600),
            changelog_revisions: 2_000_000,
            retention_interval: Duration::from_secs(60),
            watch_buffer_groups: 1024,
            cache_bytes: 256 * 1024 * 1024,
            checkpoint_interval: Duration::from_secs(30),
        }
    }
}
