//! The twin state store: the live state of every city entity, its change log and its history, kept in
//! sled and served from memory.
//!
//! # Modules
//! - [`keys`]: the on-disk key layout.
//! - [`write`]: write batches and their outcomes ([`WriteBatch`], [`WriteOutcome`], [`Rejected`]).
//! - [`commit`]: the committer thread: validation, last-writer-wins, group commit, fsync.
//! - [`durability`]: making sled's files durable (sled's own flush does not fsync).
//! - [`state`]: the in-memory view: entities, type index, spatial index, edge sequence numbers.
//! - [`query`]: filters and paged listing.
//! - [`history`]: per-attribute history, downsampling and retention.
//! - [`changes`]: the change log records, live change broadcast and resume.
//!
//! # Design
//! One committer thread owns every write. Callers hand it a [`WriteBatch`] and await the outcome. The
//! committer takes every batch already queued (up to `max_group_batches`) as one *group*, validates each
//! update against the catalog, applies last-writer-wins by `observed_at` to the in-memory state, and
//! writes all of the group's records (state, history, change log, per-edge dedup, revision) as **one
//! atomic sled batch**. It then flushes and, with [`Durability::Fsync`], fsyncs the database files once
//! for the whole group, and only then answers the callers and broadcasts the changes to watchers. So:
//!
//! - **An acknowledged batch is durable** (power loss included with `Fsync`; process crash with
//!   `OsBuffered`), and a batch is either wholly applied or not at all.
//! - **A replayed batch is applied exactly once**: the edge's last applied sequence number is stored in
//!   the same atomic batch as the updates; a batch at or below it is answered as a duplicate.
//! - **A read issued after an acknowledgement sees the write**: reads are served from the in-memory state,
//!   which is updated before the group is written. The converse caveat: a read may see a value up to one
//!   group commit (milliseconds) before it is durable. Watchers never do: they are fed only after the fsync.
//! - If the disk fails, the store stops accepting writes ([`StoreError::Failed`]) rather than let memory and
//!   disk disagree; a restart recovers from disk.
//!
//! Recovery on open reads the latest state, the edges' sequence numbers and the revision counter back from
//! sled; history and the change log are read on demand.

pub mod changes;
pub mod commit;
pub mod durability;
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
pub use store::{PendingWrite, Store};
pub use write::{AttributeUpdate, RejectReason, Rejected, Target, WriteBatch, WriteOutcome, WriteSummary};
