//! The agent's configuration: defaults < TOML file < `TWIN_EDGE__*` environment < command-line flags, like
//! the cloud's. [`RawConfig`] is what the layers deserialize into (unknown keys are errors);
//! [`RawConfig::validate`] checks it and builds the typed [`Settings`] the binary runs with.

use std::{collections::HashMap, path::PathBuf, time::Duration};

use clap::Parser;
use serde::{Deserialize, Serialize};
use twin_model::{EdgeId, EntityId};
use twin_outbox::{OutboxConfig, WhenFull};

use crate::{deadband::DeadbandConfig, mqtt::MqttConfig, simulator::SimulatorConfig, uplink::UplinkConfig};

/// Command-line flags of the `edge` binary. Flags override every other source.
#[derive(Debug, Clone, Default, Parser)]
#[command(name = "edge", version, about = "City Twin edge agent: sensors -> deadband -> durable outbox -> 5G uplink")]
pub struct Flags {
    /// TOML config file (optional; see `--print-config` for every key).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The cloud's gRPC address, e.g. http://127.0.0.1:50051.
    #[arg(long, value_name = "URL")]
    pub cloud: Option<String>,
    /// Directory of the box's durable outbox.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The district the simulator drives (`yuelu`, `kaifu`, `furong`, `tianxin`, `yuhua` or `all`).
    #[arg(long, value_name = "NAME")]
    pub district: Option<String>,
    /// This box's id (default `edge-<district>`).
    #[arg(long, value_name = "ID")]
    pub edge_id: Option<String>,
    /// Simulated seconds per real second, e.g. 60.
    #[arg(long, value_name = "FACTOR")]
    pub speed: Option<f64>,
    /// Log filter, e.g. `info` or `info,edge=debug`.
    #[arg(long, value_name = "FILTER")]
    pub log: Option<String>,
    /// OTLP/gRPC endpoint to export spans to, e.g. http://127.0.0.1:4317.
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
    /// List the dead letters in the outbox (the agent must not be running) and exit.
    #[arg(long)]
    pub dead_letters: bool,
}

/// The outbox settings (see [`OutboxConfig`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxSection {
    /// The most bytes of buffered updates kept on the box.
    pub disk_budget_bytes: u64,
    /// `drop_oldest_history` (keep every attribute's latest value, drop older ones, counted) or `reject_new`.
    pub when_full: WhenFull,
    /// The most updates per sealed batch.
    pub max_batch_updates: usize,
    /// The most encoded bytes per sealed batch.
    pub max_batch_bytes: usize,
    /// Fsync every append (survives power loss).
    pub fsync: bool,
    /// The most dead letters kept.
    pub max_dead_letters: usize,
}

impl Default for OutboxSection {
    fn default() -> Self {
        let d = OutboxConfig::new("");
        OutboxSection {
            disk_budget_bytes: d.disk_budget_bytes,
            when_full: d.when_full,
            max_batch_updates: d.max_batch_updates,
            max_batch_bytes: d.max_batch_bytes,
            fsync: d.fsync,
            max_dead_letters: d.max_dead_letters,
        }
    }
}

/// The uplink settings (see [`UplinkConfig`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UplinkSection {
    /// The open batch is sealed (and so sent) at least this often: the batching window.
    #[serde(with = "humantime_serde")]
    pub seal_interval: Duration,
    /// Batches sent and not yet acknowledged.
    pub max_in_flight: usize,
    /// The shortest wait before a reconnect.
    #[serde(with = "humantime_serde")]
    pub backoff_min: Duration,
    /// The longest wait before a reconnect.
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// After an outage whose backlog is at least this old, latest values go first (`0s`: never).
    #[serde(with = "humantime_serde")]
    pub latest_first_after: Duration,
}

impl Default for UplinkSection {
    fn default() -> Self {
        #[allow(clippy::expect_used)] // a constant, valid id
        let d = UplinkConfig::new(EdgeId::new("x").expect("valid id"), "");
        UplinkSection {
            seal_interval: d.seal_interval,
            max_in_flight: d.max_in_flight,
            backoff_min: d.backoff_min,
            backoff_max: d.backoff_max,
            latest_first_after: d.latest_first_after,
        }
    }
}

