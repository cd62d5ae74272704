//! Reservations as lock files: one file per port in the state directory.
//!
//! A reservation is an exclusive `flock` on `<state>/ports/<port>.lock`.
//! flock belongs to the open file, so two threads of one process exclude
//! each other as two processes do, and the kernel drops the lock when its
//! holder dies: a SIGKILLed test frees its ports at once, with no expiry
//! and nothing to clean up. Lock files are never deleted (deleting would
//! race with a process about to lock the same path).

use std::fs::{File, TryLockError};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::range::PortRange;

/// Size of the holder record, padded with newlines (which decoding skips).
const RECORD_SIZE: usize = 256;

/// Who holds a reservation, as written into its lock file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Process id of the holder.
    pub pid: u32,
    /// The test (or other label) the port was reserved for.
    pub label: String,
    /// When the reservation was made.
    pub since: SystemTime,
}

impl Holder {
    /// The current process, holding for `label`, from now.
    pub(crate) fn me(label: &str) -> Holder {
        Holder {
            pid: std::process::id(),
            label: label.to_string(),
            since: SystemTime::now(),
        }
    }

    fn encode(&self) -> String {
        let secs = self.since.duration_since(UNIX_EPOCH).unwrap_or_default();
        // The label goes last: it may contain anything but a newline.
        let label = self.label.replace('\n', " ");
        format!(
            "pid={}\nsince_ms={}\nlabel={}\n",
            self.pid,
            secs.as_millis(),
            label
        )
    }

    fn decode(text: &str) -> Option<Holder> {
        let mut pid = None;
        let mut since = None;
        let mut label = None;
        for line in text.lines() {
            match line.split_once('=') {
                Some(("pid", v)) => pid = v.parse().ok(),
                Some(("since_ms", v)) => since = v.parse::<u64>().ok(),
                Some(("label", v)) => label = Some(v.to_string()),
                _ => {}
            }
        }
        Some(Holder {
            pid: pid?,
            label: label?,
            since: UNIX_EPOCH + Duration::from_millis(since?),
        })
    }
}

/// A live reservation found in the state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// The reserved port.
    pub port: u16,
    /// Who holds it, when the lock file says (it may be mid-write).
    pub holder: Option<Holder>,
}

/// The directory of port lock files.
#[derive(Debug, Clone)]
pub(crate) struct LockDir {
    dir: PathBuf,
}

impl LockDir {
    pub(crate) fn new(dir: PathBuf) -> Self {
        LockDir { dir }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }

    fn file_path(&self, port: u16) -> PathBuf {
        self.dir.join(format!("{port}.lock"))
    }

    fn open(&self, port: u16) -> io::Result<File> {
        crate::state_dir::open_lock_file(&self.file_path(port))
    }

    /// Locks `port` for us, or `None` if someone else holds it.
    pub(crate) fn try_lock(&self, port: u16) -> io::Result<Option<File>> {
        let file = self.open(port)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(file)),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }

    /// Records `holder` in a lock file we hold.
    pub(crate) fn write_holder(file: &mut File, holder: &Holder) -> io::Result<()> {
        // A fixed-size record written in place: truncating and rewriting
        // costs 100-250 us on ext4 and makes the later close() flush.
        let mut record = holder.encode().into_bytes();
        if record.len() < RECORD_SIZE {
            record.resize(RECORD_SIZE, b'\n');
        }
        file.write_all_at(&record, 0)?;
        if file.metadata()?.len() > record.len() as u64 {
            file.set_len(record.len() as u64)?;
        }
        Ok(())
    }

    /// Whether `port` is reserved now, and by whom.
    pub(crate) fn inspect(&self, port: u16) -> Option<Reservation> {
        let mut file = match File::open(self.file_path(port)) {
            Ok(f) => f,
            Err(_) => return None,
        };
        // A shared lock succeeds only when no one holds the exclusive one.
        match file.try_lock_shared() {
            Ok(()) => None,
            Err(_) => {
                let mut text = String::new();
                let holder = file
                    .read_to_string(&mut text)
                    .ok()
                    .and_then(|_| Holder::decode(&text));
                Some(Reservation { port, holder })
            }
        }
    }

    /// Every live reservation with a lock file in the directory.
    pub(crate) fn live(&self) -> Vec<Reservation> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut ports: Vec<u16> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".lock")?.parse().ok())
            .collect();
        ports.sort_unstable();
        ports.into_iter().filter_map(|p| self.inspect(p)).collect()
    }

    /// Live reservations in `range`.
    pub(crate) fn live_in(&self, range: PortRange) -> Vec<Reservation> {
        self.live()
            .into_iter()
            .filter(|r| range.contains(r.port))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_round_trips() {
        let h = Holder {
            pid: 42,
            label: "suite::a=b".into(),
            since: UNIX_EPOCH + Duration::from_millis(1234),
        };
        assert_eq!(Holder::decode(&h.encode()), Some(h));
        assert_eq!(Holder::decode("garbage"), None);
    }

    #[test]
    fn a_lock_excludes_other_opens_in_the_same_process_and_is_visible() {
        let dir = std::env::temp_dir().join(format!(
            "dt-lockdir-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir(&dir).unwrap();
        let locks = LockDir::new(dir.clone());
        let mut held = locks.try_lock(5000).unwrap().expect("first lock");
        LockDir::write_holder(&mut held, &Holder::me("t1")).unwrap();
        assert!(
            locks.try_lock(5000).unwrap().is_none(),
            "second open must not lock"
        );
        let seen = locks.live();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].port, 5000);
        assert_eq!(seen[0].holder.as_ref().unwrap().label, "t1");
        drop(held);
        assert!(locks.live().is_empty());
        assert!(locks.try_lock(5000).unwrap().is_some());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
