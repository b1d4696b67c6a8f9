//! Operator-issued registration tokens, kept as files.
//!
//! A private relay (registration mode `token`) registers a mailbox only for
//! a holder of a token that its operator issued with
//! `hearth-relay token create`. The running relay holds its store open, so
//! tokens live beside it as one small file each:
//! `<data_dir>/registration-tokens/<hex SHA-256 of the token>.toml`, holding
//! how many registrations the token allows and when it expires. Only the
//! hash is stored, never the token. The relay reads the folder before each
//! registration ([`load_all`]) and counts uses in its own store.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::core::RegistrationToken;
use crate::ids::{Millis, TokenHash};

/// Folder under the data directory that holds registration token files.
pub const TOKENS_DIR: &str = "registration-tokens";
/// Prefix of every registration token, so a token is recognisable when pasted.
pub const TOKEN_PREFIX: &str = "hrt_";
/// Random bytes in a token (192 bits).
const TOKEN_RANDOM_BYTES: usize = 24;
/// Characters of the hash shown when a file is mentioned in a log line.
const LOG_PREFIX_CHARS: usize = 8;

/// Why a registration token could not be created or the tokens not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistrationError {
    /// A token must allow at least one registration.
    #[error("a registration token must allow at least one use")]
    ZeroUses,
    /// Reading or writing the token folder failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or folder concerned (named by the token's hash, never the token).
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

/// What a token file holds.
#[derive(Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    /// Registrations the token allows.
    uses: u32,
    /// When the token stops working (ms since the Unix epoch), if ever.
    #[serde(default)]
    expires_at_ms: Option<Millis>,
    /// When the token was issued (ms since the Unix epoch).
    #[serde(default)]
    created_at_ms: Option<Millis>,
}

impl TokenFile {
    /// The file's TOML text.
    fn to_toml(&self) -> String {
        let mut text = format!("uses = {}\n", self.uses);
        if let Some(at) = self.expires_at_ms {
            text.push_str(&format!("expires_at_ms = {at}\n"));
        }
        if let Some(at) = self.created_at_ms {
            text.push_str(&format!("created_at_ms = {at}\n"));
        }
        text
    }
}

/// Issues a registration token that allows `uses` registrations and, with
/// `expires`, stops working that long after `now_ms`. Stores only its hash
/// and returns the token (`hrt_` followed by 32 base64url characters), which
/// the operator hands to the person who may register.
pub fn create(
    data_dir: &Path,
    uses: u32,
    expires: Option<Duration>,
    now_ms: Millis,
    rng: &mut impl rand::CryptoRng,
) -> Result<String, RegistrationError> {
    if uses == 0 {
        return Err(RegistrationError::ZeroUses);
    }
    let mut random = [0u8; TOKEN_RANDOM_BYTES];
    rng.fill_bytes(&mut random);
    let token = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(random));
    let expires_at_ms = expires.map(|ttl| {
        let ttl_ms = Millis::try_from(ttl.as_millis()).unwrap_or(Millis::MAX);
        // TOML integers are signed 64-bit.
        now_ms.saturating_add(ttl_ms).min(i64::MAX.unsigned_abs())
    });
    let text = TokenFile {
        uses,
        expires_at_ms,
        created_at_ms: Some(now_ms),
    }
    .to_toml();
    let dir = data_dir.join(TOKENS_DIR);
    create_private_dir(&dir).map_err(|source| io_error("creating folder", &dir, source))?;
    let path = dir.join(file_name(&TokenHash::of(token.as_bytes())));
    write_file_atomically(&path, text.as_bytes(), 0o600)
        .map_err(|source| io_error("writing", &path, source))?;
    Ok(token)
}

/// Reads every registration token the operator issued. A missing folder
/// means none; a malformed file is skipped with a warning that names only
/// the start of its hash.
pub fn load_all(data_dir: &Path) -> Result<Vec<RegistrationToken>, RegistrationError> {
    let dir = data_dir.join(TOKENS_DIR);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(io_error("reading folder", &dir, source)),
    };
    let mut tokens = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| io_error("reading folder", &dir, source))?;
        let name = entry.file_name();
        let Some(hash) = name.to_str().and_then(hash_of_file_name) else {
            continue; // temporary files and anything else that is not a token
        };
        if let Some(token) = read_token_file(&entry.path(), hash)? {
            tokens.push(token);
        }
    }
    tokens.sort_by_key(|token| token.hash);
    Ok(tokens)
}

/// Reads one token file; `None` (with a warning) when it is malformed.
fn read_token_file(
    path: &Path,
    hash: TokenHash,
) -> Result<Option<RegistrationToken>, RegistrationError> {
    let prefix = &hex::encode(hash.0)[..LOG_PREFIX_CHARS];
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        // Removed between listing and reading: the operator revoked it.
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) if err.kind() == io::ErrorKind::InvalidData => {
            tracing::warn!("skipping registration token file {prefix}…: not UTF-8");
            return Ok(None);
        }
        Err(source) => return Err(io_error("reading", path, source)),
    };
    match toml::from_str::<TokenFile>(&text) {
        Ok(file) => Ok(Some(RegistrationToken {
            hash,
            uses: file.uses,
            expires_at: file.expires_at_ms,
        })),
        Err(err) => {
            tracing::warn!(
                "skipping malformed registration token file {prefix}…: {}",
                err.message()
            );
            Ok(None)
        }
    }
}

/// `<hex hash>.toml`.
fn file_name(hash: &TokenHash) -> String {
    format!("{}.toml", hex::encode(hash.0))
}

/// The hash a token file is named after, if `name` is a token file's name.
fn hash_of_file_name(name: &str) -> Option<TokenHash> {
    let stem = name.strip_suffix(".toml")?;
    if stem.len() != 64 || !stem.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    TokenHash::from_slice(&hex::decode(stem).ok()?)
}

