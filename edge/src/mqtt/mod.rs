//! The MQTT bridge: a source that subscribes on the box's local broker and maps JSON payloads to readings
//! by configuration, so existing city sensors (FIWARE IoT Agent style topics, NGSI-v2 key-values or
//! normalized entities, plain device JSON) feed the twin without code.
//!
//! - [`config`]: [`MqttConfig`] under `[mqtt]` (broker, session, limits) and its [`Mapping`]s: a topic
//!   filter, an entity type, where the entity id comes from (a topic level or a field, through an
//!   optional template), which JSON field holds each catalog attribute, and where the observed time is.
//! - [`mapper`]: [`Mapper`], validated against the catalog at start, turns one message into readings
//!   without I/O; [`Unmappable`] says why a message or a field could not be mapped.
//! - [`bridge`]: [`MqttBridge::spawn`] runs the connection: subscribe, map, send on the reading channel,
//!   acknowledge, reconnect with backoff; [`MqttStats`] counts what it did.
//!
//! Delivery: with `qos = 1` a message is acknowledged only after the agent has stored its readings durably
//! in the outbox (acks go out in arrival order), so neither a full channel nor a crash of the agent loses a
//! message the broker considers delivered, and with the default persistent
//! session (`clean_session = false`) the broker keeps what arrives while the bridge is away (a restart of
//! the agent) and delivers it on reconnection. Nothing is kept across a restart of a broker that has no
//! persistence of its own; the bridge then subscribes again. A message can be delivered twice (QoS 1):
//! the same reading twice is harmless downstream (the cloud takes a repeat of the latest observation as such).
//!
//! Limits: plain TCP only (the broker is local); MQTT 3.1.1; one observed time per message (not per
//! attribute); after a mapping is removed, a persistent session keeps its old subscription until the bridge
//! connects once with `clean_session = true` or another `client_id` (its messages are counted as
//! unmappable meanwhile). Retained messages are mapped like any other; with no time field they are stamped
//! with their arrival.

pub mod bridge;
pub mod config;
pub mod mapper;

pub use bridge::{MqttBridge, MqttStats};
pub use config::{EntityIdSource, Mapping, MqttConfig, MqttConfigError, ObservedAtSource, TimeFormat};
pub use mapper::{Mapped, Mapper, Unmappable};

#[cfg(test)]
mod tests;
