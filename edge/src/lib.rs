//! The City Twin edge agent: sources -> deadband -> durable outbox -> uplink.
//!
//! - [`agent`]: wires the parts together and shuts them down without losing anything.
//! - [`backoff`]: reconnect waits with jitter, for the uplink and the MQTT bridge.
//! - [`config`]: the agent's layered configuration (defaults, file, environment, flags).
//! - [`deadband`]: decides which readings are worth sending: a value that moved beyond its threshold, or
//!   one whose heartbeat is due.
//! - [`link`]: the uplink's TCP connection, counting the bytes that really cross the link.
//! - [`self_report`]: the box's own `EdgeNode` entity: link state, outbox depth, bytes sent.
//! - [`source`]: the readings sources produce and the channel they send them on.
//! - [`simulator`]: a source that drives a district of the demonstration city (or all of it) with the
//!   deterministic signal models, on a simulated clock that can run faster than real time.
//! - [`mqtt`]: the MQTT bridge source: subscribes on the box's broker and maps JSON payloads to readings.
//! - [`wire`]: the compact per-session encoding of batches for the ingest stream (names sent once as
//!   symbols, times as small offsets).
//! - [`uplink`]: sends the outbox's sealed batches over the ingest stream, removes them only on ack, sets
//!   rejected updates aside as dead letters, and reconnects with backoff, resuming where the cloud left off.

pub mod agent;
pub mod backoff;
pub mod config;
pub mod deadband;
pub mod link;
pub mod mqtt;
pub mod self_report;
pub mod simulator;
pub mod source;
pub mod uplink;
pub mod wire;
