//! The record log: the embedded store's durable write.
//!
//! One append-only file beside the database (`<file>-log`). Every group commit writes one frame holding the
//! group's records, checkpoints and sealed payloads, then `fdatasync`s it; only then is the SQLite
//! transaction holding the same rows committed (without its own sync) and the callers answered. The file is
//! grown in zero-filled, synced chunks ahead of the frames, so a frame's sync writes data blocks only and
//! costs no file-system journal commit.
//!
//! Frame: `magic (4) | log id (16) | frame number (u64 LE) | body length (u32 LE) | CRC-32(log id || frame
//! number || length || body) (u32 LE) | body`. A frame is valid only when its magic, its log id (the
//! database's own, `meta.log_id`), its number (the one after the previous frame) and its checksum match, so
//! a torn or never-finished frame (zeros, or a partial write) ends the log, and a log left beside another
//! database is never replayed into it. The checksum detects torn writes; what the frame carries is
//! protected on its own (records by their hash chain and signed checkpoints, payloads by their AEAD tag).
//! Logs written before this format (magic `CWL1`, a SHA-256 digest in place of the CRC) are still read, so
//! a store left with frames to replay is restored by a newer hub.
//! The database records where the next frame goes (`meta`: `log_end`, `log_frame`) in the same transaction
//! as the frame's rows; frames after that position are replayed into the database when the store is opened.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::AuditError;

const MAGIC: &[u8; 4] = b"CWL2";
const HEADER: usize = 4 + 16 + 8 + 4 + 4;
/// The earlier frame format, with a SHA-256 digest: read, never written.
const MAGIC_SHA256: &[u8; 4] = b"CWL1";
const HEADER_SHA256: usize = 4 + 16 + 8 + 4 + 32;

/// Identifies the log of one database.
pub(crate) type LogId = [u8; 16];
/// The first growth of a new log: small, so a new store costs a new process little.
const FIRST_CHUNK: u64 = 1 << 20;
/// Each later growth at least doubles the file, up to this much at a time; zero-filled and synced before
/// frames use it.
const CHUNK: u64 = 16 << 20;
/// A frame larger than this is not believed (a group is at most a few megabytes).
const MAX_FRAME: usize = 1 << 30;

const TAG_RECORD: u8 = 1;
const TAG_CHECKPOINT: u8 = 2;
const TAG_PAYLOAD: u8 = 3;

/// The log file of the store at `db_path`.
pub(crate) fn log_path(db_path: &Path) -> PathBuf {
    let mut name = db_path.as_os_str().to_owned();
    name.push("-log");
    PathBuf::from(name)
}

fn io_err(what: &str, path: &Path, e: &std::io::Error) -> AuditError {
    AuditError::Write(format!("cannot {what} `{}`: {e}", path.display()))
}

/// A record as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoggedRecord {
    pub chain_id: String,
    pub sequence: u64,
    pub record_hash: String,
    pub body: String,
}

/// A checkpoint as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoggedCheckpoint {
    pub sequence: u64,
    pub chain_id: String,
    pub kind: String,
    pub chain_sequence: u64,
    pub ts_unix_ms: i64,
    pub checkpoint_hash: String,
    pub signature: String,
    pub body: String,
}

/// A sealed payload as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoggedPayload {
    pub record_id: String,
    pub period: String,
    pub sealed: Vec<u8>,
}

/// What one group commit wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Frame {
    pub records: Vec<LoggedRecord>,
    pub checkpoints: Vec<LoggedCheckpoint>,
    pub payloads: Vec<LoggedPayload>,
}

fn put(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_le_bytes());
    buf.extend_from_slice(bytes);
}

fn put_u64(buf: &mut Vec<u8>, n: u64) {
    buf.extend_from_slice(&n.to_le_bytes());
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = self
            .take(4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)?;
        self.take(usize::try_from(len).ok()?)
    }

    fn text(&mut self) -> Option<String> {
        self.bytes()
            .and_then(|b| std::str::from_utf8(b).ok())
            .map(str::to_owned)
    }
}

