//! The device: its identity, its mailbox, and the prekeys it publishes.
//!
//! A device publishes, through its relay's prekey directory, a signed prekey
//! (rotated every [`SIGNED_PREKEY_ROTATION`]), [`ONE_TIME_BATCH`] one-time
//! X25519 prekeys, [`PQ_BATCH`] one-time ML-KEM-768 prekeys, and a
//! last-resort ML-KEM-768 prekey. When the relay's counts drop below
//! [`ONE_TIME_LOW`] / [`PQ_LOW`] the device tops them up. A replaced signed
//! prekey is kept for [`SIGNED_PREKEY_GRACE`] (the relay's envelope TTL), so
//! first messages still in flight can be read.
//!
//! Private halves are stored before their public halves are published, so
//! nobody can fetch a prekey this device cannot use.

use std::time::Duration;

use bytes::Bytes;
use ed25519_dalek::SigningKey;
use hearth_protocol::address::RelayAddress;
use hearth_protocol::keys::{IdentityKeyPair, OneTimePreKey, PqPreKey, SignedPreKey};
use hearth_protocol::wire::{self, SignedBundle};
use zeroize::Zeroizing;

use crate::ids::MemberId;
use crate::records::{self, DeviceRecord, DeviceState, SignedPrekeyRecord};
use crate::relay::{PrekeyCounts, PrekeyUpload};
use crate::store::{Space, Store, StoreError, WriteSet};

/// One-time X25519 prekeys published at a time.
pub const ONE_TIME_BATCH: u32 = 100;
/// One-time ML-KEM prekeys published at a time.
pub const PQ_BATCH: u32 = 20;
/// Top up one-time X25519 prekeys below this count.
pub const ONE_TIME_LOW: u32 = 25;
/// Top up one-time ML-KEM prekeys below this count.
pub const PQ_LOW: u32 = 5;
/// How often the signed prekey is replaced.
pub const SIGNED_PREKEY_ROTATION: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a replaced signed prekey is kept for first messages in flight.
pub const SIGNED_PREKEY_GRACE: Duration = Duration::from_secs(30 * 24 * 3600);

/// Kinds of stored private prekeys (first byte of their key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum PrekeyKind {
    /// Signed X25519 prekeys ([`SignedPrekeyRecord`]).
    Signed = 1,
    /// One-time X25519 prekeys (`OneTimePreKey::to_bytes`).
    OneTime = 2,
    /// ML-KEM prekeys, one-time and last-resort (`PqPreKey::to_bytes`).
    Pq = 3,
}

/// The store key of a private prekey: kind ‖ id.
pub(crate) fn prekey_key(kind: PrekeyKind, id: u32) -> [u8; 5] {
    let mut key = [0u8; 5];
    key[0] = kind as u8;
    key[1..].copy_from_slice(&id.to_be_bytes());
    key
}

/// Store key of the device record.
pub(crate) const DEVICE_KEY: &[u8] = b"device";
/// Store key of the device state.
pub(crate) const STATE_KEY: &[u8] = b"state";
/// Store key of the replay cache.
pub(crate) const REPLAY_KEY: &[u8] = b"replay";

/// This device's identity and mailbox.
pub(crate) struct Device {
    pub(crate) identity: IdentityKeyPair,
    pub(crate) mailbox_id: [u8; 32],
    pub(crate) mailbox_key: SigningKey,
    pub(crate) relay: RelayAddress,
    pub(crate) display_name: String,
    pub(crate) member_id: MemberId,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("member_id", &self.member_id)
            .field("relay", &self.relay)
            .finish_non_exhaustive()
    }
}

impl Device {
    /// A fresh identity and mailbox.
    pub(crate) fn generate<R: rand::CryptoRng + ?Sized>(
        rng: &mut R,
        relay: RelayAddress,
        display_name: &str,
    ) -> Self {
        let identity = IdentityKeyPair::generate(rng);
        let mut mailbox_id = [0u8; 32];
        rng.fill_bytes(&mut mailbox_id);
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(seed.as_mut());
        let member_id = MemberId::of(&identity.public().sig_key);
        Self {
            identity,
            mailbox_id,
            mailbox_key: SigningKey::from_bytes(&seed),
            relay,
            display_name: display_name.to_owned(),
            member_id,
        }
    }

