//! A running part of the demonstration: a child process whose output is shown with its name, which is
//! ready once it printed its ready line, and which stops on SIGTERM (SIGKILL only after a grace period).
//!
//! Each part runs in its own process group, so a Ctrl-C in the terminal reaches only `citytwin`, which then
//! stops the parts in order (viewer, edges, cloud): edges get to send their last updates to a cloud that
//! is still there.
//!
//! Each part's stdin is a pipe that `citytwin` holds open and never writes, its lifeline
//! ([`twin_telemetry::signal::LIFELINE_ENV`]): if `citytwin` dies without stopping them (SIGKILL, a crash),
//! the pipe closes and every part shuts down cleanly by itself, instead of running on as an orphan that
//! holds its data folder's lock so that the next run cannot start.

use std::{
    process::{ExitStatus, Stdio},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncRead, BufReader},
    process::{Child, ChildStdin, Command},
    sync::oneshot,
};
use tokio_util::sync::CancellationToken;

use twin_telemetry::signal::{LIFELINE_ENV, LIFELINE_STDIN};

use crate::plan::PartSpec;

/// Why a part did not start.
#[derive(Debug, thiserror::Error)]
pub enum PartError {
    /// The program could not be run.
    #[error("cannot start {name} ({program}): {source}")]
    Spawn {
        /// The part.
        name: String,
        /// Its program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// It ended before it printed its ready line.
    #[error("{name} exited before it was ready ({status}); its output is above")]
    ExitedEarly {
        /// The part.
        name: String,
        /// How it ended.
        status: String,
    },
    /// It did not print its ready line in time; it was stopped.
    #[error("{name} was not ready within {waited:?}; it was stopped")]
    NotReady {
        /// The part.
        name: String,
        /// How long it was given.
        waited: Duration,
    },
    /// The demonstration was stopped while the part started; it was stopped too.
    #[error("{name} was stopped while it started")]
    Cancelled {
        /// The part.
        name: String,
    },
}

/// How a part ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It exited (by itself, or after SIGTERM).
    Exited(ExitStatus),
    /// It ignored SIGTERM for the whole grace period and was killed.
    Killed(Duration),
}

impl Ended {
    /// Whether it stopped cleanly (exit 0).
    pub fn clean(&self) -> bool {
        matches!(self, Ended::Exited(s) if s.success())
    }
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::Exited(s) => match s.code() {
                Some(code) => write!(f, "exit {code}"),
                None => write!(f, "{s}"),
            },
            Ended::Killed(after) => write!(f, "killed after ignoring SIGTERM for {after:?}"),
        }
    }
}

/// A running part.
#[derive(Debug)]
pub struct Part {
    /// Its name, e.g. `edge-furong`.
    pub name: String,
    child: Child,
    /// Held open while the part runs; its end is the part's signal that `citytwin` is gone.
    _lifeline: Option<ChildStdin>,
    ended: Option<Ended>,
}

