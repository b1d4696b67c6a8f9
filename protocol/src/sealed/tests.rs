use super::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

struct Device {
    secret: StaticSecret,
    mailbox: MailboxId,
}

impl Device {
    fn new(rng: &mut StdRng, n: u8) -> Self {
        Self {
            secret: StaticSecret::random_from_rng(rng),
            mailbox: [n; 32],
        }
    }

    fn public(&self) -> PublicKey {
        PublicKey::from(&self.secret)
    }
}

fn one_recipient() -> (Device, BodyKey, Vec<u8>, SealedHeader) {
    let mut rng = StdRng::seed_from_u64(1);
    let device = Device::new(&mut rng, 1);
    let (key, body) = seal_body(b"inner", &mut rng).unwrap();
    let header = seal_header(
        &key,
        &body_hash(&body),
        &device.public(),
        &device.mailbox,
        &mut rng,
    )
    .unwrap();
    (device, key, body, header)
}

#[test]
fn thirty_recipients_share_one_body() {
    let mut rng = StdRng::seed_from_u64(30);
    let inner = b"sender certificate + sender-key message".repeat(20);
    let (key, body) = seal_body(&inner, &mut rng).unwrap();
    assert_eq!(body.len(), inner.len() + TAG_LEN);
    let hash = body_hash(&body);
    let devices: Vec<Device> = (0..30).map(|n| Device::new(&mut rng, n)).collect();
    let headers: Vec<SealedHeader> = devices
        .iter()
        .map(|d| seal_header(&key, &hash, &d.public(), &d.mailbox, &mut rng).unwrap())
        .collect();
    for (device, header) in devices.iter().zip(&headers) {
        assert_eq!(header.as_bytes().len(), SEALED_HEADER_LEN);
        let (k, h) = open_header(&device.secret, &device.mailbox, header.as_bytes()).unwrap();
        assert_eq!(k, key);
        assert_eq!(open_body(&k, &h, &body).unwrap(), inner);
    }
    // Every header uses its own ephemeral key.
    let mut encs: Vec<[u8; 32]> = headers.iter().map(SealedHeader::enc).collect();
    encs.sort_unstable();
    encs.dedup();
    assert_eq!(encs.len(), 30);
}

#[test]
fn a_header_for_another_mailbox_does_not_open() {
    let (device, _, _, header) = one_recipient();
    let other_mailbox = [2u8; 32];
    assert_eq!(
        open_header(&device.secret, &other_mailbox, header.as_bytes()),
        Err(OpenHeaderError::Decrypt)
    );
}

#[test]
fn a_header_for_another_device_does_not_open() {
    let (device, _, _, header) = one_recipient();
    let other = StaticSecret::from([5u8; 32]);
    assert_eq!(
        open_header(&other, &device.mailbox, header.as_bytes()),
        Err(OpenHeaderError::Decrypt)
    );
}

#[test]
fn a_swapped_body_fails_the_hash_check() {
    let (device, _, body, header) = one_recipient();
    let mut rng = StdRng::seed_from_u64(2);
    let (_, other_body) = seal_body(b"inner", &mut rng).unwrap();
    let (k, h) = open_header(&device.secret, &device.mailbox, header.as_bytes()).unwrap();
    assert_eq!(
        open_body(&k, &h, &other_body),
        Err(OpenBodyError::HashMismatch)
    );
    let mut flipped = body.clone();
    flipped[0] ^= 1;
    assert_eq!(
        open_body(&k, &h, &flipped),
        Err(OpenBodyError::HashMismatch)
    );
    assert_eq!(open_body(&k, &h, &body).unwrap(), b"inner");
}

#[test]
fn a_body_under_another_key_with_a_matching_hash_fails_to_decrypt() {
    let (_, _, body, _) = one_recipient();
    let wrong = BodyKey::from_bytes([9; 32]);
    assert_eq!(
        open_body(&wrong, &body_hash(&body), &body),
        Err(OpenBodyError::Decrypt)
    );
}

