//! The twin state store: the live state of every city entity, its change log and its history, kept in
//! sled and served from memory.
//!
//! # Modules
//! - [`keys`]: the on-disk key layout.
//! - [`write`]: write batches and their outcomes ([`WriteBatch`], [`WriteOutcome`], [`Rejected`]).
//! - [`commit`]: the committer thread: validation, last-writer-wins, group commit, fsync.
//! - [`state`]: the in-memory view: entities, type index, spatial index, edge sequence numbers.
//! - [`query`]: filters and paged listing.
//! - [`history`]: per-attribute history, downsampling and retention.
//! - [`changes`]: the change log records, live change broadcast and resume.
//!
//! # Design
//! One committer thread owns every write. Callers hand it a [`WriteBatch`] and await the outcome. The
//! committer takes every batch already queued (up to `max_group_batches`) as one *group*, validates each
//! update against the catalog and applies last-writer-wins by `observed_at` to the in-memory state. It then
//! writes the group's durable record (its changes to the change log, observations older than the latest
//! value, entity headers, the per-edge dedup records and the revision) as **one atomic sled batch**, flushes
//! and, with [`Durability::Fsync`], fsyncs the database files once for the whole group, and only then
//! answers the callers and broadcasts the changes to watchers.
//!
//! The latest attribute state and the history chunks are **checkpoints** of that log, written every
//! `checkpoint_interval` (and at shutdown); on open the store loads the checkpoint and replays the log after
//! it. Retention deletes the log records a checkpoint covers, beyond the revisions kept for watch resume.
//! This keeps the ack path to a few large sled records per group: sled 0.34 keeps a copy of a node in memory
//! for each small rewrite until it consolidates, so rewriting every attribute and history chunk per group cost
//! most of the CPU and grew memory by kilobytes per update. So:
//!
//! - **An acknowledged batch is durable** (power loss included with `Fsync`; process crash with
//!   `OsBuffered`), and a batch is either wholly applied or not at all.
//! - **A replayed batch is applied exactly once**: the edge's last applied sequence number is stored in
//!   the same atomic batch as the updates; a batch at or below it is answered as a duplicate.
//! - **A read issued after an acknowledgement sees the write**: reads are served from the in-memory state
//!   (and, for history, the chunks not yet checkpointed), which is updated before the group is written. The
//!   converse caveat: a read may see a value up to one group commit (milliseconds) before it is durable.
//!   Watchers never do: they are fed only after the fsync.
//! - If the disk fails, the store stops accepting writes ([`StoreError::Failed`]) rather than let memory and
//!   disk disagree; a restart recovers from disk.

pub mod changes;
pub mod commit;
pub mod history;
pub mod keys;
pub mod query;
pub mod state;
pub mod write;

mod config;
mod error;
mod store;

pub use changes::{Change, ChangeGroup};
pub use config::{Durability, StoreConfig};
pub use error::StoreError;
pub use history::{HistoryBucket, HistoryPoints};
pub use query::{CompareOp, Condition, Filter, ListPage};
pub use state::EdgeProgress;
pub use store::{PendingWrite, Store};
pub use write::{AttributeUpdate, RejectReason, Rejected, Target, WriteBatch, WriteOutcome, WriteSummary};
