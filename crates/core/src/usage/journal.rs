//! [`Journal`]: the append-only files usage records wait in until the store has them.
//!
//! The directory holds segment files `<seq>.seg` (20 digits, so name order is append order) and
//! one `checkpoint` file. A segment is a run of frames: `len: u32 LE`, `crc32(payload): u32 LE`,
//! `payload` (the record as JSON). Appends go to the last segment, which is sealed and a new one
//! started once it reaches `segment_bytes`. The checkpoint (`<seq> <offset>`, replaced by
//! rename) is the position up to which the store has acknowledged the records; segments wholly
//! before it are deleted.
//!
//! Appending is one `write(2)` of the whole frame under a mutex (microseconds: the page cache),
//! called from the request's task. Once `write(2)` returns the record survives a crash of the
//! process, SIGKILL included: the bytes belong to the kernel. Power loss is what `fsync` is for
//! ([`Fsync`]). Opening the journal scans every segment and truncates each at its first frame
//! that is incomplete or fails its CRC (a torn write: the process died in the middle of one,
//! or the disk lost unsynced blocks), so appends resume after the last whole record.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use portcullis_types::UsageRecord;

use crate::config::Fsync;

/// Bytes of a frame's header: length and CRC32.
pub const HEADER: usize = 8;
/// The largest payload a frame may declare (a record is a few hundred bytes): a larger length
/// is a torn or corrupt header, not a record.
pub const MAX_PAYLOAD: u32 = 64 * 1024;
/// How much of a segment one read takes at most.
const READ_CHUNK: u64 = 1 << 20;
const CHECKPOINT: &str = "checkpoint";
const SEGMENT_EXT: &str = "seg";

/// A place in the journal: a segment and a byte offset in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub seq: u64,
    pub offset: u64,
}

/// How a journal is laid out and synced.
#[derive(Debug, Clone)]
pub struct JournalOptions {
    pub dir: PathBuf,
    pub segment_bytes: u64,
    /// Bytes not yet in the store past which [`Journal::admit`] refuses new requests.
    pub max_bytes: u64,
    pub fsync: Fsync,
}

/// Why the journal cannot take a record.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The store is behind by more than `max_bytes`: back-pressure.
    #[error("the usage journal is full ({backlog} bytes not yet in the store)")]
    Full { backlog: u64 },
    #[error("usage journal I/O: {0}")]
    Io(#[from] io::Error),
    #[error("usage record encoding: {0}")]
    Encode(#[from] serde_json::Error),
}

/// What [`Journal::open`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Records after the checkpoint: written, not yet acknowledged by the store.
    pub pending_records: u64,
    pub pending_bytes: u64,
    /// Bytes cut off torn or corrupt segment tails.
    pub truncated_bytes: u64,
    pub segments: usize,
}

/// Records read from the journal, and where the next read starts.
#[derive(Debug, Default)]
pub struct Batch {
    pub records: Vec<UsageRecord>,
    pub next: Position,
    /// Frame bytes the batch covers (what committing it takes off the backlog).
    pub bytes: u64,
}

#[derive(Debug)]
struct Active {
    seq: u64,
    len: u64,
    file: Arc<File>,
    /// Every live segment and its written length (the active one included).
    segments: BTreeMap<u64, u64>,
}

/// The journal. Shared (`Arc`) by the request path (appends) and the writer (reads, commits).
#[derive(Debug)]
pub struct Journal {
    opts: JournalOptions,
    active: Mutex<Active>,
    /// Frame bytes appended and not yet committed by the writer.
    backlog: AtomicU64,
    /// Something was appended since the last background fsync.
    dirty: AtomicBool,
    checkpoint: Mutex<Position>,
    appended: tokio::sync::Notify,
}

/// Encodes one frame: header and JSON payload.
pub fn encode(record: &UsageRecord) -> Result<Vec<u8>, JournalError> {
    let mut frame = vec![0; HEADER];
    serde_json::to_writer(&mut frame, record)?;
    let len = u32::try_from(frame.len() - HEADER)
        .ok()
        .filter(|n| *n <= MAX_PAYLOAD)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "usage record too large"))?;
    let crc = crc32fast::hash(&frame[HEADER..]);
    frame[..4].copy_from_slice(&len.to_le_bytes());
    frame[4..HEADER].copy_from_slice(&crc.to_le_bytes());
    Ok(frame)
}

