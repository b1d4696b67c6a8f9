//! What someone who gets hold of the relay's disk, its logs, or a send token
//! can do: read the envelopes waiting there, send crafted or replayed ones,
//! and search every file and log line for what the relay must not know.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use aho_corasick::AhoCorasick;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use bytes::Bytes;
use hearth_client::{Invite, OutgoingRecipient, RelayAddress};
use hearth_relay::ids::MailboxId;
use hearth_relay::store::{BodyRef, MailboxStore as _};

use crate::{client_message_id, connect, open_store, within};

/// An envelope as the relay stores it: the recipient's sealed header and
/// its body (inside the envelope, or shared by a circle send).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEnvelope {
    /// The sealed header (only the recipient can open it).
    pub sealed_header: Bytes,
    /// The body.
    pub body: Bytes,
}

/// Every envelope waiting in `mailbox`, oldest first, read from the store
/// of a stopped relay whose data folder is `data_dir`.
pub fn waiting_envelopes(data_dir: &Path, mailbox: [u8; 32]) -> Vec<StoredEnvelope> {
    let store = open_store(data_dir);
    let mailbox = MailboxId(mailbox);
    let index = store
        .load_mailbox(&mailbox)
        .unwrap_or_else(|e| panic!("loading the mailbox from the relay's store failed: {e}"));
    index
        .envelopes
        .iter()
        .map(|(seq, meta)| {
            let record = store
                .read_envelope(&mailbox, *seq)
                .ok()
                .flatten()
                .unwrap_or_else(|| panic!("envelope {seq} is listed but missing"));
            let body = match meta.body {
                BodyRef::Inline(_) => record.body,
                BodyRef::Shared(id) => store.read_body(id).ok().flatten(),
            }
            .unwrap_or_else(|| panic!("the body of envelope {seq} is missing"));
            StoredEnvelope {
                sealed_header: record.sealed_header,
                body,
            }
        })
        .collect()
}

/// The last envelope waiting in `mailbox` (see [`waiting_envelopes`]).
pub fn last_waiting_envelope(data_dir: &Path, mailbox: [u8; 32]) -> StoredEnvelope {
    match waiting_envelopes(data_dir, mailbox).pop() {
        Some(envelope) => envelope,
        None => panic!("no envelope waits in the mailbox"),
    }
}

/// Sends an envelope straight to the mailbox an invite link names, as anyone
/// holding the link can.
pub async fn send_raw(address: &RelayAddress, invite: &Invite, header: Bytes, body: Bytes) {
    let relay = connect(address).await;
    let recipient = OutgoingRecipient {
        mailbox_id: invite.mailbox_id,
        send_token: Bytes::copy_from_slice(&invite.send_token),
        sealed_header: header,
    };
    let sent = within(
        "send a crafted envelope",
        relay.send_one(client_message_id(), recipient, body),
    )
    .await;
    if let Err(error) = sent {
        panic!("the relay refused a crafted envelope: {error}");
    }
    relay.close();
}

/// Sends `envelope` again to the mailbox `invite` names, as whoever holds
/// the relay's disk and a send token can: first as it is (a replay), then
/// with a bit of its body flipped, then with a bit of its sealed header
/// flipped.
pub async fn replay_and_tamper(address: &RelayAddress, invite: &Invite, envelope: &StoredEnvelope) {
    let StoredEnvelope {
        sealed_header,
        body,
    } = envelope;
    send_raw(address, invite, sealed_header.clone(), body.clone()).await;
    send_raw(
        address,
        invite,
        sealed_header.clone(),
        flip(body, body.len() / 2),
    )
    .await;
    send_raw(
        address,
        invite,
        flip(sealed_header, sealed_header.len() / 2),
        body.clone(),
    )
    .await;
}

/// `bytes` with one bit flipped at `at`.
pub fn flip(bytes: &Bytes, at: usize) -> Bytes {
    let mut changed = bytes.to_vec();
    changed[at] ^= 0x20;
    Bytes::from(changed)
}

/// Every form in which `needle` could show up in a file or a log: the raw
/// bytes, hex, and base64 (standard and URL-safe, at every alignment).
pub fn encodings(needle: &[u8]) -> Vec<Vec<u8>> {
    assert!(needle.len() >= 8, "too short to search for: {needle:?}");
    let mut forms = vec![
        needle.to_vec(),
        hex(needle).into_bytes(),
        hex(needle).to_uppercase().into_bytes(),
    ];
    for engine in [&STANDARD, &URL_SAFE] {
        for offset in 0..3 {
            // The characters that depend on the needle's bytes alone.
            let mut shifted = vec![0u8; offset];
            shifted.extend_from_slice(needle);
            let encoded = engine.encode(&shifted);
            let skip = if offset == 0 { 0 } else { 4 };
            let whole = (shifted.len() / 3) * 4;
            forms.push(encoded.as_bytes()[skip..whole].to_vec());
        }
    }
    forms
}

fn hex(bytes: &[u8]) -> String {
    crate::owner::hex(bytes)
}

/// Named needles, searched for in every encoding [`encodings`] lists.
#[derive(Debug)]
pub struct Needles {
    names: Vec<String>,
    matcher: AhoCorasick,
}

impl Needles {
    /// A search for each `(name, needle)`.
    pub fn new(needles: &[(String, Vec<u8>)]) -> Self {
        let (mut names, mut patterns) = (Vec::new(), Vec::new());
        for (name, needle) in needles {
            for form in encodings(needle) {
                names.push(name.clone());
                patterns.push(form);
            }
        }
        let matcher = AhoCorasick::new(&patterns)
            .unwrap_or_else(|e| panic!("building the search failed: {e}"));
        Self { names, matcher }
    }

    /// The names of the needles that occur in `haystack`.
    pub fn found_in(&self, haystack: &[u8]) -> HashSet<String> {
        self.matcher
            .find_overlapping_iter(haystack)
            .map(|found| self.names[found.pattern().as_usize()].clone())
            .collect()
    }

    /// Asserts that no needle occurs in any file under `dir` (which must
    /// hold more than `min_files` files) nor in `log`.
    #[track_caller]
    pub fn assert_absent(&self, dir: &Path, min_files: usize, log: &str) {
        let files = files_under(dir);
        assert!(
            files.len() > min_files,
            "the relay wrote its store: {files:?}"
        );
        for file in files {
            let bytes = std::fs::read(&file)
                .unwrap_or_else(|e| panic!("reading {} failed: {e}", file.display()));
            let found = self.found_in(&bytes);
            assert!(found.is_empty(), "{} holds {found:?}", file.display());
        }
        let found = self.found_in(log.as_bytes());
        assert!(found.is_empty(), "the relay's log holds {found:?}");
    }
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("listing {} failed: {e}", dir.display()));
    for entry in entries {
        let path = match entry {
            Ok(entry) => entry.path(),
            Err(error) => panic!("listing {} failed: {error}", dir.display()),
        };
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}
