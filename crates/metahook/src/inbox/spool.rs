//! The fallback spool: a local append-only file that takes deliveries while the database
//! cannot be reached, so that Meta still gets its 200 only for what is durable.
//!
//! Each record is `length (u32 LE) | checksum (u64 LE, FNV-1a of the payload) | payload`, and
//! a batch of records is synced (`fsync`) before anyone is answered. A record cut short by a
//! crash fails its length or checksum and is ignored: it was never acknowledged. Records are
//! drained into the database in file order, each under a unique spool id, so a drain that is
//! interrupted and repeated stores nothing twice. When everything is drained the file is
//! removed.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::store::NewDelivery;

const HEADER: usize = 4 + 8;

/// A spooled delivery read back, with the id that makes its drain idempotent.
#[derive(Debug, Clone)]
pub struct Spooled {
    pub spool_id: String,
    pub delivery: NewDelivery,
}

/// Why the spool cannot take a delivery (the request then gets 503).
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("spool is full ({bytes} of {limit} bytes)")]
    Full { bytes: u64, limit: u64 },
}

/// The spool file and how much of it is still to drain.
pub struct Spool {
    path: PathBuf,
    limit: u64,
    /// Open for appending while the spool holds records.
    file: Option<File>,
    /// Bytes in the file (valid records only).
    bytes: u64,
    /// Records written and not yet drained.
    pending: u64,
    /// Where draining resumes.
    read_offset: u64,
    /// Prefix of the spool ids this process writes; the sequence makes them unique.
    prefix: String,
    sequence: u64,
    /// Sizes of the records the last peek returned.
    peeked: Vec<u64>,
}

impl Spool {
    /// Opens the spool at `path`, keeping what a previous process left there (it is drained
    /// first); a torn last record is cut off.
    pub fn open(path: &Path, limit: u64, prefix: String) -> Result<Self, SpoolError> {
        let mut spool = Self {
            path: path.to_owned(),
            limit,
            file: None,
            bytes: 0,
            pending: 0,
            read_offset: 0,
            prefix,
            sequence: 0,
            peeked: Vec::new(),
        };
        if path.exists() {
            let mut file = spool.open_file()?;
            let mut data = Vec::new();
            file.read_to_end(&mut data).map_err(|e| spool.io(e))?;
            let (records, valid) = parse(&data);
            if valid < data.len() as u64 {
                tracing::warn!(path = %path.display(), dropped = data.len() as u64 - valid,
                    "cut a torn record off the spool: it was never acknowledged");
                file.set_len(valid).map_err(|e| spool.io(e))?;
                file.sync_all().map_err(|e| spool.io(e))?;
            }
            spool.bytes = valid;
            spool.pending = records.len() as u64;
            if spool.pending == 0 {
                spool.remove()?;
            } else {
                tracing::warn!(deliveries = spool.pending, "found a spool left by an earlier run");
                spool.file = Some(file);
            }
        }
        Ok(spool)
    }

    /// Whether records wait to be drained (new deliveries then go here too, behind them).
    pub fn is_active(&self) -> bool {
        self.pending > 0
    }

    /// Deliveries and bytes waiting in the spool.
    pub fn figures(&self) -> (u64, u64) {
        (self.pending, self.bytes)
    }

    /// Appends `batch` and syncs it to disk; on error nothing of it counts as spooled.
    pub fn append(&mut self, batch: &[NewDelivery]) -> Result<(), SpoolError> {
        let mut buffer = Vec::new();
        for delivery in batch {
            self.sequence += 1;
            let id = format!("{}-{}", self.prefix, self.sequence);
            encode(&mut buffer, &id, delivery);
        }
        let total = self.bytes + buffer.len() as u64;
        if total > self.limit {
            return Err(SpoolError::Full { bytes: self.bytes, limit: self.limit });
        }
        if self.file.is_none() {
            self.file = Some(self.open_file()?);
        }
        let file = self.file.as_mut().expect("opened above");
        let written = file
            .seek(SeekFrom::Start(self.bytes))
            .and_then(|_| file.write_all(&buffer))
            .and_then(|()| file.sync_data());
        if let Err(error) = written {
            // Whatever part was written is cut off at the next open or append.
            let _ = file.set_len(self.bytes);
            return Err(self.io(error));
        }
        self.bytes = total;
        self.pending += batch.len() as u64;
        Ok(())
    }

    /// Reads up to `max` records from where draining stands, in file order.
    pub fn peek(&mut self, max: usize) -> Result<Vec<Spooled>, SpoolError> {
        self.peeked.clear();
        let Some(file) = self.file.as_mut() else { return Ok(Vec::new()) };
        let mut reader = io::BufReader::new(&mut *file);
        let mut records = Vec::new();
        let seek = reader.seek(SeekFrom::Start(self.read_offset));
        seek.map_err(|e| SpoolError::Io { path: self.path.clone(), source: e })?;
        let mut header = [0u8; HEADER];
        while records.len() < max && reader.read_exact(&mut header).is_ok() {
            let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
            let mut record = header.to_vec();
            record.resize(HEADER + len, 0);
            if reader.read_exact(&mut record[HEADER..]).is_err() {
                break;
            }
            let Some((spooled, size)) = parse(&record).0.pop() else { break };
            self.peeked.push(size);
            records.push(spooled);
        }
        Ok(records)
    }

