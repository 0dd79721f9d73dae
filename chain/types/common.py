"""Annotated field types shared by every wire type: hashes, keys, ids, heights, amounts, addresses.

Each constraint here is checked when bytes are decoded (msgspec `Meta`), so a type that uses them
cannot hold an out-of-range value that came off the wire. This module must never grow behaviour
beyond the checks themselves: no I/O, no state.
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from chain.crypto.address import ADDRESS_LENGTH, address_to_bytes
from chain.crypto.errors import InvalidAddress
from native.merkle_spec import Hash32

MAX_INT64 = 2**63 - 1

# The single native denomination. Balances are integers of the smallest unit.
DENOM = "ngonka"
NGONKA_PER_GONKA = 10**9
# Any one amount fits in int64, so the sum of two still fits in uint64 and SQLite's INTEGER.
MAX_AMOUNT = MAX_INT64
Amount = Annotated[int, Meta(ge=0, le=MAX_AMOUNT)]
# A transfer of nothing is refused: it would only cost a block slot.
PositiveAmount = Annotated[int, Meta(ge=1, le=MAX_AMOUNT)]

# `Hash32` (imported above, the Merkle proofs' own type): BLAKE3-256 digests of txs, blocks, trees.
# 20-byte id of an ed25519 key: validator address and p2p node id (`chain.crypto.ed25519.node_id`).
NodeId = Annotated[bytes, Meta(min_length=20, max_length=20)]
# Compressed secp256k1 public key of an account.
AccountPubKey = Annotated[bytes, Meta(min_length=33, max_length=33)]
# secp256k1 r||s and ed25519 signatures are both 64 bytes.
Signature = Annotated[bytes, Meta(min_length=64, max_length=64)]

# Tendermint's limit of 50 characters; a restricted alphabet keeps ids printable and unambiguous.
ChainId = Annotated[str, Meta(min_length=1, max_length=50, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
Height = Annotated[int, Meta(ge=1, le=MAX_INT64)]
# Rounds stay small in practice; int32 bounds them like Tendermint does.
MAX_ROUND = 2**31 - 1
Round = Annotated[int, Meta(ge=0, le=MAX_ROUND)]
# Unix time in nanoseconds.
TimeNs = Annotated[int, Meta(ge=0, le=MAX_INT64)]

# An account address: the length is checked by msgspec, the bech32 checksum and canonical form by
# `check_address` in each struct's `__post_init__` (msgspec cannot run a function on a field).
Address = Annotated[str, Meta(min_length=ADDRESS_LENGTH, max_length=ADDRESS_LENGTH)]


def check_address(field: str, value: object) -> None:
    """Raise InvalidAddress (naming `field`) unless `value` is a canonical `gonka1...` address.

    Called from `__post_init__`, so it runs both on decode (msgspec reports it as a validation
    error with the path) and when a message is built in Python.
    """
    try:
        address_to_bytes(value)  # type: ignore[arg-type]
    except InvalidAddress as e:
        raise InvalidAddress(value, f"{field}: {e.reason}") from None


__all__ = [
    "Address",
    "AccountPubKey",
    "Amount",
    "PositiveAmount",
    "ChainId",
    "DENOM",
    "Hash32",
    "Height",
    "MAX_AMOUNT",
    "MAX_INT64",
    "MAX_ROUND",
    "NGONKA_PER_GONKA",
    "NodeId",
    "Round",
    "Signature",
    "TimeNs",
    "check_address",
]
