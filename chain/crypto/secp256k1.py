"""secp256k1 account keys with Cosmos conventions (DESIGN.md section 3).

Public keys are 33-byte compressed points; signatures are 64-byte r||s over SHA-256 of the
message, always low-S (libsecp256k1 signs low-S and `native` rejects high-S on verify).
Mnemonic derivation and key stores live in `chain.crypto.mnemonic` and `chain.crypto.keystore`.
"""

from __future__ import annotations

import coincurve

import native
from chain.crypto.address import address_from_pubkey
from chain.crypto.errors import CryptoError

PUBKEY_LENGTH = 33
SIGNATURE_LENGTH = 64


class InvalidPrivateKey(CryptoError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid secp256k1 private key: {reason}")


class PrivateKey:
    """A secp256k1 account key. `repr` never shows the secret."""

    __slots__ = ("_key", "public_key", "address")

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes) or len(secret) != 32:
            raise InvalidPrivateKey("a private key is 32 bytes")
        try:
            self._key = coincurve.PrivateKey(secret)
        except ValueError as e:  # zero or not below the curve order
            raise InvalidPrivateKey("not in the range [1, n-1] of the curve order") from e
        self.public_key: bytes = self._key.public_key.format(compressed=True)
        self.address: str = address_from_pubkey(self.public_key)

    @classmethod
    def generate(cls) -> PrivateKey:
        return cls(coincurve.PrivateKey().secret)

    @classmethod
    def from_hex(cls, text: str) -> PrivateKey:
        try:
            raw = bytes.fromhex(text.strip())
        except ValueError as e:
            raise InvalidPrivateKey("not a hex string") from e
        return cls(raw)

    @property
    def secret(self) -> bytes:
        return self._key.secret

    def sign(self, msg: bytes) -> bytes:
        """64-byte low-S r||s signature over SHA-256(msg)."""
        return self._key.sign_recoverable(msg)[:SIGNATURE_LENGTH]

    def __repr__(self) -> str:
        return f"<secp256k1 PrivateKey {self.address}>"


def verify(pubkey: bytes, msg: bytes, sig: bytes) -> bool:
    """One signature check; many at once go through `native.verify_batch_secp256k1`."""
    return native.verify_secp256k1(pubkey, msg, sig)
