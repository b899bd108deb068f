//! Kill -9 while appending: every append that returned must be on disk after reopen, once, in order.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead, BufReader, Write},
    path::Path,
    process::{Command, Stdio},
};

use twin_model::{AttrName, EntityId, Value};
use twin_outbox::{Outbox, OutboxConfig, OutboxUpdate};

/// Set in the child process: the outbox directory to write to.
const CHILD_ENV: &str = "TWIN_OUTBOX_CRASH_CHILD_DIR";
const APPEND: i64 = 50;

fn config(dir: &Path) -> OutboxConfig {
    OutboxConfig { max_batch_updates: 300, ..OutboxConfig::new(dir) }
}

fn update(i: i64) -> OutboxUpdate {
    OutboxUpdate {
        entity: EntityId::new(&format!("urn:e:{}", i % 13)).unwrap(),
        attribute: AttrName::new("n").unwrap(),
        value: Value::Integer(i),
        observed_at: 1_700_000_000_000 + i,
    }
}

/// The writer process: does nothing unless started by `survives_sigkill_during_appends`. Appends forever,
/// printing the count after each append returns, until killed.
#[test]
fn crash_child_writer() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else { return };
    let outbox = Outbox::open(config(Path::new(&dir))).unwrap();
    let mut next = outbox.stats().depth_updates as i64;
    let mut out = std::io::stdout().lock();
    loop {
        let batch: Vec<_> = (next..next + APPEND).map(update).collect();
        outbox.append(&batch).unwrap();
        next += APPEND;
        if next % 1_000 == 0 {
            outbox.seal().unwrap();
        }
        writeln!(out, "appended {next}").unwrap();
        out.flush().unwrap();
    }
}

/// Starts the writer, waits until it has appended at least `min` updates in total, SIGKILLs it and
/// returns the highest count it reported.
fn run_child_and_kill(dir: &Path, min: i64) -> i64 {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child_writer", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acknowledged = 0;
    for line in lines.by_ref() {
        if let Some(n) = line.unwrap().strip_prefix("appended ") {
            acknowledged = n.parse().unwrap();
            if acknowledged >= min {
                break;
            }
        }
    }
    assert!(acknowledged >= min, "the writer stopped early");
    child.kill().unwrap();
    child.wait().unwrap();
    // Lines printed before the kill landed are acknowledged appends too.
    for line in lines {
        if let Some(n) = line.unwrap().strip_prefix("appended ") {
            acknowledged = n.parse().unwrap();
        }
    }
    acknowledged
}

#[test]
fn survives_sigkill_during_appends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox");
    let first = run_child_and_kill(&path, 5_000);
    // A second writer recovers, continues after what is stored, and is killed again.
    let second = run_child_and_kill(&path, first + 5_000);

    let outbox = Outbox::open(config(&path)).unwrap();
    outbox.seal().unwrap();
    let batches = outbox.sealed_after(0, usize::MAX).unwrap();
    assert!(batches.windows(2).all(|w| w[0].seq < w[1].seq));
    let stored: Vec<i64> =
        batches.iter().flat_map(|b| b.updates.iter().map(|u| u.observed_at - 1_700_000_000_000)).collect();
    assert!(stored.len() as i64 >= second, "{} stored, {second} acknowledged", stored.len());
    assert_eq!(stored.len() as i64 % APPEND, 0, "an append is all or nothing");
    assert!(stored.iter().copied().eq(0..stored.len() as i64), "updates missing, duplicated or out of order");
    for b in &batches {
        assert!(b.updates.iter().all(|u| u.value == Value::Integer(u.observed_at - 1_700_000_000_000)));
    }
    assert_eq!(outbox.latest().len(), 13);
}