impl Part {
    /// Starts `spec` and waits until it printed its ready line, at most `ready_within`. Its stdout and stderr
    /// lines are shown on stderr as `name | line`. Returns the part and the rest of its ready line. If `stop`
    /// is cancelled meanwhile, the part is stopped and [`PartError::Cancelled`] returned.
    pub async fn start(
        spec: &PartSpec,
        ready_within: Duration,
        grace: Duration,
        stop: &CancellationToken,
    ) -> Result<(Part, String), PartError> {
        let mut command = Command::new(&spec.program);
        command
            .args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .env(LIFELINE_ENV, LIFELINE_STDIN)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            // If citytwin itself fails before it could stop its parts, they go too.
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|source| PartError::Spawn {
            name: spec.name.clone(),
            program: spec.program.display().to_string(),
            source,
        })?;
        let (ready_tx, ready_rx) = oneshot::channel();
        if let Some(out) = child.stdout.take() {
            tokio::spawn(show_lines(spec.name.clone(), out, spec.ready.clone().zip(Some(ready_tx))));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(show_lines(spec.name.clone(), err, None));
        }
        let lifeline = child.stdin.take();
        let mut part = Part { name: spec.name.clone(), child, _lifeline: lifeline, ended: None };
        if spec.ready.is_none() {
            return Ok((part, String::new()));
        }
        let deadline = tokio::time::Instant::now() + ready_within;
        let waited = tokio::select! {
            line = ready_rx => line.ok(),
            status = part.child.wait() => {
                let status = status.map_or_else(|e| format!("cannot wait for it: {e}"), |s| Ended::Exited(s).to_string());
                return Err(PartError::ExitedEarly { name: part.name.clone(), status });
            }
            () = tokio::time::sleep_until(deadline) => {
                part.stop(grace).await;
                return Err(PartError::NotReady { name: part.name.clone(), waited: ready_within });
            }
            () = stop.cancelled() => {
                part.stop(grace).await;
                return Err(PartError::Cancelled { name: part.name.clone() });
            }
        };
        if let Some(rest) = waited {
            return Ok((part, rest));
        }
        // Its stdout closed without the line: it is most likely exiting, but one that closed its output and
        // goes on running must not hold the start up past the deadline.
        tokio::select! {
            status = part.exited() => {
                Err(PartError::ExitedEarly { name: part.name.clone(), status: status.to_string() })
            }
            () = tokio::time::sleep_until(deadline) => {
                part.stop(grace).await;
                Err(PartError::NotReady { name: part.name.clone(), waited: ready_within })
            }
            () = stop.cancelled() => {
                part.stop(grace).await;
                Err(PartError::Cancelled { name: part.name.clone() })
            }
        }
    }

    /// Waits until the part ends by itself.
    pub async fn exited(&mut self) -> Ended {
        if let Some(ended) = self.ended {
            return ended;
        }
        let ended = match self.child.wait().await {
            Ok(status) => Ended::Exited(status),
            // Waiting on our own child cannot fail short of a bug; treat it as gone.
            Err(_) => Ended::Killed(Duration::ZERO),
        };
        self.ended = Some(ended);
        ended
    }

    /// Sends SIGTERM and waits for the part to exit; after `grace`, kills it.
    pub async fn stop(&mut self, grace: Duration) -> Ended {
        if let Some(ended) = self.ended {
            return ended;
        }
        if let Ok(Some(status)) = self.child.try_wait() {
            return *self.ended.insert(Ended::Exited(status));
        }
        if let Some(pid) = self.child.id() {
            sigterm(pid);
        }
        let ended = match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(Ok(status)) => Ended::Exited(status),
            Ok(Err(_)) | Err(_) => {
                let _ = self.child.kill().await;
                Ended::Killed(grace)
            }
        };
        *self.ended.insert(ended)
    }
}

/// Shows each line of `stream` as `name | line` on stderr; the first stdout line starting with the ready
/// marker is also sent (without the marker) to the waiting [`Part::start`].
async fn show_lines(
    name: String,
    stream: impl AsyncRead + Unpin,
    mut ready: Option<(String, oneshot::Sender<String>)>,
) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        eprintln!("{name:>12} | {line}");
        if let Some((marker, _)) = &ready
            && let Some(rest) = line.strip_prefix(marker.as_str())
        {
            let rest = rest.trim().to_owned();
            if let Some((_, tx)) = ready.take() {
                let _ = tx.send(rest);
            }
        }
    }
}