    /// Marks the first `n` records of the last [`Spool::peek`] as stored in the database;
    /// removes the file once nothing is left.
    pub fn advance(&mut self, n: usize) -> Result<(), SpoolError> {
        let n = n.min(self.peeked.len());
        self.read_offset += self.peeked.drain(..n).sum::<u64>();
        self.pending -= n as u64;
        if self.pending == 0 {
            self.remove()?;
        }
        Ok(())
    }

    fn remove(&mut self) -> Result<(), SpoolError> {
        self.file = None;
        self.bytes = 0;
        self.read_offset = 0;
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io(e)),
        }
    }

    fn open_file(&self) -> Result<File, SpoolError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| self.io(e))?;
        }
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.path)
            .map_err(|e| self.io(e))
    }

    fn io(&self, source: io::Error) -> SpoolError {
        SpoolError::Io { path: self.path.clone(), source }
    }
}

fn encode(buffer: &mut Vec<u8>, spool_id: &str, d: &NewDelivery) {
    let mut payload = Vec::with_capacity(d.body.len() + 64);
    payload.extend_from_slice(&d.received_at.to_le_bytes());
    payload.extend_from_slice(&(d.secret_index as u32).to_le_bytes());
    payload.extend_from_slice(&(d.entries as u32).to_le_bytes());
    for text in [spool_id.as_bytes(), d.object.as_bytes()] {
        payload.extend_from_slice(&(text.len() as u16).to_le_bytes());
        payload.extend_from_slice(text);
    }
    payload.extend_from_slice(&d.body);
    buffer.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buffer.extend_from_slice(&fnv1a(&payload).to_le_bytes());
    buffer.extend_from_slice(&payload);
}

/// The whole records at the start of `data` (each with its length on disk), and how many
/// bytes they cover: anything after is a torn or corrupt tail.
fn parse(data: &[u8]) -> (Vec<(Spooled, u64)>, u64) {
    let mut records = Vec::new();
    let mut offset = 0usize;
    while let Some(header) = data.get(offset..offset + HEADER) {
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let sum = u64::from_le_bytes(header[4..].try_into().expect("8 bytes"));
        let Some(payload) = data.get(offset + HEADER..offset + HEADER + len) else { break };
        let Some(spooled) = (fnv1a(payload) == sum).then(|| decode(payload)).flatten() else {
            break;
        };
        records.push((spooled, (HEADER + len) as u64));
        offset += HEADER + len;
    }
    (records, offset as u64)
}

fn decode(payload: &[u8]) -> Option<Spooled> {
    let mut at = 0usize;
    let mut take = |n: usize| {
        let slice = payload.get(at..at + n)?;
        at += n;
        Some(slice)
    };
    let received_at = i64::from_le_bytes(take(8)?.try_into().ok()?);
    let secret_index = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
    let entries = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
    let mut text = || {
        let len = u16::from_le_bytes(take(2)?.try_into().ok()?) as usize;
        String::from_utf8(take(len)?.to_vec()).ok()
    };
    let spool_id = text()?;
    let object = text()?;
    let body = Bytes::copy_from_slice(&payload[at..]);
    Some(Spooled {
        spool_id,
        delivery: NewDelivery { received_at, object, entries, secret_index, body },
    })
}

/// FNV-1a, 64 bits: enough to tell a torn record from a whole one.
fn fnv1a(data: &[u8]) -> u64 {
    data.iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(n: usize) -> NewDelivery {
        NewDelivery {
            received_at: 1_700_000_000_000 + n as i64,
            object: "page".into(),
            entries: 1,
            secret_index: n % 2,
            body: Bytes::from(format!(r#"{{"object":"page","entry":[{n}]}}"#)),
        }
    }

    #[test]
    fn records_come_back_in_order_and_the_file_goes_when_drained() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool");
        let mut spool = Spool::open(&path, 1 << 20, "a".into()).unwrap();
        spool.append(&[delivery(1), delivery(2)]).unwrap();
        spool.append(&[delivery(3)]).unwrap();
        assert_eq!(spool.figures().0, 3);

        let mut reopened = Spool::open(&path, 1 << 20, "b".into()).unwrap();
        let first = reopened.peek(2).unwrap();
        assert_eq!(
            first.iter().map(|s| s.delivery.received_at).collect::<Vec<_>>(),
            [1_700_000_000_001, 1_700_000_000_002]
        );
        assert_eq!(first[0].spool_id, "a-1");
        reopened.advance(2).unwrap();
        let rest = reopened.peek(10).unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].delivery.body, delivery(3).body);
        reopened.advance(1).unwrap();
        assert!(!reopened.is_active());
        assert!(!path.exists());
    }

    #[test]
    fn a_torn_last_record_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool");
        let mut spool = Spool::open(&path, 1 << 20, "a".into()).unwrap();
        spool.append(&[delivery(1), delivery(2)]).unwrap();
        let len = std::fs::metadata(&path).unwrap().len();
        OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 3).unwrap();
        let mut reopened = Spool::open(&path, 1 << 20, "b".into()).unwrap();
        assert_eq!(reopened.figures().0, 1);
        assert_eq!(reopened.peek(10).unwrap()[0].delivery.received_at, 1_700_000_000_001);
    }

    #[test]
    fn a_full_spool_refuses_and_keeps_what_it_has() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(&dir.path().join("spool"), 100, "a".into()).unwrap();
        spool.append(&[delivery(1)]).unwrap();
        assert!(matches!(spool.append(&[delivery(2), delivery(3)]), Err(SpoolError::Full { .. })));
        assert_eq!(spool.figures().0, 1);
    }
}
