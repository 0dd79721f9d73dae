"""The few file operations the WAL and the sign state need, on a real disk or a simulated one.

`DiskFiles` appends through open handles, fsyncs on `sync`, and replaces files atomically (write
a temporary file, fsync it, rename it over the old one, fsync the folder). `MemoryFiles` is the
deterministic simulation's disk: what was synced survives `crash()`, what was only appended is
lost, or, with a random generator, cut at a random byte (a torn write).

Only the WAL and the sign state use this; it must never grow into a general file layer.
"""

from __future__ import annotations

import os
import random
from typing import Protocol


class Files(Protocol):
    def read(self, path: str) -> bytes | None:
        """The whole file, or None if it does not exist."""
        ...

    def append(self, path: str, data: bytes) -> None: ...

    def sync(self, path: str) -> None:
        """Everything appended to `path` so far is durable when this returns."""
        ...

    def write_atomic(self, path: str, data: bytes) -> None:
        """Replace `path` with `data`, all or nothing, durable when this returns."""
        ...

    def truncate(self, path: str, size: int) -> None:
        """Cut `path` to `size` bytes, durably."""
        ...


class DiskFiles:
    """Files on the real file system."""

    def __init__(self) -> None:
        self._handles: dict[str, object] = {}

    def read(self, path: str) -> bytes | None:
        self._flush(path)
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def append(self, path: str, data: bytes) -> None:
        handle = self._handles.get(path)
        if handle is None:
            handle = self._handles[path] = open(path, "ab")  # noqa: SIM115 - kept open
        handle.write(data)  # type: ignore[attr-defined]

    def sync(self, path: str) -> None:
        handle = self._handles.get(path)
        if handle is not None:
            handle.flush()  # type: ignore[attr-defined]
            os.fsync(handle.fileno())  # type: ignore[attr-defined]

    def write_atomic(self, path: str, data: bytes) -> None:
        self.close(path)
        tmp = f"{path}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(os.path.dirname(os.path.abspath(path)))

    def truncate(self, path: str, size: int) -> None:
        self.close(path)
        with open(path, "r+b") as f:
            f.truncate(size)
            f.flush()
            os.fsync(f.fileno())

    def close(self, path: str | None = None) -> None:
        """Close the append handle of `path` (all of them with None)."""
        for p in [path] if path is not None else list(self._handles):
            handle = self._handles.pop(p, None)
            if handle is not None:
                handle.close()  # type: ignore[attr-defined]

    def _flush(self, path: str) -> None:
        handle = self._handles.get(path)
        if handle is not None:
            handle.flush()  # type: ignore[attr-defined]


def _fsync_dir(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class MemoryFiles:
    """A simulated disk: durable bytes and not-yet-synced bytes per file."""

    def __init__(self) -> None:
        self._durable: dict[str, bytes] = {}
        self._pending: dict[str, bytearray] = {}

    def read(self, path: str) -> bytes | None:
        if path not in self._durable and path not in self._pending:
            return None
        return self._durable.get(path, b"") + bytes(self._pending.get(path, b""))

    def append(self, path: str, data: bytes) -> None:
        self._pending.setdefault(path, bytearray()).extend(data)

    def sync(self, path: str) -> None:
        pending = self._pending.pop(path, None)
        self._durable[path] = self._durable.get(path, b"") + bytes(pending or b"")

    def write_atomic(self, path: str, data: bytes) -> None:
        self._pending.pop(path, None)
        self._durable[path] = bytes(data)

    def truncate(self, path: str, size: int) -> None:
        whole = self.read(path) or b""
        self._pending.pop(path, None)
        self._durable[path] = whole[:size]

    def crash(self, rng: random.Random | None = None) -> None:
        """Power loss: unsynced bytes vanish; with `rng`, a random prefix of them survives."""
        for path, pending in self._pending.items():
            if rng is not None and pending:
                kept = bytes(pending[:rng.randrange(len(pending) + 1)])
                self._durable[path] = self._durable.get(path, b"") + kept
            else:
                self._durable.setdefault(path, b"")
        self._pending.clear()
