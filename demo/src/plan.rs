//! What the demonstration starts: each part's program, arguments, environment, data folder and the line it
//! prints once it runs. Decided from the options alone, without starting anything, so it can be tested.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    time::Duration,
};

use twin_city::changsha::districts::District;

/// The binaries the demonstration runs, found next to `citytwin` itself.
pub const BINARIES: [&str; 3] = ["cloud", "edge", "viewer"];

/// How the viewer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewerMode {
    /// A window when a display is available, headless snapshots otherwise.
    Auto,
    /// The operator window.
    Window,
    /// PNG snapshots rewritten every few seconds.
    Headless,
    /// No viewer.
    Off,
}

impl ViewerMode {
    /// Parses `auto`, `window`, `headless` or `off`.
    pub fn parse(s: &str) -> Result<Self, PlanError> {
        Ok(match s {
            "auto" => ViewerMode::Auto,
            "window" => ViewerMode::Window,
            "headless" => ViewerMode::Headless,
            "off" | "none" => ViewerMode::Off,
            other => return Err(PlanError::ViewerMode(other.to_owned())),
        })
    }

    /// The mode to run, given whether a display (X11 or Wayland) is available.
    pub fn resolve(self, has_display: bool) -> ViewerMode {
        match self {
            ViewerMode::Auto if has_display => ViewerMode::Window,
            ViewerMode::Auto => ViewerMode::Headless,
            other => other,
        }
    }
}

/// Whether `DISPLAY` or `WAYLAND_DISPLAY` names a display, from the given environment.
pub fn has_display(var: impl Fn(&str) -> Option<OsString>) -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY"].iter().any(|name| var(name).is_some_and(|v| !v.is_empty()))
}

/// Why a plan cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A district that the demonstration city does not have.
    #[error("unknown district {name:?}: use `all` or some of {valid}")]
    District {
        /// What was asked for.
        name: String,
        /// The districts there are.
        valid: String,
    },
    /// No district at all.
    #[error("no districts given: use `all` or some of {0}")]
    NoDistricts(String),
    /// An unknown viewer mode.
    #[error("unknown viewer mode {0:?}: use auto, window, headless or off")]
    ViewerMode(String),
    /// The simulator speed is not a positive number.
    #[error("speed must be a number above 0, got {0}")]
    Speed(f64),
    /// A binary is missing.
    #[error(
        "cannot find the `{name}` binary in {dir}: build them all with `cargo build --release --bins`, or use scripts/run"
    )]
    MissingBinary {
        /// The binary.
        name: &'static str,
        /// Where it was looked for.
        dir: String,
    },
}

/// Parses `all` or a comma-separated list of district slugs (e.g. `furong,yuelu`), in city order, once each.
pub fn parse_districts(s: &str) -> Result<Vec<District>, PlanError> {
    let valid = || District::ALL.iter().map(|d| d.slug()).collect::<Vec<_>>().join(", ");
    let mut wanted = Vec::new();
    for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if name == "all" {
            return Ok(District::ALL.to_vec());
        }
        let d = District::ALL
            .into_iter()
            .find(|d| d.slug() == name)
            .ok_or_else(|| PlanError::District { name: name.to_owned(), valid: valid() })?;
        if !wanted.contains(&d) {
            wanted.push(d);
        }
    }
    if wanted.is_empty() {
        return Err(PlanError::NoDistricts(valid()));
    }
    wanted.sort_by_key(|d| District::ALL.iter().position(|x| x == d));
    Ok(wanted)
}

/// The demonstration's settings.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Where `cloud`, `edge` and `viewer` are.
    pub bin_dir: PathBuf,
    /// The data folder: `cloud/` (the sled store), `edge-<district>/` (outboxes), `snapshots/`.
    pub data_dir: PathBuf,
    /// The cloud's listening address (port 0 picks a free one).
    pub listen: String,
    /// One edge agent per district.
    pub districts: Vec<District>,
    /// Simulated seconds per real second.
    pub speed: f64,
    /// How the viewer runs (already resolved against the display).
    pub viewer: ViewerMode,
    /// How often headless snapshots are rewritten.
    pub every: Duration,
    /// The log filter of every part.
    pub log: String,
    /// The demonstration city's seed.
    pub seed: u64,
    /// How long the cloud keeps history: the sped-up simulators write thousands of updates a second, so
    /// the demonstration keeps a short window instead of the cloud's week.
    pub history: Duration,
}

/// One part of the demonstration, ready to spawn.
#[derive(Debug, Clone, PartialEq)]
pub struct PartSpec {
    /// Its name in the output, e.g. `edge-furong`.
    pub name: String,
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// It runs once it printed a stdout line starting with this (`None`: as soon as it is spawned).
    pub ready: Option<String>,
}