/// Builds a [`RegistrationError::Io`].
fn io_error(action: &'static str, path: &Path, source: io::Error) -> RegistrationError {
    RegistrationError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// Replaces `path` with `contents` so that a reader sees either the old file
/// or the complete new one, and the new one survives a crash once this
/// returns: writes a temporary file beside it (created with `mode` on Unix),
/// syncs it, renames it over `path`, and syncs the folder.
pub(crate) fn write_file_atomically(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("path has no file name"))?;
    let mut suffix = [0u8; 8];
    rand::fill(&mut suffix);
    let temp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        hex::encode(suffix)
    ));
    let result = write_and_sync(&temp, contents, mode).and_then(|()| fs::rename(&temp, path));
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result?;
    sync_dir(dir)
}

/// Creates a folder (and its parents) readable only by the relay's user.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates `path` (which must not exist), writes `contents` and syncs it.
fn write_and_sync(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng as _;

    fn rng() -> rand::rngs::StdRng {
        rand::rngs::StdRng::seed_from_u64(7)
    }

    #[test]
    fn created_token_loads_by_its_hash_with_uses_and_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let week = Duration::from_secs(7 * 24 * 3600);
        let token = create(dir.path(), 3, Some(week), 1_000, &mut rng()).unwrap();
        assert!(token.starts_with(TOKEN_PREFIX));
        assert_eq!(token.len(), TOKEN_PREFIX.len() + 32);
        let tokens = load_all(dir.path()).unwrap();
        assert_eq!(tokens.len(), 1);
        assert_eq!(tokens[0].hash, TokenHash::of(token.as_bytes()));
        assert_eq!(tokens[0].uses, 3);
        assert_eq!(tokens[0].expires_at, Some(1_000 + 7 * 24 * 3600 * 1000));
    }

    #[test]
    fn token_without_expiry_never_expires() {
        let dir = tempfile::tempdir().unwrap();
        create(dir.path(), 1, None, 5, &mut rng()).unwrap();
        let tokens = load_all(dir.path()).unwrap();
        assert_eq!(tokens[0].expires_at, None);
    }

    #[test]
    fn only_the_hash_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let token = create(dir.path(), 1, None, 5, &mut rng()).unwrap();
        let secret = token.strip_prefix(TOKEN_PREFIX).unwrap();
        for entry in fs::read_dir(dir.path().join(TOKENS_DIR)).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            assert_eq!(name, file_name(&TokenHash::of(token.as_bytes())));
            let text = fs::read_to_string(entry.path()).unwrap();
            assert!(!text.contains(secret), "token file holds the token");
        }
    }

    #[test]
    fn tokens_are_distinct() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = rng();
        let a = create(dir.path(), 1, None, 5, &mut rng).unwrap();
        let b = create(dir.path(), 1, None, 5, &mut rng).unwrap();
        assert_ne!(a, b);
        assert_eq!(load_all(dir.path()).unwrap().len(), 2);
    }

    #[test]
    fn zero_uses_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = create(dir.path(), 0, None, 5, &mut rng()).unwrap_err();
        assert!(matches!(err, RegistrationError::ZeroUses));
        assert!(!dir.path().join(TOKENS_DIR).exists());
    }

    #[test]
    fn missing_folder_is_no_tokens() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_all(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn malformed_and_foreign_files_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let good = create(dir.path(), 2, None, 5, &mut rng()).unwrap();
        let tokens_dir = dir.path().join(TOKENS_DIR);
        let bad_hash = TokenHash::of(b"hrt_other");
        fs::write(tokens_dir.join(file_name(&bad_hash)), "uses = \"many\"\n").unwrap();
        let unknown_key = TokenHash::of(b"hrt_third");
        fs::write(
            tokens_dir.join(file_name(&unknown_key)),
            "uses = 1\nowner = \"x\"\n",
        )
        .unwrap();
        fs::write(
            tokens_dir.join(file_name(&TokenHash::of(b"bin"))),
            [0xff, 0xfe],
        )
        .unwrap();
        fs::write(tokens_dir.join("README.toml"), "uses = 5\n").unwrap();
        fs::write(tokens_dir.join(".abc.toml.0011.tmp"), "uses = 5\n").unwrap();
        let tokens = load_all(dir.path()).unwrap();
        assert_eq!(tokens.len(), 1);
        assert_eq!(tokens[0].hash, TokenHash::of(good.as_bytes()));
        assert_eq!(tokens[0].uses, 2);
    }

    #[test]
    fn hand_written_file_loads() {
        let dir = tempfile::tempdir().unwrap();
        let tokens_dir = dir.path().join(TOKENS_DIR);
        fs::create_dir_all(&tokens_dir).unwrap();
        let hash = TokenHash::of(b"hrt_handmade");
        let text = "uses = 4\nexpires_at_ms = 99\ncreated_at_ms = 1\n";
        fs::write(tokens_dir.join(file_name(&hash)), text).unwrap();
        let tokens = load_all(dir.path()).unwrap();
        assert_eq!(tokens.len(), 1);
        assert_eq!(
            (tokens[0].hash, tokens[0].uses, tokens[0].expires_at),
            (hash, 4, Some(99))
        );
    }

    #[cfg(unix)]
    #[test]
    fn token_files_are_private_and_no_temp_files_remain() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        create(dir.path(), 1, None, 5, &mut rng()).unwrap();
        let entries: Vec<_> = fs::read_dir(dir.path().join(TOKENS_DIR))
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        assert_eq!(entries.len(), 1);
        let mode = entries[0].metadata().unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn atomic_write_replaces_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.txt");
        write_file_atomically(&path, b"one", 0o600).unwrap();
        write_file_atomically(&path, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