/// One frame read from `buf`: its payload and total length; `None` when `buf` does not start
/// with a whole valid frame (too short, an impossible length, or a CRC mismatch).
pub fn decode(buf: &[u8]) -> Option<(&[u8], usize)> {
    let len = u32::from_le_bytes(buf.get(..4)?.try_into().ok()?);
    let crc = u32::from_le_bytes(buf.get(4..HEADER)?.try_into().ok()?);
    if len > MAX_PAYLOAD {
        return None;
    }
    let end = HEADER + len as usize;
    let payload = buf.get(HEADER..end)?;
    (crc32fast::hash(payload) == crc).then_some((payload, end))
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.{SEGMENT_EXT}"))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave a half-written frame behind a valid length
    // (the length is only advanced after the write), so the state is usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Journal {
    /// Opens (creating it if needed) the journal in `opts.dir` and recovers it: torn tails are
    /// truncated, and the records after the checkpoint are pending for the writer.
    pub fn open(opts: JournalOptions) -> Result<(Self, Recovery), JournalError> {
        fs::create_dir_all(&opts.dir)?;
        let checkpoint = read_checkpoint(&opts.dir)?;
        let mut recovery = Recovery::default();
        let mut segments = BTreeMap::new();
        for seq in list_segments(&opts.dir)? {
            let path = segment_path(&opts.dir, seq);
            if seq < checkpoint.seq {
                // Flushed, but the process died before deleting it.
                fs::remove_file(&path)?;
                continue;
            }
            let (valid, records_after) = scan(&path, checkpoint_in(checkpoint, seq))?;
            let len = fs::metadata(&path)?.len();
            if len > valid {
                tracing::warn!(
                    segment = seq,
                    bytes = len - valid,
                    "usage journal: truncating a torn or corrupt segment tail"
                );
                OpenOptions::new().write(true).open(&path)?.set_len(valid)?;
                recovery.truncated_bytes += len - valid;
            }
            recovery.pending_records += records_after;
            recovery.pending_bytes += valid.saturating_sub(checkpoint_in(checkpoint, seq));
            segments.insert(seq, valid);
        }
        recovery.segments = segments.len();
        let (seq, len) = match segments.last_key_value() {
            Some((&seq, &len)) if len < opts.segment_bytes => (seq, len),
            Some((&seq, _)) => (seq + 1, 0),
            None => (checkpoint.seq.max(1), 0),
        };
        let file = open_segment(&opts.dir, seq)?;
        segments.insert(seq, len);
        let checkpoint = match segments.get(&checkpoint.seq) {
            // Never past the valid data (a power loss can lose data a synced checkpoint
            // covered).
            Some(&valid) => Position {
                seq: checkpoint.seq,
                offset: checkpoint.offset.min(valid),
            },
            // The checkpoint's segment is gone (deleted by hand): start at the first there is.
            None => Position {
                seq: segments.keys().next().copied().unwrap_or(seq),
                offset: 0,
            },
        };
        let journal = Self {
            backlog: AtomicU64::new(recovery.pending_bytes),
            opts,
            active: Mutex::new(Active {
                seq,
                len,
                file: Arc::new(file),
                segments,
            }),
            dirty: AtomicBool::new(false),
            checkpoint: Mutex::new(checkpoint),
            appended: tokio::sync::Notify::new(),
        };
        Ok((journal, recovery))
    }

    pub fn options(&self) -> &JournalOptions {
        &self.opts
    }

    /// Bytes written and not yet acknowledged by the store.
    pub fn backlog(&self) -> u64 {
        self.backlog.load(Ordering::Relaxed)
    }

    /// Whether a new request may start: refused while the store is more than `max_bytes`
    /// behind. Requests already admitted still append (the overshoot is bounded by the
    /// requests in flight), so nothing admitted is ever left unaccounted.
    pub fn admit(&self) -> Result<(), JournalError> {
        let backlog = self.backlog();
        if backlog > self.opts.max_bytes {
            return Err(JournalError::Full { backlog });
        }
        Ok(())
    }

    /// Appends one record: when this returns `Ok`, the record has been written (`write(2)`),
    /// and fsynced too under [`Fsync::Always`] (which blocks: call it off the async runtime).
    pub fn append(&self, record: &UsageRecord) -> Result<(), JournalError> {
        let frame = encode(record)?;
        self.append_frame(&frame, self.opts.fsync == Fsync::Always)
    }

    /// Appends without flushing to disk, whatever the policy: for the records of requests that
    /// are not acknowledged (errors, clients gone), appended from a runtime thread. The next
    /// flush (another append under `always`, a rotation, the interval) covers them.
    pub fn append_unsynced(&self, record: &UsageRecord) -> Result<(), JournalError> {
        let frame = encode(record)?;
        self.append_frame(&frame, false)
    }

    /// Appends an encoded frame (see [`encode`]), then flushes it to disk if `sync`.
    pub fn append_frame(&self, frame: &[u8], sync: bool) -> Result<(), JournalError> {
        let mut active = lock(&self.active);
        if active.len >= self.opts.segment_bytes {
            self.rotate(&mut active)?;
        }
        let mut file = active.file.as_ref();
        if let Err(e) = file.write_all(frame) {
            // Cut off whatever part of the frame was written, so the next append starts clean.
            let _ = active.file.set_len(active.len);
            return Err(e.into());
        }
        active.len += frame.len() as u64;
        // A failed flush leaves the record written (it survives a process crash, and the store
        // gets it) but not acknowledged: the caller answers 503.
        let synced = if sync {
            active.file.sync_data()
        } else {
            Ok(())
        };
        let (seq, len) = (active.seq, active.len);
        active.segments.insert(seq, len);
        drop(active);
        self.backlog
            .fetch_add(frame.len() as u64, Ordering::Relaxed);
        self.dirty.store(true, Ordering::Relaxed);
        self.appended.notify_one();
        Ok(synced?)
    }

    fn rotate(&self, active: &mut Active) -> io::Result<()> {
        if self.opts.fsync != Fsync::Never {
            active.file.sync_data()?;
        }
        let seq = active.seq + 1;
        let file = open_segment(&self.opts.dir, seq)?;
        if self.opts.fsync != Fsync::Never {
            File::open(&self.opts.dir)?.sync_all()?;
        }
        active.seq = seq;
        active.len = 0;
        active.file = Arc::new(file);
        active.segments.insert(seq, 0);
        Ok(())
    }

    /// Flushes the active segment to disk if anything was appended since the last call (for
    /// [`Fsync::Interval`]; blocking). Sealed segments were synced when sealed.
    pub fn sync(&self) -> io::Result<()> {
        if !self.dirty.swap(false, Ordering::Relaxed) {
            return Ok(());
        }
        let file = lock(&self.active).file.clone();
        // Outside the lock: appends go on while the disk flushes.
        file.sync_data()
    }

    /// Waits until something is appended (or returns at once if something was appended since
    /// the last wait).
    pub async fn appended(&self) {
        self.appended.notified().await;
    }

    /// The position the store has acknowledged up to.
    pub fn checkpoint(&self) -> Position {
        *lock(&self.checkpoint)
    }

    /// Reads up to `max` records from `from` (blocking file reads). Stops at the end of what
    /// has been appended so far.
    pub fn read(&self, from: Position, max: usize) -> Result<Batch, JournalError> {
        let segments = lock(&self.active).segments.clone();
        let mut batch = Batch {
            records: Vec::new(),
            next: from,
            bytes: 0,
        };
        let mut pos = from;
        for (&seq, &len) in segments.range(from.seq..) {
            if seq > pos.seq {
                pos = Position { seq, offset: 0 };
            }
            while pos.offset < len && batch.records.len() < max {
                let read = read_frames(&self.opts.dir, pos, len, max - batch.records.len())?;
                if read.bytes == 0 {
                    let bad = io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "corrupt usage journal frame in segment {seq} at {}",
                            pos.offset
                        ),
                    );
                    return Err(bad.into());
                }
                pos.offset += read.bytes;
                batch.bytes += read.bytes;
                batch.records.extend(read.records);
            }
            batch.next = pos;
            if batch.records.len() >= max {
                break;
            }
        }
        Ok(batch)
    }

    /// Records that the store has everything before `to` (a batch's `next`, covering `bytes`):
    /// writes the checkpoint (replaced by rename, so never torn) and deletes the segments
    /// before it.
    pub fn commit(&self, to: Position, bytes: u64) -> Result<(), JournalError> {
        let mut checkpoint = lock(&self.checkpoint);
        write_checkpoint(&self.opts.dir, to, self.opts.fsync != Fsync::Never)?;
        *checkpoint = to;
        drop(checkpoint);
        self.backlog.fetch_sub(
            bytes.min(self.backlog.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
        let done: Vec<u64> = {
            let mut active = lock(&self.active);
            let done: Vec<u64> = active.segments.range(..to.seq).map(|(s, _)| *s).collect();
            for seq in &done {
                active.segments.remove(seq);
            }
            done
        };
        for seq in done {
            fs::remove_file(segment_path(&self.opts.dir, seq))?;
        }
        Ok(())
    }
}

/// Where reading a segment starts past the checkpoint: its offset in the checkpoint's segment,
/// 0 in later ones.
fn checkpoint_in(checkpoint: Position, seq: u64) -> u64 {
    if seq == checkpoint.seq {
        checkpoint.offset
    } else {
        0
    }
}

fn open_segment(dir: &Path, seq: u64) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(segment_path(dir, seq))
}

