"""The last message this validator signed, kept so that it never signs two conflicting ones.

A validator must never sign two different proposals for one (height, round) nor two different
votes for one (height, round, type), even across a crash (DESIGN.md section 4). `SignRecord` is
the last (height, round, step) signed with its sign bytes and signature; `check_sign` decides a
new request against it: a later HRS is signed afresh, an earlier one is refused, and the same HRS
is answered with the old signature when the message is the same (or differs only in its
timestamp, as a re-derived vote does after a restart), and refused otherwise.

`SignStateFile` keeps the record in a small file, replaced atomically and fsynced before the
message leaves the node. The decision itself (`check_sign`, `sign_once`) is pure.
"""

from __future__ import annotations

import enum

import msgspec

from chain.consensus.storage import DiskFiles, Files
from chain.crypto.ed25519 import PrivateKey
from chain.crypto.hashing import blake3_256
from chain.types.vote import ProposalSignDoc, VoteSignDoc


class SignStep(enum.IntEnum):
    """CometBFT's order of what is signed within a round."""

    PROPOSAL = 1
    PREVOTE = 2
    PRECOMMIT = 3


class SignRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    height: int
    round: int
    step: SignStep
    sign_bytes: bytes
    signature: bytes

    @property
    def hrs(self) -> tuple[int, int, int]:
        return (self.height, self.round, int(self.step))

    @property
    def time_ns(self) -> int:
        """The timestamp inside the signed message."""
        return _decode_doc(self.step, self.sign_bytes).time_ns


class DoubleSignRefused(Exception):
    """Signing this would conflict with what was signed already."""

    def __init__(self, last: SignRecord, height: int, round_: int, step: SignStep,
                 reason: str) -> None:
        super().__init__(f"refusing to sign {step.name} at {height}/{round_}: {reason} "
                         f"(last signed {last.step.name} at {last.height}/{last.round})")
        self.last = last
        self.reason = reason


def _decode_doc(step: SignStep, sign_bytes: bytes) -> VoteSignDoc | ProposalSignDoc:
    doc_type = ProposalSignDoc if step == SignStep.PROPOSAL else VoteSignDoc
    return msgspec.msgpack.decode(sign_bytes, type=doc_type)


def _same_but_time(step: SignStep, a: bytes, b: bytes) -> bool:
    try:
        da, db = _decode_doc(step, a), _decode_doc(step, b)
    except msgspec.MsgspecError:
        return False
    return msgspec.structs.replace(da, time_ns=db.time_ns) == db


def check_sign(last: SignRecord | None, height: int, round_: int, step: SignStep,
               sign_bytes: bytes) -> SignRecord | None:
    """None: sign `sign_bytes` afresh. A record: send that message again instead (same HRS, same
    content; its timestamp and signature win). Raises DoubleSignRefused otherwise."""
    if last is None:
        return None
    hrs = (height, round_, int(step))
    if hrs > last.hrs:
        return None
    if hrs < last.hrs:
        raise DoubleSignRefused(last, height, round_, step, "already signed a later step")
    if sign_bytes == last.sign_bytes or _same_but_time(step, last.sign_bytes, sign_bytes):
        return last
    raise DoubleSignRefused(last, height, round_, step, "a different message was signed")


def sign_once(last: SignRecord | None, key: PrivateKey, height: int, round_: int,
              step: SignStep, sign_bytes: bytes) -> SignRecord | None:
    """What to send for `sign_bytes`: `last` again (same message), a fresh signature (a later
    step; it becomes the new last record), or None when signing would conflict."""
    try:
        again = check_sign(last, height, round_, step, sign_bytes)
    except DoubleSignRefused:
        return None
    if again is not None:
        return again
    return SignRecord(height=height, round=round_, step=step, sign_bytes=sign_bytes,
                      signature=key.sign(sign_bytes))


class CorruptSignState(Exception):
    """The sign-state file exists but cannot be read: never guess, a human must look."""


class SignStateFile:
    """The durable copy of the last SignRecord: checksummed, replaced atomically, fsynced."""

    def __init__(self, path: str, files: Files | None = None) -> None:
        self.path = str(path)
        self.files = files or DiskFiles()

    def load(self) -> SignRecord | None:
        """The record, None if the file does not exist; CorruptSignState if unreadable."""
        raw = self.files.read(self.path)
        if raw is None:
            return None
        body, digest = raw[:-32], raw[-32:]
        if len(raw) < 32 or blake3_256(body) != digest:
            raise CorruptSignState(f"{self.path}: checksum mismatch")
        try:
            return msgspec.msgpack.decode(body, type=SignRecord)
        except msgspec.MsgspecError as e:
            raise CorruptSignState(f"{self.path}: {e}") from e

    def save(self, record: SignRecord) -> None:
        """Replace the file with `record`; durable when this returns."""
        body = msgspec.msgpack.encode(record)
        self.files.write_atomic(self.path, body + blake3_256(body))
