"""Turns ScheduleTimeout effects into TimeoutFired events, on trio's clock (CometBFT's ticker).

Only the latest scheduled timeout matters: scheduling replaces the pending one, and a request for
an earlier (height, round, step) than the last one scheduled is ignored, as CometBFT's
timeoutTicker does, since the core only ever moves forward. When the timeout expires, a
TimeoutFired (stamped with `now_ns()`) is sent into the channel the node's consensus loop reads.

Run it in the nursery of the node that owns it: `nursery.start(ticker.run)`. It must never call
the core itself; it only produces events.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import trio

from chain.consensus.events import ScheduleTimeout, TimeoutFired


class TimeoutTicker:
    def __init__(self, send_channel: trio.MemorySendChannel[TimeoutFired],
                 now_ns: Callable[[], int] = time.time_ns) -> None:
        self._send = send_channel
        self._now_ns = now_ns
        self._pending: ScheduleTimeout | None = None
        self._deadline = 0.0
        self._last: tuple[int, int, int] | None = None
        self._changed = trio.Event()

    def schedule(self, timeout: ScheduleTimeout) -> None:
        """Replace the pending timeout with `timeout` (ignored if it is for an earlier step)."""
        hrs = (timeout.height, timeout.round, int(timeout.step))
        if self._last is not None and hrs < self._last:
            return
        self._last = hrs
        self._pending = timeout
        self._deadline = trio.current_time() + timeout.duration_ms / 1000
        self._changed.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        task_status.started()
        while True:
            if self._pending is None:
                await self._changed.wait()
                self._changed = trio.Event()
                continue
            pending = self._pending
            with trio.move_on_at(self._deadline):
                await self._changed.wait()
            if self._changed.is_set():
                # Rescheduled while waiting: start over with the new deadline.
                self._changed = trio.Event()
                continue
            self._pending = None
            await self._send.send(TimeoutFired(height=pending.height, round=pending.round,
                                               step=pending.step, now_ns=self._now_ns()))
