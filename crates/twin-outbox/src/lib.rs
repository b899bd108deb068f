//! The edge box's durable outbox: every update is durable on the box before it is sent, survives a
//! `kill -9` and a power cut, stays within a disk budget with a stated policy when full, and reaches the
//! cloud exactly once per batch.
//!
//! # Modules
//! - [`outbox`]: the [`Outbox`] handle and its records ([`OutboxUpdate`], [`SealedBatch`], [`DeadLetter`],
//!   [`OutboxStats`]), and the [`Sealed`] announcements the uplink wakes on.
//! - [`config`]: [`OutboxConfig`] and the full policy [`WhenFull`].
//! - [`format`](mod@format): the on-disk key layout and record encoding.
//! - fsyncing sled's files (sled's own flush does not) is `twin_fsync::FileSyncer`, shared with the cloud store.
//!
//! # Model
//! Updates are appended to an **open batch**. When it reaches `max_batch_updates` or `max_batch_bytes`, or
//! when the uplink calls [`Outbox::seal`], it is **sealed**: it gets the next batch sequence number and is
//! immutable from then on; each seal is announced once durable ([`Outbox::subscribe_seals`]), so the uplink
//! sends a batch as soon as it is sealed. The newest sealed batches are also kept in memory
//! ([`Outbox::recent_sealed_after`], up to [`RECENT_SEALED_BATCHES`]), so a batch just sealed goes out without
//! being read back and decoded. The uplink sends sealed batches in seq order ([`Outbox::sealed_after`]) and, after
//! a reconnect or restart, replays exactly the same batches; the cloud applies a batch only if its seq is
//! above the highest it applied for this edge, so a seq must always denote the same content. The cloud's
//! ack deletes every batch up to its seq ([`Outbox::ack`], cumulative). Updates the cloud rejected are moved
//! to dead letters ([`Outbox::dead_letter`]) and do not block anything.
//!
//! After an outage the uplink first sends [`Outbox::latest`] (the newest unacknowledged value of each
//! attribute, kept in memory) under its own dedup identity, so the current state reaches the cloud early,
//! then the backlog in seq order; re-sending a value is harmless (last writer wins by observed time).
//!
//! # On-disk format
//! One sled tree; see [`format`](mod@format) for the table. In short: `P` id -> a fragment (one append's share
//! of a batch), `B` seq -> a sealed batch naming its fragments, `X` id -> a group of dead letters,
//! `Mlast-sealed` and `Mlast-acked` -> counters. Each update is written to disk once: a seal writes a record
//! of a few dozen bytes instead of a copy of the batch. One key per append, never per update: sled 0.34
//! keeps about 1.8 KB of memory per key and copies nodes on every small rewrite. Records stay under 100 KB
//! because sled stores larger values as blob files that its flush never fsyncs.
//!
//! # Invariants
//! - **Durable before return.** `append`, `seal` and `dead_letter` apply one atomic sled batch, flush, and
//!   (with `fsync`) fsync the `db` file and any new blob files; only then do they return.
//! - **An update is in exactly one place**, one fragment, and a fragment belongs to one batch: an append
//!   that fills a batch writes a fragment for the full part, the `B` record naming the batch's fragments
//!   and a fragment for the rest, atomically. An ack or a drop deletes a batch's `B` record and its
//!   fragments atomically; a reader that finds a batch short while it reads rechecks under the writer lock,
//!   so a batch acknowledged meanwhile is skipped and a missing fragment is reported as corruption.
//! - **Sealed batches are immutable** and seqs are never reused: `Mlast-sealed` is written with every seal
//!   and survives the deletion of every batch, and an ack above it moves it up.
//! - **Seqs increase with append order**, so replaying sealed batches in seq order replays history in order.
//! - **Within the disk budget**: encoded batch bytes stay at or under `disk_budget_bytes`; with
//!   [`WhenFull::DropOldestHistory`] the oldest batches are deleted after carrying forward any update that is
//!   still the latest of its attribute (so the latest value of every attribute survives); with
//!   [`WhenFull::RejectNew`] the append fails with [`OutboxError::Full`]. Either is counted in
//!   [`OutboxStats`] and logged once per episode.
//! - A deleted batch (dropped for room) leaves a gap in the seqs, which the protocol allows.
//!
//! # Recovery
//! [`Outbox::open`] scans the `B` records in seq order and the `P` fragments in id order, giving each
//! fragment to the batch whose range holds it and those past every range to the open batch, and rebuilds
//! the batch index, the byte count and the latest-value map (the open batch's values belong to seq
//! `Mlast-sealed + 1`), and counts the `X` records. A batch whose fragments hold fewer updates than its
//! record names is [`OutboxError::Corrupt`], naming its key. Outboxes written before fragment ranges (whose
//! `B` records hold their updates) open as they are. Whatever a crash interrupted was a single atomic sled
//! batch, so it is either wholly there or wholly absent; an append that did not return may or may not be
//! present. If a write fails at run time the outbox refuses further writes ([`OutboxError::Failed`]) rather
//! than let memory and disk disagree; reopening recovers from disk.

pub mod config;
pub mod format;
pub mod outbox;

mod error;

pub use config::{OutboxConfig, WhenFull};
pub use error::OutboxError;
pub use outbox::{
    AppendOutcome, DeadLetter, Outbox, OutboxStats, OutboxUpdate, RECENT_SEALED_BATCHES, SEAL_EVENTS, Sealed,
    SealedBatch,
};

#[cfg(test)]
mod tests;
