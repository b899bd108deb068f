//! Sealed batches stored as fragment ranges: each update written once, nothing left behind by an ack, the
//! inline format of older outboxes still read, and a concurrent ack never mistaken for corruption.

use super::{config, everything, series, small_budget, values};
use crate::{
    Outbox, OutboxError, WhenFull,
    format::{self, LAST_SEALED, OPEN, RANGE_RECORD_MAX, SEALED, SealedRecord, key},
};

/// The stored records under `prefix`: (key number, value length).
fn records(outbox: &Outbox, prefix: u8) -> Vec<(u64, usize)> {
    outbox
        .db()
        .scan_prefix([prefix])
        .map(|item| {
            let (k, v) = item.unwrap();
            (format::number(&k).unwrap(), v.len())
        })
        .collect()
}

#[test]
fn a_seal_names_the_fragments_instead_of_copying_them_and_an_ack_deletes_both() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(config(&dir)).unwrap();
    // Batches of 10 from appends of 4: fragments split at each seal, so every fragment is one batch's.
    for chunk in series(0, 26, 3).chunks(4) {
        outbox.append(chunk).unwrap();
    }
    assert_eq!(outbox.seal().unwrap(), Some(3));
    let fragments = records(&outbox, OPEN);
    let sealed = records(&outbox, SEALED);
    assert_eq!(sealed.len(), 3);
    assert!(sealed.iter().all(|&(_, len)| len <= RANGE_RECORD_MAX), "a B record holds no updates: {sealed:?}");
    let update_bytes: usize = series(0, 26, 3).iter().map(format::update_size).sum();
    let fragment_bytes: usize = fragments.iter().map(|&(_, len)| len).sum();
    assert!(
        fragment_bytes >= update_bytes && fragment_bytes < update_bytes + 16 * fragments.len(),
        "each update is stored once: {fragment_bytes} bytes of fragments for {update_bytes} of updates"
    );
    assert_eq!(outbox.stats().used_bytes as usize, fragment_bytes + sealed.iter().map(|&(_, l)| l).sum::<usize>());
    assert_eq!(values(&everything(&outbox)), (0..26).collect::<Vec<_>>());

    outbox.ack(2).unwrap();
    assert_eq!(records(&outbox, SEALED).iter().map(|&(seq, _)| seq).collect::<Vec<_>>(), vec![3]);
    let left: Vec<_> = records(&outbox, OPEN).into_iter().map(|(id, _)| id).collect();
    assert!(left.len() < fragments.len() && !left.is_empty(), "the acked batches' fragments are deleted");
    drop(outbox);
    let outbox = Outbox::open(config(&dir)).unwrap();
    assert_eq!(values(&everything(&outbox)), (20..26).collect::<Vec<_>>(), "what is left reads back after reopen");
    outbox.ack(3).unwrap();
    assert!(records(&outbox, OPEN).is_empty() && records(&outbox, SEALED).is_empty(), "nothing left behind");
    assert_eq!(outbox.stats().used_bytes, 0);
    // Fragment ids restart after everything was deleted, and new batches work as before.
    drop(outbox);
    let outbox = Outbox::open(config(&dir)).unwrap();
    outbox.append(&series(26, 12, 3)).unwrap();
    assert_eq!(everything(&outbox).iter().map(|(seq, _)| *seq).collect::<Vec<_>>(), [vec![4; 10], vec![5; 2]].concat());
}

#[test]
fn an_outbox_written_with_inline_batches_opens_sends_them_and_seals_on_with_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(&dir).path;
    let old = series(0, 23, 4);
    {
        // What an outbox of format 1 left: batches 1 and 2 inline, its open batch in two fragments.
        let db = sled::Config::new().path(&path).open().unwrap();
        for (seq, batch) in [(1u64, &old[0..10]), (2, &old[10..20])] {
            let record = SealedRecord { sealed_at_ms: 5, updates: batch.to_vec() };
            db.insert(key(SEALED, seq), format::encode(&record)).unwrap();
        }
        db.insert(key(OPEN, 0), format::encode(&old[20..22])).unwrap();
        db.insert(key(OPEN, 1), format::encode(&old[22..23])).unwrap();
        db.insert(LAST_SEALED, &2u64.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    let outbox = Outbox::open(config(&dir)).unwrap();
    assert_eq!((outbox.stats().depth_updates, outbox.stats().open_updates), (23, 3));
    let inline = outbox.sealed_after(0, 10).unwrap();
    assert_eq!(
        inline.iter().map(|b| b.updates.clone()).collect::<Vec<_>>(),
        vec![old[0..10].to_vec(), old[10..20].to_vec()]
    );
    // The old open batch fills up and is sealed as a range that includes its old fragments.
    assert_eq!(outbox.append(&series(23, 9, 4)).unwrap().sealed, vec![3]);
    drop(outbox);
    let outbox = Outbox::open(config(&dir)).unwrap();
    let all = everything(&outbox);
    assert_eq!(values(&all), (0..32).collect::<Vec<_>>());
    let seqs: Vec<_> = all.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, [vec![1; 10], vec![2; 10], vec![3; 10], vec![4; 2]].concat());
    outbox.ack(4).unwrap();
    assert!(records(&outbox, OPEN).is_empty() && records(&outbox, SEALED).is_empty());
}

#[test]
fn a_sealed_batch_missing_a_fragment_is_refused_on_open_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    {
        let outbox = Outbox::open(config(&dir)).unwrap();
        for chunk in series(0, 20, 3).chunks(5) {
            outbox.append(chunk).unwrap();
        }
        let (id, _) = records(&outbox, OPEN)[1];
        outbox.db().remove(key(OPEN, id)).unwrap();
        outbox.db().flush().unwrap();
    }
    let err = Outbox::open(config(&dir)).unwrap_err();
    let batch_key = key(SEALED, 1).escape_ascii().to_string();
    assert!(matches!(&err, OutboxError::Corrupt { key, .. } if *key == batch_key), "{err}");
    assert!(err.to_string().contains("names 10 updates in fragments 0..=1, but they hold 5"), "{err}");
}

#[test]
fn batches_dropped_for_room_take_their_fragments_with_them() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(small_budget(&dir, WhenFull::DropOldestHistory)).unwrap();
    for chunk in series(0, 3_000, 7).chunks(20) {
        outbox.append(chunk).unwrap();
    }
    let stats = outbox.stats();
    assert!(stats.dropped_by_policy > 2_000, "{stats:?}");
    let on_disk: usize = [OPEN, SEALED].iter().flat_map(|&p| records(&outbox, p)).map(|(_, len)| len).sum();
    assert_eq!(on_disk as u64, stats.used_bytes, "no fragment of a dropped batch is left on disk");
}

#[test]
fn reading_batches_while_they_are_acked_never_reports_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(config(&dir)).unwrap();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut reads = 0u64;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                for batch in outbox.sealed_after(0, usize::MAX).expect("a concurrent ack is not corruption") {
                    assert_eq!(batch.updates.len(), 10, "batch {} read whole", batch.seq);
                }
                reads += 1;
            }
            reads
        });
        for round in 0..200 {
            for chunk in series(round * 30, 30, 7).chunks(3) {
                outbox.append(chunk).unwrap();
            }
            outbox.ack(outbox.stats().last_sealed_seq).unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
    });
}