/// The configuration as read from the layers. Every key can be set in the file, or in the environment as
/// `TWIN_EDGE__KEY` (e.g. `TWIN_EDGE__CLOUD=http://twin:50051`, `TWIN_EDGE__SIMULATOR__SPEED=60`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    /// This box's id; empty means `edge-<district>`.
    pub edge_id: String,
    /// The cloud's gRPC address.
    pub cloud: String,
    /// Directory of the durable outbox.
    pub data_dir: PathBuf,
    /// Extra entity types (catalog TOML), as loaded by the cloud.
    pub catalog_file: Option<PathBuf>,
    /// Drive the demonstration city's sensors with the simulator.
    pub simulate: bool,
    /// Create the box's entity and its sensors in the cloud on start (idempotent).
    pub register_entities: bool,
    /// How often the box reports itself as an `EdgeNode`.
    #[serde(with = "humantime_serde")]
    pub self_report_interval: Duration,
    /// Log filter (tracing EnvFilter syntax).
    pub log: String,
    /// OTLP/gRPC endpoint for spans; empty for none.
    pub otlp_endpoint: String,
    /// The simulator source.
    pub simulator: SimulatorConfig,
    /// The MQTT bridge source; absent for none.
    pub mqtt: Option<MqttConfig>,
    /// Deadband and heartbeat rules.
    pub deadband: DeadbandConfig,
    /// The durable outbox.
    pub outbox: OutboxSection,
    /// The link to the cloud.
    pub uplink: UplinkSection,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            edge_id: String::new(),
            cloud: "http://127.0.0.1:50051".into(),
            data_dir: PathBuf::from("edge-data"),
            catalog_file: None,
            simulate: true,
            register_entities: true,
            self_report_interval: Duration::from_secs(10),
            log: "info".into(),
            otlp_endpoint: String::new(),
            simulator: SimulatorConfig { district: "furong".into(), ..SimulatorConfig::default() },
            mqtt: None,
            deadband: DeadbandConfig::default(),
            outbox: OutboxSection::default(),
            uplink: UplinkSection::default(),
        }
    }
}

/// The validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// What they were built from (for `--print-config`).
    pub raw: RawConfig,
    /// This box's id.
    pub edge_id: EdgeId,
    /// The box's own entity.
    pub node_entity: EntityId,
    /// The outbox.
    pub outbox: OutboxConfig,
    /// The uplink (registration is added once the entities are known).
    pub uplink: UplinkConfig,
}

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A source does not parse or holds an unknown key or a value of the wrong type.
    #[error("invalid configuration: {0}")]
    Load(#[from] config::ConfigError),
    /// A value parses but is not acceptable.
    #[error("invalid configuration: {key}: {message}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key, message: message.into() }
}

impl Flags {
    fn overrides(&self) -> Vec<(&'static str, String)> {
        let mut o = Vec::new();
        let mut put = |key, value: Option<String>| {
            if let Some(v) = value {
                o.push((key, v));
            }
        };
        put("cloud", self.cloud.clone());
        put("data_dir", self.data_dir.as_ref().map(|p| p.display().to_string()));
        put("simulator.district", self.district.clone());
        put("edge_id", self.edge_id.clone());
        put("simulator.speed", self.speed.map(|s| s.to_string()));
        put("log", self.log.clone());
        put("otlp_endpoint", self.otlp_endpoint.clone());
        o
    }
}

/// Reads the layers. `env` is the process environment (pass `std::env::vars().collect()`); tests pass
/// their own map.
pub fn load(flags: &Flags, env: HashMap<String, String>) -> Result<RawConfig, ConfigError> {
    let mut builder = config::Config::builder().add_source(config::Config::try_from(&RawConfig::default())?);
    if let Some(file) = &flags.config {
        builder = builder.add_source(config::File::from(file.as_path()).format(config::FileFormat::Toml));
    }
    builder = builder.add_source(
        config::Environment::with_prefix("TWIN_EDGE")
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .source(Some(env)),
    );
    for (key, value) in flags.overrides() {
        builder = builder.set_override(key, value)?;
    }
    Ok(builder.build()?.try_deserialize()?)
}

/// The longest edge id: the latest-first identity adds `.latest` and must stay within 128 bytes.
pub const MAX_EDGE_ID: usize = 121;

