//! The City Twin cloud service: the gRPC API over the sled twin store.
//!
//! `main.rs` parses flags and calls [`server::run`] with a bound listener and a shutdown token; tests do
//! the same on `127.0.0.1:0`.
//!
//! - [`config`]: flags, the layered configuration and its validation.
//! - [`server`]: wiring of store, services, health, reflection and shutdown.
//! - [`ingest`]: `IngestService`, the edges' bidirectional stream.
//! - [`twin`]: `TwinService`: Get, BatchGet, List, History, Watch.
//! - [`watch`]: the per-watcher task behind Watch.
//! - [`admin`]: `AdminService`: bulk load and the catalog.
//! - [`request`]: filters, field masks and page tokens from the wire.
//! - [`status`]: the one mapping from errors to gRPC statuses.

pub mod admin;
pub mod config;
pub mod ingest;
pub mod request;
pub mod server;
pub mod status;
pub mod twin;
pub mod watch;

pub use config::{Flags, RawConfig, Settings};
pub use server::{ServeError, run};
