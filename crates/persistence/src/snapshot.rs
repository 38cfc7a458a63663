//! Forkless point-in-time snapshots of the keyspace into an RDB file.
//!
//! `begin` holds every shard lock for an instant: it notes the sizes and
//! dirty counters, writes the file header and marks every shard "owed"
//! (`Shard::snapshot`). From then on whoever is about to change an owed
//! shard writes what it will change first: a single-key write its key
//! (`save_key`), any other locker the whole shard (`save_shard`), and the
//! snapshot's own walk (`walk`) writes the rest in slices, one shard-lock
//! hold each. Each key is marked when written and skipped afterwards, so
//! it reaches the file exactly once, as it was at `begin`, while writes go
//! on everywhere else. Extra memory: one value's encoding, the file
//! buffer and the names of the keys written out of order.

use crate::codec::Limits;
use crate::file::FileWriter;
use damselfly_storage::{Keyspace, Locked, Shard, ShardSnapshot};
use parking_lot::Mutex;
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

struct Sink<W: Write> {
    writer: Option<FileWriter<W>>,
    error: Option<io::Error>,
    /// The DB the file's last SELECTDB named (keys written one by one
    /// select theirs only when it changes).
    selected: Option<usize>,
}

struct Owed<W: Write> {
    sink: Mutex<Sink<W>>,
    /// Per shard, the keys already written by `save_key` (or absent when
    /// first touched): `save_shard` skips them. Only touched under the
    /// shard's own lock; emptied when the shard is paid in full.
    by_key: Box<[Mutex<HashSet<Box<[u8]>>>]>,
    keys_done: AtomicU64,
    /// Microseconds the snapshot's own thread sleeps per key it wrote
    /// (Redis's rdb-key-save-delay, a testing knob that keeps a snapshot
    /// running without slowing anyone else).
    key_delay_us: u64,
}

/// Writes `key` from every DB of `shard` that holds it; returns how many
/// entries were written.
fn write_everywhere<W: Write>(
    sink: &mut Sink<W>,
    shard: &Shard,
    key: &[u8],
) -> (u64, io::Result<()>) {
    let Some(w) = sink.writer.as_mut() else {
        return (0, Ok(()));
    };
    let mut keys = 0;
    for (db, d) in shard.dbs.iter().enumerate() {
        let Some(e) = d.table.get(key) else {
            continue;
        };
        if sink.selected != Some(db) {
            sink.selected = Some(db);
            if let Err(err) = w.select_db(db, None) {
                return (keys, Err(err));
            }
        }
        if let Err(err) = w.entry(e) {
            return (keys, Err(err));
        }
        keys += 1;
    }
    (keys, Ok(()))
}

impl<W: Write + Send> Owed<W> {
    /// Records a write's outcome: the count, or the error that loses the
    /// file (later shards then skip writing).
    fn account(&self, sink: &mut Sink<W>, keys: u64, result: io::Result<()>) {
        self.keys_done.fetch_add(keys, Relaxed);
        if let Err(e) = result {
            sink.writer = None;
            sink.error = Some(e);
        }
    }
}

impl<W: Write + Send> ShardSnapshot for Owed<W> {
    fn save_shard(&self, index: usize, shard: &Shard) {
        let skip = std::mem::take(&mut *self.by_key[index].lock());
        let mut sink = self.sink.lock();
        let sink = &mut *sink;
        let Some(w) = sink.writer.as_mut() else {
            return;
        };
        let mut result = Ok(());
        let mut keys = 0;
        for (db, d) in shard.dbs.iter().enumerate() {
            if d.is_empty() {
                continue;
            }
            result = w.select_db(db, None);
            sink.selected = Some(db);
            for e in d.table.iter() {
                if result.is_err() {
                    break;
                }
                if skip.contains(e.key()) {
                    continue;
                }
                result = w.entry(e);
                keys += 1;
            }
            if result.is_err() {
                break;
            }
        }
        self.account(sink, keys, result);
    }