impl DemoOptions {
    /// Checks the options and that every binary is there.
    pub fn check(&self) -> Result<(), PlanError> {
        if !(self.speed.is_finite() && self.speed > 0.0) {
            return Err(PlanError::Speed(self.speed));
        }
        // `--viewer off` runs without the viewer, so it need not be built (its wgpu stack is the slowest build).
        let needed = BINARIES.into_iter().filter(|&name| name != "viewer" || self.viewer != ViewerMode::Off);
        for name in needed {
            if !self.bin_dir.join(name).is_file() {
                return Err(PlanError::MissingBinary { name, dir: self.bin_dir.display().to_string() });
            }
        }
        Ok(())
    }

    /// The cloud's sled store.
    pub fn cloud_dir(&self) -> PathBuf {
        self.data_dir.join("cloud")
    }

    /// The outbox of the edge agent of `district`.
    pub fn edge_dir(&self, district: District) -> PathBuf {
        self.data_dir.join(format!("edge-{}", district.slug()))
    }

    /// Where headless snapshots go.
    pub fn snapshot_dir(&self) -> PathBuf {
        self.data_dir.join("snapshots")
    }

    /// The cloud service. It prints `cloud listening on ADDR` when it accepts connections.
    pub fn cloud(&self) -> PartSpec {
        PartSpec {
            name: "cloud".into(),
            program: self.bin_dir.join("cloud"),
            args: args(&[&"--listen", &self.listen, &"--data-dir", &self.cloud_dir()]),
            env: vec![
                ("TWIN__LOG".into(), self.log.clone()),
                ("TWIN__HISTORY_RETENTION".into(), humantime::format_duration(self.history).to_string()),
            ],
            ready: Some("cloud listening on ".into()),
        }
    }

    /// The edge agent of `district`, simulating its sensors against the cloud at `cloud_url`.
    pub fn edge(&self, district: District, cloud_url: &str) -> PartSpec {
        let id = edge_id(district);
        PartSpec {
            name: id.clone(),
            program: self.bin_dir.join("edge"),
            args: args(&[
                &"--cloud",
                &cloud_url,
                &"--district",
                &district.slug(),
                &"--edge-id",
                &id,
                &"--data-dir",
                &self.edge_dir(district),
                &"--speed",
                &self.speed.to_string(),
                &"--log",
                &self.log,
            ]),
            env: vec![("TWIN_EDGE__SIMULATOR__SEED".into(), self.seed.to_string())],
            ready: Some(format!("edge {id} running")),
        }
    }

    /// The viewer following the cloud at `cloud_url`, if it runs.
    pub fn viewer(&self, cloud_url: &str) -> Option<PartSpec> {
        let (args, ready) = match self.viewer {
            ViewerMode::Off => return None,
            // Resolved by the caller; treated as a window when a display is there.
            ViewerMode::Window | ViewerMode::Auto => (args(&[&"window", &"--cloud", &cloud_url]), None),
            ViewerMode::Headless => (
                args(&[
                    &"headless",
                    &"--cloud",
                    &cloud_url,
                    &"--dir",
                    &self.snapshot_dir(),
                    &"--every",
                    &humantime::format_duration(self.every).to_string(),
                    &"--cameras",
                    &"city,cbd",
                ]),
                Some("viewer: ".into()),
            ),
        };
        Some(PartSpec { name: "viewer".into(), program: self.bin_dir.join("viewer"), args, env: Vec::new(), ready })
    }
}

/// The id of the edge agent of `district`.
pub fn edge_id(district: District) -> String {
    format!("edge-{}", district.slug())
}

fn args(parts: &[&dyn AsArg]) -> Vec<OsString> {
    parts.iter().map(|p| p.as_arg()).collect()
}

/// Strings and paths as arguments (paths need not be UTF-8).
trait AsArg {
    fn as_arg(&self) -> OsString;
}

impl AsArg for &str {
    fn as_arg(&self) -> OsString {
        (*self).into()
    }
}

impl AsArg for String {
    fn as_arg(&self) -> OsString {
        self.into()
    }
}

impl AsArg for PathBuf {
    fn as_arg(&self) -> OsString {
        self.as_os_str().to_owned()
    }
}

