//! The encrypted store: wrong keys, tampering, atomicity.

use super::*;

const CHEAP: KdfParams = KdfParams {
    memory_kib: 64,
    iterations: 1,
    parallelism: 1,
};

fn key(byte: u8) -> StoreSecret {
    StorageKey::from_bytes([byte; 32]).into()
}

#[test]
fn values_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let store = Store::create(&path, &key(1), CHEAP).unwrap();
    let mut writes = store.writes();
    writes.put(Space::Contacts, b"k1", b"hello");
    store.commit(writes).unwrap();
    drop(store);
    let store = Store::open(&path, &key(1)).unwrap();
    assert_eq!(
        store
            .get(Space::Contacts, b"k1")
            .unwrap()
            .unwrap()
            .as_slice(),
        b"hello"
    );
    assert_eq!(store.get(Space::Contacts, b"k2").unwrap(), None);
}

#[test]
fn a_wrong_key_is_refused_before_anything_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let store = Store::create(&path, &key(1), CHEAP).unwrap();
    let mut writes = store.writes();
    writes.put(Space::Device, b"identity", b"secret state");
    store.commit(writes).unwrap();
    drop(store);
    assert!(matches!(
        Store::open(&path, &key(2)),
        Err(StoreError::WrongKey)
    ));
    // The right key still works: nothing was changed by the failed open.
    let store = Store::open(&path, &key(1)).unwrap();
    assert_eq!(
        store
            .get(Space::Device, b"identity")
            .unwrap()
            .unwrap()
            .as_slice(),
        b"secret state"
    );
}

#[test]
fn a_passphrase_store_needs_the_same_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    drop(Store::create(&path, &StoreSecret::passphrase("correct horse"), CHEAP).unwrap());
    assert!(matches!(
        Store::open(&path, &StoreSecret::passphrase("wrong horse")),
        Err(StoreError::WrongKey)
    ));
    assert!(matches!(
        Store::open(&path, &key(1)),
        Err(StoreError::WrongKey)
    ));
    assert!(Store::open(&path, &StoreSecret::passphrase("correct horse")).is_ok());
}

#[test]
fn missing_and_existing_stores_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    assert!(matches!(
        Store::open(&path, &key(1)),
        Err(StoreError::NotFound)
    ));
    drop(Store::create(&path, &key(1), CHEAP).unwrap());
    assert!(matches!(
        Store::create(&path, &key(1), CHEAP),
        Err(StoreError::AlreadyExists)
    ));
}

#[test]
fn values_on_disk_are_ciphertext() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(&dir.path().join("s"), &key(1), CHEAP).unwrap();
    let mut writes = store.writes();
    writes.put(Space::Messages, b"m", b"a very private plaintext");
    store.commit(writes).unwrap();
    let raw = store.raw(Space::Messages).get(b"m").unwrap().unwrap();
    assert!(!raw.windows(7).any(|w| w == b"private"));
    assert_eq!(raw.len(), 1 + 24 + b"a very private plaintext".len() + 16);
}

#[test]
fn tampered_or_swapped_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(&dir.path().join("s"), &key(1), CHEAP).unwrap();
    let mut writes = store.writes();
    writes
        .put(Space::Contacts, b"alice", b"alice's record")
        .put(Space::Contacts, b"bob", b"bob's record")
        .put(Space::Sessions, b"alice", b"alice's session");
    store.commit(writes).unwrap();

    // A value moved to another key of the same keyspace.
    let alice = store.raw(Space::Contacts).get(b"alice").unwrap().unwrap();
    store
        .raw(Space::Contacts)
        .insert(b"bob", alice.clone())
        .unwrap();
    assert!(matches!(
        store.get(Space::Contacts, b"bob"),
        Err(StoreError::Corrupt("contacts"))
    ));
    // A value moved to the same key of another keyspace.
    store
        .raw(Space::Sessions)
        .insert(b"alice", alice.clone())
        .unwrap();
    assert!(matches!(
        store.get(Space::Sessions, b"alice"),
        Err(StoreError::Corrupt("sessions"))
    ));
    // A flipped bit.
    let mut flipped = alice.to_vec();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    store
        .raw(Space::Contacts)
        .insert(b"alice", flipped)
        .unwrap();
    assert!(matches!(
        store.get(Space::Contacts, b"alice"),
        Err(StoreError::Corrupt(_))
    ));
    // Truncated.
    store
        .raw(Space::Contacts)
        .insert(b"alice", vec![1u8; 10])
        .unwrap();
    assert!(store.get(Space::Contacts, b"alice").is_err());
}

#[test]
fn a_write_set_commits_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let store = Store::create(&path, &key(1), CHEAP).unwrap();
    let mut first = store.writes();
    first
        .put(Space::Messages, b"m1", b"one")
        .put(Space::Sessions, b"s", b"state 1")
        .put(Space::MessageIds, b"d1", b"");
    store.commit(first).unwrap();

    // Staged but never committed (e.g. the process died): nothing lands.
    let mut abandoned = store.writes();
    abandoned
        .put(Space::Messages, b"m2", b"two")
        .put(Space::Sessions, b"s", b"state 2")
        .delete(Space::MessageIds, b"d1");
    assert!(!abandoned.is_empty());
    drop(abandoned);
    drop(store);

    let store = Store::open(&path, &key(1)).unwrap();
    assert_eq!(store.get(Space::Messages, b"m2").unwrap(), None);
    assert_eq!(
        store
            .get(Space::Sessions, b"s")
            .unwrap()
            .unwrap()
            .as_slice(),
        b"state 1"
    );
    assert!(store.get(Space::MessageIds, b"d1").unwrap().is_some());
}

#[test]
fn scans_are_in_key_order_and_bounded_by_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(&dir.path().join("s"), &key(1), CHEAP).unwrap();
    let mut writes = store.writes();
    for (k, v) in [
        (&b"a\x02"[..], "2"),
        (b"a\x01", "1"),
        (b"b\x01", "x"),
        (b"a\x03", "3"),
    ] {
        writes.put(Space::Messages, k, v.as_bytes());
    }
    store.commit(writes).unwrap();
    let values: Vec<Vec<u8>> = store
        .scan(Space::Messages, b"a")
        .unwrap()
        .into_iter()
        .map(|(_, v)| v.to_vec())
        .collect();
    assert_eq!(values, [b"1".to_vec(), b"2".to_vec(), b"3".to_vec()]);
    assert!(store.scan(Space::Messages, b"c").unwrap().is_empty());
}

#[test]
fn blinded_keys_depend_on_the_storage_key_and_label() {
    let dir = tempfile::tempdir().unwrap();
    let one = Store::create(&dir.path().join("1"), &key(1), CHEAP).unwrap();
    let two = Store::create(&dir.path().join("2"), &key(2), CHEAP).unwrap();
    assert_eq!(one.blind("contact", &[b"x"]), one.blind("contact", &[b"x"]));
    assert_ne!(one.blind("contact", &[b"x"]), two.blind("contact", &[b"x"]));
    assert_ne!(one.blind("contact", &[b"x"]), one.blind("session", &[b"x"]));
}
