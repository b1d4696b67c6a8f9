//! The per-connection ownership proof (DESIGN.md section 3, authentication).
//!
//! The mailbox key signs `"Hearth_v1_Auth" ‖ challenge ‖ exporter`, where the
//! challenge comes from the relay and the exporter is keying material of this
//! very TLS session, so a proof is worthless on any other connection.

use ed25519_dalek::{Signer as _, SigningKey};

/// Domain separation prefix of the signed message.
pub const AUTH_CONTEXT: &[u8; 14] = b"Hearth_v1_Auth";

/// TLS exporter label for the keying material bound into the proof.
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-hearth-auth";

/// Length of the signed message.
pub const AUTH_MESSAGE_LEN: usize = AUTH_CONTEXT.len() + 32 + 32;

/// The bytes a mailbox key signs to prove ownership on one connection.
pub fn auth_message(challenge: &[u8; 32], exporter: &[u8; 32]) -> [u8; AUTH_MESSAGE_LEN] {
    let mut message = [0u8; AUTH_MESSAGE_LEN];
    let (context, rest) = message.split_at_mut(AUTH_CONTEXT.len());
    let (challenge_part, exporter_part) = rest.split_at_mut(32);
    context.copy_from_slice(AUTH_CONTEXT);
    challenge_part.copy_from_slice(challenge);
    exporter_part.copy_from_slice(exporter);
    message
}

/// Signs the proof for `challenge` and `exporter` with `key`.
pub(crate) fn sign_proof(key: &SigningKey, challenge: &[u8; 32], exporter: &[u8; 32]) -> [u8; 64] {
    key.sign(&auth_message(challenge, exporter)).to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Signature;

    #[test]
    fn message_is_context_then_challenge_then_exporter() {
        let message = auth_message(&[1; 32], &[2; 32]);
        assert_eq!(message.len(), 78);
        assert_eq!(&message[..14], b"Hearth_v1_Auth");
        assert_eq!(&message[14..46], &[1; 32]);
        assert_eq!(&message[46..], &[2; 32]);
    }

    #[test]
    fn proof_verifies_strictly_and_only_for_its_connection() {
        let key = SigningKey::from_bytes(&[42; 32]);
        let proof = Signature::from_bytes(&sign_proof(&key, &[1; 32], &[2; 32]));
        let public = key.verifying_key();
        assert!(
            public
                .verify_strict(&auth_message(&[1; 32], &[2; 32]), &proof)
                .is_ok()
        );
        assert!(
            public
                .verify_strict(&auth_message(&[1; 32], &[3; 32]), &proof)
                .is_err()
        );
    }
}