impl Frame {
    /// Appends the frame's body to `buf`.
    fn encode_into(&self, buf: &mut Vec<u8>) {
        let size: usize = self
            .records
            .iter()
            .map(|r| r.body.len() + r.chain_id.len() + 96)
            .sum::<usize>()
            + self
                .checkpoints
                .iter()
                .map(|c| c.body.len() + c.signature.len() + 256)
                .sum::<usize>()
            + self
                .payloads
                .iter()
                .map(|p| p.sealed.len() + 64)
                .sum::<usize>();
        buf.reserve(size);
        for r in &self.records {
            buf.push(TAG_RECORD);
            put(buf, r.chain_id.as_bytes());
            put_u64(buf, r.sequence);
            put(buf, r.record_hash.as_bytes());
            put(buf, r.body.as_bytes());
        }
        for c in &self.checkpoints {
            buf.push(TAG_CHECKPOINT);
            put_u64(buf, c.sequence);
            put(buf, c.chain_id.as_bytes());
            put(buf, c.kind.as_bytes());
            put_u64(buf, c.chain_sequence);
            buf.extend_from_slice(&c.ts_unix_ms.to_le_bytes());
            put(buf, c.checkpoint_hash.as_bytes());
            put(buf, c.signature.as_bytes());
            put(buf, c.body.as_bytes());
        }
        for p in &self.payloads {
            buf.push(TAG_PAYLOAD);
            put(buf, p.record_id.as_bytes());
            put(buf, p.period.as_bytes());
            put(buf, &p.sealed);
        }
    }

    fn decode(body: &[u8]) -> Option<Self> {
        let mut frame = Self::default();
        let mut c = Cursor(body);
        while !c.0.is_empty() {
            match c.u8()? {
                TAG_RECORD => frame.records.push(LoggedRecord {
                    chain_id: c.text()?,
                    sequence: c.u64()?,
                    record_hash: c.text()?,
                    body: c.text()?,
                }),
                TAG_CHECKPOINT => frame.checkpoints.push(LoggedCheckpoint {
                    sequence: c.u64()?,
                    chain_id: c.text()?,
                    kind: c.text()?,
                    chain_sequence: c.u64()?,
                    ts_unix_ms: c.u64().map(u64::to_le_bytes).map(i64::from_le_bytes)?,
                    checkpoint_hash: c.text()?,
                    signature: c.text()?,
                    body: c.text()?,
                }),
                TAG_PAYLOAD => frame.payloads.push(LoggedPayload {
                    record_id: c.text()?,
                    period: c.text()?,
                    sealed: c.bytes()?.to_vec(),
                }),
                _ => return None,
            }
        }
        Some(frame)
    }
}

/// What a frame's check covers, in order: the log id, the frame number, the body's length and the body.
fn checked<'a>(
    id: &'a LogId,
    number: &'a [u8; 8],
    size: &'a [u8; 4],
    body: &'a [u8],
) -> [&'a [u8]; 4] {
    [id, number, size, body]
}

fn checksum(id: &LogId, number: u64, body: &[u8]) -> [u8; 4] {
    let size = u32::try_from(body.len()).unwrap_or(u32::MAX).to_le_bytes();
    let mut h = crc32fast::Hasher::new();
    for part in checked(id, &number.to_le_bytes(), &size, body) {
        h.update(part);
    }
    h.finalize().to_le_bytes()
}

/// The check of a frame in the earlier format.
fn digest_sha256(id: &LogId, number: u64, body: &[u8]) -> [u8; 32] {
    let size = u32::try_from(body.len()).unwrap_or(u32::MAX).to_le_bytes();
    let mut h = Sha256::new();
    for part in checked(id, &number.to_le_bytes(), &size, body) {
        h.update(part);
    }
    h.finalize().into()
}

/// Where the next frame goes: its byte offset and its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct LogPosition {
    pub offset: u64,
    pub frame: u64,
}

/// The open log file.
#[derive(Debug)]
pub(crate) struct RecordLog {
    path: PathBuf,
    id: LogId,
    file: File,
    /// How far the file is allocated, zero-filled and synced (its length when opened, then what `reserve`
    /// made durable), so an append needs no `stat`.
    allocated: u64,
    scratch: Vec<u8>,
}

