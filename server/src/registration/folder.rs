//! The running relay's view of the registration token folder: read again
//! only when the folder changed.
//!
//! `hearth-relay token create` and `token revoke` add or remove a file, so
//! they change the folder's modification time; the relay checks that time
//! (one `stat`) before a registration and reads the files only when it
//! moved. A file edited in place does not change the folder's time: replace
//! it instead (as `token create` does), or touch the folder.
//!
//! A folder changed within [`RACY_WINDOW`] of the check is read every time:
//! file systems keep times at a coarse resolution, so a second change in
//! the same tick as the last read would otherwise show the same time and
//! be missed.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{RegistrationError, TOKENS_DIR, io_error, load_all};
use crate::core::RegistrationToken;

/// How recent a change must be for the folder's time not to be trusted.
pub const RACY_WINDOW: Duration = Duration::from_secs(3);

/// What identifies one state of the folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stamp {
    /// There is no folder (no tokens).
    Missing,
    /// The folder as of its last change.
    Present {
        modified: SystemTime,
        /// Its inode, so a folder replaced by another is noticed.
        inode: u64,
    },
}

/// The result of [`TokenFolder::refresh`].
#[derive(Debug, PartialEq, Eq)]
pub enum Refresh {
    /// The folder did not change since it was last read: the tokens the
    /// caller has are current. Nothing was read.
    Unchanged,
    /// The folder was read: these are the current tokens.
    Read(Vec<RegistrationToken>),
}

/// The token folder under a data directory, with the stamp of its last read.
#[derive(Debug)]
pub struct TokenFolder {
    dir: PathBuf,
    /// The state last read, if it can be trusted to show any later change.
    read: Option<Stamp>,
}

impl TokenFolder {
    /// The token folder of `data_dir`; the first [`TokenFolder::refresh`]
    /// reads it.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join(TOKENS_DIR),
            read: None,
        }
    }

    /// Reads the tokens if the folder changed since the last read (or its
    /// last change is too recent to tell, see [`RACY_WINDOW`]). `now` is
    /// the wall clock.
    pub fn refresh(&mut self, now: SystemTime) -> Result<Refresh, RegistrationError> {
        let stamp = self.stamp()?;
        if self.read == Some(stamp) {
            return Ok(Refresh::Unchanged);
        }
        self.read = None;
        let data_dir = self.dir.parent().unwrap_or(Path::new("."));
        let tokens = load_all(data_dir)?;
        if !is_racy(stamp, now) {
            self.read = Some(stamp);
        }
        Ok(Refresh::Read(tokens))
    }

    fn stamp(&self) -> Result<Stamp, RegistrationError> {
        let metadata = match fs::metadata(&self.dir) {
            Ok(metadata) => metadata,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Stamp::Missing),
            Err(source) => return Err(io_error("reading folder", &self.dir, source)),
        };
        let modified = metadata
            .modified()
            .map_err(|source| io_error("reading the time of folder", &self.dir, source))?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&metadata);
        #[cfg(not(unix))]
        let inode = 0;
        Ok(Stamp::Present { modified, inode })
    }
}

/// Whether a change to the folder could still happen within the same tick
/// of its recorded time.
fn is_racy(stamp: Stamp, now: SystemTime) -> bool {
    match stamp {
        Stamp::Missing => false,
        Stamp::Present { modified, .. } => now
            .duration_since(modified)
            .map_or(true, |age| age < RACY_WINDOW),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TokenHash;
    use crate::registration::{create, revoke};

    /// A moment well after every change the test makes.
    fn later() -> SystemTime {
        SystemTime::now() + RACY_WINDOW * 10
    }

    fn hashes(refresh: Refresh) -> Vec<TokenHash> {
        match refresh {
            Refresh::Read(tokens) => tokens.iter().map(|t| t.hash).collect(),
            Refresh::Unchanged => panic!("expected the folder to be read"),
        }
    }

    #[test]
    fn an_unchanged_folder_is_not_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let token = create(dir.path(), 1, None, None, 5, &mut rand::rng()).unwrap();
        let mut folder = TokenFolder::new(dir.path());
        assert_eq!(
            hashes(folder.refresh(later()).unwrap()),
            [TokenHash::of(token.as_bytes())]
        );
        assert_eq!(folder.refresh(later()).unwrap(), Refresh::Unchanged);
        assert_eq!(folder.refresh(later()).unwrap(), Refresh::Unchanged);
    }

    #[test]
    fn created_and_revoked_tokens_are_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let mut folder = TokenFolder::new(dir.path());
        assert_eq!(hashes(folder.refresh(later()).unwrap()), []);
        assert_eq!(folder.refresh(later()).unwrap(), Refresh::Unchanged);

        let first = create(dir.path(), 1, None, None, 5, &mut rand::rng()).unwrap();
        let first = TokenHash::of(first.as_bytes());
        assert_eq!(hashes(folder.refresh(later()).unwrap()), [first]);
        let second = create(dir.path(), 1, None, None, 5, &mut rand::rng()).unwrap();
        let second = TokenHash::of(second.as_bytes());
        let mut both = hashes(folder.refresh(later()).unwrap());
        both.sort();
        let mut expected = vec![first, second];
        expected.sort();
        assert_eq!(both, expected);

        revoke(dir.path(), &hex::encode(first.0)).unwrap();
        assert_eq!(hashes(folder.refresh(later()).unwrap()), [second]);
        assert_eq!(folder.refresh(later()).unwrap(), Refresh::Unchanged);
    }

    #[test]
    fn a_folder_changed_just_now_is_read_every_time() {
        // Within the same clock tick, a second change could keep the
        // folder's time: a recent time is never trusted.
        let dir = tempfile::tempdir().unwrap();
        create(dir.path(), 1, None, None, 5, &mut rand::rng()).unwrap();
        let mut folder = TokenFolder::new(dir.path());
        let now = SystemTime::now();
        assert!(matches!(folder.refresh(now).unwrap(), Refresh::Read(_)));
        assert!(matches!(folder.refresh(now).unwrap(), Refresh::Read(_)));
        assert_eq!(hashes(folder.refresh(later()).unwrap()).len(), 1);
        assert_eq!(folder.refresh(later()).unwrap(), Refresh::Unchanged);
    }

    #[test]
    fn a_folder_that_appears_or_goes_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let mut folder = TokenFolder::new(dir.path());
        assert_eq!(hashes(folder.refresh(later()).unwrap()), []);
        assert_eq!(folder.refresh(later()).unwrap(), Refresh::Unchanged);
        let token = create(dir.path(), 1, None, None, 5, &mut rand::rng()).unwrap();
        assert_eq!(
            hashes(folder.refresh(later()).unwrap()),
            [TokenHash::of(token.as_bytes())]
        );
        fs::remove_dir_all(dir.path().join(TOKENS_DIR)).unwrap();
        assert_eq!(hashes(folder.refresh(later()).unwrap()), []);
    }
}
