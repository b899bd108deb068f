//! The City Twin edge agent (issue 4, in progress): sources -> deadband -> durable outbox -> uplink.
//!
//! - [`deadband`]: decides which readings are worth sending: a value that moved beyond its threshold, or
//!   one whose heartbeat is due.
//! - [`source`]: the readings sources produce and the channel they send them on.
//! - [`mqtt`]: the MQTT bridge source: subscribes on the box's broker and maps JSON payloads to readings.
//! - [`wire`]: the compact per-session encoding of batches for the ingest stream (names sent once as
//!   symbols, times as small offsets).
//! - [`uplink`]: sends the outbox's sealed batches over the ingest stream, removes them only on ack, sets
//!   rejected updates aside as dead letters, and reconnects with backoff, resuming where the cloud left off.

pub mod deadband;
pub mod mqtt;
pub mod source;
pub mod uplink;
pub mod wire;