impl RecordLog {
    /// Opens (creating if needed) the log of the store at `db_path`, whose log id is `id`, for writing.
    pub(crate) fn open(db_path: &Path, id: LogId) -> Result<Self, AuditError> {
        let path = log_path(db_path);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io_err("open", &path, &e))?;
        let allocated = file
            .metadata()
            .map_err(|e| io_err("read", &path, &e))?
            .len();
        Ok(Self {
            path,
            id,
            file,
            allocated,
            scratch: Vec::new(),
        })
    }

    /// Writes `frame` at `at` and syncs it; returns where the next frame goes. Nothing after `at` is
    /// trusted until this returns.
    pub(crate) fn append(
        &mut self,
        at: LogPosition,
        frame: &Frame,
    ) -> Result<LogPosition, AuditError> {
        // The body is encoded in place after the header, whose length and checksum are filled in after it.
        self.scratch.clear();
        self.scratch.resize(HEADER, 0);
        frame.encode_into(&mut self.scratch);
        let (header, body) = self.scratch.split_at_mut(HEADER);
        if body.len() > MAX_FRAME {
            return Err(AuditError::Write(
                "a group is too large for one log frame".into(),
            ));
        }
        let size = u32::try_from(body.len()).unwrap_or(u32::MAX).to_le_bytes();
        let sum = checksum(&self.id, at.frame, body);
        // HEADER is the sum of these fields' lengths.
        header.copy_from_slice(
            &[
                MAGIC.as_slice(),
                &self.id,
                &at.frame.to_le_bytes(),
                &size,
                &sum,
            ]
            .concat(),
        );
        let end = at.offset + self.scratch.len() as u64;
        self.reserve(end)?;
        self.file
            .write_all_at(&self.scratch, at.offset)
            .map_err(|e| io_err("write", &self.path, &e))?;
        self.file
            .sync_data()
            .map_err(|e| io_err("sync", &self.path, &e))?;
        Ok(LogPosition {
            offset: end,
            frame: at.frame + 1,
        })
    }

    /// Makes sure the file is allocated, zero-filled and synced up to `end`, growing it ahead: by at least
    /// [`FIRST_CHUNK`], doubling the file each time, at most [`CHUNK`] beyond `end`.
    fn reserve(&mut self, end: u64) -> Result<(), AuditError> {
        if end <= self.allocated {
            return Ok(());
        }
        let target = grown_to(self.allocated, end);
        let zeros = vec![0_u8; 1 << 20];
        let mut at = self.allocated;
        while at < target {
            let n = usize::try_from((target - at).min(zeros.len() as u64)).unwrap_or(zeros.len());
            self.file
                .write_all_at(&zeros[..n], at)
                .map_err(|e| io_err("grow", &self.path, &e))?;
            at += n as u64;
        }
        // The size and the zeroed blocks are durable before any frame in them is acknowledged.
        self.file
            .sync_all()
            .map_err(|e| io_err("sync", &self.path, &e))?;
        self.allocated = target;
        Ok(())
    }
}

/// The length a log allocated up to `allocated` grows to so that `end` fits: the file doubled (by at least
/// [`FIRST_CHUNK`], at most [`CHUNK`]), or `end` rounded up to a multiple of [`FIRST_CHUNK`] if that is
/// further. A new store writes 1 MiB of zeros, not 16; a busy one grows 16 MiB at a time.
fn grown_to(allocated: u64, end: u64) -> u64 {
    let doubled = allocated + allocated.clamp(FIRST_CHUNK, CHUNK);
    doubled.max(end.div_ceil(FIRST_CHUNK) * FIRST_CHUNK)
}

