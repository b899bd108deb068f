#![allow(clippy::unwrap_used, clippy::expect_used)]

use twin_model::{AttrName, EntityId, Value};

use crate::{Outbox, OutboxConfig, OutboxError, OutboxUpdate, WhenFull};

mod fragments;

const T0: i64 = 1_700_000_000_000;

fn upd(entity: &str, attr: &str, v: i64, t: i64) -> OutboxUpdate {
    OutboxUpdate {
        entity: EntityId::new(entity).unwrap(),
        attribute: AttrName::new(attr).unwrap(),
        value: Value::Integer(v),
        observed_at: T0 + t,
    }
}

/// `n` updates numbered from `from`, spread over `attrs` attributes of one entity; value = observed offset.
fn series(from: i64, n: i64, attrs: i64) -> Vec<OutboxUpdate> {
    (from..from + n).map(|i| upd("urn:e:1", &format!("a{}", i % attrs), i, i)).collect()
}

fn config(dir: &tempfile::TempDir) -> OutboxConfig {
    OutboxConfig { max_batch_updates: 10, ..OutboxConfig::new(dir.path().join("outbox")) }
}

/// Every stored update: sealed batches in seq order, then the open batch (sealed to read it).
fn everything(outbox: &Outbox) -> Vec<(u64, OutboxUpdate)> {
    outbox.seal().unwrap();
    outbox
        .sealed_after(0, usize::MAX)
        .unwrap()
        .into_iter()
        .flat_map(|b| b.updates.into_iter().map(move |u| (b.seq, u)))
        .collect()
}

fn values(updates: &[(u64, OutboxUpdate)]) -> Vec<i64> {
    updates.iter().map(|(_, u)| u.observed_at - T0).collect()
}

#[test]
fn reopen_keeps_sealed_and_open_updates_in_order_with_the_same_seqs() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let outbox = Outbox::open(config(&dir)).unwrap();
        let mut sealed = Vec::new();
        for chunk in series(0, 25, 4).chunks(7) {
            sealed.extend(outbox.append(chunk).unwrap().sealed);
        }
        assert_eq!(sealed, vec![1, 2], "full batches are sealed by append");
        assert_eq!(outbox.stats().open_updates, 5);
        outbox.sealed_after(0, 10).unwrap()
    };
    let outbox = Outbox::open(config(&dir)).unwrap();
    assert_eq!(outbox.sealed_after(0, 10).unwrap(), before, "sealed batches are immutable across reopen");
    assert_eq!(outbox.stats().depth_updates, 25);
    let all = everything(&outbox);
    assert_eq!(values(&all), (0..25).collect::<Vec<_>>());
    assert_eq!(all.last().unwrap().0, 3, "the open batch is sealed under the next seq after reopen");
}

#[test]
fn seqs_are_never_reused_even_after_everything_is_acked() {
    let dir = tempfile::tempdir().unwrap();
    {
        let outbox = Outbox::open(config(&dir)).unwrap();
        outbox.append(&series(0, 30, 3)).unwrap();
        outbox.ack(3).unwrap();
        assert_eq!(outbox.stats().depth_updates, 0);
    }
    let outbox = Outbox::open(config(&dir)).unwrap();
    outbox.append(&series(30, 2, 3)).unwrap();
    assert_eq!(outbox.seal().unwrap(), Some(4));
}

#[test]
fn ack_is_cumulative_idempotent_and_durable() {
    let dir = tempfile::tempdir().unwrap();
    {
        let outbox = Outbox::open(config(&dir)).unwrap();
        outbox.append(&series(0, 50, 5)).unwrap();
        assert_eq!(outbox.stats().sealed_batches, 5);
        outbox.ack(3).unwrap();
        outbox.ack(2).unwrap();
        outbox.ack(3).unwrap();
        let stats = outbox.stats();
        assert_eq!((stats.sealed_batches, stats.depth_updates, stats.last_acked_seq), (2, 20, 3));
        let seqs: Vec<_> = outbox.sealed_after(0, 10).unwrap().iter().map(|b| b.seq).collect();
        assert_eq!(seqs, vec![4, 5]);
    }
    // sled flushes acks in the background; dropping the handle flushes them too.
    let outbox = Outbox::open(config(&dir)).unwrap();
    let seqs: Vec<_> = outbox.sealed_after(0, 10).unwrap().iter().map(|b| b.seq).collect();
    assert_eq!(seqs, vec![4, 5]);
    assert_eq!(outbox.stats().last_acked_seq, 3);
}