fn list_segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut seqs = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some(SEGMENT_EXT) {
            continue;
        }
        if let Some(seq) = path.file_stem().and_then(|s| s.to_str()?.parse().ok()) {
            seqs.push(seq);
        }
    }
    seqs.sort_unstable();
    Ok(seqs)
}

/// The length of a segment's valid prefix, and how many of its records start at or after
/// `after`.
fn scan(path: &Path, after: u64) -> io::Result<(u64, u64)> {
    let mut buf = Vec::new();
    File::open(path)?.read_to_end(&mut buf)?;
    let (mut at, mut records) = (0, 0);
    while let Some((payload, n)) = decode(&buf[at..]) {
        if serde_json::from_slice::<UsageRecord>(payload).is_err() {
            break;
        }
        if at as u64 >= after {
            records += 1;
        }
        at += n;
    }
    Ok((at as u64, records))
}

/// Records read from one segment.
struct Frames {
    records: Vec<UsageRecord>,
    bytes: u64,
}

/// Reads whole frames of segment `pos.seq` from `pos.offset`, not past `len`.
fn read_frames(dir: &Path, pos: Position, len: u64, max: usize) -> io::Result<Frames> {
    let mut file = File::open(segment_path(dir, pos.seq))?;
    file.seek(SeekFrom::Start(pos.offset))?;
    let want = (len - pos.offset).min(READ_CHUNK);
    let mut buf = Vec::with_capacity(usize::try_from(want).unwrap_or(0));
    file.take(want).read_to_end(&mut buf)?;
    let mut frames = Frames {
        records: Vec::new(),
        bytes: 0,
    };
    let mut at = 0;
    while frames.records.len() < max {
        let Some((payload, n)) = decode(&buf[at..]) else {
            break;
        };
        let Ok(record) = serde_json::from_slice(payload) else {
            break;
        };
        frames.records.push(record);
        at += n;
    }
    frames.bytes = at as u64;
    Ok(frames)
}

fn read_checkpoint(dir: &Path) -> io::Result<Position> {
    let text = match fs::read_to_string(dir.join(CHECKPOINT)) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Position::default()),
        Err(e) => return Err(e),
    };
    let mut parts = text.split_whitespace().map(str::parse::<u64>);
    match (parts.next(), parts.next()) {
        (Some(Ok(seq)), Some(Ok(offset))) => Ok(Position { seq, offset }),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the usage journal's checkpoint file is malformed",
        )),
    }
}

fn write_checkpoint(dir: &Path, pos: Position, sync: bool) -> io::Result<()> {
    let tmp = dir.join("checkpoint.tmp");
    let mut file = File::create(&tmp)?;
    file.write_all(format!("{} {}\n", pos.seq, pos.offset).as_bytes())?;
    if sync {
        file.sync_data()?;
    }
    fs::rename(&tmp, dir.join(CHECKPOINT))
}

#[cfg(test)]
#[path = "journal_tests.rs"]
mod tests;
