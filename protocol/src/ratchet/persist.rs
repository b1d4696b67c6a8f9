//! The stored layout of a [`RatchetSession`] (see [`crate::stored`]):
//!
//! ```text
//! version (1) ‖ AD (141) ‖ RK (32) ‖ DHs private (32)
//! ‖ DHr? (1 [+ 32]) ‖ CKs? (1 [+ 32]) ‖ CKr? (1 [+ 32]) ‖ Ns (u32) ‖ Nr (u32) ‖ PN (u32)
//! ‖ count (u8, ≤ 5) ‖ previous DHr (32)*
//! ‖ count (u16, ≤ 2,000) ‖ (DHr (32) ‖ N (u32) ‖ MK (32))*   oldest first
//! ```

use std::collections::VecDeque;

use zeroize::Zeroizing;

use super::chain::{ChainKey, MessageKey, RootKey};
use super::skipped::{MAX_SKIPPED_KEYS, SkippedKey, SkippedKeys};
use super::state::{MAX_PREVIOUS_REMOTE_KEYS, RatchetSession};
use crate::handshake::AssociatedData;
use crate::keys::{X25519KeyPair, X25519PublicKey};
use crate::stored::{Reader, StoredStateError, Writer};

const SKIPPED_ENTRY_LEN: usize = 32 + 4 + 32;
const FIXED_LEN: usize = 1 + AssociatedData::LEN + 32 + 32 + 3 * 33 + 3 * 4;

impl RatchetSession {
    /// Largest valid stored layout.
    pub const MAX_STORED_LEN: usize =
        FIXED_LEN + 1 + MAX_PREVIOUS_REMOTE_KEYS * 32 + 2 + MAX_SKIPPED_KEYS * SKIPPED_ENTRY_LEN;

    /// The stored layout (holds secrets: store it encrypted).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let skipped = self.skipped.len();
        let mut w = Writer::new(FIXED_LEN + 3 + 32 * 5 + skipped * SKIPPED_ENTRY_LEN);
        w.bytes(self.ad.as_bytes()).bytes(self.root.expose());
        w.bytes(self.sending_key.expose_private_bytes());
        w.option(
            self.remote_key
                .as_ref()
                .map(|key| key.as_bytes().as_slice()),
        );
        w.option(
            self.sending_chain
                .as_ref()
                .map(|chain| chain.expose().as_slice()),
        );
        w.option(
            self.receiving_chain
                .as_ref()
                .map(|chain| chain.expose().as_slice()),
        );
        w.u32(self.ns).u32(self.nr).u32(self.pn);
        // Both counts are bounded by the limits (5 and 2,000) when stored.
        w.u8(u8::try_from(self.previous_remote_keys.len()).unwrap_or(u8::MAX));
        for key in &self.previous_remote_keys {
            w.bytes(key.as_bytes());
        }
        w.u16(u16::try_from(skipped).unwrap_or(u16::MAX));
        for entry in self.skipped.iter() {
            w.bytes(entry.ratchet_key.as_bytes())
                .u32(entry.n)
                .bytes(entry.key.expose());
        }
        w.finish()
    }

    /// Reads [`RatchetSession::to_bytes`]; never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StoredStateError> {
        let mut r = Reader::new(bytes, Self::MAX_STORED_LEN)?;
        let ad = AssociatedData::from_bytes(r.array()?);
        let root = RootKey::new(&*r.secret::<32>()?);
        let sending_key = X25519KeyPair::from_private_bytes(&*r.secret::<32>()?);
        let remote_key = read_public_option(&mut r, "DHr presence")?;
        let sending_chain = read_chain_option(&mut r, "CKs presence")?;
        let receiving_chain = read_chain_option(&mut r, "CKr presence")?;
        let (ns, nr, pn) = (r.u32()?, r.u32()?, r.u32()?);
        let previous_remote_keys = read_previous(&mut r)?;
        let skipped = read_skipped(&mut r)?;
        r.finish()?;
        Ok(Self {
            ad,
            root,
            sending_key,
            remote_key,
            sending_chain,
            receiving_chain,
            ns,
            nr,
            pn,
            previous_remote_keys,
            skipped,
        })
    }
}

fn read_public_option(
    r: &mut Reader<'_>,
    field: &'static str,
) -> Result<Option<X25519PublicKey>, StoredStateError> {
    Ok(if r.present(field)? {
        Some(X25519PublicKey::from_bytes(r.array()?))
    } else {
        None
    })
}

fn read_chain_option(
    r: &mut Reader<'_>,
    field: &'static str,
) -> Result<Option<ChainKey>, StoredStateError> {
    Ok(if r.present(field)? {
        Some(ChainKey::new(&*r.secret::<32>()?))
    } else {
        None
    })
}

fn read_previous(r: &mut Reader<'_>) -> Result<VecDeque<X25519PublicKey>, StoredStateError> {
    let count = usize::from(r.u8()?);
    if count > MAX_PREVIOUS_REMOTE_KEYS {
        return Err(StoredStateError::InvalidField("previous ratchet key count"));
    }
    (0..count)
        .map(|_| Ok(X25519PublicKey::from_bytes(r.array()?)))
        .collect()
}

fn read_skipped(r: &mut Reader<'_>) -> Result<SkippedKeys, StoredStateError> {
    let count = usize::from(r.u16()?);
    if count > MAX_SKIPPED_KEYS {
        return Err(StoredStateError::InvalidField("skipped key count"));
    }
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        let ratchet_key = X25519PublicKey::from_bytes(r.array()?);
        let n = r.u32()?;
        let key = MessageKey::new(&*r.secret::<32>()?);
        entries.push(SkippedKey {
            ratchet_key,
            n,
            key,
        });
    }
    let mut skipped = SkippedKeys::default();
    skipped.extend(entries);
    Ok(skipped)
}
