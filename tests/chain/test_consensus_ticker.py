"""The timeout ticker on trio's virtual clock: it fires the latest timeout, once, on time."""

from __future__ import annotations

import trio

from chain.consensus.events import ScheduleTimeout, Step
from chain.consensus.ticker import TimeoutTicker


def _now_ns() -> int:
    return int(trio.current_time() * 1e9)


async def _ticker(nursery):
    send, receive = trio.open_memory_channel(4)
    ticker = TimeoutTicker(send, now_ns=_now_ns)
    await nursery.start(ticker.run)
    return ticker, receive


async def _nothing_more(receive, seconds=60.0) -> bool:
    with trio.move_on_after(seconds):
        await receive.receive()
        return False
    return True


async def test_a_timeout_fires_after_its_duration(autojump_clock):
    async with trio.open_nursery() as nursery:
        ticker, receive = await _ticker(nursery)
        start = trio.current_time()
        ticker.schedule(ScheduleTimeout(height=3, round=1, step=Step.PREVOTE, duration_ms=1500))
        fired = await receive.receive()
        assert (fired.height, fired.round, fired.step) == (3, 1, Step.PREVOTE)
        assert abs(trio.current_time() - start - 1.5) < 1e-6
        assert fired.now_ns == _now_ns()
        assert await _nothing_more(receive)
        nursery.cancel_scope.cancel()


async def test_a_new_timeout_replaces_the_pending_one(autojump_clock):
    async with trio.open_nursery() as nursery:
        ticker, receive = await _ticker(nursery)
        start = trio.current_time()
        ticker.schedule(ScheduleTimeout(height=1, round=0, step=Step.PROPOSE, duration_ms=1000))
        await trio.sleep(0.1)
        ticker.schedule(ScheduleTimeout(height=1, round=0, step=Step.PREVOTE, duration_ms=200))
        fired = await receive.receive()
        # Only the latest fires, 200 ms after it was scheduled; the first never does.
        assert fired.step == Step.PREVOTE
        assert abs(trio.current_time() - start - 0.3) < 1e-6
        assert await _nothing_more(receive)
        nursery.cancel_scope.cancel()


async def test_a_timeout_for_an_earlier_step_is_ignored(autojump_clock):
    async with trio.open_nursery() as nursery:
        ticker, receive = await _ticker(nursery)
        ticker.schedule(ScheduleTimeout(height=2, round=1, step=Step.PROPOSE, duration_ms=500))
        ticker.schedule(ScheduleTimeout(height=2, round=0, step=Step.PRECOMMIT, duration_ms=10))
        ticker.schedule(ScheduleTimeout(height=1, round=9, step=Step.PRECOMMIT, duration_ms=10))
        fired = await receive.receive()
        assert (fired.height, fired.round, fired.step) == (2, 1, Step.PROPOSE)
        # The next height's first timeout (step NEW_HEIGHT, the lowest) is accepted.
        ticker.schedule(ScheduleTimeout(height=3, round=0, step=Step.NEW_HEIGHT, duration_ms=5))
        fired = await receive.receive()
        assert (fired.height, fired.step) == (3, Step.NEW_HEIGHT)
        nursery.cancel_scope.cancel()