/// Reads the valid frames of the log of the store at `db_path` from `from`, in order, until the first
/// frame that is missing, torn or out of sequence, or numbered `until` or later. Returns them with the
/// position after the last.
pub(crate) fn read_from(
    db_path: &Path,
    id: &LogId,
    from: LogPosition,
    until: Option<u64>,
) -> Result<(Vec<Frame>, LogPosition), AuditError> {
    let path = log_path(db_path);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), from)),
        Err(e) => return Err(io_err("open", &path, &e)),
    };
    let len = file
        .metadata()
        .map_err(|e| io_err("read", &path, &e))?
        .len();
    let mut frames = Vec::new();
    let mut at = from;
    let mut header = [0_u8; HEADER_SHA256];
    loop {
        let left = len.saturating_sub(at.offset);
        if left < HEADER as u64 || until.is_some_and(|until| at.frame >= until) {
            break;
        }
        let read = usize::try_from(left.min(HEADER_SHA256 as u64)).unwrap_or(HEADER);
        let header = &mut header[..read];
        file.read_exact_at(header, at.offset)
            .map_err(|e| io_err("read", &path, &e))?;
        let (magic, rest) = header.split_at(4);
        let header_len = match magic {
            m if m == MAGIC => HEADER,
            m if m == MAGIC_SHA256 && read == HEADER_SHA256 => HEADER_SHA256,
            _ => break,
        };
        let (log_id, rest) = rest.split_at(16);
        let (number, rest) = rest.split_at(8);
        let (size, rest) = rest.split_at(4);
        let Some(sum) = rest.get(..header_len - (4 + 16 + 8 + 4)) else {
            break;
        };
        let number = number.try_into().map(u64::from_le_bytes).unwrap_or(0);
        let size = size.try_into().map(u32::from_le_bytes).unwrap_or(0);
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        if log_id != id
            || number != at.frame
            || size > MAX_FRAME
            || at.offset + (header_len + size) as u64 > len
        {
            break;
        }
        let mut body = vec![0_u8; size];
        file.read_exact_at(&mut body, at.offset + header_len as u64)
            .map_err(|e| io_err("read", &path, &e))?;
        let intact = if header_len == HEADER {
            checksum(id, number, &body).as_slice() == sum
        } else {
            digest_sha256(id, number, &body).as_slice() == sum
        };
        if !intact {
            break;
        }
        let Some(frame) = Frame::decode(&body) else {
            break;
        };
        frames.push(frame);
        at = LogPosition {
            offset: at.offset + (header_len + size) as u64,
            frame: at.frame + 1,
        };
    }
    Ok((frames, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: u64) -> Frame {
        Frame {
            records: vec![LoggedRecord {
                chain_id: "c".into(),
                sequence: n,
                record_hash: format!("{n:064}"),
                body: format!("{{\"n\":{n}}}"),
            }],
            checkpoints: vec![LoggedCheckpoint {
                sequence: n,
                chain_id: "c".into(),
                kind: "periodic".into(),
                chain_sequence: n,
                ts_unix_ms: -5,
                checkpoint_hash: "h".into(),
                signature: "s".into(),
                body: "{}".into(),
            }],
            payloads: vec![LoggedPayload {
                record_id: "r".into(),
                period: "2026-01-02".into(),
                sealed: vec![0, 1, 2],
            }],
        }
    }

    #[test]
    fn the_log_grows_from_one_mebibyte_doubling_up_to_a_chunk_at_a_time() {
        const MIB: u64 = 1 << 20;
        assert_eq!(grown_to(0, 300), MIB);
        assert_eq!(grown_to(MIB, MIB + 1), 2 * MIB);
        assert_eq!(grown_to(2 * MIB, 2 * MIB + 1), 4 * MIB);
        assert_eq!(grown_to(8 * MIB, 8 * MIB + 1), 16 * MIB);
        assert_eq!(grown_to(16 * MIB, 16 * MIB + 1), 32 * MIB);
        assert_eq!(grown_to(32 * MIB, 32 * MIB + 1), 48 * MIB);
        // A frame larger than the doubling still fits.
        assert_eq!(grown_to(MIB, 5 * MIB + 7), 6 * MIB);

        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("audit.db");
        let mut log = RecordLog::open(&db, [3; 16]).unwrap();
        let at = log.append(LogPosition::default(), &frame(1)).unwrap();
        assert_eq!(std::fs::metadata(log_path(&db)).unwrap().len(), MIB);
        // A reopened log knows how far it is allocated and does not grow again for the next frame.
        drop(log);
        let mut log = RecordLog::open(&db, [3; 16]).unwrap();
        log.append(at, &frame(2)).unwrap();
        assert_eq!(std::fs::metadata(log_path(&db)).unwrap().len(), MIB);
        assert_eq!(
            read_from(&db, &[3; 16], LogPosition::default(), None)
                .unwrap()
                .0
                .len(),
            2
        );
    }

    #[test]
    fn frames_read_back_and_a_torn_tail_ends_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("audit.db");
        let id = [7; 16];
        let mut log = RecordLog::open(&db, id).unwrap();
        let mut at = LogPosition::default();
        let mut ends = Vec::new();
        for n in 1..=3 {
            at = log.append(at, &frame(n)).unwrap();
            ends.push(at);
        }
        let (frames, end) = read_from(&db, &id, LogPosition::default(), None).unwrap();
        assert_eq!(frames, vec![frame(1), frame(2), frame(3)]);
        assert_eq!(end, at);
        // From a later position, only what follows.
        let (frames, _) = read_from(&db, &id, ends[0], None).unwrap();
        assert_eq!(frames.len(), 2);
        // Up to a frame number: the frames before it, and the position where it starts.
        let (frames, end) =
            read_from(&db, &id, LogPosition::default(), Some(ends[1].frame)).unwrap();
        assert_eq!(frames, vec![frame(1), frame(2)]);
        assert_eq!(end, ends[1]);
        // A torn third frame: one byte of its body flipped.
        let file = OpenOptions::new().write(true).open(log_path(&db)).unwrap();
        file.write_all_at(&[0xff], ends[2].offset - 2).unwrap();
        let (frames, end) = read_from(&db, &id, LogPosition::default(), None).unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(end, ends[1]);
        // A frame written over the torn one continues the log.
        let mut log = RecordLog::open(&db, id).unwrap();
        let after = log.append(end, &frame(9)).unwrap();
        let (frames, end) = read_from(&db, &id, LogPosition::default(), None).unwrap();
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[2], frame(9));
        assert_eq!(end, after);
        // Another database's log id reads nothing.
        let (frames, _) = read_from(&db, &[8; 16], LogPosition::default(), None).unwrap();
        assert!(frames.is_empty());
    }

    /// A frame in the earlier format (SHA-256 digest), as a hub before this one wrote it.
    fn earlier_frame(id: &LogId, number: u64, frame: &Frame) -> Vec<u8> {
        let mut body = Vec::new();
        frame.encode_into(&mut body);
        let size = u32::try_from(body.len()).unwrap().to_le_bytes();
        let digest = digest_sha256(id, number, &body);
        [
            MAGIC_SHA256.as_slice(),
            id,
            &number.to_le_bytes(),
            &size,
            &digest,
            &body,
        ]
        .concat()
    }

    #[test]
    fn frames_of_the_earlier_format_are_replayed_and_new_ones_follow_them() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("audit.db");
        let id = [7; 16];
        let old = [
            earlier_frame(&id, 0, &frame(1)),
            earlier_frame(&id, 1, &frame(2)),
        ]
        .concat();
        std::fs::write(log_path(&db), &old).unwrap();
        let after_old = LogPosition {
            offset: old.len() as u64,
            frame: 2,
        };
        let (frames, end) = read_from(&db, &id, LogPosition::default(), None).unwrap();
        assert_eq!(frames, vec![frame(1), frame(2)]);
        assert_eq!(end, after_old);
        // The writer goes on in the new format after them.
        let mut log = RecordLog::open(&db, id).unwrap();
        let at = log.append(end, &frame(3)).unwrap();
        let (frames, end) = read_from(&db, &id, LogPosition::default(), None).unwrap();
        assert_eq!(frames, vec![frame(1), frame(2), frame(3)]);
        assert_eq!(end, at);
        // ... with its 36-byte header and checksum.
        let mut body = Vec::new();
        frame(3).encode_into(&mut body);
        assert_eq!(at.offset - after_old.offset, (HEADER + body.len()) as u64);
        assert_eq!(HEADER, 36);
        // A torn earlier-format frame ends the log as a torn new one does.
        let file = OpenOptions::new().write(true).open(log_path(&db)).unwrap();
        file.write_all_at(&[0xff], after_old.offset - 2).unwrap();
        let (frames, end) = read_from(&db, &id, LogPosition::default(), None).unwrap();
        assert_eq!(frames, vec![frame(1)]);
        assert_eq!(end.frame, 1);
    }
}
