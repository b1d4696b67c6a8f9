"""Checks protocol/tests/vectors/hearth_v1.json against implementations that
nobody on the team wrote:

* ratchets: the ``doubleratchet`` 1.3.0 package (see hearth_v1.py) replays
  every conversation with both parties: each encryption must give the
  recorded header, message key and ciphertext byte for byte, and each
  decryption the recorded outcome (ok / duplicate / too_many_skipped /
  auth_fail), drawing exactly the listed ratchet keys;
* handshakes: pyca ``cryptography`` X25519, Ed25519, HKDF and ML-KEM-768
  (the encapsulation key from the 64-byte seed d ‖ z, and our ciphertext
  decapsulated to our shared secret);
* sender keys: ``hmac``/``hashlib`` from the standard library for the chain,
  ``cryptography`` for HKDF, ChaCha20-Poly1305 and Ed25519;
* sealed sender: ``cryptography``'s RFC 9180 HPKE (base mode,
  DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305);
* padding: the rule re-implemented here.

Usage: python check_vectors.py VECTORS.json. Prints one line per failure and
``RESULT passed=N failed=M``; exits 1 on any failure.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import struct
import sys
import traceback
from typing import Callable

from cryptography.hazmat.bindings._rust import openssl as rust_openssl
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from doubleratchet import EncryptedMessage

from hearth_v1 import (
    KeyQueue,
    Party,
    decode_header,
    encode_header,
    hkdf_sha256,
    pad,
    unpad,
    x25519_public,
)

PREKEY_SIG_LABEL = b"Hearth_v1_PrekeySig"


class Tally:
    def __init__(self) -> None:
        self.passed = 0
        self.failures: list[str] = []

    def fail(self, name: str, why: str) -> None:
        self.failures.append(f"{name}: {why}")

    def check(self, name: str, test: Callable[[], None]) -> None:
        try:
            test()
        except Exception as e:  # every failure is reported, none stops the run
            self.fail(name, f"{type(e).__name__}: {e}")
            if not isinstance(e, AssertionError):
                traceback.print_exc()
        else:
            self.passed += 1


def unhex(text: str) -> bytes:
    return bytes.fromhex(text)


def x25519(private: bytes, public: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private).exchange(X25519PublicKey.from_public_bytes(public))


def ed25519_public(seed: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()


def check_prekey_sig(signer_seed: bytes, key_type: int, key: bytes, sig: bytes) -> None:
    message = PREKEY_SIG_LABEL + bytes([key_type]) + key
    signer = Ed25519PrivateKey.from_private_bytes(signer_seed)
    assert signer.sign(message) == sig, "signature differs from Ed25519 signing"
    signer.public_key().verify(sig, message)


def check_handshake(name: str, v: dict, tally: Tally) -> None:
    a, b = v["alice"], v["bob"]
    a_seed, b_seed = unhex(a["ik_sig_seed"]), unhex(b["ik_sig_seed"])
    a_dh, b_dh, ek = unhex(a["ik_dh_priv"]), unhex(b["ik_dh_priv"]), unhex(a["ek_priv"])
    spk = unhex(b["spk_priv"])
    pq_pub = unhex(b["pq_pub"])

    def signatures() -> None:
        sigs = v["sigs"]
        check_prekey_sig(b_seed, 0x01, x25519_public(b_dh), unhex(sigs["ik_dh"]))
        check_prekey_sig(b_seed, 0x01, x25519_public(spk), unhex(sigs["spk"]))
        check_prekey_sig(b_seed, 0x03, pq_pub, unhex(sigs["pq"]))
        check_prekey_sig(a_seed, 0x01, x25519_public(a_dh), unhex(sigs["alice_ik_dh"]))

    def dh() -> None:
        outputs = [x25519(a_dh, x25519_public(spk)), x25519(ek, x25519_public(b_dh)), x25519(ek, x25519_public(spk))]
        assert (b["opk_id"] is None) == (b["opk_priv"] is None), "opk_id and opk_priv disagree"
        if b["opk_priv"] is not None:
            outputs.append(x25519(ek, x25519_public(unhex(b["opk_priv"]))))
        assert [o.hex() for o in outputs] == v["dh"], "DH outputs differ"

    def ml_kem_encapsulation_key() -> None:
        key = MLKEM768PrivateKey.from_seed_bytes(unhex(b["pq_seed"]))
        assert key.public_key().public_bytes_raw() == pq_pub, "encapsulation key from d ‖ z differs"

    def ml_kem_decapsulation() -> None:
        key = MLKEM768PrivateKey.from_seed_bytes(unhex(b["pq_seed"]))
        assert key.decapsulate(unhex(v["kem_ct"])) == unhex(v["kem_ss"]), "decapsulated secret differs"

    def session_key() -> None:
        ikm = b"\xff" * 32 + b"".join(unhex(d) for d in v["dh"]) + unhex(v["kem_ss"])
        assert ikm == unhex(v["ikm"]), "ikm differs"
        sk = hkdf_sha256(bytes(32), ikm, b"Hearth_v1_X25519_SHA-256_ML-KEM-768", 32)
        assert sk == unhex(v["sk"]), "SK differs"

    def associated_data() -> None:
        ad = (
            b"Hearth_v1"
            + b"\x02" + ed25519_public(a_seed)
            + b"\x01" + x25519_public(a_dh)
            + b"\x02" + ed25519_public(b_seed)
            + b"\x01" + x25519_public(b_dh)
        )
        assert ad == unhex(v["ad"]), "AD differs"

    for test in (signatures, dh, ml_kem_encapsulation_key, ml_kem_decapsulation, session_key, associated_data):
        tally.check(f"{name}.{test.__name__}", test)


async def check_ratchet(name: str, v: dict, tally: Tally) -> None:
    """Both parties in doubleratchet, event by event."""
    sk, ad, spk = unhex(v["sk"]), unhex(v["ad"]), unhex(v["bob_spk_priv"])
    queues = {side: KeyQueue([unhex(k) for k in v["ratchet_privs"][side]]) for side in ("alice", "bob")}
    parties = {
        "alice": Party(sk, ad, queues["alice"], peer_spk_pub=x25519_public(spk)),
        "bob": Party(sk, ad, queues["bob"], own_spk_priv=spk),
    }
    events = v["events"]
    for i, e in enumerate(events):
        label = f"{name}.events[{i}]"
        try:
            if e["op"] == "encrypt":
                message, trace = await parties[e["by"]].encrypt(pad(unhex(e["pt"])))
                assert encode_header(message.header).hex() == e["header"], "header differs"
                assert trace.mk.hex() == e["mk"], "mk differs"
                assert (trace.key.hex(), trace.nonce.hex()) == (e["key"], e["nonce"]), "key/nonce differ"
                assert message.ciphertext.hex() == e["ct"], "ct differs"
            else:
                ref = events[e["msg"]]
                assert ref["op"] == "encrypt" and ref["by"] != e["by"], "msg is not the peer's encrypt event"
                ct = bytearray(unhex(ref["ct"]))
                if e["tamper"]:
                    ct[-1] ^= 0x01
                message = EncryptedMessage(header=decode_header(unhex(ref["header"])), ciphertext=bytes(ct))
                outcome, padded = await parties[e["by"]].decrypt(message)
                assert outcome == e["expect"], f"expected {e['expect']}, doubleratchet gave {outcome}"
                if padded is not None:
                    assert unpad(padded) == unhex(ref["pt"]), "plaintext differs"
        except Exception as ex:
            tally.fail(label, f"{type(ex).__name__}: {ex}")
            if not isinstance(ex, AssertionError):
                traceback.print_exc()
        else:
            tally.passed += 1

    def all_keys_installed() -> None:
        for side, queue in queues.items():
            assert queue.used == len(queue.keys), f"{side} installed {queue.used} of {len(queue.keys)} keys"

    tally.check(f"{name}.ratchet_privs", all_keys_installed)


def check_sender_key(name: str, v: dict, tally: Tally) -> None:
    messages = v["messages"]
    seeds = []
    ck = unhex(v["ck0"])
    for _ in range(max(m["iteration"] for m in messages) + 1):
        seeds.append(hmac.new(ck, b"\x01", hashlib.sha256).digest())
        ck = hmac.new(ck, b"\x02", hashlib.sha256).digest()
    signing = Ed25519PrivateKey.from_private_bytes(unhex(v["signing_seed"]))
    for i, m in enumerate(messages):

        def message(m: dict = m) -> None:
            seed = seeds[m["iteration"]]
            assert seed.hex() == m["seed"], "seed is not HMAC(CK_i, 0x01)"
            okm = hkdf_sha256(bytes(32), seed, b"Hearth_v1_GroupMessageKeys", 44)
            assert (okm[:32].hex(), okm[32:].hex()) == (m["key"], m["nonce"]), "key/nonce differ"
            ad = (
                b"Hearth_v1_Group"
                + unhex(v["circle_id"])
                + struct.pack(">Q", v["epoch"])
                + b"\x02" + unhex(v["sender_ik_sig_pub"])
                + struct.pack(">II", v["chain_id"], m["iteration"])
            )
            assert ad.hex() == m["ad"], "AD differs"
            ct = ChaCha20Poly1305(okm[:32]).encrypt(okm[32:], pad(unhex(m["pt"])), ad)
            assert ct.hex() == m["ct"], "ct differs"
            assert signing.sign(ad + ct).hex() == m["sig"], "sig differs"
            Ed25519PublicKey.from_public_bytes(signing.public_key().public_bytes_raw()).verify(unhex(m["sig"]), ad + ct)

        tally.check(f"{name}.messages[{i}]", message)


def check_sealed(v: dict) -> None:
    suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
    recipient = X25519PrivateKey.from_private_bytes(unhex(v["recipient_ik_dh_priv"]))
    assert x25519_public(unhex(v["eph_priv"])).hex() == v["enc"], "enc is not the ephemeral public key"
    # Single-shot open of enc ‖ ct; the aad variant is cryptography's own
    # (private) entry point, used by its RFC 9180 test vectors.
    opened = rust_openssl.hpke._decrypt_with_aad(
        suite,
        unhex(v["enc"]) + unhex(v["header_ct"]),
        recipient,
        info=b"Hearth_v1_SealedSender",
        aad=unhex(v["mailbox_id"]),
    )
    body_ct = unhex(v["body_ct"])
    assert opened == unhex(v["k"]) + hashlib.sha256(body_ct).digest(), "header does not hold k ‖ SHA-256(body)"
    body = ChaCha20Poly1305(unhex(v["k"])).decrypt(bytes(12), body_ct, b"Hearth_v1_Body")
    assert body == unhex(v["body_pt"]), "body plaintext differs"


def check_padding(v: dict) -> None:
    padded = pad(b"\xa5" * v["len"])
    assert len(padded) == v["padded_len"], f"pads to {len(padded)}"


async def run(path: str) -> Tally:
    with open(path, encoding="utf-8") as f:
        vectors = json.load(f)
    tally = Tally()

    def suite() -> None:
        assert vectors["suite"] == "Hearth_v1"

    tally.check("suite", suite)
    for i, v in enumerate(vectors["handshakes"]):
        check_handshake(f"handshakes[{i}]", v, tally)
    for i, v in enumerate(vectors["ratchets"]):
        await check_ratchet(f"ratchets[{i}]", v, tally)
    for i, v in enumerate(vectors["sender_keys"]):
        check_sender_key(f"sender_keys[{i}]", v, tally)
    for i, v in enumerate(vectors["sealed"]):
        tally.check(f"sealed[{i}]", lambda v=v: check_sealed(v))
    for i, v in enumerate(vectors["padding"]):
        tally.check(f"padding[{i}]", lambda v=v: check_padding(v))
    return tally


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    tally = asyncio.run(run(sys.argv[1]))
    for failure in tally.failures:
        print(f"FAIL {failure}")
    print(f"python checks of {sys.argv[1]}: {tally.passed} passed, {len(tally.failures)} failed")
    print(f"RESULT passed={tally.passed} failed={len(tally.failures)}")
    return 1 if tally.failures else 0


if __name__ == "__main__":
    sys.exit(main())
