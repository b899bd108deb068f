use std::{
    io::{IsTerminal, Write},
    time::{Duration, Instant},
};

/// A one-line progress display on stderr: redrawn in place on a terminal, a line every few seconds
/// otherwise (logs, CI).
#[derive(Debug)]
pub struct Progress {
    label: String,
    started: Instant,
    last_line: Instant,
    terminal: bool,
}

impl Progress {
    /// A display for `label` (e.g. "loading Changsha").
    pub fn new(label: &str) -> Self {
        let now = Instant::now();
        Progress { label: label.to_owned(), started: now, last_line: now, terminal: std::io::stderr().is_terminal() }
    }

    /// The current line for `done` of `total`.
    pub fn line(&self, done: usize, total: usize) -> String {
        const WIDTH: usize = 30;
        let fraction = if total == 0 { 1.0 } else { done as f64 / total as f64 };
        let filled = ((fraction * WIDTH as f64).round() as usize).min(WIDTH);
        let elapsed = self.started.elapsed().as_secs_f64();
        let rate = if elapsed > 0.0 { done as f64 / elapsed } else { 0.0 };
        format!(
            "{} [{}{}] {done}/{total} ({:.0}%, {rate:.0}/s)",
            self.label,
            "#".repeat(filled),
            "-".repeat(WIDTH - filled),
            fraction * 100.0
        )
    }

    /// Shows progress; call as often as you like.
    pub fn update(&mut self, done: usize, total: usize) {
        let finished = done >= total;
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(err, "\r{}", self.line(done, total));
            if finished {
                let _ = writeln!(err);
            }
        } else if finished || self.last_line.elapsed() >= Duration::from_secs(2) {
            let _ = writeln!(err, "{}", self.line(done, total));
            self.last_line = Instant::now();
        }
        let _ = err.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_shows_the_fraction_done() {
        let p = Progress::new("loading");
        let line = p.line(50, 200);
        assert!(line.starts_with("loading [########------"), "{line}");
        assert!(line.contains("50/200 (25%"), "{line}");
        assert!(p.line(0, 0).contains("(100%"), "an empty load is complete");
    }
}