    fn save_key(&self, index: usize, shard: &Shard, key: &[u8]) {
        if !self.by_key[index].lock().insert(key.into()) {
            return;
        }
        let mut sink = self.sink.lock();
        let (keys, result) = write_everywhere(&mut sink, shard, key);
        self.account(&mut sink, keys, result);
    }
}

/// Marks every shard of `all` owed to a snapshot written by `writer`,
/// whose header then gets the RESIZEDB hints. Returns the debt, the dirty
/// counters and the key count at this instant.
fn mark<W: Write + Send + 'static>(
    ks: &Keyspace,
    all: &mut Locked<'_>,
    mut writer: FileWriter<W>,
    key_delay_us: u64,
) -> (Arc<Owed<W>>, Vec<u64>, u64) {
    let owed = Arc::new(Owed {
        sink: Mutex::new(Sink {
            writer: None,
            error: None,
            selected: None,
        }),
        by_key: (0..ks.shard_count()).map(|_| Mutex::default()).collect(),
        keys_done: AtomicU64::new(0),
        key_delay_us,
    });
    let mut sizes = vec![(0u64, 0u64); ks.dbnum()];
    let mut dirty_at_start = Vec::with_capacity(ks.shard_count());
    for shard in all.iter_mut() {
        for (db, d) in shard.dbs.iter().enumerate() {
            sizes[db].0 += d.len() as u64;
            sizes[db].1 += d.volatile as u64;
        }
        dirty_at_start.push(shard.stats.dirty);
        shard.snapshot = Some(owed.clone() as Arc<dyn ShardSnapshot>);
    }
    // The RESIZEDB hints first; each shard then selects its DBs again.
    let mut header = Ok(());
    for (db, &(keys, expires)) in sizes.iter().enumerate() {
        if keys > 0 && header.is_ok() {
            header = writer.select_db(db, Some((keys, expires)));
        }
    }
    {
        let mut sink = owed.sink.lock();
        match header {
            Ok(()) => sink.writer = Some(writer),
            Err(e) => sink.error = Some(e),
        }
    }
    (owed, dirty_at_start, sizes.iter().map(|s| s.0).sum())
}

/// Keys the snapshot's own thread writes per hold of a shard lock: a
/// worker that wants the shard waits for one slice at most, not for the
/// whole shard (about 4,000 keys at 1M keys, ~4 ms).
const SLICE_KEYS: usize = 128;

/// Where the walk of one shard stands between its slices.
struct Walk {
    db: usize,
    cursor: u64,
}

impl<W: Write + Send> Owed<W> {
    /// Writes the next slice of shard `index` (held): entries not yet
    /// written, in table-cursor order, each marked done as `save_key`
    /// marks keys. The cursor visits every key present for the whole walk
    /// at least once, whatever resizes happen between slices (the SCAN
    /// guarantee); a key seen twice is skipped the second time. Returns
    /// whether the shard is complete, and the keys this slice wrote.
    fn save_slice(&self, index: usize, shard: &Shard, at: &mut Walk) -> (bool, u64) {
        let mut done = self.by_key[index].lock();
        let mut sink = self.sink.lock();
        let mut result = Ok(());
        let mut keys = 0;
        let mut found: Vec<Box<[u8]>> = Vec::new();
        while at.db < shard.dbs.len() && keys < SLICE_KEYS as u64 && result.is_ok() {
            let table = &shard.dbs[at.db].table;
            if table.is_empty() {
                at.db += 1;
                continue;
            }
            at.cursor = table.scan_bucket(at.cursor, |e| {
                if !done.contains(e.key()) {
                    found.push(e.key().into());
                }
            });
            // A key is written from every DB at once, as `save_key`
            // writes it, so one mark covers all its DBs.
            for key in found.drain(..) {
                let (n, r) = write_everywhere(&mut sink, shard, &key);
                keys += n;
                result = r;
                done.insert(key);
                if result.is_err() {
                    break;
                }
            }
            if at.cursor == 0 {
                at.db += 1;
            }
        }
        let complete = at.db >= shard.dbs.len() || result.is_err() || sink.writer.is_none();
        self.account(&mut sink, keys, result);
        if complete {
            done.clear();
            done.shrink_to_fit();
        }
        (complete, keys)
    }
}

