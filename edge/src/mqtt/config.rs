//! The bridge's configuration: the broker to subscribe on and the mappings from topics and JSON payloads
//! to readings. [`MqttConfig`] is the raw serde form; [`MqttConfig::mapper`] validates it at start.

use std::{collections::BTreeMap, fmt, time::Duration};

use serde::{Deserialize, Serialize, Serializer};
use twin_model::Catalog;

use super::mapper::Mapper;

/// The broker the bridge connects to by default: the box's own.
pub const DEFAULT_HOST: &str = "127.0.0.1";
/// The default MQTT port (plain TCP).
pub const DEFAULT_PORT: u16 = 1883;
/// The default client id. Use a distinct one per agent when several share a broker: the broker drops
/// the older connection of two with the same id.
pub const DEFAULT_CLIENT_ID: &str = "city-twin-edge";
/// The default keep-alive.
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(30);
/// The largest payload mapped by default: sensor messages are a few hundred bytes.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// The first wait before reconnecting, by default.
pub const DEFAULT_RECONNECT_MIN: Duration = Duration::from_millis(200);
/// The longest wait between reconnection attempts, by default.
pub const DEFAULT_RECONNECT_MAX: Duration = Duration::from_secs(5);
/// The longest keep-alive MQTT can express (a 16-bit number of seconds).
pub const MAX_KEEP_ALIVE: Duration = Duration::from_secs(u16::MAX as u64);

/// The MQTT bridge's configuration, under `[mqtt]` in the edge agent's config file.
///
/// ```toml
#[doc = include_str!("example.toml")]
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// The broker's host name or address.
    pub host: String,
    /// The broker's port (plain TCP; the broker is on the box, so no TLS).
    pub port: u16,
    /// The MQTT client id; it also names the broker-side session.
    pub client_id: String,
    /// How often the connection is checked with a ping when idle, e.g. `30s`; `0s` disables it.
    #[serde(with = "humantime_serde")]
    pub keep_alive: Duration,
    /// The QoS the bridge subscribes with: 0 (at most once) or 1 (at least once: a message is
    /// acknowledged only once the agent has stored its readings durably).
    pub qos: u8,
    /// `false` (the default): the broker keeps the session while the bridge is away and delivers QoS 1
    /// messages it missed when it comes back. `true`: every connection starts afresh.
    pub clean_session: bool,
    /// The user name, when the broker asks for one.
    pub username: Option<String>,
    /// The password, when the broker asks for one (better set through the environment than the file).
    #[serde(serialize_with = "redacted")]
    pub password: Option<String>,
    /// Payloads larger than this are counted as unmappable and not parsed.
    pub max_payload_bytes: usize,
    /// The first wait before reconnecting after the broker was lost, e.g. `200ms`; doubles up to
    /// `reconnect_max`, with jitter.
    #[serde(with = "humantime_serde")]
    pub reconnect_min: Duration,
    /// The longest wait between reconnection attempts, e.g. `5s`.
    #[serde(with = "humantime_serde")]
    pub reconnect_max: Duration,
    /// How topics and payloads become readings. The first mapping whose topic filter matches a message's
    /// topic maps it.
    pub mappings: Vec<Mapping>,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            host: DEFAULT_HOST.into(),
            port: DEFAULT_PORT,
            client_id: DEFAULT_CLIENT_ID.into(),
            keep_alive: DEFAULT_KEEP_ALIVE,
            qos: 1,
            clean_session: false,
            username: None,
            password: None,
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            reconnect_min: DEFAULT_RECONNECT_MIN,
            reconnect_max: DEFAULT_RECONNECT_MAX,
            mappings: Vec::new(),
        }
    }
}

/// `--print-config` must not show the password.
fn redacted<S: Serializer>(password: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match password {
        Some(_) => s.serialize_some("<redacted>"),
        None => s.serialize_none(),
    }
}

/// How one family of topics maps to readings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// A name for logs and errors; by default the mapping is named by its index and topic filter.
    #[serde(default)]
    pub name: Option<String>,
    /// The MQTT topic filter subscribed to, with `+` (one level) and `#` (the rest) wildcards.
    pub topic: String,
    /// The catalog type of the entities.
    pub entity_type: String,
    /// Where each message's entity id comes from.
    pub entity_id: EntityIdSource,
    /// Where the observed time comes from; absent: the time the message arrived.
    #[serde(default)]
    pub observed_at: Option<ObservedAtSource>,
    /// Catalog attribute name -> the JSON field holding its value: a dotted path (`pm25.value`) or a
    /// JSON pointer (`/pm25/value`, for keys with dots or for array elements). A field that is absent
    /// or `null` in a message is skipped: devices often report a subset.
    pub attributes: BTreeMap<String, String>,
}

