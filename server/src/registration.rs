//! Operator-issued registration tokens, kept as files.
//!
//! A private relay (registration mode `token`) registers a mailbox only for
//! a holder of a token that its operator issued with
//! `hearth-relay token create`. The running relay holds its store open, so
//! tokens live beside it as one small file each:
//! `<data_dir>/registration-tokens/<hex SHA-256 of the token>.toml`, holding
//! how many registrations the token allows, when it expires, when it was
//! issued and the operator's label. Only the hash is stored, never the
//! token. The running relay reads the folder again when it changed
//! ([`TokenFolder`]) and counts uses in its own store.
//!
//! [`list`] shows the operator what was issued (by a short id: the start of
//! the hash, never the token) and [`revoke`] removes a token; both work
//! while the relay runs, which notices on the next registration.

mod folder;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::core::RegistrationToken;
use crate::ids::{Millis, TokenHash};
pub use folder::{RACY_WINDOW, Refresh, TokenFolder};

/// Folder under the data directory that holds registration token files.
pub const TOKENS_DIR: &str = "registration-tokens";
/// Prefix of every registration token, so a token is recognisable when pasted.
pub const TOKEN_PREFIX: &str = "hrt_";
/// Random bytes in a token (192 bits).
const TOKEN_RANDOM_BYTES: usize = 24;
/// Characters of the hash shown when a file is mentioned in a log line.
const LOG_PREFIX_CHARS: usize = 8;
/// Characters of the hash that make a token's id in [`list`].
pub const ID_CHARS: usize = 12;
/// Fewest characters of the hash [`revoke`] accepts as an id.
pub const MIN_ID_CHARS: usize = 8;
/// Longest label, in characters.
pub const MAX_LABEL_CHARS: usize = 64;

/// Why a registration token could not be created or the tokens not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistrationError {
    /// A token must allow at least one registration.
    #[error("a registration token must allow at least one use")]
    ZeroUses,
    /// A label must be 1 to 64 characters, none of them control characters.
    #[error("a label must be 1 to {MAX_LABEL_CHARS} characters, without control characters")]
    BadLabel,
    /// A token id is the start of a token's hash in hex (as `token list`
    /// shows it), at least 8 characters, or the token itself.
    #[error(
        "`{0}` is not a token id: give the id `token list` shows (at least {MIN_ID_CHARS} hex characters) or the token"
    )]
    BadId(String),
    /// No issued token has this id.
    #[error("no registration token has the id `{0}`")]
    UnknownId(String),
    /// More than one issued token starts with this id.
    #[error("`{id}` matches {matches} registration tokens: give more of the id")]
    AmbiguousId {
        /// The id given.
        id: String,
        /// How many tokens it matches.
        matches: usize,
    },
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
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
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
    /// The operator's note of whom it is for.
    #[serde(default)]
    label: Option<String>,
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
        if let Some(label) = &self.label {
            // A TOML string value, quoted and escaped.
            let value = toml::Value::String(label.clone());
            text.push_str(&format!("label = {value}\n"));
        }
        text
    }
}

/// A registration token as its operator sees it in [`list`]: never the
/// token, nor anything that would let someone register with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The first [`ID_CHARS`] hex characters of the token's SHA-256 (its
    /// file name starts with them); [`revoke`] takes it.
    pub id: String,
    /// The operator's label, if one was given.
    pub label: Option<String>,
    /// When it was issued (ms since the Unix epoch), if known.
    pub created_at: Option<Millis>,
    /// When it stops working, if ever.
    pub expires_at: Option<Millis>,
    /// Registrations it allows (the relay counts uses in its store).
    pub uses: u32,
}

