//! Making a sled 0.34 directory durable, for the cloud's store and the edge's outbox alike.
//!
//! sled 0.34's `flush` writes its log with `sync_file_range`, which does not persist file metadata or
//! the drive's write cache, and values larger than about 128 KiB go to separate files under `blobs/`
//! that sled never fsyncs (sled issue #1452). After each flush, [`FileSyncer::sync`] fdatasyncs the main
//! `db` file, every blob file it has not synced yet, and the `blobs` directory when new blobs appeared,
//! so that an acknowledged write survives a power cut.

use std::{
    collections::HashSet,
    ffi::OsString,
    fs::File,
    io,
    path::{Path, PathBuf},
};

/// Fsyncs a sled directory's files.
#[derive(Debug)]
pub struct FileSyncer {
    db_file: File,
    blobs_dir: PathBuf,
    synced_blobs: HashSet<OsString>,
}

impl FileSyncer {
    /// Opens the sled directory's files and makes its directory entries durable.
    pub fn new(dir: &Path) -> io::Result<Self> {
        let db_file = File::open(dir.join("db"))?;
        File::open(dir)?.sync_all()?;
        Ok(FileSyncer { db_file, blobs_dir: dir.join("blobs"), synced_blobs: HashSet::new() })
    }

    /// Fsyncs everything sled has written so far. Call after `flush`.
    pub fn sync(&mut self) -> io::Result<()> {
        self.db_file.sync_data()?;
        let entries = match std::fs::read_dir(&self.blobs_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let mut present = HashSet::new();
        let mut new_blobs = false;
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            if !self.synced_blobs.contains(&name) {
                match File::open(entry.path()) {
                    Ok(f) => f.sync_data()?,
                    // sled removed it (garbage collection) between listing and opening: nothing to sync.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                }
                new_blobs = true;
            }
            present.insert(name);
        }
        if new_blobs {
            File::open(&self.blobs_dir)?.sync_all()?;
        }
        self.synced_blobs = present;
        Ok(())
    }
}