#[test]
fn an_ack_above_every_seq_moves_the_counter_so_no_seq_the_cloud_applied_is_reused() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(config(&dir)).unwrap();
    outbox.append(&[upd("urn:e:1", "x", 1, 1)]).unwrap();
    // The cloud says it applied up to 100 (say the box lost its disk): the open value must survive.
    outbox.ack(100).unwrap();
    assert_eq!(outbox.latest().len(), 1);
    assert_eq!(outbox.seal().unwrap(), Some(101));
    outbox.ack(101).unwrap();
    assert!(outbox.latest().is_empty());
    drop(outbox);
    let outbox = Outbox::open(config(&dir)).unwrap();
    outbox.append(&[upd("urn:e:1", "x", 2, 2)]).unwrap();
    assert_eq!(outbox.seal().unwrap(), Some(102));
}

#[test]
fn latest_keeps_the_newest_value_per_attribute_and_is_rebuilt_on_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let outbox = Outbox::open(config(&dir)).unwrap();
        // Batch 1: x@5, y@1. Batch 2 (open until sealed): x@3 arrives late, y@2 is newer.
        outbox.append(&[upd("urn:e:1", "x", 50, 5), upd("urn:e:1", "y", 10, 1)]).unwrap();
        outbox.seal().unwrap();
        outbox.append(&[upd("urn:e:1", "x", 30, 3), upd("urn:e:1", "y", 20, 2), upd("urn:e:2", "x", 7, 1)]).unwrap();
        let expected = vec![upd("urn:e:1", "x", 50, 5), upd("urn:e:1", "y", 20, 2), upd("urn:e:2", "x", 7, 1)];
        assert_eq!(outbox.latest(), expected);
    }
    let outbox = Outbox::open(config(&dir)).unwrap();
    assert_eq!(
        outbox.latest(),
        vec![upd("urn:e:1", "x", 50, 5), upd("urn:e:1", "y", 20, 2), upd("urn:e:2", "x", 7, 1)]
    );
    // Acking batch 1 removes x@5 (the cloud has it) even though the older x@3 is still queued.
    outbox.ack(1).unwrap();
    assert_eq!(outbox.latest(), vec![upd("urn:e:1", "y", 20, 2), upd("urn:e:2", "x", 7, 1)]);
    outbox.seal().unwrap();
    outbox.ack(2).unwrap();
    assert!(outbox.latest().is_empty());
}

fn small_budget(dir: &tempfile::TempDir, when_full: WhenFull) -> OutboxConfig {
    OutboxConfig {
        max_batch_updates: 50,
        max_batch_bytes: 2_048,
        disk_budget_bytes: 16_384,
        when_full,
        ..OutboxConfig::new(dir.path().join("outbox"))
    }
}

#[test]
fn drop_oldest_history_stays_in_budget_keeps_every_latest_value_and_counts_the_loss() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(small_budget(&dir, WhenFull::DropOldestHistory)).unwrap();
    // Attribute a0 is written once at the start and never again: its only value must survive every drop.
    outbox.append(&[upd("urn:e:0", "only", -1, -1)]).unwrap();
    let mut dropped = 0;
    for chunk in series(0, 3_000, 7).chunks(20) {
        dropped += outbox.append(chunk).unwrap().dropped_by_policy;
        assert!(outbox.stats().used_bytes <= 16_384, "{:?}", outbox.stats());
    }
    let stats = outbox.stats();
    assert!(stats.dropped_by_policy > 2_000, "{stats:?}");
    assert_eq!(stats.dropped_by_policy, dropped);
    assert_eq!(stats.depth_updates + stats.dropped_by_policy, 3_001, "every update is either stored or counted");
    let mut expected: Vec<_> = (3_000 - 7..3_000).map(|i| upd("urn:e:1", &format!("a{}", i % 7), i, i)).collect();
    expected.insert(0, upd("urn:e:0", "only", -1, -1));
    expected.sort_by(|a, b| (&a.entity, &a.attribute).cmp(&(&b.entity, &b.attribute)));
    assert_eq!(outbox.latest(), expected);
    let stored: Vec<_> = everything(&outbox).into_iter().map(|(_, u)| u).collect();
    for u in &expected {
        assert!(stored.contains(u), "latest value {u:?} was dropped");
    }
    // The newest history is kept in order after the carried values.
    let tail = values(&everything(&outbox));
    assert!(tail.ends_with(&(2_990..3_000).collect::<Vec<_>>()));
}