/// SIGTERM to `pid`, a child of this process that has not been reaped yet (so the pid is still ours).
fn sigterm(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return };
    // SAFETY: kill(2) takes no pointers; the worst a wrong pid could do is signal another process, and this
    // one is our unreaped child.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn shell(name: &str, script: &str, ready: Option<&str>) -> PartSpec {
        PartSpec {
            name: name.into(),
            program: PathBuf::from("/bin/sh"),
            args: vec!["-c".into(), script.into()],
            env: vec![("GREETING".into(), "hello".into())],
            ready: ready.map(Into::into),
        }
    }

    const SECOND: Duration = Duration::from_secs(1);
    const LONG: Duration = Duration::from_secs(20);

    #[tokio::test]
    async fn a_part_is_ready_after_its_line_and_stops_on_sigterm() {
        let script = r#"trap 'echo bye; exit 0' TERM; echo "warming up"; echo "ready at $GREETING"; while :; do sleep 0.05; done"#;
        let stop = CancellationToken::new();
        let (mut part, rest) = Part::start(&shell("sh", script, Some("ready at")), LONG, LONG, &stop).await.unwrap();
        assert_eq!(rest, "hello", "the rest of the ready line, with the part's environment");
        let ended = part.stop(LONG).await;
        assert!(ended.clean(), "{ended}");
        assert_eq!(part.stop(LONG).await, ended, "stopping again reports the same end");
    }

    #[tokio::test]
    async fn a_part_that_ignores_sigterm_is_killed_after_the_grace() {
        let script = r#"trap '' TERM; echo up; while :; do sleep 0.05; done"#;
        let stop = CancellationToken::new();
        let (mut part, _) = Part::start(&shell("stubborn", script, Some("up")), LONG, LONG, &stop).await.unwrap();
        let ended = part.stop(Duration::from_millis(300)).await;
        assert_eq!(ended, Ended::Killed(Duration::from_millis(300)));
        assert!(!ended.clean());
        assert!(ended.to_string().contains("ignoring SIGTERM"));
    }

    #[tokio::test]
    async fn a_part_that_exits_before_it_is_ready_is_an_error_naming_it() {
        let stop = CancellationToken::new();
        let e =
            Part::start(&shell("cloud", "echo 'cannot listen' >&2; exit 3", Some("listening")), LONG, SECOND, &stop)
                .await
                .unwrap_err();
        assert!(matches!(e, PartError::ExitedEarly { .. }), "{e:?}");
        let text = e.to_string();
        assert!(text.starts_with("cloud exited before it was ready") && text.contains("exit 3"), "{text}");

        let missing = PartSpec { program: "/nonexistent/edge".into(), ..shell("edge", "", None) };
        let e = Part::start(&missing, LONG, SECOND, &stop).await.unwrap_err().to_string();
        assert!(e.contains("cannot start edge (/nonexistent/edge)"), "{e}");
    }

    #[tokio::test]
    async fn a_silent_part_times_out_and_a_cancelled_start_stops_it() {
        let script = "trap 'exit 0' TERM; while :; do sleep 0.05; done";
        let stop = CancellationToken::new();
        let e = Part::start(&shell("quiet", script, Some("never")), Duration::from_millis(300), LONG, &stop)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("quiet was not ready within 300ms"), "{e}");

        stop.cancel();
        let e = Part::start(&shell("quiet", script, Some("never")), LONG, LONG, &stop).await.unwrap_err();
        assert!(matches!(e, PartError::Cancelled { .. }), "{e:?}");
    }

    #[tokio::test]
    async fn a_part_that_closes_its_output_and_runs_on_is_not_waited_for_past_the_deadline() {
        let script = "exec >&-; trap 'exit 0' TERM; while :; do sleep 0.05; done";
        let (spec, stop) = (shell("mute", script, Some("never")), CancellationToken::new());
        let start = Part::start(&spec, Duration::from_millis(300), LONG, &stop);
        let e = tokio::time::timeout(LONG, start).await.expect("start gives up at its deadline").unwrap_err();
        assert!(e.to_string().contains("mute was not ready within 300ms"), "{e}");
    }

    #[tokio::test]
    async fn a_part_without_a_ready_line_runs_at_once_and_its_end_is_seen() {
        let stop = CancellationToken::new();
        let (mut part, _) = Part::start(&shell("window", "sleep 0.2; exit 4", None), LONG, LONG, &stop).await.unwrap();
        let ended = part.exited().await;
        assert_eq!(ended.to_string(), "exit 4");
        assert_eq!(part.stop(LONG).await, ended, "stopping an ended part only reports its end");
    }
}