/// Issues a registration token that allows `uses` registrations and, with
/// `expires`, stops working that long after `now_ms`; `label` is the
/// operator's note of whom it is for. Stores only its hash and returns the
/// token (`hrt_` followed by 32 base64url characters), which the operator
/// hands to the person who may register.
pub fn create(
    data_dir: &Path,
    uses: u32,
    expires: Option<Duration>,
    label: Option<&str>,
    now_ms: Millis,
    rng: &mut impl rand::CryptoRng,
) -> Result<String, RegistrationError> {
    if uses == 0 {
        return Err(RegistrationError::ZeroUses);
    }
    if let Some(label) = label
        && !is_good_label(label)
    {
        return Err(RegistrationError::BadLabel);
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
        label: label.map(str::to_owned),
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
    let tokens = read_folder(data_dir)?
        .into_iter()
        .map(|(hash, file)| RegistrationToken {
            hash,
            uses: file.uses,
            expires_at: file.expires_at_ms,
        })
        .collect();
    Ok(tokens)
}

/// Every issued token as its operator may see it, oldest first. Works
/// while the relay runs.
pub fn list(data_dir: &Path) -> Result<Vec<IssuedToken>, RegistrationError> {
    let mut tokens: Vec<IssuedToken> = read_folder(data_dir)?
        .into_iter()
        .map(|(hash, file)| IssuedToken {
            id: hex::encode(hash.0)[..ID_CHARS].to_owned(),
            // A hand-written file may hold anything: nothing reaches the
            // operator's terminal as a control character.
            label: file.label.map(|label| {
                label
                    .chars()
                    .map(|c| if c.is_control() { '?' } else { c })
                    .collect()
            }),
            created_at: file.created_at_ms,
            expires_at: file.expires_at_ms,
            uses: file.uses,
        })
        .collect();
    tokens.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(tokens)
}

/// Revokes the token whose id (as [`list`] shows it, or any longer start of
/// its hash) is `id`, or the token `id` itself (`hrt_…`): removes its file.
/// A running relay refuses it from its next registration on. Returns the
/// revoked token's id.
pub fn revoke(data_dir: &Path, id: &str) -> Result<String, RegistrationError> {
    let wanted = token_id_prefix(id)?;
    let matching: Vec<TokenHash> = read_hashes(data_dir)?
        .into_iter()
        .filter(|hash| hex::encode(hash.0).starts_with(&wanted))
        .collect();
    let hash = match matching.as_slice() {
        [] => return Err(RegistrationError::UnknownId(id.to_owned())),
        [hash] => *hash,
        _ => {
            return Err(RegistrationError::AmbiguousId {
                id: id.to_owned(),
                matches: matching.len(),
            });
        }
    };
    let dir = data_dir.join(TOKENS_DIR);
    let path = dir.join(file_name(&hash));
    match fs::remove_file(&path) {
        Ok(()) => {}
        // Revoked meanwhile by someone else: the outcome is the same.
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(source) => return Err(io_error("removing", &path, source)),
    }
    sync_dir(&dir).map_err(|source| io_error("syncing folder", &dir, source))?;
    Ok(hex::encode(hash.0)[..ID_CHARS].to_owned())
}

/// The hex start of a hash that `id` names: the hash of a whole token, or
/// an id of at least [`MIN_ID_CHARS`] hex characters.
fn token_id_prefix(id: &str) -> Result<String, RegistrationError> {
    let id = id.trim();
    if id.starts_with(TOKEN_PREFIX) {
        return Ok(hex::encode(TokenHash::of(id.as_bytes()).0));
    }
    let is_hex = id.bytes().all(|b| b.is_ascii_hexdigit());
    if !is_hex || id.len() < MIN_ID_CHARS || id.len() > 64 {
        return Err(RegistrationError::BadId(id.chars().take(80).collect()));
    }
    Ok(id.to_ascii_lowercase())
}

/// Whether `label` may be stored and printed as it is.
fn is_good_label(label: &str) -> bool {
    let chars = label.chars().count();
    (1..=MAX_LABEL_CHARS).contains(&chars) && !label.chars().any(char::is_control)
}

/// The hashes of every token file, without reading the files.
fn read_hashes(data_dir: &Path) -> Result<Vec<TokenHash>, RegistrationError> {
    let dir = data_dir.join(TOKENS_DIR);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(io_error("reading folder", &dir, source)),
    };
    let mut hashes = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| io_error("reading folder", &dir, source))?;
        // Temporary files and anything else that is not a token are skipped.
        if let Some(hash) = entry.file_name().to_str().and_then(hash_of_file_name) {
            hashes.push(hash);
        }
    }
    hashes.sort();
    Ok(hashes)
}

/// Reads every well-formed token file, by hash.
fn read_folder(data_dir: &Path) -> Result<Vec<(TokenHash, TokenFile)>, RegistrationError> {
    let dir = data_dir.join(TOKENS_DIR);
    let mut tokens = Vec::new();
    for hash in read_hashes(data_dir)? {
        if let Some(file) = read_token_file(&dir.join(file_name(&hash)), hash)? {
            tokens.push((hash, file));
        }
    }
    Ok(tokens)
}

