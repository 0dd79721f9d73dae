"""The consensus write-ahead log: every event fed to the core, so that a restart can rebuild it.

Record format: a 4-byte big-endian payload length, the 32-byte BLAKE3 of the payload, then the
payload, the MessagePack of one `WalRecord` (an event or an `EndHeight` marker).

One file per node, rotated per height: when a block is committed, `end_height(h)` atomically
replaces the file with one holding the `EndHeight(h)` marker, since everything before it is in the
block store now, followed by the events that carry state over the height boundary (the evidence
still waiting for a block: a replayed proposal must be assembled from the same evidence). `replay`
reads the events after the last marker.

A crash can leave the last record torn (cut short, or garbage where it should end). `replay`
truncates such a tail and goes on; a bad record with valid data after it is real corruption and
raises `WalCorrupt` naming its offset. Writes are buffered; `write_sync`/`flush_sync` make them
durable (the driver calls it before any own vote or proposal leaves the node).

The WAL never interprets what it stores: deciding what to replay into whom is the driver's job.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import msgspec

from chain.consensus.events import EndHeight, Event, WalRecord
from chain.consensus.storage import DiskFiles, Files
from chain.crypto.hashing import blake3_256

HEADER = struct.Struct(">I32s")
# The largest record: a 16 MiB block with its proposal and a margin.
MAX_RECORD_BYTES = 20 << 20

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(WalRecord)


class WalCorrupt(Exception):
    """A record before the tail of the WAL is damaged; `offset` is where it starts."""

    def __init__(self, path: str, offset: int, reason: str) -> None:
        super().__init__(f"{path}: corrupt WAL record at byte {offset}: {reason}")
        self.path = path
        self.offset = offset
        self.reason = reason


def frame(record: WalRecord) -> bytes:
    payload = _encoder.encode(record)
    return HEADER.pack(len(payload), blake3_256(payload)) + payload


class WAL:
    """Appends records to one file through `files` (the real disk by default)."""

    def __init__(self, path: str, files: Files | None = None) -> None:
        self.path = str(path)
        self.files = files or DiskFiles()

    def write(self, record: WalRecord) -> None:
        """Append `record` (buffered: durable at the next sync)."""
        self.files.append(self.path, frame(record))

    def write_sync(self, record: WalRecord) -> None:
        """Append `record` and make it and everything before it durable."""
        self.write(record)
        self.flush_sync()

    def flush_sync(self) -> None:
        self.files.sync(self.path)

    def end_height(self, height: int, carry: Sequence[Event] = ()) -> None:
        """`height` is committed: restart the file with its EndHeight marker followed by `carry`
        (state the next height starts with that no block holds), atomically and durably."""
        self.files.write_atomic(
            self.path, b"".join([frame(EndHeight(height=height)), *map(frame, carry)]))


@dataclass(frozen=True)
class WalContents:
    # The height of the last EndHeight marker (None if the file has none).
    end_height: int | None
    # The events after that marker, in order.
    events: tuple[Event, ...]
    # Bytes of a torn tail that were cut off (0 if the file ended cleanly).
    truncated: int


def read_wal(path: str, files: Files | None = None, *, repair: bool = True) -> WalContents:
    """Parse the WAL at `path`: a torn tail is cut off (on disk too, when `repair`), a damaged
    record before the tail raises WalCorrupt. A missing file reads as empty."""
    files = files or DiskFiles()
    raw = files.read(str(path)) or b""
    records: list[WalRecord] = []
    offset, end = 0, len(raw)
    while offset < end:
        problem = None
        if end - offset < HEADER.size:
            problem = "truncated header"
        else:
            length, digest = HEADER.unpack_from(raw, offset)
            start, stop = offset + HEADER.size, offset + HEADER.size + length
            if length > MAX_RECORD_BYTES:
                problem = f"length {length} exceeds {MAX_RECORD_BYTES}"
            elif stop > end:
                problem = "truncated payload"
            elif blake3_256(raw[start:stop]) != digest:
                problem = "checksum mismatch"
                if stop < end:
                    raise WalCorrupt(str(path), offset, problem)
        if problem is not None:
            # Nothing complete follows: the write of this last record was cut short.
            if repair:
                files.truncate(str(path), offset)
            return _contents(records, end - offset)
        try:
            records.append(_decoder.decode(raw[start:stop]))
        except msgspec.MsgspecError as e:
            raise WalCorrupt(str(path), offset, f"undecodable record: {e}") from e
        offset = stop
    return _contents(records, 0)


def _contents(records: list[WalRecord], truncated: int) -> WalContents:
    end_height, events = None, []
    for r in records:
        if isinstance(r, EndHeight):
            end_height, events = r.height, []
        else:
            events.append(r)
    return WalContents(end_height=end_height, events=tuple(events), truncated=truncated)


def replay(path: str, files: Files | None = None) -> Iterator[Event]:
    """The events after the last EndHeight marker, a torn tail repaired first."""
    return iter(read_wal(path, files).events)
