"""The hash functions of the protocol, in one place (DESIGN.md section 3).

BLAKE3-256 for everything the chain hashes (txs, blocks, Merkle trees, app hash); SHA-256 and
RIPEMD-160 only where a standard requires them (secp256k1 signatures, Cosmos addresses).
"""

from __future__ import annotations

import hashlib

import blake3 as _blake3


def blake3_256(data: bytes) -> bytes:
    """32-byte BLAKE3 digest of `data`."""
    return _blake3.blake3(data).digest()


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def ripemd160(data: bytes) -> bytes:
    try:
        return hashlib.new("ripemd160", data).digest()
    except ValueError:
        # OpenSSL 3 builds may leave RIPEMD-160 out of hashlib; bip32 ships the reference code.
        from bip32.ripemd160 import ripemd160 as _ripemd160

        return _ripemd160(data)


def hash160(data: bytes) -> bytes:
    """RIPEMD160(SHA256(data)): the 20-byte Cosmos account id of a public key."""
    return ripemd160(sha256(data))
