"""The ``doubleratchet`` 1.3.0 package (configured as in hearth_v1.py) plays
both parties of a conversation and records it in the vectors' ratchet
schema, for the Rust crate to replay (``cargo run -p hearth-protocol
--example interop-decrypt -- FILE``).

A scripted part covers out-of-order delivery, duplicates, tampering (also on
a message that would step the DH ratchet) and several DH ratchet steps in
both directions; a seeded random part then interleaves sends and late
deliveries. Every outcome is the package's own; the script only asserts that
the scripted ones are the intended ones.

Usage: python produce_conversation.py OUT.json
"""

from __future__ import annotations

import asyncio
import json
import random
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from doubleratchet import EncryptedMessage

from hearth_v1 import (
    KeyQueue,
    Party,
    decode_header,
    encode_header,
    fixed32,
    pad,
    unpad,
    x25519_public,
)

KEYS_PER_SIDE = 128
RANDOM_STEPS = 160


def ed25519_public(seed: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()


class Recorder:
    def __init__(self) -> None:
        self.sk = fixed32("sk")
        self.spk = fixed32("bob/spk_priv")
        self.ad = (
            b"Hearth_v1"
            + b"\x02" + ed25519_public(fixed32("alice/ik_sig_seed"))
            + b"\x01" + x25519_public(fixed32("alice/ik_dh_priv"))
            + b"\x02" + ed25519_public(fixed32("bob/ik_sig_seed"))
            + b"\x01" + x25519_public(fixed32("bob/ik_dh_priv"))
        )
        self.queues = {
            side: KeyQueue([fixed32(f"{side}/ratchet_priv/{i}") for i in range(KEYS_PER_SIDE)])
            for side in ("alice", "bob")
        }
        self.parties = {
            "alice": Party(self.sk, self.ad, self.queues["alice"], peer_spk_pub=x25519_public(self.spk)),
            "bob": Party(self.sk, self.ad, self.queues["bob"], own_spk_priv=self.spk),
        }
        self.events: list[dict] = []

    def can_send(self, by: str) -> bool:
        return by == "alice" or self.parties[by].session is not None

    async def send(self, by: str, pt: bytes) -> int:
        message, trace = await self.parties[by].encrypt(pad(pt))
        self.events.append(
            {
                "op": "encrypt",
                "by": by,
                "pt": pt.hex(),
                "header": encode_header(message.header).hex(),
                "mk": trace.mk.hex(),
                "key": trace.key.hex(),
                "nonce": trace.nonce.hex(),
                "ct": message.ciphertext.hex(),
            }
        )
        return len(self.events) - 1

    async def deliver(self, msg: int, tamper: bool = False, expect: str | None = None) -> str:
        sent = self.events[msg]
        by = "bob" if sent["by"] == "alice" else "alice"
        ct = bytearray(bytes.fromhex(sent["ct"]))
        if tamper:
            ct[-1] ^= 0x01
        message = EncryptedMessage(header=decode_header(bytes.fromhex(sent["header"])), ciphertext=bytes(ct))
        outcome, padded = await self.parties[by].decrypt(message)
        if expect is not None and outcome != expect:
            raise AssertionError(f"event {len(self.events)}: expected {expect}, got {outcome}")
        if padded is not None and unpad(padded) != bytes.fromhex(sent["pt"]):
            raise AssertionError(f"event {len(self.events)}: plaintext differs")
        self.events.append({"op": "decrypt", "by": by, "msg": msg, "tamper": tamper, "expect": outcome})
        return outcome

    def vector(self) -> dict:
        privs = {side: [k.hex() for k in q.keys[: q.used]] for side, q in self.queues.items()}
        return {
            "sk": self.sk.hex(),
            "ad": self.ad.hex(),
            "bob_spk_priv": self.spk.hex(),
            "ratchet_privs": privs,
            "events": self.events,
        }


async def scripted(r: Recorder) -> None:
    a0 = await r.send("alice", "Γειά σου Bob, from Python".encode())
    a1 = await r.send("alice", b"x" * 300)
    a2 = await r.send("alice", b"")
    await r.deliver(a2, expect="ok")  # Bob's first DH step, a0 and a1 skipped
    await r.deliver(a0, tamper=True, expect="auth_fail")
    await r.deliver(a0, expect="ok")
    await r.deliver(a0, expect="duplicate")
    b0 = await r.send("bob", b"reply 0")
    b1 = await r.send("bob", b"y" * 1000)
    await r.deliver(b1, tamper=True, expect="auth_fail")  # would step Alice's ratchet
    await r.deliver(b1, expect="ok")
    a3 = await r.send("alice", b"a3")
    await r.deliver(a1, expect="ok")  # skipped key of Alice's previous chain
    await r.deliver(a3, expect="ok")
    await r.deliver(b0, expect="ok")
    await r.deliver(b1, expect="duplicate")
    for round_ in range(4):  # ping-pong: a DH step on every delivery
        a = await r.send("alice", f"ping {round_}".encode())
        await r.deliver(a, expect="ok")
        b = await r.send("bob", f"pong {round_}".encode())
        await r.deliver(b, expect="ok")


async def interleaved(r: Recorder, rng: random.Random) -> None:
    """Random sends and late deliveries; some messages are never delivered.
    A message is tampered with at most before its first real delivery, and
    never delivered twice, so every outcome is one both sides define alike."""
    pending: list[int] = []
    for step in range(RANDOM_STEPS):
        if pending and rng.random() < 0.5:
            msg = pending.pop(rng.randrange(len(pending)))
            if rng.random() < 0.1:
                await r.deliver(msg, tamper=True, expect="auth_fail")
            await r.deliver(msg, expect="ok")
        else:
            by = rng.choice(["alice", "bob"])
            if r.can_send(by):
                pt = rng.randbytes(rng.choice([0, 1, 17, 255, 256, 700]))
                msg = await r.send(by, pt)
                if rng.random() < 0.9:  # the rest are lost
                    pending.append(msg)
    for msg in pending[: len(pending) // 2]:
        await r.deliver(msg, expect="ok")


async def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    r = Recorder()
    await scripted(r)
    await interleaved(r, random.Random(20240601))
    vectors = {
        "suite": "Hearth_v1",
        "handshakes": [],
        "ratchets": [r.vector()],
        "sender_keys": [],
        "sealed": [],
        "padding": [],
    }
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        json.dump(vectors, f, indent=1)
    decrypts = sum(1 for e in r.events if e["op"] == "decrypt")
    steps = sum(len(v) for v in r.vector()["ratchet_privs"].values()) - 1
    print(
        f"doubleratchet produced {len(r.events) - decrypts} messages, {decrypts} deliveries, "
        f"{steps} DH ratchet steps -> {sys.argv[1]}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
