//! The device's folder, and what unlocks its store: the passphrase in
//! `HEARTH_PASSPHRASE`, or else the key file `DIR/key`.

use std::fs::{self, File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use hearth_client::{STORE_DIR, StorageKey, StoreSecret};
use zeroize::Zeroizing;

/// The key file's name inside the home folder.
pub(crate) const KEY_FILE: &str = "key";

/// The environment variable holding the passphrase.
pub(crate) const PASSPHRASE_VAR: &str = "HEARTH_PASSPHRASE";

/// Length of a key file.
const KEY_LEN: usize = 32;

/// A mistake on the command line or in the environment (exit status 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UsageError(pub(crate) String);

/// The folder holding one device.
#[derive(Debug)]
pub(crate) struct Home {
    dir: PathBuf,
}

impl Home {
    /// `--home` (or `HEARTH_HOME`), else `~/.hearth`.
    pub(crate) fn locate(flag: Option<PathBuf>) -> Result<Self> {
        let dir = match flag {
            Some(dir) if dir.as_os_str().is_empty() => {
                return Err(UsageError("--home is empty".into()).into());
            }
            Some(dir) => dir,
            None => match std::env::var_os("HOME") {
                Some(home) if !home.is_empty() => PathBuf::from(home).join(".hearth"),
                _ => {
                    return Err(UsageError(
                        "no home folder: pass --home DIR or set HEARTH_HOME".into(),
                    )
                    .into());
                }
            },
        };
        Ok(Self { dir })
    }

    /// The folder.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether a device is set up here.
    pub(crate) fn is_set_up(&self) -> bool {
        self.dir.join(STORE_DIR).exists()
    }

    fn key_path(&self) -> PathBuf {
        self.dir.join(KEY_FILE)
    }

    /// What unlocks the existing store: the passphrase, or the key file.
    pub(crate) fn secret(&self) -> Result<StoreSecret> {
        if let Some(passphrase) = passphrase()? {
            return Ok(passphrase);
        }
        let path = self.key_path();
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => bail!(
                "no key file at {} (set {PASSPHRASE_VAR} if this device uses a passphrase)",
                path.display()
            ),
            Err(error) => {
                return Err(error).with_context(|| format!("reading {}", path.display()));
            }
        };
        check_private(&file, &path)?;
        let mut bytes = Zeroizing::new(Vec::with_capacity(KEY_LEN + 1));
        (&mut file)
            .take(KEY_LEN as u64 + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading {}", path.display()))?;
        let key: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| {
            anyhow::anyhow!(
                "the key file {} is damaged (it must hold {KEY_LEN} bytes)",
                path.display()
            )
        })?;
        Ok(StorageKey::from_bytes(key).into())
    }

    /// What will unlock a new store: the passphrase, or a fresh random key
    /// written to the key file (mode 0600).
    pub(crate) fn new_secret(&self) -> Result<NewSecret> {
        if let Some(passphrase) = passphrase()? {
            return Ok(NewSecret {
                secret: passphrase,
                key_file: None,
            });
        }
        create_private_dir(&self.dir)?;
        let path = self.key_path();
        // Left over from a set-up that failed: it protects nothing.
        if path.exists() {
            fs::remove_file(&path).with_context(|| format!("replacing {}", path.display()))?;
        }
        let key = StorageKey::generate(&mut rand::rng());
        write_private(&path, key.expose_bytes())?;
        sync_dir(&self.dir)?;
        Ok(NewSecret {
            secret: key.into(),
            key_file: Some(path),
        })
    }
}

/// The secret of a store being created.
#[derive(Debug)]
pub(crate) struct NewSecret {
    /// What unlocks the store.
    pub(crate) secret: StoreSecret,
    /// The key file written for it, if any.
    pub(crate) key_file: Option<PathBuf>,
}

impl NewSecret {
    /// Removes the key file again (the set-up failed).
    pub(crate) fn discard(&self) {
        if let Some(path) = &self.key_file
            && let Err(error) = fs::remove_file(path)
        {
            tracing::warn!(%error, "removing the unused key file failed");
        }
    }
}

/// The passphrase from the environment, if set.
fn passphrase() -> Result<Option<StoreSecret>> {
    match std::env::var(PASSPHRASE_VAR) {
        Ok(passphrase) if passphrase.is_empty() => {
            Err(UsageError(format!("{PASSPHRASE_VAR} is set but empty")).into())
        }
        Ok(passphrase) => Ok(Some(StoreSecret::passphrase(&Zeroizing::new(passphrase)))),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(UsageError(format!("{PASSPHRASE_VAR} is not valid UTF-8")).into())
        }
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

/// Writes `bytes` to a new file only its owner can read, durably.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// Makes a new directory entry in `dir` durable.
fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Refuses a key file that other users can read or write.
#[cfg(unix)]
fn check_private(file: &File, path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = file
        .metadata()
        .with_context(|| format!("reading {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "the key file {} is accessible by other users (run: chmod 600 {})",
            path.display(),
            path.display()
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_file: &File, _path: &Path) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home() -> (tempfile::TempDir, Home) {
        let dir = tempfile::tempdir().unwrap();
        let home = Home {
            dir: dir.path().join("device"),
        };
        (dir, home)
    }

    #[test]
    #[cfg(unix)]
    fn a_new_key_file_is_private_and_reads_back() {
        use std::os::unix::fs::PermissionsExt as _;
        let (_dir, home) = home();
        let created = home.new_secret().unwrap();
        let path = created.key_file.clone().unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(fs::metadata(&path).unwrap().len(), 32);
        let dir_mode = fs::metadata(home.dir()).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        let (StoreSecret::Key(new), StoreSecret::Key(read)) =
            (&created.secret, home.secret().unwrap())
        else {
            panic!("expected key secrets");
        };
        assert_eq!(new.expose_bytes(), read.expose_bytes());
        created.discard();
        assert!(!path.exists());
    }

    #[test]
    #[cfg(unix)]
    fn a_missing_damaged_or_shared_key_file_is_a_clear_error() {
        use std::os::unix::fs::PermissionsExt as _;
        let (_dir, home) = home();
        let missing = home.secret().unwrap_err().to_string();
        assert!(missing.contains("no key file"), "{missing}");
        let path = home.new_secret().unwrap().key_file.unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let shared = home.secret().unwrap_err().to_string();
        assert!(shared.contains("other users"), "{shared}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&path, [1u8; 31]).unwrap();
        let damaged = home.secret().unwrap_err().to_string();
        assert!(damaged.contains("damaged"), "{damaged}");
    }

    #[test]
    fn an_empty_home_flag_is_a_usage_error() {
        let error = Home::locate(Some(PathBuf::new())).unwrap_err();
        assert!(error.downcast_ref::<UsageError>().is_some());
        let home = Home::locate(Some(PathBuf::from("/tmp/x"))).unwrap();
        assert_eq!(home.dir(), Path::new("/tmp/x"));
    }
}