#[test]
fn every_tampered_header_byte_is_detected() {
    let (device, _, _, header) = one_recipient();
    for i in 0..SEALED_HEADER_LEN {
        let mut bytes = *header.as_bytes();
        bytes[i] ^= 0x01;
        assert!(
            open_header(&device.secret, &device.mailbox, &bytes).is_err(),
            "byte {i}"
        );
    }
}

#[test]
fn decoders_refuse_wrong_sizes() {
    let (device, key, body, header) = one_recipient();
    let bytes = header.as_bytes();
    for len in [0, 1, SEALED_HEADER_LEN - 1] {
        assert_eq!(
            open_header(&device.secret, &device.mailbox, &bytes[..len]),
            Err(OpenHeaderError::WrongLength { len })
        );
    }
    let mut long = bytes.to_vec();
    long.push(0);
    assert_eq!(
        open_header(&device.secret, &device.mailbox, &long),
        Err(OpenHeaderError::WrongLength {
            len: SEALED_HEADER_LEN + 1
        })
    );
    let h = body_hash(&body);
    assert_eq!(
        open_body(&key, &h, &body[..15]),
        Err(OpenBodyError::BadLength { len: 15 })
    );
    let huge = vec![0u8; MAX_BODY_LEN + 1];
    assert_eq!(
        open_body(&key, &body_hash(&huge), &huge),
        Err(OpenBodyError::BadLength {
            len: MAX_BODY_LEN + 1
        })
    );
    let too_long = vec![0u8; MAX_INNER_LEN + 1];
    assert_eq!(
        seal_body_with_key(&key, &too_long),
        Err(SealError::InnerTooLong {
            len: MAX_INNER_LEN + 1
        })
    );
}

#[test]
fn a_low_order_enc_or_recipient_key_is_refused() {
    let (device, key, body, header) = one_recipient();
    let mut bytes = *header.as_bytes();
    bytes[..32].fill(0);
    assert_eq!(
        open_header(&device.secret, &device.mailbox, &bytes),
        Err(OpenHeaderError::NonContributory)
    );
    let mut rng = StdRng::seed_from_u64(3);
    let zero = PublicKey::from([0u8; 32]);
    assert_eq!(
        seal_header(&key, &body_hash(&body), &zero, &device.mailbox, &mut rng),
        Err(SealError::BadRecipientKey)
    );
}

#[test]
fn deterministic_sealing_is_reproducible() {
    let key = BodyKey::from_bytes([3; 32]);
    let body = seal_body_with_key(&key, b"inner").unwrap();
    assert_eq!(body, seal_body_with_key(&key, b"inner").unwrap());
    let recipient = StaticSecret::from([4; 32]);
    let eph = StaticSecret::from([5; 32]);
    let seal = || {
        seal_header_with_ephemeral(
            &key,
            &body_hash(&body),
            &PublicKey::from(&recipient),
            &[6; 32],
            &eph,
        )
        .unwrap()
    };
    let header = seal();
    assert_eq!(header, seal());
    assert_eq!(header.enc(), PublicKey::from(&eph).to_bytes());
    assert_eq!(header.ciphertext().len(), 80);
    let (k, h) = open_header(&recipient, &[6; 32], header.as_bytes()).unwrap();
    assert_eq!((k, h), (key, body_hash(&body)));
}

#[test]
fn the_body_is_chacha20_poly1305_with_a_zero_nonce_and_the_body_label() {
    let key = BodyKey::from_bytes([3; 32]);
    let body = seal_body_with_key(&key, b"inner").unwrap();
    let expected = chacha_seal(&[3; 32], &[0; 12], b"Hearth_v1_Body", b"inner").unwrap();
    assert_eq!(body, expected);
}

#[test]
fn debug_never_prints_the_key() {
    let key = BodyKey::from_bytes([0xab; 32]);
    let shown = format!("{key:?}");
    assert!(!shown.contains("171"), "{shown}");
    assert!(shown.contains("redacted"));
}
