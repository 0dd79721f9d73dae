"""The /events WebSocket: replay from a height, then live heights, no gap and no duplicate;
filters; refused parameters; missing heights; slow subscribers disconnected."""

from __future__ import annotations

import msgspec
import pytest
import trio
import trio.testing
from trio_websocket import ConnectionClosed, ConnectionRejected, open_websocket_url

from chain.app.abci import Attribute, Event, TxResult
from chain.rpc import CLOSE_HEIGHT_UNAVAILABLE, CLOSE_SLOW_CLIENT, RpcConfig
from chain.rpc.schema import EventFrame
from chain.rpc.testing import MemoryNodeView
from chain.types import tx_hash
from tests.chain.test_rpc_http import served, tx_raw


def ws_url(url: str, query: str) -> str:
    return url.replace("http://", "ws://") + "/events?" + query


async def next_frame(ws) -> EventFrame:
    return msgspec.json.decode(await ws.get_message(), type=EventFrame)


def chain_of(n: int) -> MemoryNodeView:
    view = MemoryNodeView()
    for i in range(n):
        view.commit_block([tx_raw(i)], events=[Event("block", (Attribute("n", str(i + 1)),))])
    return view


async def test_replay_then_live_in_order():
    # Given a chain at height 3
    view = chain_of(3)
    async with served(view) as url, open_websocket_url(ws_url(url, "from_height=2")) as ws:
        # When a subscriber asks from height 2 and then block 4 commits
        replayed = [await next_frame(ws), await next_frame(ws)]
        await view.wait_for_waiters(1)
        view.commit_block([tx_raw(40)])
        live = await next_frame(ws)

    # Then it gets 2 and 3 from the store, then 4 live, each with its block and tx events
    assert [f.height for f in replayed + [live]] == [2, 3, 4]
    f2 = replayed[0]
    assert f2.block_hash == view.blocks[2].hash.hex()
    assert f2.time_ns == view.blocks[2].header.time_ns
    assert [(e.tx_hash, e.type) for e in f2.events] == [
        (None, "block"), (tx_hash(tx_raw(1)).hex(), "tx")]
    assert f2.events[0].attributes[0].value == "2"
    assert [e.tx_hash for e in live.events] == [tx_hash(tx_raw(40)).hex()]


async def test_blocks_committed_during_the_replay_are_neither_lost_nor_repeated():
    # Given a chain at height 5 whose store pauses when the replay reaches height 3
    view = chain_of(5)
    hold = view.hold_events(3)
    async with served(view) as url, open_websocket_url(ws_url(url, "from_height=1")) as ws:
        await hold.reached.wait()
        # When blocks 6 and 7 commit while the replay is in the middle
        view.commit_block([tx_raw(60)])
        view.commit_block([])
        hold.release.set()
        frames = [await next_frame(ws) for _ in range(7)]
        # and block 8 commits once the subscriber is live
        await view.wait_for_waiters(1)
        view.commit_block([])
        frames.append(await next_frame(ws))

    # Then every height arrives exactly once, in order
    assert [f.height for f in frames] == list(range(1, 9))


async def test_type_filter_keeps_matching_events_but_every_height():
    # Given heights with block events "block" and tx events "tx"
    view = chain_of(2)
    async with served(view) as url, \
            open_websocket_url(ws_url(url, "from_height=1&types=block,absent")) as ws:
        frames = [await next_frame(ws), await next_frame(ws)]

    # Then only "block" events pass, and each height still has its frame
    assert [f.height for f in frames] == [1, 2]
    assert [[e.type for e in f.events] for f in frames] == [["block"], ["block"]]


async def test_default_start_is_the_next_height():
    # Given a chain at height 2
    view = chain_of(2)
    async with served(view) as url, open_websocket_url(ws_url(url, "")) as ws:
        # When a subscriber gives no start and block 3 commits
        await view.wait_for_waiters(1)
        view.commit_block([])
        frame = await next_frame(ws)

    # Then it hears only of block 3
    assert frame.height == 3


