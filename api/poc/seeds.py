"""The host's secret validation seeds, one per epoch, durable (gonka-api-node.md section 9;
PROTOCOL.md `MsgSubmitSeed`).

At the PoC start of epoch N the host draws a fresh 32-byte seed, writes it here, and only then
commits to it on chain (`seed_commitment(account, N, seed)`). The seed decides which inferences
the host must validate during N and is revealed by the claim for N, so losing it loses the
epoch's reward: every write is fsync'ed and atomic (temp file, rename, directory fsync). A seed
is never replaced once written: after a restart the same seed is found, and the record says
whether its commitment was already handed to the outbox (which is durable itself), so it is
neither drawn again nor committed twice.

Files: `<dir>/<epoch>.json` = SeedRecord. Synchronous; never talks to the network.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import msgspec

from chain.types.inference import seed_commitment


class SeedRecord(msgspec.Struct, frozen=True):
    epoch: int
    participant: str
    seed: bytes
    commitment: bytes
    # The outbox message id of the MsgSubmitSeed carrying `commitment`, once handed over.
    message_id: int | None = None


class SeedStore:
    def __init__(self, directory: Path | str) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _path(self, epoch: int) -> Path:
        return self.dir / f"{epoch}.json"

    def get(self, epoch: int) -> SeedRecord | None:
        try:
            return msgspec.json.decode(self._path(epoch).read_bytes(), type=SeedRecord)
        except FileNotFoundError:
            return None

    def get_or_create(self, epoch: int, participant: str) -> SeedRecord:
        """The seed of `epoch`, drawn and written durably on the first call."""
        record = self.get(epoch)
        if record is None:
            seed = secrets.token_bytes(32)
            record = SeedRecord(epoch, participant, seed,
                                seed_commitment(participant, epoch, seed))
            self._write(record)
        return record

    def mark_submitted(self, epoch: int, message_id: int) -> SeedRecord:
        record = self.get(epoch)
        if record is None:
            raise KeyError(f"no seed for epoch {epoch}")
        record = msgspec.structs.replace(record, message_id=message_id)
        self._write(record)
        return record

    def _write(self, record: SeedRecord) -> None:
        path = self._path(record.epoch)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, msgspec.json.encode(record))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dir_fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
