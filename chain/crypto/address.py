"""Account addresses: bech32 with prefix `gonka` of RIPEMD160(SHA256(compressed secp256k1 pubkey)).

Only the canonical form is accepted: lower case, prefix `gonka`, a 20-byte payload and a valid
checksum. The same account must never be reachable under two spellings, since addresses are state
keys.
"""

from __future__ import annotations

import functools

import bech32

from chain.crypto.errors import InvalidAddress
from chain.crypto.hashing import hash160

HRP = "gonka"
ADDRESS_BYTES = 20
# "gonka" + "1" + 32 data characters (20 bytes) + 6 checksum characters.
ADDRESS_LENGTH = len(HRP) + 1 + 32 + 6


def address_from_bytes(raw: bytes) -> str:
    if len(raw) != ADDRESS_BYTES:
        raise InvalidAddress(raw, f"an account id is {ADDRESS_BYTES} bytes, got {len(raw)}")
    data = bech32.convertbits(raw, 8, 5, True)
    return bech32.bech32_encode(HRP, data)


# Both directions are pure and the same few accounts sign most txs; bech32 in Python costs tens
# of microseconds per call, and every tx is decoded (and its addresses checked) several times on
# its way through the mempool, the proposal and the block. Only successes are cached.
_CACHE_SIZE = 1 << 16


def address_from_pubkey(pubkey: bytes) -> str:
    """Address of a 33-byte compressed secp256k1 public key."""
    return _address_from_pubkey(bytes(pubkey))


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _address_from_pubkey(pubkey: bytes) -> str:
    if len(pubkey) != 33 or pubkey[0] not in (2, 3):
        raise InvalidAddress(pubkey.hex(), "not a 33-byte compressed secp256k1 public key")
    return address_from_bytes(hash160(pubkey))


def address_to_bytes(address: str) -> bytes:
    """The 20-byte account id of `address`; raises InvalidAddress for any non-canonical form."""
    if not isinstance(address, str):
        raise InvalidAddress(address, "an address is a string")
    return _address_to_bytes(address)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _address_to_bytes(address: str) -> bytes:
    if len(address) != ADDRESS_LENGTH:
        raise InvalidAddress(address, f"expected {ADDRESS_LENGTH} characters, got {len(address)}")
    if address != address.lower():
        raise InvalidAddress(address, "addresses are lower case")
    hrp, data = bech32.bech32_decode(address)
    if hrp is None or data is None:
        raise InvalidAddress(address, "bad bech32 characters or checksum")
    if hrp != HRP:
        raise InvalidAddress(address, f"prefix must be {HRP!r}, got {hrp!r}")
    raw = bech32.convertbits(data, 5, 8, False)
    if raw is None or len(raw) != ADDRESS_BYTES:
        raise InvalidAddress(address, f"payload is not {ADDRESS_BYTES} bytes")
    return bytes(raw)


def is_valid_address(address: object) -> bool:
    try:
        address_to_bytes(address)  # type: ignore[arg-type]
    except InvalidAddress:
        return False
    return True