/// Writes what each shard still owes, one slice per hold of its lock;
/// `before` runs before each shard, holding no lock.
fn walk<W: Write + Send>(owed: &Owed<W>, ks: &Keyspace, mut before: impl FnMut()) {
    for i in 0..ks.shard_count() {
        before();
        let mut at = Walk { db: 0, cursor: 0 };
        loop {
            let (complete, written) = {
                // `peek`: this thread pays the debt itself, slice by slice.
                let mut g = ks.peek(i);
                if g.snapshot.is_none() {
                    // Paid in full by a command meanwhile.
                    (true, 0)
                } else {
                    let (complete, written) = owed.save_slice(i, &g, &mut at);
                    if complete {
                        g.snapshot = None;
                    }
                    (complete, written)
                }
            };
            // The delay is per key this thread wrote: the keys commands
            // wrote meanwhile (counted in `keys_done` too) cost it nothing.
            if owed.key_delay_us > 0 && written > 0 {
                std::thread::sleep(std::time::Duration::from_micros(
                    owed.key_delay_us.saturating_mul(written),
                ));
            }
            if complete {
                break;
            }
        }
    }
}

/// A writer with the RDB header, the aux fields and the function
/// libraries written: what every snapshot starts with.
fn start<W: Write>(
    out: W,
    limits: Limits,
    aux: &[(&str, String)],
    functions: &[Vec<u8>],
) -> io::Result<FileWriter<W>> {
    let mut w = FileWriter::new(out, limits, aux)?;
    for code in functions {
        w.function(code)?;
    }
    Ok(w)
}

fn check_all_held(ks: &Keyspace, all: &Locked<'_>) -> io::Result<()> {
    if (0..ks.shard_count()).all(|i| all.holds(i)) {
        Ok(())
    } else {
        Err(io::Error::other(
            "a snapshot must begin with every shard locked",
        ))
    }
}

/// A snapshot into any writer, for a replica's full sync: same contents
/// and same rules as a file snapshot. The writer gets the RDB as shards are
/// paid (by the walk in `finish` or by writers that lock a shard first), so
/// a writer that passes the bytes on (to replicas' sockets) holds no more
/// than it chooses to.
pub struct StreamSnapshot<W: Write + Send + 'static> {
    owed: Arc<Owed<W>>,
}

/// Starts a snapshot of `ks` into `out`; `all` must hold every shard.
pub fn begin_stream<W: Write + Send + 'static>(
    ks: &Keyspace,
    all: &mut Locked<'_>,
    out: W,
    limits: Limits,
    aux: &[(&str, String)],
    functions: &[Vec<u8>],
    key_delay_us: u64,
) -> io::Result<StreamSnapshot<W>> {
    check_all_held(ks, all)?;
    let writer = start(out, limits, aux, functions)?;
    let (owed, _, _) = mark(ks, all, writer, key_delay_us);
    Ok(StreamSnapshot { owed })
}

impl<W: Write + Send + 'static> StreamSnapshot<W> {
    /// Walks every shard still owed and completes the RDB (EOF and
    /// checksum); returns the writer. `ready` runs before each shard with
    /// no lock held (a place to wait for readers to catch up); once it
    /// returns false the snapshot is abandoned: the remaining shards' debts
    /// are cleared without writing and an error is returned.
    pub fn finish(self, ks: &Keyspace, mut ready: impl FnMut() -> bool) -> io::Result<W> {
        let mut going = true;
        walk(&self.owed, ks, || {
            if going && !ready() {
                going = false;
                let mut sink = self.owed.sink.lock();
                sink.writer = None;
                sink.error = Some(io::Error::other("every reader went away"));
            }
        });
        let mut sink = self.owed.sink.lock();
        if let Some(e) = sink.error.take() {
            return Err(e);
        }
        sink.writer
            .take()
            .ok_or_else(|| io::Error::other("snapshot writer missing"))?
            .finish()
    }
}

