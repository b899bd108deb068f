//! The City Twin edge agent (issue 4, in progress): sources -> deadband -> durable outbox -> uplink.
//!
//! - [`deadband`]: decides which readings are worth sending: a value that moved beyond its threshold, or
//!   one whose heartbeat is due.
//! - [`wire`]: the compact per-session encoding of batches for the ingest stream (names sent once as
//!   symbols, times as small offsets).

pub mod deadband;
pub mod wire;
