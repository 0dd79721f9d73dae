"""ed25519 keys of nodes and validators: p2p identity and consensus votes (DESIGN.md section 3).

A validator's or node's id is the first 20 bytes of BLAKE3-256 of its 32-byte public key.
"""

from __future__ import annotations

import nacl.signing

import native
from chain.crypto.errors import CryptoError
from chain.crypto.hashing import blake3_256

PUBKEY_LENGTH = 32
SIGNATURE_LENGTH = 64
ID_LENGTH = 20


class InvalidNodeKey(CryptoError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid ed25519 key: {reason}")


def node_id(pubkey: bytes) -> bytes:
    """20-byte id of an ed25519 public key (validator address, p2p node id)."""
    if len(pubkey) != PUBKEY_LENGTH:
        raise InvalidNodeKey(f"a public key is {PUBKEY_LENGTH} bytes, got {len(pubkey)}")
    return blake3_256(pubkey)[:ID_LENGTH]


class PrivateKey:
    """An ed25519 signing key from its 32-byte seed. `repr` never shows the seed."""

    __slots__ = ("_key", "public_key", "id")

    def __init__(self, seed: bytes) -> None:
        if not isinstance(seed, bytes) or len(seed) != 32:
            raise InvalidNodeKey("a seed is 32 bytes")
        self._key = nacl.signing.SigningKey(seed)
        self.public_key: bytes = bytes(self._key.verify_key)
        self.id: bytes = node_id(self.public_key)

    @classmethod
    def generate(cls) -> PrivateKey:
        return cls(bytes(nacl.signing.SigningKey.generate()))

    @property
    def seed(self) -> bytes:
        return bytes(self._key)

    def sign(self, msg: bytes) -> bytes:
        return self._key.sign(msg).signature

    def __repr__(self) -> str:
        return f"<ed25519 PrivateKey {self.id.hex()}>"


def verify(pubkey: bytes, msg: bytes, sig: bytes) -> bool:
    """One signature check; many at once go through `native.verify_batch_ed25519`."""
    return native.verify_ed25519(pubkey, msg, sig)