/// Where an entity id comes from: exactly one of `field` or `topic_level`, optionally through a template.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityIdSource {
    /// A JSON field (dotted path or JSON pointer) holding a string or an integer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// A level of the topic, counted from 0 (`city/air/+/state`: level 2 is the `+`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_level: Option<usize>,
    /// A template in which `{}` is replaced by the value found, e.g. `urn:ngsi-ld:AirQualityObserved:{}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

/// Where the observed time comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObservedAtSource {
    /// The JSON field (dotted path or JSON pointer).
    pub field: String,
    /// How it is written.
    pub format: TimeFormat,
}

/// How a timestamp is written in a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeFormat {
    /// Milliseconds since the Unix epoch: a number (or a string holding one).
    UnixMs,
    /// Seconds since the Unix epoch, fractions allowed: a number (or a string holding one).
    UnixS,
    /// An RFC 3339 string: `2024-05-01T08:00:00Z`, `2024-05-01T08:00:00.250+08:00`.
    Rfc3339,
}

impl fmt::Display for TimeFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeFormat::UnixMs => "unix_ms",
            TimeFormat::UnixS => "unix_s",
            TimeFormat::Rfc3339 => "rfc3339",
        })
    }
}

/// A problem with the MQTT configuration, found at start.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MqttConfigError {
    /// A broker setting is invalid.
    #[error("mqtt setting {setting}: {problem}")]
    Setting {
        /// The setting's key.
        setting: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// There is nothing to subscribe to.
    #[error("mqtt: no mappings: add at least one [[mqtt.mappings]] with a topic, an entity type and attributes")]
    NoMappings,
    /// A mapping is invalid.
    #[error("mqtt mapping {mapping}: {problem}")]
    Mapping {
        /// The mapping's name, or its index and topic filter.
        mapping: String,
        /// What is wrong.
        problem: String,
    },
}

impl MqttConfig {
    /// Checks the broker settings (the mappings are checked by [`Mapper::new`]).
    pub fn validate(&self) -> Result<(), MqttConfigError> {
        let bad = |setting, problem: &str| Err(MqttConfigError::Setting { setting, problem: problem.to_owned() });
        if self.host.trim().is_empty() {
            return bad("host", "is empty");
        }
        if self.port == 0 {
            return bad("port", "must be 1..=65535");
        }
        if self.client_id.is_empty() && !self.clean_session {
            return bad("client_id", "is empty; a persistent session (clean_session = false) needs an id");
        }
        if self.client_id.len() > u16::MAX as usize {
            return bad("client_id", "is longer than MQTT allows (65535 bytes)");
        }
        if !self.keep_alive.is_zero() && (self.keep_alive < Duration::from_secs(1) || self.keep_alive > MAX_KEEP_ALIVE)
        {
            return bad("keep_alive", "must be 0s (off) or between 1s and 65535s (MQTT counts it in whole seconds)");
        }
        if self.qos > 1 {
            return bad("qos", "must be 0 or 1 (QoS 2 is not supported)");
        }
        if self.max_payload_bytes == 0 {
            return bad("max_payload_bytes", "must be above 0");
        }
        if self.reconnect_min.is_zero() {
            return bad("reconnect_min", "must be longer than zero, or a lost broker is retried in a busy loop");
        }
        if self.reconnect_max < self.reconnect_min {
            return bad("reconnect_max", "must not be shorter than reconnect_min");
        }
        if self.password.is_some() && self.username.is_none() {
            return bad("password", "is set without a username");
        }
        Ok(())
    }

    /// Validates the whole configuration against the catalog and builds the mapper the bridge runs.
    pub fn mapper(&self, catalog: &Catalog) -> Result<Mapper, MqttConfigError> {
        self.validate()?;
        Ok(Mapper::new(&self.mappings, catalog)?.with_max_payload_bytes(self.max_payload_bytes))
    }
}