#[test]
fn reject_new_refuses_with_a_typed_error_counts_and_keeps_what_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(small_budget(&dir, WhenFull::RejectNew)).unwrap();
    let mut next = 0;
    let err = loop {
        match outbox.append(&series(next, 20, 3)) {
            Ok(_) => next += 20,
            Err(e) => break e,
        }
        assert!(next < 100_000, "never became full");
    };
    assert!(matches!(err, OutboxError::Full { budget_bytes: 16_384, .. }), "{err}");
    let stats = outbox.stats();
    assert_eq!((stats.rejected_when_full, stats.dropped_by_policy, stats.depth_updates), (20, 0, next as u64));
    assert_eq!(values(&everything(&outbox)), (0..next).collect::<Vec<_>>());
    // Acking makes room again.
    outbox.ack(outbox.stats().last_sealed_seq).unwrap();
    outbox.append(&series(next, 20, 3)).unwrap();
}

#[test]
fn dead_letters_are_stored_listed_with_reasons_bounded_and_do_not_block_acks() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = OutboxConfig { max_dead_letters: 5, ..config(&dir) };
    {
        let outbox = Outbox::open(cfg.clone()).unwrap();
        outbox.append(&series(0, 20, 2)).unwrap();
        let batch = &outbox.sealed_after(0, 1).unwrap()[0];
        let rejected = batch.updates[..3].iter().map(|u| (u.clone(), "unknown entity".to_string())).collect();
        outbox.dead_letter(batch.seq, rejected).unwrap();
        outbox.ack(batch.seq).unwrap();
        assert_eq!(outbox.sealed_after(0, 10).unwrap()[0].seq, 2, "the rejected batch does not block the next");
        let listed = outbox.dead_letters(10).unwrap();
        assert_eq!(listed.len(), 3);
        assert_eq!(
            (listed[0].seq, listed[0].reason.as_str(), &listed[0].update),
            (1, "unknown entity", &batch.updates[0])
        );
        // A second group of 4 goes over the bound of 5: the oldest group is deleted and counted.
        let more = series(100, 4, 2).into_iter().map(|u| (u, "out of range".to_string())).collect();
        outbox.dead_letter(2, more).unwrap();
        let stats = outbox.stats();
        assert_eq!((stats.dead_letters, stats.dead_letters_dropped, stats.dead_lettered), (4, 3, 7));
        // One group larger than the bound keeps its newest letters.
        let many = series(200, 7, 2).into_iter().map(|u| (u, "wrong kind".to_string())).collect();
        outbox.dead_letter(3, many).unwrap();
        let listed = outbox.dead_letters(10).unwrap();
        assert_eq!(
            values(&listed.iter().map(|d| (d.seq, d.update.clone())).collect::<Vec<_>>()),
            vec![202, 203, 204, 205, 206]
        );
        assert_eq!(outbox.stats().dead_letters_dropped, 3 + 4 + 2);
    }
    let outbox = Outbox::open(cfg).unwrap();
    assert_eq!(outbox.stats().dead_letters, 5);
    assert_eq!(outbox.dead_letters(2).unwrap().len(), 2);
    assert!(outbox.dead_letters(10).unwrap().iter().all(|d| d.seq == 3 && d.reason == "wrong kind"));
}

#[test]
fn each_durable_seal_is_announced_in_seq_order() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(config(&dir)).unwrap();
    let mut seals = outbox.subscribe_seals();
    let before = std::time::Instant::now();
    assert_eq!(outbox.append(&series(0, 25, 4)).unwrap().sealed, vec![1, 2]);
    assert_eq!(outbox.seal().unwrap(), Some(3));
    assert_eq!(outbox.seal().unwrap(), None);
    let got: Vec<_> = std::iter::from_fn(|| seals.try_recv().ok()).collect();
    let seqs: Vec<_> = got.iter().map(|s| (s.seq, s.updates)).collect();
    assert_eq!(
        seqs,
        vec![(1, 10), (2, 10), (3, 5)],
        "full batches by append, the rest by seal; nothing for an empty seal"
    );
    assert!(got[0].at >= before && got.windows(2).all(|w| w[0].at <= w[1].at));
    let readable: Vec<_> = outbox.sealed_after(0, 10).unwrap().iter().map(|b| b.seq).collect();
    assert_eq!(readable, vec![1, 2, 3], "an announced batch can be read");
}

