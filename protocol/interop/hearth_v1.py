"""Hearth_v1 (DESIGN.md section 5) rebuilt from code nobody on the team wrote.

The Double Ratchet is the PyPI package ``doubleratchet`` 1.3.0, configured to
our parameters through its abstract classes; the primitives are pyca
``cryptography``. Nothing here imports or mirrors the Rust crate.

How the package maps onto DESIGN section 5:

* Root chain: ``KDFChain`` with ``recommended.kdf_hkdf`` (HKDF-SHA-256, the
  root key as salt, the DH output as ikm, info ``Hearth_v1_Ratchet``). A step
  derives 64 bytes and keeps the first 32 as the new root key, so the other
  32 are the chain key: exactly ``KDF_RK``.
* Message chains: ``KDFChain`` with ``recommended.kdf_separate_hmacs`` and
  the constant ``0x02 0x01``, giving ``HMAC(ck, 0x02) ‖ HMAC(ck, 0x01)``; the
  chain keeps the first half as the next chain key and returns the second as
  the message key: exactly ``KDF_CK``.
* AEAD (``HearthAead``): ``key ‖ nonce = HKDF(salt = 32×0, ikm = MK,
  info = "Hearth_v1_MessageKeys", L = 44)``, ChaCha20-Poly1305, associated data
  ``AD ‖ header`` (``_build_associated_data`` with our 41-byte header).
* DH ratchet: X25519 (``recommended.diffie_hellman_ratchet_curve25519``),
  with key pairs taken from a fixed list so that vectors replay.

Where the package's structure differs from DESIGN, the subclass adapts:

* ``PN`` gap: the package only warns when the previous chain's ``PN`` would
  skip more than the threshold and ratchets on without storing those keys;
  DESIGN applies Signal's ``Nr + MAX_SKIP < PN`` check and refuses the
  message. ``HearthDhRatchet.next_decryption_key`` adds that check.
* Key draws on failure: the package draws the new ratchet key pair before
  the AEAD authenticates (on a copy it discards on failure). Discarding the
  copy cannot put a drawn key back in our fixed list, so ``KeyQueue`` is
  rewound when a decryption fails: like DESIGN, a failure draws nothing.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from typing import Optional

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from doubleratchet import (
    AuthenticationFailedException,
    DoSProtectionException,
    DoubleRatchet,
    DuplicateMessageException,
    EncryptedMessage,
    Header,
)
from doubleratchet.aead import AEAD
from doubleratchet.recommended import (
    HashFunction,
    diffie_hellman_ratchet_curve25519,
    kdf_hkdf,
    kdf_separate_hmacs,
)

RATCHET_INFO = b"Hearth_v1_Ratchet"
MESSAGE_KEYS_INFO = b"Hearth_v1_MessageKeys"
# KDFChain keeps output[:32] as the next chain key and returns output[32:].
MESSAGE_CHAIN_CONSTANT = b"\x02\x01"
MAX_SKIP = 1000
MAX_SKIPPED_KEYS = 2000
HEADER_VERSION = 0x01


def hkdf_sha256(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def x25519_public(private: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


def pad(plaintext: bytes) -> bytes:
    """DESIGN padding: pt ‖ 0x80 ‖ 0x00… to 256, powers of two to 64 KiB,
    then multiples of 64 KiB."""
    need = len(plaintext) + 1
    if need <= 256:
        size = 256
    elif need <= 65536:
        size = 1 << (need - 1).bit_length()
    else:
        size = -(-need // 65536) * 65536
    return plaintext + b"\x80" + bytes(size - need)


def unpad(padded: bytes) -> bytes:
    stripped = padded.rstrip(b"\x00")
    if not stripped.endswith(b"\x80") or pad(stripped[:-1]) != padded:
        raise ValueError("bad padding")
    return stripped[:-1]


def encode_header(header: Header) -> bytes:
    """``0x01 ‖ DHs_pub (32) ‖ PN (u32) ‖ N (u32)``, big-endian."""
    return (
        bytes([HEADER_VERSION])
        + header.ratchet_pub
        + struct.pack(">II", header.previous_sending_chain_length, header.sending_chain_length)
    )


def decode_header(raw: bytes) -> Header:
    if len(raw) != 41 or raw[0] != HEADER_VERSION:
        raise ValueError("bad header")
    pn, n = struct.unpack(">II", raw[33:])
    return Header(ratchet_pub=raw[1:33], previous_sending_chain_length=pn, sending_chain_length=n)


class RootKdf(kdf_hkdf.KDF):
    @staticmethod
    def _get_hash_function() -> HashFunction:
        return HashFunction.SHA_256

    @staticmethod
    def _get_info() -> bytes:
        return RATCHET_INFO


class MessageChainKdf(kdf_separate_hmacs.KDF):
    @staticmethod
    def _get_hash_function() -> HashFunction:
        return HashFunction.SHA_256


@dataclass
class Trace:
    """The keys of the latest encryption, recorded for vectors."""

    mk: bytes
    key: bytes
    nonce: bytes


class HearthAead(AEAD):
    last: Optional[Trace] = None

    @staticmethod
    def expand(mk: bytes) -> Trace:
        okm = hkdf_sha256(bytes(32), mk, MESSAGE_KEYS_INFO, 44)
        return Trace(mk=mk, key=okm[:32], nonce=okm[32:])

    @staticmethod
    async def encrypt(plaintext: bytes, key: bytes, associated_data: bytes) -> bytes:
        trace = HearthAead.expand(key)
        HearthAead.last = trace
        return ChaCha20Poly1305(trace.key).encrypt(trace.nonce, plaintext, associated_data)

    @staticmethod
    async def decrypt(ciphertext: bytes, key: bytes, associated_data: bytes) -> bytes:
        trace = HearthAead.expand(key)
        try:
            return ChaCha20Poly1305(trace.key).decrypt(trace.nonce, ciphertext, associated_data)
        except InvalidTag as e:
            raise AuthenticationFailedException("ChaCha20-Poly1305 tag mismatch") from e


@dataclass
class KeyQueue:
    """Ratchet private keys handed out in order; rewound when a decryption
    that drew one fails."""

    keys: list[bytes]
    used: int = 0

    def draw(self) -> bytes:
        if self.used >= len(self.keys):
            raise RuntimeError("ratchet key list exhausted")
        self.used += 1
        return self.keys[self.used - 1]


class HearthDhRatchet(diffie_hellman_ratchet_curve25519.DiffieHellmanRatchet):
    """X25519 DH ratchet drawing from ``queue`` (set per party subclass), with
    DESIGN's ``PN`` bound."""

    queue: KeyQueue

    async def next_decryption_key(self, header: Header):  # type: ignore[override]
        other = self._DiffieHellmanRatchet__other_ratchet_pub  # type: ignore[attr-defined]
        symmetric = self._DiffieHellmanRatchet__symmetric_key_ratchet  # type: ignore[attr-defined]
        received = symmetric.receiving_chain_length
        if header.ratchet_pub != other and received is not None:
            if received + MAX_SKIP < header.previous_sending_chain_length:
                raise DoSProtectionException("PN skips more than MAX_SKIP message keys")
        return await super().next_decryption_key(header)


