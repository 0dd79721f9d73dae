"""State of the poc module: each host's last commitment for an epoch's Sprint and each
validator's verdict on it.

Keys:
    poc/commit/<u64 epoch><address>                      -> PocCommitRecord
    poc/validation/<u64 epoch><participant><validator>  -> PocValidationRecord

Records of epochs before the previous one are pruned when a PoC starts.
"""

from __future__ import annotations

import msgspec

from chain.app.context import get_value, put_value, u64
from chain.store.kv import KVReader, Overlay, scan_prefix

COMMIT = b"poc/commit/"
VALIDATION = b"poc/validation/"
ADDRESS_LEN = 44  # chain.crypto.address.ADDRESS_LENGTH: keys hold fixed-length addresses


class PocCommitRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    participant: str
    count: int
    root: bytes
    height: int


class PocValidationRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    participant: str
    validator: str
    fraud: bool
    checked: int
    failed: int
    height: int


def get_commit(store: KVReader, epoch: int, address: str) -> PocCommitRecord | None:
    return get_value(store, COMMIT + u64(epoch) + address.encode(), PocCommitRecord)


def put_commit(store: Overlay, epoch: int, record: PocCommitRecord) -> None:
    put_value(store, COMMIT + u64(epoch) + record.participant.encode(), record)


def commits(store: KVReader, epoch: int) -> list[PocCommitRecord]:
    return [msgspec.msgpack.decode(v, type=PocCommitRecord)
            for _, v in scan_prefix(store, COMMIT + u64(epoch))]


def put_validation(store: Overlay, epoch: int, record: PocValidationRecord) -> None:
    key = (VALIDATION + u64(epoch) + record.participant.encode() + record.validator.encode())
    put_value(store, key, record)


def validations(store: KVReader, epoch: int, participant: str) -> list[PocValidationRecord]:
    return [msgspec.msgpack.decode(v, type=PocValidationRecord)
            for _, v in scan_prefix(store, VALIDATION + u64(epoch) + participant.encode())]


def voters(store: KVReader, epoch: int) -> set[str]:
    """The validators that sent at least one PoC validation for `epoch` (about anyone)."""
    return {msgspec.msgpack.decode(v, type=PocValidationRecord).validator
            for _, v in scan_prefix(store, VALIDATION + u64(epoch))}


def prune_before(store: Overlay, epoch: int) -> None:
    """Delete the commits and validations of every epoch < `epoch`."""
    for prefix in (COMMIT, VALIDATION):
        for key, _ in store.scan(prefix, prefix + u64(epoch)):
            store.delete(key)
