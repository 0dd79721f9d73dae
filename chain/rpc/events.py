"""The /events stream: replay committed heights from a starting height, then follow new ones.

One cursor per subscriber walks the heights in order, reading each from the node
(`NodeView.events`) and never skipping or repeating one: while the cursor is behind
`latest_height()` it replays, once it has caught up it waits for the next height. Blocks that
commit during the replay are simply more replay, so there is no seam where a height could be lost
or sent twice.

Frames go to the socket through a bounded queue and a sender task. During replay the producer
waits for room (the subscriber asked for history, at its own pace). Once live, a full queue means
the subscriber cannot keep up with the chain: it is disconnected with close code
`CLOSE_SLOW_CLIENT` and a reason, and may reconnect to resume from where it stopped. Nothing a
subscriber does can hold up the node: the node never waits on a subscriber.

This module must never write to the node or hold more than `queue_size` frames per subscriber.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import NoReturn, Protocol

import trio

from chain.rpc.node_view import NodeView
from chain.rpc.schema import event_frame
from chain.types.codec import to_json

# Application close codes (4000-4999 are free for applications in RFC 6455).
CLOSE_SLOW_CLIENT = 4008  # reconnect and resume from the last height received + 1
CLOSE_HEIGHT_UNAVAILABLE = 4404  # the requested height is not (or no longer) stored: no retry


class FrameSink(Protocol):
    async def send(self, data: str) -> None: ...


class SlowClient(Exception):
    def __init__(self, height: int, queue_size: int) -> None:
        super().__init__(f"too slow: {queue_size} frames queued at height {height}; "
                         f"reconnect from your last height + 1")
        self.height = height


class HeightUnavailable(Exception):
    def __init__(self, height: int) -> None:
        super().__init__(f"height {height} is not available on this node")
        self.height = height


@dataclass
class StreamEnd:
    """Why a stream ended: the close code and reason to send, or `aborted` when the subscriber
    did not take its last frame in time and the connection can only be dropped."""

    code: int
    reason: str
    aborted: bool = False


@dataclass
class _SenderState:
    # Set when queued frames must be dropped rather than sent (the subscriber is too slow).
    discard: bool = False


async def stream_events(view: NodeView, sink: FrameSink, from_height: int,
                        types: Collection[str] = (), *, queue_size: int = 256,
                        close_timeout: float = 5.0) -> StreamEnd:
    """Send one frame per height from `from_height` on, until the stream must end.

    Runs until the subscriber is too slow or a height is missing (returns why), or until
    cancelled (the subscriber disconnected, the server stops).
    """
    if from_height < 1:
        raise ValueError(f"from_height must be >= 1, got {from_height}")
    send_ch, recv_ch = trio.open_memory_channel[str](queue_size)
    state = _SenderState()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_send_frames, sink, recv_ch, state)
        try:
            await _produce(view, from_height, frozenset(types), send_ch, queue_size)
            raise AssertionError("the producer only ends by raising")
        except SlowClient as e:
            end = StreamEnd(CLOSE_SLOW_CLIENT, str(e))
            state.discard = True
        except HeightUnavailable as e:
            end = StreamEnd(CLOSE_HEIGHT_UNAVAILABLE, str(e))
        send_ch.close()
        # The sender finishes the frame it is writing (and, unless discarding, the queue);
        # a subscriber that does not read within close_timeout loses the connection instead.
        nursery.cancel_scope.deadline = trio.current_time() + close_timeout
    if nursery.cancel_scope.cancelled_caught:
        end.aborted = True
    return end


async def _produce(view: NodeView, height: int, types: frozenset[str],
                   send_ch: trio.MemorySendChannel[str], queue_size: int) -> NoReturn:
    live = False
    while True:
        if height > view.latest_height():
            live = True
            await view.wait_for_height(height)
            continue
        block_events = await view.events(height)
        if block_events is None:
            raise HeightUnavailable(height)
        frame = to_json(event_frame(block_events, types)).decode()
        if live:
            try:
                send_ch.send_nowait(frame)
            except trio.WouldBlock:
                raise SlowClient(height, queue_size) from None
        else:
            await send_ch.send(frame)
        height += 1


async def _send_frames(sink: FrameSink, recv_ch: trio.MemoryReceiveChannel[str],
                       state: _SenderState) -> None:
    async with recv_ch:
        async for frame in recv_ch:
            if state.discard:
                return
            await sink.send(frame)