/// Reads one token file; `None` (with a warning) when it is malformed.
fn read_token_file(path: &Path, hash: TokenHash) -> Result<Option<TokenFile>, RegistrationError> {
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
        Ok(file) => Ok(Some(file)),
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
        let token = create(dir.path(), 3, Some(week), None, 1_000, &mut rng()).unwrap();
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
        create(dir.path(), 1, None, None, 5, &mut rng()).unwrap();
        let tokens = load_all(dir.path()).unwrap();
        assert_eq!(tokens[0].expires_at, None);
    }

    #[test]
    fn only_the_hash_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let token = create(dir.path(), 1, None, None, 5, &mut rng()).unwrap();
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
        let a = create(dir.path(), 1, None, None, 5, &mut rng).unwrap();
        let b = create(dir.path(), 1, None, None, 5, &mut rng).unwrap();
        assert_ne!(a, b);
        assert_eq!(load_all(dir.path()).unwrap().len(), 2);
    }

    #[test]
    fn zero_uses_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = create(dir.path(), 0, None, None, 5, &mut rng()).unwrap_err();
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
        let good = create(dir.path(), 2, None, None, 5, &mut rng()).unwrap();
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
        create(dir.path(), 1, None, None, 5, &mut rng()).unwrap();
        let entries: Vec<_> = fs::read_dir(dir.path().join(TOKENS_DIR))
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        assert_eq!(entries.len(), 1);
        let mode = entries[0].metadata().unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn list_shows_id_label_and_times_but_nothing_that_registers() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = rng();
        let day = Duration::from_secs(86_400);
        let alex = create(
            dir.path(),
            1,
            Some(day),
            Some("Alex \"Tue\""),
            2_000,
            &mut rng,
        )
        .unwrap();
        let group = create(dir.path(), 5, None, None, 1_000, &mut rng).unwrap();
        let listed = list(dir.path()).unwrap();
        let id_of =
            |token: &str| hex::encode(TokenHash::of(token.as_bytes()).0)[..ID_CHARS].to_owned();
        assert_eq!(
            listed,
            [
                IssuedToken {
                    id: id_of(&group),
                    label: None,
                    created_at: Some(1_000),
                    expires_at: None,
                    uses: 5,
                },
                IssuedToken {
                    id: id_of(&alex),
                    label: Some("Alex \"Tue\"".to_owned()),
                    created_at: Some(2_000),
                    expires_at: Some(2_000 + 86_400_000),
                    uses: 1,
                },
            ],
            "oldest first"
        );
        let shown = format!("{listed:?}");
        for token in [&alex, &group] {
            let secret = token.strip_prefix(TOKEN_PREFIX).unwrap();
            assert!(!shown.contains(secret), "list shows a token");
            let hash = hex::encode(TokenHash::of(token.as_bytes()).0);
            assert!(!shown.contains(&hash), "list shows a whole hash");
        }
    }

    #[test]
    fn bad_labels_are_refused_and_write_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let long = "x".repeat(MAX_LABEL_CHARS + 1);
        for label in ["", "two\nlines", "bell\u{7}", long.as_str()] {
            let err = create(dir.path(), 1, None, Some(label), 5, &mut rng()).unwrap_err();
            assert!(matches!(err, RegistrationError::BadLabel), "{label:?}");
        }
        assert!(list(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn revoke_by_id_or_token_removes_exactly_that_token() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = rng();
        let a = create(dir.path(), 1, None, Some("a"), 5, &mut rng).unwrap();
        let b = create(dir.path(), 1, None, Some("b"), 6, &mut rng).unwrap();
        let c = create(dir.path(), 1, None, Some("c"), 7, &mut rng).unwrap();
        let ids: Vec<String> = list(dir.path())
            .unwrap()
            .into_iter()
            .map(|t| t.id)
            .collect();

        assert_eq!(revoke(dir.path(), &ids[0]).unwrap(), ids[0]);
        assert_eq!(
            revoke(dir.path(), &c).unwrap(),
            ids[2],
            "by the token itself"
        );
        let left = load_all(dir.path()).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].hash, TokenHash::of(b.as_bytes()));
        assert!(
            !load_all(dir.path())
                .unwrap()
                .iter()
                .any(|t| t.hash == TokenHash::of(a.as_bytes()))
        );

        assert!(matches!(
            revoke(dir.path(), &ids[0]),
            Err(RegistrationError::UnknownId(_))
        ));
        for bad in ["", "1234567", "not-hex-at-all", "hrt"] {
            assert!(
                matches!(revoke(dir.path(), bad), Err(RegistrationError::BadId(_))),
                "{bad:?}"
            );
        }
        assert_eq!(
            load_all(dir.path()).unwrap().len(),
            1,
            "bad ids revoke nothing"
        );
    }

    #[test]
    fn an_ambiguous_id_revokes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let tokens_dir = dir.path().join(TOKENS_DIR);
        fs::create_dir_all(&tokens_dir).unwrap();
        for last in ["1", "2"] {
            let name = format!("{}{last}.toml", "ab".repeat(31) + "0");
            fs::write(tokens_dir.join(name), "uses = 1\n").unwrap();
        }
        assert_eq!(list(dir.path()).unwrap().len(), 2);
        let err = revoke(dir.path(), &"ab".repeat(4)).unwrap_err();
        assert!(
            matches!(err, RegistrationError::AmbiguousId { matches: 2, .. }),
            "{err:?}"
        );
        assert_eq!(list(dir.path()).unwrap().len(), 2);
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
