"""The chain client's event follower: every height once, in order, across a dropped stream and
across restarts; a restart resumes after the last *processed* height."""

from __future__ import annotations

import pytest
import trio

from api.chain import EventFollower, HeightGap
from chain.app.abci import Attribute, Event
from chain.rpc import RpcClient, serve_rpc
from chain.rpc.testing import MemoryNodeView
from tests.chain.test_rpc_http import served


def commit(view: MemoryNodeView, n: int = 1) -> None:
    for _ in range(n):
        h = view.latest_height() + 1
        view.commit_block([], events=[Event("inference_finished", (Attribute("h", str(h)),)),
                                      Event("noise")])


async def test_resumes_after_a_disconnect_and_after_restarts_without_gaps_or_repeats(tmp_path):
    state = tmp_path / "events.db"
    view = MemoryNodeView()
    commit(view, 3)
    seen: list[int] = []
    async with trio.open_nursery() as outer:
        first_server = trio.CancelScope()

        async def serve_first(task_status):
            with first_server:
                await serve_rpc(view, "127.0.0.1", 0, task_status=task_status)

        url = await outer.start(serve_first)
        port = int(url.rsplit(":", 1)[1])
        async with RpcClient(url) as rpc:
            # Given a follower from height 1 that handled blocks 1-3
            follower = EventFollower(rpc, state, types=["inference_finished"], start_height=1,
                                     retry_delay=0.01, max_retry_delay=0.05)
            async with follower.blocks() as blocks:
                for _ in range(3):
                    block = await blocks.next()
                    seen.append(block.height)
                    assert [e.type for e in block.events] == ["inference_finished"]
                    assert block.events[0].attributes[0].value == str(block.height)
                # when the RPC goes away, blocks 4-5 commit meanwhile, and it comes back
                await view.wait_for_waiters(1)
                first_server.cancel()
                commit(view, 2)
                async with served(view, port=port):
                    seen += [(await blocks.next()).height for _ in range(2)]
                    # and block 6 is handed out but the process stops before handling it
                    await view.wait_for_waiters(1)
                    commit(view)
                    assert (await blocks.next()).height == 6
            follower.close()

            # then a restarted follower hands out 6 again (not processed), then 7
            async with served(view, port=port):
                again = EventFollower(rpc, state, types=["inference_finished"],
                                      start_height=1, retry_delay=0.01, max_retry_delay=0.05)
                assert again.last_processed == 5
                async with again.blocks() as blocks:
                    seen.append((await blocks.next()).height)
                    await again.mark_processed(6)  # handled; marked explicitly
                    await view.wait_for_waiters(1)
                    commit(view)
                    seen.append((await blocks.next()).height)
                assert again.last_processed == 6
                again.close()
        outer.cancel_scope.cancel()
    assert seen == [1, 2, 3, 4, 5, 6, 7]


async def test_a_first_start_records_its_start_so_a_restart_misses_nothing(tmp_path):
    state = tmp_path / "events.db"
    view = MemoryNodeView()
    commit(view, 2)
    async with served(view) as url, RpcClient(url) as rpc:
        # Given a follower that starts with no state at the chain's next height (3)
        first = EventFollower(rpc, state)
        async with first.blocks() as blocks:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(blocks.next)
                await view.wait_for_waiters(1)
                nursery.cancel_scope.cancel()
        first.close()
        # when it stops before any block, and blocks 3-4 commit while it is down
        commit(view, 2)
        # then the next start begins at 3, not at the new chain head
        second = EventFollower(rpc, state)
        async with second.blocks() as blocks:
            assert [(await blocks.next()).height, (await blocks.next()).height] == [3, 4]
        second.close()


async def test_a_pruned_height_is_an_error_not_a_silent_gap(tmp_path):
    view = MemoryNodeView()
    commit(view, 3)
    del view.block_events[2]  # the node no longer has height 2
    async with served(view) as url, RpcClient(url) as rpc:
        follower = EventFollower(rpc, tmp_path / "events.db", start_height=1)
        heights = []
        with pytest.raises(HeightGap) as info:
            async with follower.blocks() as blocks:
                async for block in blocks:
                    heights.append(block.height)
        assert follower.last_processed == 1
        follower.close()
    assert heights == [1] and info.value.height == 2