/// A snapshot that has begun: its contents are fixed, its file is being
/// written.
pub struct Snapshot {
    owed: Arc<Owed<BufWriter<File>>>,
    temp: PathBuf,
    target: PathBuf,
    dirty_at_start: Vec<u64>,
    pub keys_total: u64,
}

/// What a finished save reports.
#[derive(Debug)]
pub struct Saved {
    pub keys: u64,
    pub bytes: u64,
}

/// Starts a snapshot of `ks` into `target` (written as a temp file beside
/// it, renamed when complete). `all` must hold every shard: the caller's
/// own locks (a command flagged `all_shards`) or `Keyspace::lock_all`.
pub fn begin(
    ks: &Keyspace,
    all: &mut Locked<'_>,
    target: &Path,
    limits: Limits,
    aux: &[(&str, String)],
    functions: &[Vec<u8>],
    key_delay_us: u64,
) -> io::Result<Snapshot> {
    check_all_held(ks, all)?;
    let dir = target.parent().unwrap_or(Path::new("."));
    let temp = dir.join(format!(
        "temp-{}-{}.rdb.tmp",
        std::process::id(),
        damselfly_storage::mono_ns()
    ));
    let file = File::create(&temp)?;
    let writer = match start(
        BufWriter::with_capacity(1 << 20, file),
        limits,
        aux,
        functions,
    ) {
        Ok(w) => w,
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
    };
    let (owed, dirty_at_start, keys_total) = mark(ks, all, writer, key_delay_us);
    Ok(Snapshot {
        owed,
        temp,
        target: target.to_path_buf(),
        dirty_at_start,
        keys_total,
    })
}

impl Snapshot {
    /// The file this snapshot completes.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Keys written so far (INFO current_save_keys_processed).
    pub fn progress(&self) -> Arc<dyn Fn() -> u64 + Send + Sync> {
        let owed = self.owed.clone();
        Arc::new(move || owed.keys_done.load(Relaxed))
    }

    /// Walks every shard still owed, then completes the file: EOF and
    /// checksum, fsync, rename over the target, fsync of the directory.
    /// On success the dirty counters drop by what they were at `begin`.
    pub fn finish(self, ks: &Keyspace) -> io::Result<Saved> {
        walk(&self.owed, ks, || {});
        let result = self.complete();
        if result.is_ok() {
            for (i, d) in self.dirty_at_start.iter().enumerate() {
                let mut s = ks.lock_one(i);
                s.stats.dirty = s.stats.dirty.saturating_sub(*d);
            }
        }
        result
    }

    /// `finish` for a caller that still holds every shard (FLUSHALL saving
    /// the emptied keyspace): the held shards pay their debts directly.
    pub fn finish_held(self, all: &mut Locked<'_>) -> io::Result<Saved> {
        for (i, shard) in all.iter_indexed_mut() {
            if let Some(owed) = shard.snapshot.take() {
                owed.save_shard(i, shard);
            }
        }
        let result = self.complete();
        if result.is_ok() {
            for ((_, shard), d) in all.iter_indexed_mut().zip(&self.dirty_at_start) {
                shard.stats.dirty = shard.stats.dirty.saturating_sub(*d);
            }
        }
        result
    }

    /// Completes the file; on failure removes the temp file.
    fn complete(&self) -> io::Result<Saved> {
        let result = self.write_out();
        if result.is_err() {
            let _ = std::fs::remove_file(&self.temp);
        }
        result
    }

    fn write_out(&self) -> io::Result<Saved> {
        let mut sink = self.owed.sink.lock();
        if let Some(e) = sink.error.take() {
            return Err(e);
        }
        let w = sink
            .writer
            .take()
            .ok_or_else(|| io::Error::other("snapshot writer missing"))?;
        let file = w.finish()?.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        let bytes = file.metadata()?.len();
        drop(file);
        std::fs::rename(&self.temp, &self.target)?;
        if let Some(dir) = self.target.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            File::open(dir)?.sync_all()?;
        }
        Ok(Saved {
            keys: self.owed.keys_done.load(Relaxed),
            bytes,
        })
    }
}
