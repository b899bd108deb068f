//! Configuration: defaults < TOML file < `TWIN__*` environment < command-line flags.
//!
//! [`RawConfig`] is what the layers deserialize into (unknown keys are errors); [`Settings`] is the
//! validated, typed form the service runs with.

use std::{collections::HashMap, net::SocketAddr, path::PathBuf, time::Duration};

use clap::Parser;
use serde::{Deserialize, Serialize};
use twin_store::Durability;

/// Command-line flags of the `cloud` binary. Flags override every other source.
#[derive(Debug, Clone, Default, Parser)]
#[command(name = "cloud", version, about = "City Twin cloud service: gRPC ingest, query and watch over a sled store")]
pub struct Flags {
    /// TOML config file (optional; see `--print-config` for every key).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:50051 (port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Directory of the sled store.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// When writes are acknowledged: `fsync` (survives power loss) or `os-buffered` (survives a crash).
    #[arg(long, value_name = "MODE")]
    pub durability: Option<String>,
    /// Extra entity types (TOML, catalog format) loaded at start-up.
    #[arg(long, value_name = "FILE")]
    pub catalog_file: Option<PathBuf>,
    /// Log filter, e.g. `info` or `info,cloud=debug`.
    #[arg(long, value_name = "FILTER")]
    pub log: Option<String>,
    /// OTLP/gRPC endpoint to export spans to, e.g. http://127.0.0.1:4317.
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
}

/// The configuration as read from the layers. Every key can be set in the file, or in the environment as
/// `TWIN__KEY` (e.g. `TWIN__LISTEN=0.0.0.0:50051`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    /// Address to listen on.
    pub listen: String,
    /// Directory of the sled store.
    pub data_dir: PathBuf,
    /// `fsync` or `os-buffered`.
    pub durability: Durability,
    /// Extra entity types loaded at start-up; empty for none.
    pub catalog_file: Option<PathBuf>,
    /// The largest gRPC message accepted, in bytes.
    pub max_message_bytes: usize,
    /// The most updates one ingest batch may carry.
    pub max_batch_updates: u32,
    /// The most ingest batches one stream may have waiting for their ack.
    pub max_in_flight_batches: usize,
    /// The most write batches committed together (one sled batch, one fsync).
    pub group_commit_max_batches: usize,
    /// How long history is kept, e.g. `7d`.
    #[serde(with = "humantime_serde")]
    pub history_retention: Duration,
    /// How many revisions the change log keeps for watch resume.
    pub changelog_revisions: u64,
    /// How many committed groups a watcher may fall behind before it is told to resync.
    pub watch_buffer_groups: usize,
    /// sled page cache size in bytes.
    pub cache_bytes: u64,
    /// How often the latest state and history are checkpointed from the change log (a restart replays at
    /// most about this much of the log), e.g. `30s`. Shorter restarts after a crash cost CPU all the time: each
    /// checkpoint rewrites every attribute changed since the last one.
    #[serde(with = "humantime_serde")]
    pub checkpoint_interval: Duration,
    /// How long shutdown waits for streams to drain before closing the store anyway.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Log filter (tracing EnvFilter syntax).
    pub log: String,
    /// OTLP/gRPC endpoint for spans; empty to disable.
    pub otlp_endpoint: String,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            listen: "127.0.0.1:50051".into(),
            data_dir: PathBuf::from("data/cloud"),
            durability: Durability::Fsync,
            catalog_file: None,
            max_message_bytes: 16 * 1024 * 1024,
            max_batch_updates: 100_000,
            max_in_flight_batches: 32,
            group_commit_max_batches: 256,
            history_retention: Duration::from_secs(7 * 24 * 3600),
            changelog_revisions: 2_000_000,
            watch_buffer_groups: 1024,
            cache_bytes: 256 * 1024 * 1024,
            checkpoint_interval: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
            log: "info".into(),
            otlp_endpoint: String::new(),
        }
    }
}

/// The validated configuration the service runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The configuration it came from (for `--print-config`).
    pub raw: RawConfig,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Store options.
    pub store: twin_store::StoreConfig,
    /// Extra catalog file.
    pub catalog_file: Option<PathBuf>,
    /// Request limits.
    pub limits: Limits,
    /// How long shutdown waits for streams.
    pub shutdown_grace: Duration,
}

/// Limits on what clients may send.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest message, in bytes.
    pub max_message_bytes: usize,
    /// The most updates per batch.
    pub max_batch_updates: u32,
    /// The most unacknowledged batches per ingest stream.
    pub max_in_flight_batches: usize,
}

