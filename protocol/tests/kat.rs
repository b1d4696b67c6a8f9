//! Known-answer tests from the RFCs for the primitives `Hearth_v1` uses:
//! RFC 7748 (X25519), RFC 8032 (Ed25519, verified strictly), RFC 8439
//! (ChaCha20-Poly1305) and RFC 9180 (HPKE base mode, our suite).

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hearth_protocol::hpke;
use x25519_dalek::{PublicKey, StaticSecret, x25519};

fn unhex(s: &str) -> Vec<u8> {
    let compact: String = s.split_whitespace().collect();
    hex::decode(compact).unwrap()
}

fn unhex32(s: &str) -> [u8; 32] {
    unhex(s).try_into().unwrap()
}

/// RFC 7748 §5.2: the two single scalar multiplications.
#[test]
fn rfc7748_section_5_2_vectors() {
    let cases = [
        (
            "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
            "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
            "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
        ),
        (
            "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
            "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
            "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
        ),
    ];
    for (scalar, u, out) in cases {
        assert_eq!(x25519(unhex32(scalar), unhex32(u)), unhex32(out));
    }
}

/// RFC 7748 §5.2: the iterated test, after 1 and 1,000 iterations.
#[test]
fn rfc7748_section_5_2_iterations() {
    let mut k = unhex32("0900000000000000000000000000000000000000000000000000000000000000");
    let mut u = k;
    for i in 1..=1000 {
        let next = x25519(k, u);
        u = k;
        k = next;
        if i == 1 {
            assert_eq!(
                k,
                unhex32("422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079")
            );
        }
    }
    assert_eq!(
        k,
        unhex32("684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51")
    );
}

/// RFC 7748 §6.1: Diffie-Hellman between Alice and Bob.
#[test]
fn rfc7748_section_6_1_diffie_hellman() {
    let alice = StaticSecret::from(unhex32(
        "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
    ));
    let bob = StaticSecret::from(unhex32(
        "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
    ));
    let alice_pub = PublicKey::from(&alice);
    let bob_pub = PublicKey::from(&bob);
    assert_eq!(
        alice_pub.to_bytes(),
        unhex32("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
    );
    assert_eq!(
        bob_pub.to_bytes(),
        unhex32("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
    );
    let shared = unhex32("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
    let ab = alice.diffie_hellman(&bob_pub);
    let ba = bob.diffie_hellman(&alice_pub);
    assert!(ab.was_contributory());
    assert_eq!(ab.to_bytes(), shared);
    assert_eq!(ba.to_bytes(), shared);
}

/// RFC 8032 §7.1, tests 1–3: keys, signatures, and `verify_strict`.
#[test]
fn rfc8032_tests_1_to_3() {
    let cases = [
        (
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155
             5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da
             085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
        (
            "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
            "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
            "af82",
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac
             18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
        ),
    ];
    for (secret, public, message, signature) in cases {
        let signing = SigningKey::from_bytes(&unhex32(secret));
        let verifying = signing.verifying_key();
        assert_eq!(verifying.to_bytes(), unhex32(public));
        let message = unhex(message);
        let expected: [u8; 64] = unhex(signature).try_into().unwrap();
        let signature = signing.sign(&message);
        assert_eq!(signature.to_bytes(), expected);
        let parsed = VerifyingKey::from_bytes(&unhex32(public)).unwrap();
        parsed
            .verify_strict(&message, &Signature::from_bytes(&expected))
            .unwrap();
        let mut altered = message.clone();
        altered.push(0);
        assert!(parsed.verify_strict(&altered, &signature).is_err());
    }
}

/// RFC 8439 §2.8.2: the AEAD_CHACHA20_POLY1305 example.
#[test]
fn rfc8439_section_2_8_2_aead() {
    let key = unhex32("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
    let nonce: [u8; 12] = unhex("070000004041424344454647").try_into().unwrap();
    let aad = unhex("50515253c0c1c2c3c4c5c6c7");
    let plaintext = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
    let expected = unhex(
        "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6
         3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36
         92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc
         3ff4def08e4b7a9de576d26586cec64b6116
         1ae10b594f09e26a7e902ecbd0600691",
    );
    let cipher = ChaCha20Poly1305::new((&key).into());
    let sealed = cipher
        .encrypt(
            (&nonce).into(),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .unwrap();
    assert_eq!(sealed, expected);
    let opened = cipher
        .decrypt(
            (&nonce).into(),
            Payload {
                msg: &expected,
                aad: &aad,
            },
        )
        .unwrap();
    assert_eq!(opened, plaintext);
}

/// RFC 9180 Appendix A.2.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
/// ChaCha20Poly1305, base mode, sequence number 0.
#[test]
fn rfc9180_a_2_1_base_mode() {
    let info = unhex("4f6465206f6e2061204772656369616e2055726e");
    let sk_em = StaticSecret::from(unhex32(
        "f4ec9b33b792c372c1d2c2063507b684ef925b8c75a42dbcbf57d63ccd381600",
    ));
    let sk_rm = StaticSecret::from(unhex32(
        "8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb",
    ));
    let pk_rm = PublicKey::from(unhex32(
        "4310ee97d88cc1f088a5576c77ab0cf5c3ac797f3d95139c6c84b5429c59662a",
    ));
    assert_eq!(PublicKey::from(&sk_rm), pk_rm);
    let enc = unhex32("1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a");
    let shared_secret = unhex32("0bbe78490412b4bbea4812666f7916932b828bba79942424abb65244930d69a7");
    let key = unhex32("ad2744de8e17f4ebba575b3f5f5a8fa1f69c2a07f6e7500bc60ca6e3e3ec1c91");
    let base_nonce = unhex("5c4d98150661b848853b547f");
    let pt = unhex("4265617574792069732074727574682c20747275746820626561757479");
    let aad = unhex("436f756e742d30");
    let ct = unhex(
        "1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db
         21993c62ce81883d2dd1b51a28",
    );

    let (got_enc, sender_secret) = hpke::encap(&pk_rm, &sk_em).unwrap();
    assert_eq!(got_enc, enc);
    assert_eq!(sender_secret.expose(), &shared_secret);
    let receiver_secret = hpke::decap(&enc, &sk_rm).unwrap();
    assert_eq!(receiver_secret.expose(), &shared_secret);

    let context = hpke::Context::base(&sender_secret, &info);
    assert_eq!(context.expose_key(), &key);
    assert_eq!(&context.base_nonce()[..], &base_nonce[..]);
    assert_eq!(context.seal(&aad, &pt).unwrap(), ct);

    let (sealed_enc, sealed) = hpke::seal_base(&pk_rm, &sk_em, &info, &aad, &pt).unwrap();
    assert_eq!((sealed_enc, &sealed), (enc, &ct));
    assert_eq!(hpke::open_base(&enc, &sk_rm, &info, &aad, &ct).unwrap(), pt);
}