impl AsArg for &Path {
    fn as_arg(&self) -> OsString {
        self.as_os_str().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(viewer: ViewerMode) -> DemoOptions {
        DemoOptions {
            bin_dir: "/opt/twin".into(),
            data_dir: "data".into(),
            listen: "127.0.0.1:50051".into(),
            districts: District::ALL.to_vec(),
            speed: 60.0,
            viewer,
            every: Duration::from_secs(5),
            log: "warn".into(),
            seed: 7,
            history: Duration::from_secs(900),
        }
    }

    #[test]
    fn the_viewer_binary_is_needed_only_when_the_viewer_runs() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["cloud", "edge"] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let in_dir = |viewer| DemoOptions { bin_dir: dir.path().into(), ..options(viewer) };
        in_dir(ViewerMode::Off).check().unwrap();
        let missing = in_dir(ViewerMode::Headless).check().unwrap_err();
        assert!(matches!(missing, PlanError::MissingBinary { name: "viewer", .. }), "{missing}");
        std::fs::remove_file(dir.path().join("edge")).unwrap();
        let missing = in_dir(ViewerMode::Off).check().unwrap_err();
        assert!(matches!(missing, PlanError::MissingBinary { name: "edge", .. }), "{missing}");
    }

    fn strings(spec: &PartSpec) -> Vec<String> {
        spec.args.iter().map(|a| a.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn districts_parse_in_city_order_once_each() {
        assert_eq!(parse_districts("all").unwrap(), District::ALL.to_vec());
        assert_eq!(parse_districts("furong, yuelu,furong").unwrap(), vec![District::Yuelu, District::Furong]);
        let e = parse_districts("furong,atlantis").unwrap_err().to_string();
        assert!(e.contains("\"atlantis\"") && e.contains("yuelu, kaifu, furong, tianxin, yuhua"), "{e}");
        assert!(parse_districts(" , ").unwrap_err().to_string().contains("no districts"));
    }

    #[test]
    fn auto_opens_a_window_only_with_a_display() {
        assert_eq!(ViewerMode::Auto.resolve(true), ViewerMode::Window);
        assert_eq!(ViewerMode::Auto.resolve(false), ViewerMode::Headless);
        assert_eq!(ViewerMode::Headless.resolve(true), ViewerMode::Headless);
        assert_eq!(ViewerMode::parse("off").unwrap(), ViewerMode::Off);
        assert!(ViewerMode::parse("vr").unwrap_err().to_string().contains("\"vr\""));
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| OsString::from(*v))
        };
        assert!(has_display(env(&[("DISPLAY", ":0")])));
        assert!(has_display(env(&[("WAYLAND_DISPLAY", "wayland-0")])));
        assert!(!has_display(env(&[("DISPLAY", "")])));
        assert!(!has_display(env(&[])));
    }

    #[test]
    fn each_part_gets_its_own_data_folder_and_ready_line() {
        let o = options(ViewerMode::Headless);
        let cloud = o.cloud();
        assert_eq!(cloud.program, PathBuf::from("/opt/twin/cloud"));
        assert_eq!(strings(&cloud), ["--listen", "127.0.0.1:50051", "--data-dir", "data/cloud"]);
        assert_eq!(cloud.ready.as_deref(), Some("cloud listening on "));
        assert!(cloud.env.contains(&("TWIN__HISTORY_RETENTION".to_owned(), "15m".to_owned())));

        let edge = o.edge(District::Furong, "http://127.0.0.1:4000");
        assert_eq!(edge.name, "edge-furong");
        assert_eq!(
            strings(&edge),
            [
                "--cloud",
                "http://127.0.0.1:4000",
                "--district",
                "furong",
                "--edge-id",
                "edge-furong",
                "--data-dir",
                "data/edge-furong",
                "--speed",
                "60",
                "--log",
                "warn"
            ]
        );
        assert_eq!(edge.env, [("TWIN_EDGE__SIMULATOR__SEED".to_owned(), "7".to_owned())]);
        assert_eq!(edge.ready.as_deref(), Some("edge edge-furong running"));

        let viewer = o.viewer("http://127.0.0.1:4000").unwrap();
        assert_eq!(
            strings(&viewer),
            [
                "headless",
                "--cloud",
                "http://127.0.0.1:4000",
                "--dir",
                "data/snapshots",
                "--every",
                "5s",
                "--cameras",
                "city,cbd"
            ]
        );
        let window = options(ViewerMode::Window).viewer("http://x").unwrap();
        assert_eq!(strings(&window), ["window", "--cloud", "http://x"]);
        assert_eq!(window.ready, None, "a window prints nothing to wait for");
        assert!(options(ViewerMode::Off).viewer("http://x").is_none());
    }

    #[test]
    fn bad_options_are_named() {
        let mut o = options(ViewerMode::Off);
        o.speed = f64::NAN;
        assert!(o.check().unwrap_err().to_string().contains("speed"));
        o.speed = 60.0;
        let e = o.check().unwrap_err().to_string();
        assert!(e.contains("`cloud`") && e.contains("/opt/twin") && e.contains("cargo build --release --bins"), "{e}");
    }
}