impl Default for Limits {
    fn default() -> Self {
        let raw = RawConfig::default();
        Limits {
            max_message_bytes: raw.max_message_bytes,
            max_batch_updates: raw.max_batch_updates,
            max_in_flight_batches: raw.max_in_flight_batches,
        }
    }
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
        let path = |p: &PathBuf| p.display().to_string();
        if let Some(v) = &self.listen {
            o.push(("listen", v.clone()));
        }
        if let Some(v) = &self.data_dir {
            o.push(("data_dir", path(v)));
        }
        if let Some(v) = &self.durability {
            o.push(("durability", v.clone()));
        }
        if let Some(v) = &self.catalog_file {
            o.push(("catalog_file", path(v)));
        }
        if let Some(v) = &self.log {
            o.push(("log", v.clone()));
        }
        if let Some(v) = &self.otlp_endpoint {
            o.push(("otlp_endpoint", v.clone()));
        }
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
    builder = builder
        .add_source(config::Environment::with_prefix("TWIN").prefix_separator("__").separator("__").source(Some(env)));
    for (key, value) in flags.overrides() {
        builder = builder.set_override(key, value)?;
    }
    Ok(builder.build()?.try_deserialize()?)
}

impl RawConfig {
    /// Checks every value and builds the typed settings.
    pub fn validate(self) -> Result<Settings, ConfigError> {
        let listen: SocketAddr = self.listen.parse().map_err(|e| {
            invalid("listen", format!("{:?} is not a socket address like 127.0.0.1:50051 ({e})", self.listen))
        })?;
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty"));
        }
        if !(1024..=256 * 1024 * 1024).contains(&self.max_message_bytes) {
            return Err(invalid(
                "max_message_bytes",
                format!("{} is not within 1 KiB..=256 MiB", self.max_message_bytes),
            ));
        }
        if self.max_batch_updates == 0 {
            return Err(invalid("max_batch_updates", "must be at least 1"));
        }
        if self.max_in_flight_batches == 0 || self.group_commit_max_batches == 0 || self.watch_buffer_groups == 0 {
            return Err(invalid(
                "max_in_flight_batches/group_commit_max_batches/watch_buffer_groups",
                "must be at least 1",
            ));
        }
        if self.history_retention < Duration::from_secs(60) {
            return Err(invalid("history_retention", "must be at least 1m"));
        }
        if self.checkpoint_interval < Duration::from_millis(10) || self.checkpoint_interval > Duration::from_secs(3600)
        {
            return Err(invalid("checkpoint_interval", "must be within 10ms..=1h"));
        }
        if self.changelog_revisions == 0 {
            return Err(invalid("changelog_revisions", "must be at least 1"));
        }
        if !self.otlp_endpoint.is_empty() && !self.otlp_endpoint.starts_with("http") {
            return Err(invalid(
                "otlp_endpoint",
                format!("{:?} must be an http:// or https:// URL", self.otlp_endpoint),
            ));
        }
        let mut store = twin_store::StoreConfig::new(&self.data_dir);
        store.durability = self.durability;
        store.max_group_batches = self.group_commit_max_batches;
        store.history_retention = self.history_retention;
        store.changelog_revisions = self.changelog_revisions;
        store.watch_buffer_groups = self.watch_buffer_groups;
        store.cache_bytes = self.cache_bytes;
        store.checkpoint_interval = self.checkpoint_interval;
        Ok(Settings {
            listen,
            store,
            catalog_file: self.catalog_file.clone().filter(|p| !p.as_os_str().is_empty()),
            limits: Limits {
                max_message_bytes: self.max_message_bytes,
                max_batch_updates: self.max_batch_updates,
                max_in_flight_batches: self.max_in_flight_batches,
            },
            shutdown_grace: self.shutdown_grace,
            raw: self,
        })
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
        let file = dir.path().join("cloud.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:1111\"\ndata_dir = \"/from/file\"\nlog = \"debug\"\n").unwrap();
        let flags = Flags { config: Some(file), listen: Some("127.0.0.1:3333".into()), ..Default::default() };
        let raw = load(&flags, env(&[("TWIN__LISTEN", "127.0.0.1:2222"), ("TWIN__DATA_DIR", "/from/env")])).unwrap();
        assert_eq!(raw.listen, "127.0.0.1:3333");
        assert_eq!(raw.data_dir, PathBuf::from("/from/env"));
        assert_eq!(raw.log, "debug");
        assert_eq!(raw.max_batch_updates, RawConfig::default().max_batch_updates);
        let settings = raw.validate().unwrap();
        assert_eq!(settings.listen.port(), 3333);
    }

    #[test]
    fn bad_config_is_a_clear_error() {
        let err = load(&Flags::default(), env(&[("TWIN__LISTN", "x")])).unwrap_err();
        assert!(err.to_string().contains("listn"), "{err}");
        let flags = Flags { listen: Some("not-an-address".into()), ..Default::default() };
        let err = load(&flags, HashMap::new()).unwrap().validate().unwrap_err();
        assert!(err.to_string().starts_with("invalid configuration: listen: \"not-an-address\""), "{err}");
        let flags = Flags { durability: Some("sometimes".into()), ..Default::default() };
        let err = load(&flags, HashMap::new()).unwrap_err();
        assert!(err.to_string().contains("sometimes"), "{err}");
        let err = load(&Flags::default(), env(&[("TWIN__HISTORY_RETENTION", "soon")])).unwrap_err();
        assert!(err.to_string().contains("history_retention"), "{err}");
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