#[test]
fn sealed_after_pages_in_seq_order() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(config(&dir)).unwrap();
    outbox.append(&series(0, 100, 5)).unwrap();
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = outbox.sealed_after(after, 3).unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3);
        after = page.last().unwrap().seq;
        seen.extend(page.iter().map(|b| b.seq));
    }
    assert_eq!(seen, (1..=10).collect::<Vec<_>>());
    outbox.ack(4).unwrap();
    assert_eq!(outbox.sealed_after(0, 1).unwrap()[0].seq, 5);
    assert!(outbox.sealed_after(u64::MAX, 1).unwrap().is_empty());
}

#[test]
fn recent_sealed_batches_are_served_from_memory_as_stored_and_a_backlog_from_disk() {
    use crate::RECENT_SEALED_BATCHES;
    let dir = tempfile::tempdir().unwrap();
    let batches = RECENT_SEALED_BATCHES as i64 + 8;
    {
        let outbox = Outbox::open(config(&dir)).unwrap();
        outbox.append(&series(0, 10 * batches, 3)).unwrap();
        let on_disk = outbox.sealed_after(0, usize::MAX).unwrap();
        assert_eq!(on_disk.len() as i64, batches);
        // The newest sealed batches are in memory, identical to their records, in pages like sealed_after's.
        assert_eq!(outbox.recent_sealed_after(0, 5), on_disk[..5]);
        assert_eq!(outbox.recent_sealed_after(0, usize::MAX), on_disk[..RECENT_SEALED_BATCHES], "bounded");
        assert!(outbox.has_sealed_after(0) && !outbox.has_sealed_after(batches as u64));
        // Acked batches leave memory too; those sealed while memory was full were never there: a backlog
        // the uplink reads from disk.
        outbox.ack(3).unwrap();
        assert_eq!(outbox.recent_sealed_after(0, 2), on_disk[3..5]);
        outbox.ack(RECENT_SEALED_BATCHES as u64).unwrap();
        assert!(outbox.recent_sealed_after(RECENT_SEALED_BATCHES as u64, 10).is_empty());
        assert_eq!(outbox.sealed_after(RECENT_SEALED_BATCHES as u64, 10).unwrap(), on_disk[RECENT_SEALED_BATCHES..]);
        // Memory has room again, so a batch sealed now is there (after the disk-only ones).
        outbox.append(&series(10 * batches, 10, 3)).unwrap();
        assert!(outbox.recent_sealed_after(batches as u64, 1).first().is_some_and(|b| b.seq == batches as u64 + 1));
    }
    // After a restart everything is on disk only.
    let outbox = Outbox::open(config(&dir)).unwrap();
    assert!(outbox.recent_sealed_after(0, 10).is_empty());
    assert_eq!(outbox.sealed_after(0, usize::MAX).unwrap().len(), 9);
    assert!(outbox.has_sealed_after(batches as u64) && !outbox.has_sealed_after(batches as u64 + 1));
}

#[test]
fn an_update_larger_than_a_batch_is_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(OutboxConfig { max_batch_bytes: 2_048, ..config(&dir) }).unwrap();
    let mut big = upd("urn:e:1", "x", 0, 0);
    big.value = Value::Text("x".repeat(4_000));
    let err = outbox.append(&[upd("urn:e:1", "y", 0, 0), big]).unwrap_err();
    assert!(matches!(err, OutboxError::UpdateTooLarge { .. }), "{err}");
    assert_eq!(outbox.stats().depth_updates, 0);
}

#[test]
fn invalid_configs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bad = [
        OutboxConfig { max_batch_updates: 0, ..config(&dir) },
        OutboxConfig { max_batch_bytes: 200_000, ..config(&dir) },
        OutboxConfig { disk_budget_bytes: 1_000, ..config(&dir) },
    ];
    for cfg in bad {
        assert!(matches!(Outbox::open(cfg), Err(OutboxError::InvalidConfig(_))));
    }
}