def dh_ratchet_class(queue: KeyQueue) -> type:
    return type(
        "PartyDhRatchet",
        (HearthDhRatchet,),
        {"queue": queue, "_generate_priv": staticmethod(queue.draw)},
    )


class HearthRatchet(DoubleRatchet):
    @staticmethod
    def _build_associated_data(associated_data: bytes, header: Header) -> bytes:
        return associated_data + encode_header(header)


def ratchet_config(queue: KeyQueue) -> dict:
    return dict(
        diffie_hellman_ratchet_class=dh_ratchet_class(queue),
        root_chain_kdf=RootKdf,
        message_chain_kdf=MessageChainKdf,
        message_chain_constant=MESSAGE_CHAIN_CONSTANT,
        dos_protection_threshold=MAX_SKIP,
        max_num_skipped_message_keys=MAX_SKIPPED_KEYS,
        aead=HearthAead,
    )


OUTCOMES = {
    DuplicateMessageException: "duplicate",
    DoSProtectionException: "too_many_skipped",
    AuthenticationFailedException: "auth_fail",
}


@dataclass
class Party:
    """One side of a session. Alice is made by her first encryption
    (``encrypt_initial_message``), Bob by his first successful decryption
    (``decrypt_initial_message``)."""

    sk: bytes
    ad: bytes
    queue: KeyQueue
    peer_spk_pub: Optional[bytes] = None
    own_spk_priv: Optional[bytes] = None
    session: Optional[HearthRatchet] = field(default=None)

    async def encrypt(self, padded: bytes) -> tuple[EncryptedMessage, Trace]:
        if self.session is None:
            if self.peer_spk_pub is None:
                raise RuntimeError("Bob cannot send before he has received")
            self.session, message = await HearthRatchet.encrypt_initial_message(
                **ratchet_config(self.queue),
                shared_secret=self.sk,
                recipient_ratchet_pub=self.peer_spk_pub,
                message=padded,
                associated_data=self.ad,
            )
        else:
            message = await self.session.encrypt_message(padded, self.ad)
        assert HearthAead.last is not None
        return message, HearthAead.last

    async def decrypt(self, message: EncryptedMessage) -> tuple[str, Optional[bytes]]:
        """Returns ("ok", padded plaintext) or (failure name, None)."""
        drawn = self.queue.used
        try:
            if self.session is None:
                if self.own_spk_priv is None:
                    raise RuntimeError("Alice has no session yet")
                session, padded = await HearthRatchet.decrypt_initial_message(
                    **ratchet_config(self.queue),
                    shared_secret=self.sk,
                    own_ratchet_priv=self.own_spk_priv,
                    message=message,
                    associated_data=self.ad,
                )
                self.session = session
            else:
                padded = await self.session.decrypt_message(message, self.ad)
        except tuple(OUTCOMES) as e:
            self.queue.used = drawn
            return next(name for kind, name in OUTCOMES.items() if isinstance(e, kind)), None
        return "ok", padded


def fixed32(label: str) -> bytes:
    """Python's own fixed secrets (distinct from the Rust generator's)."""
    return hashlib.sha256(b"Hearth_v1 interop/" + label.encode()).digest()