impl RawConfig {
    /// Checks every value and builds the typed settings.
    pub fn validate(self) -> Result<Settings, ConfigError> {
        let id =
            if self.edge_id.is_empty() { format!("edge-{}", self.simulator.district) } else { self.edge_id.clone() };
        if id.len() > MAX_EDGE_ID {
            return Err(invalid("edge_id", format!("{id:?} is longer than {MAX_EDGE_ID} bytes")));
        }
        let edge_id = EdgeId::new(&id).map_err(|e| invalid("edge_id", e.to_string()))?;
        let node_entity = EntityId::new(&format!("urn:ngsi-ld:EdgeNode:{id}"))
            .map_err(|e| invalid("edge_id", format!("gives no valid entity id: {e}")))?;
        if !(self.cloud.starts_with("http://") || self.cloud.starts_with("https://")) {
            return Err(invalid(
                "cloud",
                format!("{:?} must be an http:// URL like http://127.0.0.1:50051", self.cloud),
            ));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty"));
        }
        if self.self_report_interval < Duration::from_millis(100) {
            return Err(invalid("self_report_interval", "must be at least 100ms"));
        }
        if !self.otlp_endpoint.is_empty() && !self.otlp_endpoint.starts_with("http") {
            return Err(invalid("otlp_endpoint", format!("{:?} must be an http:// URL", self.otlp_endpoint)));
        }
        if self.simulate {
            self.simulator.validate().map_err(|e| invalid("simulator", e.to_string()))?;
        }
        if let Some(mqtt) = &self.mqtt {
            mqtt.validate().map_err(|e| invalid("mqtt", e.to_string()))?;
        }
        if !self.simulate && self.mqtt.is_none() {
            return Err(invalid("simulate", "no source: enable the simulator or configure [mqtt]"));
        }
        let u = &self.uplink;
        if u.max_in_flight == 0 {
            return Err(invalid("uplink.max_in_flight", "must be at least 1"));
        }
        if u.seal_interval < Duration::from_millis(1) || u.backoff_min.is_zero() || u.backoff_max < u.backoff_min {
            return Err(invalid(
                "uplink",
                "seal_interval must be at least 1ms, backoff_min above 0 and backoff_max at least backoff_min",
            ));
        }
        let o = &self.outbox;
        let mut outbox = OutboxConfig::new(self.data_dir.join("outbox"));
        outbox.disk_budget_bytes = o.disk_budget_bytes;
        outbox.when_full = o.when_full;
        outbox.max_batch_updates = o.max_batch_updates;
        outbox.max_batch_bytes = o.max_batch_bytes;
        outbox.fsync = o.fsync;
        outbox.max_dead_letters = o.max_dead_letters;
        let uplink = UplinkConfig {
            seal_interval: u.seal_interval,
            max_in_flight: u.max_in_flight,
            backoff_min: u.backoff_min,
            backoff_max: u.backoff_max,
            latest_first_after: u.latest_first_after,
            ..UplinkConfig::new(edge_id.clone(), self.cloud.clone())
        };
        Ok(Settings { edge_id, node_entity, outbox, uplink, raw: self })
    }

    /// The configuration as TOML, for `--print-config`.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot print configuration: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("edge.toml");
        std::fs::write(
            &file,
            "cloud = \"http://file:1\"\ndata_dir = \"/from/file\"\n[simulator]\ndistrict = \"kaifu\"\nspeed = 5\n[outbox]\nwhen_full = \"reject_new\"\n",
        )
        .unwrap();
        let flags =
            Flags { config: Some(file), cloud: Some("http://flag:3".into()), speed: Some(60.0), ..Default::default() };
        let raw =
            load(&flags, env(&[("TWIN_EDGE__CLOUD", "http://env:2"), ("TWIN_EDGE__DATA_DIR", "/from/env")])).unwrap();
        assert_eq!(raw.cloud, "http://flag:3");
        assert_eq!(raw.data_dir, PathBuf::from("/from/env"));
        assert_eq!(raw.simulator.district, "kaifu");
        assert_eq!(raw.simulator.speed, 60.0);
        assert_eq!(raw.outbox.when_full, WhenFull::RejectNew);
        let s = raw.validate().unwrap();
        assert_eq!(s.edge_id.as_str(), "edge-kaifu");
        assert_eq!(s.node_entity.as_str(), "urn:ngsi-ld:EdgeNode:edge-kaifu");
        assert_eq!(s.outbox.path, PathBuf::from("/from/env/outbox"));
    }

    #[test]
    fn bad_config_is_a_clear_error() {
        let err = load(&Flags::default(), env(&[("TWIN_EDGE__CLOUDD", "x")])).unwrap_err();
        assert!(err.to_string().contains("cloudd"), "{err}");
        let flags = Flags { cloud: Some("twin:50051".into()), ..Default::default() };
        let err = load(&flags, HashMap::new()).unwrap().validate().unwrap_err();
        assert!(err.to_string().contains("cloud: \"twin:50051\""), "{err}");
        let flags = Flags { district: Some("westside".into()), ..Default::default() };
        let err = load(&flags, HashMap::new()).unwrap().validate().unwrap_err();
        assert!(err.to_string().contains("westside") && err.to_string().contains("furong"), "{err}");
        let flags = Flags { speed: Some(f64::NAN), ..Default::default() };
        assert!(load(&flags, HashMap::new()).and_then(|r| r.validate()).is_err());
        let flags = Flags { edge_id: Some("bad id".into()), ..Default::default() };
        let err = load(&flags, HashMap::new()).unwrap().validate().unwrap_err();
        assert!(err.to_string().contains("edge_id"), "{err}");
        let err = load(&Flags::default(), env(&[("TWIN_EDGE__OUTBOX__WHEN_FULL", "sometimes")])).unwrap_err();
        assert!(err.to_string().contains("sometimes"), "{err}");
    }

    #[test]
    fn printed_config_loads_back_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("printed.toml");
        std::fs::write(&file, RawConfig::default().to_toml()).unwrap();
        let raw = load(&Flags { config: Some(file), ..Default::default() }, HashMap::new()).unwrap();
        assert_eq!(raw, RawConfig::default());
    }
}
