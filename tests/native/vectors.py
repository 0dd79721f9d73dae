"""Signature vectors shared by the native tests: valid ones and every way to be invalid."""

from __future__ import annotations

import hashlib
import random

import coincurve
import nacl.signing

# Order of the secp256k1 group.
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
# Order of the ed25519 prime-order subgroup.
L = 2**252 + 27742317777372353535851937790883648493


def secp_cases(seed: int = 1) -> list[tuple[str, bytes, bytes, bytes, bool]]:
    """(name, pubkey, msg, sig, expected) for secp256k1."""
    rng = random.Random(seed)
    key = coincurve.PrivateKey(rng.randbytes(32))
    other = coincurve.PrivateKey(rng.randbytes(32))
    pk = key.public_key.format(compressed=True)
    msg = b"transfer 5 ngonka"
    sig = key.sign_recoverable(msg)[:64]
    s = int.from_bytes(sig[32:], "big")
    assert s <= N // 2, "libsecp256k1 signs low-S"
    high_s = sig[:32] + (N - s).to_bytes(32, "big")
    # An x coordinate with no point on the curve (x^3 + 7 is not a square mod p for x = 5).
    off_curve = b"\x02" + (5).to_bytes(32, "big")
    return [
        ("valid", pk, msg, sig, True),
        ("valid empty message", pk, b"", key.sign_recoverable(b"")[:64], True),
        ("valid long message", pk, b"x" * 100_000, key.sign_recoverable(b"x" * 100_000)[:64], True),
        ("tampered message", pk, msg + b"!", sig, False),
        ("tampered signature", pk, msg, sig[:-1] + bytes([sig[-1] ^ 1]), False),
        ("other key", other.public_key.format(compressed=True), msg, sig, False),
        ("high-S twin of a valid signature", pk, msg, high_s, False),
        ("r = 0", pk, msg, bytes(32) + sig[32:], False),
        ("s = 0", pk, msg, sig[:32] + bytes(32), False),
        ("r = n (overflow)", pk, msg, N.to_bytes(32, "big") + sig[32:], False),
        ("s = n (overflow)", pk, msg, sig[:32] + N.to_bytes(32, "big"), False),
        ("uncompressed pubkey", key.public_key.format(compressed=False), msg, sig, False),
        ("32-byte pubkey", pk[1:], msg, sig, False),
        ("34-byte pubkey", pk + b"\x00", msg, sig, False),
        ("empty pubkey", b"", msg, sig, False),
        ("bad pubkey prefix", b"\x05" + pk[1:], msg, sig, False),
        ("pubkey off the curve", off_curve, msg, sig, False),
        ("63-byte signature", pk, msg, sig[:63], False),
        ("65-byte signature (recoverable form)", pk, msg, key.sign_recoverable(msg), False),
        ("DER signature", pk, msg, key.sign(msg), False),
        ("empty signature", pk, msg, b"", False),
        ("signature over SHA-256(SHA-256(m)) instead of SHA-256(m)", pk, msg,
         key.sign_recoverable(hashlib.sha256(hashlib.sha256(msg).digest()).digest(),
                              hasher=None)[:64], False),
    ]


def ed25519_cases(seed: int = 2) -> list[tuple[str, bytes, bytes, bytes, bool]]:
    rng = random.Random(seed)
    key = nacl.signing.SigningKey(rng.randbytes(32))
    other = nacl.signing.SigningKey(rng.randbytes(32))
    pk = bytes(key.verify_key)
    msg = b"prevote h=7 r=0"
    sig = key.sign(msg).signature
    s = int.from_bytes(sig[32:], "little")
    # S + L is the same scalar mod L; RFC 8032 requires S < L, and libsodium enforces it.
    non_canonical_s = sig[:32] + (s + L).to_bytes(32, "little")
    # A small-order point (the identity) as public key, with a signature that would pass
    # cofactored checks for any message: libsodium rejects small-order keys.
    identity = (1).to_bytes(32, "little")
    return [
        ("valid", pk, msg, sig, True),
        ("valid empty message", pk, b"", key.sign(b"").signature, True),
        ("valid long message", pk, b"y" * 100_000, key.sign(b"y" * 100_000).signature, True),
        ("tampered message", pk, msg + b"!", sig, False),
        ("tampered signature", pk, msg, sig[:-2] + bytes([sig[-2] ^ 1]) + sig[-1:], False),
        ("other key", bytes(other.verify_key), msg, sig, False),
        ("non-canonical S", pk, msg, non_canonical_s, False),
        ("small-order public key", identity, msg, identity + bytes(32), False),
        ("31-byte pubkey", pk[:31], msg, sig, False),
        ("33-byte pubkey", pk + b"\x00", msg, sig, False),
        ("63-byte signature", pk, msg, sig[:63], False),
        ("65-byte signature", pk, msg, sig + b"\x00", False),
        ("empty signature", pk, msg, b"", False),
    ]