    /// The stored form.
    pub(crate) fn record(&self, now_ms: u64) -> DeviceRecord {
        DeviceRecord {
            identity: self.identity.to_bytes().to_vec(),
            mailbox_id: self.mailbox_id.to_vec(),
            mailbox_key: self.mailbox_key.to_bytes().to_vec(),
            relay: self.relay.to_string(),
            display_name: self.display_name.clone(),
            created_at_ms: now_ms,
        }
    }

    /// Reads the stored form.
    pub(crate) fn from_record(record: &DeviceRecord) -> Result<Self, StoreError> {
        let corrupt = || StoreError::Corrupt("device");
        let identity = IdentityKeyPair::from_bytes(&record.identity).map_err(|_| corrupt())?;
        let seed: Zeroizing<[u8; 32]> = Zeroizing::new(
            record
                .mailbox_key
                .as_slice()
                .try_into()
                .map_err(|_| corrupt())?,
        );
        let member_id = MemberId::of(&identity.public().sig_key);
        Ok(Self {
            identity,
            mailbox_id: record
                .mailbox_id
                .as_slice()
                .try_into()
                .map_err(|_| corrupt())?,
            mailbox_key: SigningKey::from_bytes(&seed),
            relay: record.relay.parse().map_err(|_| corrupt())?,
            display_name: record.display_name.clone(),
            member_id,
        })
    }

    /// An empty upload for this device's mailbox.
    fn upload(&self) -> PrekeyUpload {
        PrekeyUpload {
            mailbox_id: self.mailbox_id,
            signed_bundle: Bytes::new(),
            one_time_prekeys: Vec::new(),
            one_time_pq_prekeys: Vec::new(),
            last_resort_pq_prekey: Bytes::new(),
        }
    }
}

/// Whether an upload carries anything.
pub(crate) fn is_empty(upload: &PrekeyUpload) -> bool {
    upload.signed_bundle.is_empty()
        && upload.one_time_prekeys.is_empty()
        && upload.one_time_pq_prekeys.is_empty()
        && upload.last_resort_pq_prekey.is_empty()
}

/// Prekey bookkeeping over the store: stages private halves into a write set
/// and builds the matching upload.
pub(crate) struct Prekeys<'a> {
    pub(crate) device: &'a Device,
    pub(crate) store: &'a Store,
}