async def test_subscriber_ahead_of_the_chain_waits_for_its_height():
    view = chain_of(1)
    async with served(view) as url, open_websocket_url(ws_url(url, "from_height=3")) as ws:
        await view.wait_for_waiters(1)
        view.commit_block([])
        view.commit_block([])
        frame = await next_frame(ws)
    assert frame.height == 3


@pytest.mark.parametrize("query", ["from_height=0", "from_height=abc", "from_height=-2",
                                   "types=" + ",".join(f"t{i}" for i in range(70))])
async def test_bad_parameters_refuse_the_handshake_with_400(query):
    view = chain_of(1)
    async with served(view) as url:
        with pytest.raises(ConnectionRejected) as info:
            async with open_websocket_url(ws_url(url, query)):
                pass
    assert info.value.status_code == 400
    assert msgspec.json.decode(info.value.body)["error"]["code"] == "bad_request"


async def test_missing_height_closes_with_its_reason():
    # Given a node that no longer stores height 2's events
    view = chain_of(3)
    del view.block_events[2]
    async with served(view) as url, open_websocket_url(ws_url(url, "from_height=1")) as ws:
        first = await next_frame(ws)
        # When the replay reaches it
        # Then the frames before it arrive and the stream closes naming the height
        with pytest.raises(ConnectionClosed) as info:
            await ws.get_message()
    assert first.height == 1
    assert info.value.reason.code == CLOSE_HEIGHT_UNAVAILABLE
    assert "height 2" in info.value.reason.reason


BIG = "x" * 200_000


async def test_slow_live_subscriber_is_disconnected_not_waited_for():
    # Given a live subscriber that stops reading, and big blocks
    view = chain_of(1)
    config = RpcConfig(event_queue_size=2, close_timeout_s=60)
    async with served(view, config) as url, \
            open_websocket_url(ws_url(url, "from_height=2"), max_message_size=1 << 20) as ws:
        await view.wait_for_waiters(1)
        # When blocks keep committing (the node never waits: commit_block returns at once)
        for _ in range(2000):
            view.commit_block([], events=[Event("big", (Attribute("blob", BIG),))])
            await trio.testing.wait_all_tasks_blocked()
            if view.waiters == 0:
                break
        kicked_at = view.latest_height()
        # Then the server drops the subscriber: once it reads again it finds consecutive frames
        # and then a close that says why
        heights = []
        with pytest.raises(ConnectionClosed) as info:
            while True:
                heights.append((await next_frame(ws)).height)
    assert view.waiters == 0
    assert info.value.reason.code == CLOSE_SLOW_CLIENT
    assert "too slow" in info.value.reason.reason
    assert heights == list(range(2, 2 + len(heights)))
    assert heights[-1] < kicked_at


async def test_replay_waits_for_a_slow_reader_instead_of_dropping_it():
    # Given a long history of big blocks and a tiny queue
    view = MemoryNodeView()
    for _ in range(60):
        view.commit_block([], results=[],
                          events=[Event("big", (Attribute("blob", BIG),))])
    config = RpcConfig(event_queue_size=1)
    async with served(view, config) as url, \
            open_websocket_url(ws_url(url, "from_height=1"), max_message_size=1 << 20) as ws:
        # When the subscriber reads the replay at its own pace
        heights = [(await next_frame(ws)).height for _ in range(60)]

    # Then it gets all of it: replay is paced by the reader, not cut off
    assert heights == list(range(1, 61))


async def test_tx_events_name_their_tx():
    view = MemoryNodeView()
    a, b = tx_raw(1), tx_raw(2)
    view.commit_block([a, b], results=[TxResult(events=(Event("transfer"),)),
                                       TxResult(code=101, events=())])
    async with served(view) as url, \
            open_websocket_url(ws_url(url, "from_height=1&types=transfer")) as ws:
        frame = await next_frame(ws)
    assert [(e.tx_hash, e.type) for e in frame.events] == [(tx_hash(a).hex(), "transfer")]
