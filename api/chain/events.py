"""`EventFollower`: every committed block's events, each handed to the API node once, in height
order, across disconnects and restarts (DESIGN.md section 6; the reference loses the events of
any gap, gonka-api-node.md section 10).

The follower keeps the last *processed* height in a small SQLite file (api.durable).
A block counts as processed when the consumer says so (`mark_processed(height)`), or when it asks
the iterator for the next block after it:

    follower = EventFollower(rpc, home / "events.db", types=["inference_finished"])
    async with follower.blocks() as blocks:
        async for block in blocks:          # asking for the next one marks this one processed
            await handle(block.height, block.events)

Within one run, a dropped stream is resumed at the height after the last block handed out (the
RPC client reconnects with backoff, and this follower starts a new stream if the client gives
up), so no block is handed out twice. After a restart it resumes after the last processed
height: a block that was handed out but not marked comes again, since its handling may not have
finished. On the very first run (no state yet) it starts at `start_height`, or at the chain's
next height, and records that start at once, so that a restart before the first block misses
nothing.

This module must never skip a height, hand out a height twice in one run, or mark a height
processed before the consumer is done with it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import msgspec
import trio

from api.durable import open_durable
from chain.rpc.client import RpcClient, RpcError
from chain.rpc.schema import EventFrame

log = logging.getLogger(__name__)


class FollowerError(Exception):
    """The follower cannot go on: the node refuses the stream or no longer stores a height it
    still has to hand out (the operator must decide how to catch up)."""


class HeightGap(FollowerError):
    def __init__(self, height: int, reason: str) -> None:
        super().__init__(f"height {height} cannot be read from the node ({reason}); its events "
                         "would be lost")
        self.height = height


class CursorStore:
    """The last processed height per follower name, durable."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._db = open_durable(self.path, "CREATE TABLE IF NOT EXISTS cursors "
                                           "(name TEXT PRIMARY KEY, height INTEGER NOT NULL);")
        self._lock = threading.Lock()

    def get(self, name: str) -> int | None:
        with self._lock:
            row = self._db.execute("SELECT height FROM cursors WHERE name = ?",
                                   (name,)).fetchone()
        return None if row is None else row[0]

    def advance(self, name: str, height: int) -> int:
        """Set the cursor to `height` unless it is already there or beyond; the new value."""
        with self._lock:
            self._db.execute(
                "INSERT INTO cursors VALUES (?, ?) ON CONFLICT (name) DO UPDATE "
                "SET height = excluded.height WHERE excluded.height > cursors.height",
                (name, height))
            return self._db.execute("SELECT height FROM cursors WHERE name = ?",
                                    (name,)).fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class EventFollower:
    def __init__(self, rpc: RpcClient, state_path: Path | str, types: Iterable[str] = (), *,
                 name: str = "events", start_height: int | None = None,
                 retry_delay: float = 0.05, max_retry_delay: float = 5.0) -> None:
        if start_height is not None and start_height < 1:
            raise ValueError(f"start_height must be >= 1, got {start_height}")
        self.rpc = rpc
        self.types = tuple(types)
        self.name = name
        self._store = CursorStore(state_path)
        self._start_height = start_height
        self._retry_delay = retry_delay
        self._max_retry_delay = max_retry_delay

    @property
    def last_processed(self) -> int | None:
        """The last height marked processed (0: none yet, from height 1), None before the
        first run has chosen its start."""
        return self._store.get(self.name)

    async def mark_processed(self, height: int) -> None:
        """Every height up to `height` is handled; a restart resumes after it. Idempotent;
        never moves the cursor back."""
        self._store.advance(self.name, height)

    def close(self) -> None:
        self._store.close()

    @asynccontextmanager
    async def blocks(self) -> AsyncGenerator[BlockIterator, None]:
        """The blocks to handle, from the one after the last processed on."""
        async with self._frames() as frames:
            yield BlockIterator(self, frames)

    async def _first_height(self) -> int:
        last = self._store.get(self.name)
        if last is not None:
            return last + 1
        start = self._start_height
        delay = self._retry_delay
        while start is None:
            try:
                start = (await self.rpc.status()).latest_height + 1
            except (httpx.HTTPError, OSError, msgspec.DecodeError, RpcError) as e:
                log.warning("event follower: no status yet (%s); retrying in %.2f s", e, delay)
                await trio.sleep(delay)
                delay = min(delay * 2, self._max_retry_delay)
        # Durable before any block is handed out: a restart must not start later than this.
        self._store.advance(self.name, start - 1)
        return start

    @trio.as_safe_channel
    async def _frames(self) -> AsyncGenerator[EventFrame, None]:
        next_height = await self._first_height()
        delay = self._retry_delay
        while True:
            try:
                async with self.rpc.events(next_height, self.types,
                                           retry_delay=self._retry_delay,
                                           max_retry_delay=self._max_retry_delay) as frames:
                    async for frame in frames:
                        if frame.height != next_height:
                            raise HeightGap(next_height, f"the stream sent {frame.height}")
                        next_height += 1
                        delay = self._retry_delay
                        yield frame
            except RpcError as e:
                if e.code == "height_unavailable":
                    raise HeightGap(next_height, e.message) from None
                if e.status == 400:
                    raise FollowerError(f"the node refuses the event stream: {e.message}") from e
                log.warning("event follower: stream ended at height %d (%s)", next_height, e)
            except (httpx.HTTPError, OSError, msgspec.DecodeError) as e:
                log.warning("event follower: stream ended at height %d (%s)", next_height, e)
            # Pacing a reconnect, not waiting for a state.
            await trio.sleep(delay)
            delay = min(delay * 2, self._max_retry_delay)


class BlockIterator:
    """Hands out one block at a time; asking for the next marks the previous one processed."""

    def __init__(self, follower: EventFollower, frames: trio.abc.ReceiveChannel[EventFrame]
                 ) -> None:
        self._follower = follower
        self._frames = frames
        self._handed_out: int | None = None

    def __aiter__(self) -> AsyncIterator[EventFrame]:
        return self

    async def __anext__(self) -> EventFrame:
        try:
            return await self.next()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    async def next(self) -> EventFrame:
        """The next block, after marking the one handed out before it processed. Raises
        trio.EndOfChannel when the stream ended; leaving `blocks()` then raises why."""
        if self._handed_out is not None:
            await self._follower.mark_processed(self._handed_out)
            self._handed_out = None
        frame = await self._frames.receive()
        self._handed_out = frame.height
        return frame