impl Prekeys<'_> {
    /// The first set: signed prekey 1, the one-time batches and the
    /// last-resort ML-KEM prekey.
    pub(crate) fn initial<R: rand::CryptoRng + ?Sized>(
        &self,
        state: &mut DeviceState,
        writes: &mut WriteSet,
        rng: &mut R,
        now_ms: u64,
    ) -> PrekeyUpload {
        let mut upload = self.device.upload();
        state.signed_prekey_id = 0;
        state.next_one_time_id = 1;
        state.next_pq_id = 1;
        upload.signed_bundle = self.new_signed(state, writes, rng, now_ms).into();
        let last_resort = PqPreKey::generate(state.next_pq_id, true, &self.device.identity, rng);
        state.last_resort_pq_id = state.next_pq_id;
        state.next_pq_id += 1;
        writes.put(
            Space::Prekeys,
            &prekey_key(PrekeyKind::Pq, last_resort.id()),
            &last_resort.to_bytes(),
        );
        upload.last_resort_pq_prekey = wire::encode_pq_prekey(&last_resort.public()).into();
        self.add_one_time(state, writes, rng, ONE_TIME_BATCH, &mut upload);
        self.add_pq(state, writes, rng, PQ_BATCH, &mut upload);
        upload
    }

    /// What to publish given the relay's counts: a rotated signed prekey
    /// when due, the whole bundle when the relay lacks it, and one-time
    /// prekeys when they run low. Also forgets signed prekeys past their
    /// grace period (returning their ids).
    pub(crate) fn maintain<R: rand::CryptoRng + ?Sized>(
        &self,
        state: &mut DeviceState,
        counts: PrekeyCounts,
        writes: &mut WriteSet,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<(PrekeyUpload, Vec<u32>), StoreError> {
        let mut upload = self.device.upload();
        let age = now_ms.saturating_sub(state.signed_prekey_created_at_ms);
        if u128::from(age) >= SIGNED_PREKEY_ROTATION.as_millis() {
            self.retire_current(state, writes, now_ms)?;
            upload.signed_bundle = self.new_signed(state, writes, rng, now_ms).into();
        } else if !state.bundle_published || !counts.has_last_resort {
            upload.signed_bundle = self.current_signed_bundle(state)?.into();
        }
        if !counts.has_last_resort {
            let pq = self.load_pq(state.last_resort_pq_id)?;
            upload.last_resort_pq_prekey = wire::encode_pq_prekey(&pq.public()).into();
        }
        if counts.one_time_prekeys < ONE_TIME_LOW {
            let missing = ONE_TIME_BATCH.saturating_sub(counts.one_time_prekeys);
            self.add_one_time(state, writes, rng, missing, &mut upload);
        }
        if counts.one_time_pq_prekeys < PQ_LOW {
            let missing = PQ_BATCH.saturating_sub(counts.one_time_pq_prekeys);
            self.add_pq(state, writes, rng, missing, &mut upload);
        }
        let forgotten = self.forget_expired(writes, now_ms)?;
        Ok((upload, forgotten))
    }

    fn new_signed<R: rand::CryptoRng + ?Sized>(
        &self,
        state: &mut DeviceState,
        writes: &mut WriteSet,
        rng: &mut R,
        now_ms: u64,
    ) -> Vec<u8> {
        let id = state.signed_prekey_id.wrapping_add(1).max(1);
        let spk = SignedPreKey::generate(id, &self.device.identity, rng);
        let record = SignedPrekeyRecord {
            key: spk.to_bytes().to_vec(),
            created_at_ms: now_ms,
            retired_at_ms: 0,
        };
        writes.put(
            Space::Prekeys,
            &prekey_key(PrekeyKind::Signed, id),
            &records::encode(&record),
        );
        state.signed_prekey_id = id;
        state.signed_prekey_created_at_ms = now_ms;
        state.bundle_published = false;
        wire::encode_signed_bundle(&SignedBundle::new(&self.device.identity, &spk))
    }

    fn retire_current(
        &self,
        state: &DeviceState,
        writes: &mut WriteSet,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let key = prekey_key(PrekeyKind::Signed, state.signed_prekey_id);
        if let Some(bytes) = self.store.get(Space::Prekeys, &key)? {
            let mut record: SignedPrekeyRecord = records::decode(&bytes, "signed prekey")?;
            record.retired_at_ms = now_ms;
            writes.put(Space::Prekeys, &key, &records::encode(&record));
        }
        Ok(())
    }

    fn current_signed_bundle(&self, state: &DeviceState) -> Result<Vec<u8>, StoreError> {
        let spk = self.load_signed(state.signed_prekey_id)?;
        Ok(wire::encode_signed_bundle(&SignedBundle::new(
            &self.device.identity,
            &spk,
        )))
    }

    /// Deletes signed prekeys retired longer than the grace period.
    fn forget_expired(&self, writes: &mut WriteSet, now_ms: u64) -> Result<Vec<u32>, StoreError> {
        let mut forgotten = Vec::new();
        for (key, bytes) in self
            .store
            .scan(Space::Prekeys, &[PrekeyKind::Signed as u8])?
        {
            let record: SignedPrekeyRecord = records::decode(&bytes, "signed prekey")?;
            let retired_for = now_ms.saturating_sub(record.retired_at_ms);
            if record.retired_at_ms != 0
                && u128::from(retired_for) >= SIGNED_PREKEY_GRACE.as_millis()
            {
                writes.delete(Space::Prekeys, &key);
                if let Some(id) = key.get(1..5).and_then(|b| b.try_into().ok()) {
                    forgotten.push(u32::from_be_bytes(id));
                }
            }
        }
        Ok(forgotten)
    }

    fn add_one_time<R: rand::CryptoRng + ?Sized>(
        &self,
        state: &mut DeviceState,
        writes: &mut WriteSet,
        rng: &mut R,
        count: u32,
        upload: &mut PrekeyUpload,
    ) {
        for _ in 0..count {
            let id = state.next_one_time_id;
            state.next_one_time_id = id.wrapping_add(1).max(1);
            let opk = OneTimePreKey::generate(id, rng);
            writes.put(
                Space::Prekeys,
                &prekey_key(PrekeyKind::OneTime, id),
                &opk.to_bytes(),
            );
            upload
                .one_time_prekeys
                .push(wire::encode_one_time_prekey(&opk.public()).into());
        }
    }

    fn add_pq<R: rand::CryptoRng + ?Sized>(
        &self,
        state: &mut DeviceState,
        writes: &mut WriteSet,
        rng: &mut R,
        count: u32,
        upload: &mut PrekeyUpload,
    ) {
        for _ in 0..count {
            let id = state.next_pq_id;
            state.next_pq_id = id.wrapping_add(1).max(1);
            let pq = PqPreKey::generate(id, false, &self.device.identity, rng);
            writes.put(
                Space::Prekeys,
                &prekey_key(PrekeyKind::Pq, id),
                &pq.to_bytes(),
            );
            upload
                .one_time_pq_prekeys
                .push(wire::encode_pq_prekey(&pq.public()).into());
        }
    }

    /// A stored signed prekey (current or in its grace period).
    pub(crate) fn load_signed(&self, id: u32) -> Result<SignedPreKey, StoreError> {
        let bytes = self
            .store
            .get(Space::Prekeys, &prekey_key(PrekeyKind::Signed, id))?
            .ok_or(StoreError::Corrupt("signed prekey"))?;
        let record: SignedPrekeyRecord = records::decode(&bytes, "signed prekey")?;
        SignedPreKey::from_bytes(&record.key).map_err(|_| StoreError::Corrupt("signed prekey"))
    }

    /// A stored ML-KEM prekey.
    pub(crate) fn load_pq(&self, id: u32) -> Result<PqPreKey, StoreError> {
        let bytes = self
            .store
            .get(Space::Prekeys, &prekey_key(PrekeyKind::Pq, id))?
            .ok_or(StoreError::Corrupt("ML-KEM prekey"))?;
        PqPreKey::from_bytes(&bytes).map_err(|_| StoreError::Corrupt("ML-KEM prekey"))
    }

    /// Looks up a prekey a first message names; `None` if it is unknown
    /// (never published, or already used).
    pub(crate) fn find(
        &self,
        kind: PrekeyKind,
        id: u32,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        self.store.get(Space::Prekeys, &prekey_key(kind, id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{KdfParams, StorageKey};
    use hearth_protocol::address::Fingerprint;
    use rand::SeedableRng as _;

    const DAY_MS: u64 = 24 * 3600 * 1000;

    fn setup() -> (tempfile::TempDir, Store, Device, rand::rngs::StdRng) {
        let dir = tempfile::tempdir().unwrap();
        let params = KdfParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        };
        let store = Store::create(
            &dir.path().join("s"),
            &StorageKey::from_bytes([1; 32]).into(),
            params,
        )
        .unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let relay = RelayAddress {
            fingerprint: Fingerprint([1; 32]),
            host: "127.0.0.1".into(),
            port: 1,
        };
        let device = Device::generate(&mut rng, relay, "me");
        (dir, store, device, rng)
    }

    fn counts(one_time: u32, pq: u32) -> PrekeyCounts {
        PrekeyCounts {
            one_time_prekeys: one_time,
            one_time_pq_prekeys: pq,
            has_last_resort: true,
        }
    }

    #[test]
    fn the_initial_bundle_is_complete_and_its_private_halves_are_stored() {
        let (_dir, store, device, mut rng) = setup();
        let prekeys = Prekeys {
            device: &device,
            store: &store,
        };
        let mut state = DeviceState::default();
        let mut writes = store.writes();
        let upload = prekeys.initial(&mut state, &mut writes, &mut rng, 0);
        store.commit(writes).unwrap();
        assert_eq!(upload.one_time_prekeys.len(), 100);
        assert_eq!(upload.one_time_pq_prekeys.len(), 20);
        let bundle = wire::decode_prekey_bundle(
            &upload.signed_bundle,
            Some(&upload.one_time_prekeys[7]),
            &upload.last_resort_pq_prekey,
        )
        .unwrap();
        assert_eq!(MemberId::of(&bundle.identity.sig_key), device.member_id);
        assert!(bundle.pq_prekey.last_resort);
        let opk_id = bundle.one_time_prekey.unwrap().id;
        assert!(prekeys.find(PrekeyKind::OneTime, opk_id).unwrap().is_some());
        assert_eq!(
            prekeys
                .load_signed(bundle.signed_prekey.id)
                .unwrap()
                .public(),
            bundle.signed_prekey
        );
        assert!(
            prekeys
                .load_pq(bundle.pq_prekey.id)
                .unwrap()
                .is_last_resort()
        );
    }

    #[test]
    fn low_counts_are_topped_up_and_full_counts_are_left_alone() {
        let (_dir, store, device, mut rng) = setup();
        let prekeys = Prekeys {
            device: &device,
            store: &store,
        };
        let mut state = DeviceState::default();
        let mut writes = store.writes();
        prekeys.initial(&mut state, &mut writes, &mut rng, 0);
        state.bundle_published = true;
        store.commit(writes).unwrap();

        let mut writes = store.writes();
        let (upload, _) = prekeys
            .maintain(&mut state, counts(100, 20), &mut writes, &mut rng, DAY_MS)
            .unwrap();
        assert!(is_empty(&upload));

        let (upload, _) = prekeys
            .maintain(&mut state, counts(24, 4), &mut writes, &mut rng, DAY_MS)
            .unwrap();
        assert_eq!(upload.one_time_prekeys.len(), 76);
        assert_eq!(upload.one_time_pq_prekeys.len(), 16);
        assert!(upload.signed_bundle.is_empty());
        // New ids continue after the initial ones.
        let first = wire::decode_one_time_prekey(&upload.one_time_prekeys[0]).unwrap();
        assert_eq!(first.id, 101);
    }

    #[test]
    fn the_signed_prekey_rotates_weekly_and_the_old_one_is_kept_for_the_grace_period() {
        let (_dir, store, device, mut rng) = setup();
        let prekeys = Prekeys {
            device: &device,
            store: &store,
        };
        let mut state = DeviceState::default();
        let mut writes = store.writes();
        prekeys.initial(&mut state, &mut writes, &mut rng, 0);
        state.bundle_published = true;
        store.commit(writes).unwrap();

        let mut writes = store.writes();
        let (upload, _) = prekeys
            .maintain(
                &mut state,
                counts(100, 20),
                &mut writes,
                &mut rng,
                6 * DAY_MS,
            )
            .unwrap();
        assert!(upload.signed_bundle.is_empty(), "not due after six days");
        let (upload, forgotten) = prekeys
            .maintain(
                &mut state,
                counts(100, 20),
                &mut writes,
                &mut rng,
                7 * DAY_MS,
            )
            .unwrap();
        store.commit(writes).unwrap();
        let signed = wire::decode_signed_bundle(&upload.signed_bundle).unwrap();
        assert_eq!(signed.signed_prekey.id, 2);
        assert!(forgotten.is_empty());
        assert!(!state.bundle_published, "must be published again");
        assert!(
            prekeys.load_signed(1).is_ok(),
            "old one kept for in-flight first messages"
        );

        state.signed_prekey_created_at_ms = 7 * DAY_MS + 30 * DAY_MS; // no rotation now
        let mut writes = store.writes();
        let (_, forgotten) = prekeys
            .maintain(
                &mut state,
                counts(100, 20),
                &mut writes,
                &mut rng,
                37 * DAY_MS,
            )
            .unwrap();
        store.commit(writes).unwrap();
        assert_eq!(forgotten, [1]);
        assert!(prekeys.load_signed(1).is_err());
        assert!(prekeys.load_signed(2).is_ok());
    }

    #[test]
    fn a_relay_without_the_bundle_gets_it_again() {
        let (_dir, store, device, mut rng) = setup();
        let prekeys = Prekeys {
            device: &device,
            store: &store,
        };
        let mut state = DeviceState::default();
        let mut writes = store.writes();
        prekeys.initial(&mut state, &mut writes, &mut rng, 0);
        store.commit(writes).unwrap();
        let mut writes = store.writes();
        let missing = PrekeyCounts {
            one_time_prekeys: 0,
            one_time_pq_prekeys: 0,
            has_last_resort: false,
        };
        let (upload, _) = prekeys
            .maintain(&mut state, missing, &mut writes, &mut rng, 1)
            .unwrap();
        assert!(!upload.signed_bundle.is_empty() && !upload.last_resort_pq_prekey.is_empty());
        assert_eq!(upload.one_time_prekeys.len(), 100);
        assert_eq!(upload.one_time_pq_prekeys.len(), 20);
    }

    #[test]
    fn the_device_record_round_trips() {
        let (_dir, _store, device, _rng) = setup();
        let back = Device::from_record(&device.record(5)).unwrap();
        assert_eq!(back.member_id, device.member_id);
        assert_eq!(back.mailbox_id, device.mailbox_id);
        assert_eq!(back.mailbox_key.to_bytes(), device.mailbox_key.to_bytes());
        assert_eq!(back.relay, device.relay);
    }
}
