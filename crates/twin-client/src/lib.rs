//! Client-side helpers for City Twin tools (the city loader, the demo launcher, tests).
//!
//! - [`connect`]: a gRPC channel to a cloud, retrying while it starts.
//! - [`load_entities`]: bulk-load entities through `AdminService.LoadEntities` in chunks, reporting progress;
//!   idempotent, so loading the same city again changes nothing.
//! - [`Progress`]: a one-line progress display for terminals and logs.

mod load;
mod progress;

pub use load::{LoadError, LoadSummary, connect, load_entities};
pub use progress::Progress;
