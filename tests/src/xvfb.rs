//! A virtual X display (Xvfb) as a child process, so the viewer's operator window can be opened and closed
//! in tests on machines without a screen. Xvfb comes from the system (`scripts/setup-debian` installs it):
//! tests that need it fail with that advice when it is missing, they never skip.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::WAIT;

/// Display numbers tried, high enough to stay clear of a desktop's own.
const DISPLAYS: std::ops::Range<u32> = 90..190;

/// An Xvfb server on display `:N` (1280x720, 24 bits, no TCP). Killed on drop.
#[derive(Debug)]
pub struct XvfbDisplay {
    number: u32,
    child: Child,
}

impl XvfbDisplay {
    /// Starts Xvfb on the first free display number and waits until it accepts clients.
    pub fn start() -> Result<Self> {
        let binary = ["/usr/bin/Xvfb", "/usr/local/bin/Xvfb"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .context("Xvfb is not installed (no /usr/bin/Xvfb): run scripts/setup-debian")?;
        for number in DISPLAYS {
            // A lock file or socket means the number is taken (or was, by a server that did not clean up).
            if Path::new(&format!("/tmp/.X{number}-lock")).exists() || socket(number).exists() {
                continue;
            }
            let mut child = Command::new(&binary)
                .arg(format!(":{number}"))
                .args(["-screen", "0", "1280x720x24", "-nolisten", "tcp"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("cannot start {}", binary.display()))?;
            let deadline = Instant::now() + WAIT;
            loop {
                if socket(number).exists() {
                    return Ok(XvfbDisplay { number, child });
                }
                if let Some(status) = child.try_wait()? {
                    // Lost a race for the number with another test: try the next.
                    let _ = status;
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    bail!("Xvfb :{number} did not start within {WAIT:?}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        bail!("no free X display number in {DISPLAYS:?}")
    }

    /// The `DISPLAY` value, e.g. `:90`.
    pub fn display(&self) -> String {
        format!(":{}", self.number)
    }
}

fn socket(number: u32) -> PathBuf {
    PathBuf::from(format!("/tmp/.X11-unix/X{number}"))
}

impl Drop for XvfbDisplay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
