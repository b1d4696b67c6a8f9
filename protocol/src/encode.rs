//! `Encode(k)`: one type byte, then the raw public key (DESIGN.md §5).
//!
//! Everything hashed, signed or used as associated data uses these fixed
//! layouts, never a protobuf encoding.

/// Type byte of an X25519 public key (32 bytes follow).
pub const X25519: u8 = 0x01;
/// Type byte of an Ed25519 public key (32 bytes follow).
pub const ED25519: u8 = 0x02;
/// Type byte of an ML-KEM-768 encapsulation key (1,184 bytes follow).
pub const ML_KEM_768: u8 = 0x03;

/// Length of an ML-KEM-768 encapsulation key.
pub const ML_KEM_768_KEY_LEN: usize = 1184;

/// `Encode` of an X25519 public key.
pub fn x25519(key: &[u8; 32]) -> [u8; 33] {
    typed(X25519, key)
}

/// `Encode` of an Ed25519 public key.
pub fn ed25519(key: &[u8; 32]) -> [u8; 33] {
    typed(ED25519, key)
}

/// `Encode` of an ML-KEM-768 encapsulation key.
pub fn ml_kem_768(key: &[u8; ML_KEM_768_KEY_LEN]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + ML_KEM_768_KEY_LEN);
    out.push(ML_KEM_768);
    out.extend_from_slice(key);
    out
}

fn typed(kind: u8, key: &[u8; 32]) -> [u8; 33] {
    let mut out = [0u8; 33];
    out[0] = kind;
    out[1..].copy_from_slice(key);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_are_type_byte_then_key() {
        assert_eq!(x25519(&[7; 32])[..2], [0x01, 7]);
        assert_eq!(ed25519(&[7; 32])[..2], [0x02, 7]);
        let kem = ml_kem_768(&[9; ML_KEM_768_KEY_LEN]);
        assert_eq!((kem.len(), kem[0], kem[1184]), (1185, 0x03, 9));
    }
}
