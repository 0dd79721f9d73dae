"""RpcClient against a served MemoryNodeView: typed calls, errors, event streams that resume
after disconnects; and the server stopping cleanly when its nursery is cancelled."""

from __future__ import annotations

import httpx
import msgspec
import pytest
import trio
import trio.testing

from chain.app.abci import Attribute, CheckTxResult, Event, QueryResult
from chain.rpc import RpcClient, RpcConfig, RpcError, serve_rpc
from chain.types import tx_hash
from tests.chain.test_rpc_events import BIG, chain_of
from tests.chain.test_rpc_http import served, tx_raw


class Balance(msgspec.Struct):
    amount: int


async def test_typed_calls_round_trip():
    # Given a chain at height 2 and an app answering one query
    view = chain_of(2)
    view.query_handler = lambda path, params, height: QueryResult(
        value=msgspec.json.encode({"amount": int(params["n"])}), height=2)
    refused = tx_raw(9)
    view.verdicts[tx_hash(refused)] = CheckTxResult(code=101, log="insufficient funds")
    async with served(view) as url, RpcClient(url) as client:
        # When a client uses each call
        status = await client.status()
        block = await client.block(2)
        missing = await client.block(3)
        commit = await client.commit(1)
        raw = view.blocks[2].txs[0]
        by_bytes = await client.tx(tx_hash(raw))
        by_hex = await client.tx(tx_hash(raw).hex())
        unknown = await client.tx(bytes(32))
        accepted = await client.broadcast(tx_raw(8))
        rejected = await client.broadcast(refused, "sync")
        balance = await client.query("bank/balance", as_type=Balance, n="7")
        raw_view = await client.query_view("bank/balance", height=1, n="3")

    # Then each answer is decoded into its schema type
    assert status.latest_height == 2
    assert block is not None and block.hash == view.blocks[2].hash.hex()
    assert block.txs == view.blocks[2].txs
    assert missing is None
    assert commit is not None and commit.height == 1
    assert by_bytes == by_hex and by_bytes is not None and by_bytes.tx == raw
    assert unknown is None
    assert accepted.accepted and accepted.hash == tx_hash(tx_raw(8)).hex()
    assert (rejected.accepted, rejected.code, rejected.log) == (False, 101, "insufficient funds")
    assert balance == Balance(7)
    assert raw_view.height == 2 and msgspec.json.decode(raw_view.value) == {"amount": 3}


async def test_refusals_raise_rpc_error_with_the_server_slug():
    view = chain_of(1)
    async with served(view) as url, RpcClient(url) as client:
        with pytest.raises(RpcError) as failed_query:
            await client.query("unknown/path")
        with pytest.raises(RpcError) as bad_tx:
            await client.broadcast(b"\x01\x02")
    assert (failed_query.value.status, failed_query.value.code) == (400, "query_failed")
    assert failed_query.value.app_code == 1
    assert (bad_tx.value.status, bad_tx.value.code) == (400, "invalid_tx")


async def test_event_stream_resumes_after_the_server_restarts():
    # Given a chain at height 3 served on some port, and a client following it from height 1
    view = chain_of(3)
    heights: list[int] = []
    async with trio.open_nursery() as outer:
        first = trio.CancelScope()

        async def first_server(task_status):
            with first:
                await serve_rpc(view, "127.0.0.1", 0, task_status=task_status)

        url = await outer.start(first_server)
        port = int(url.rsplit(":", 1)[1])
        async with RpcClient(url) as client, client.events(1) as frames:
            for _ in range(3):
                heights.append((await frames.receive()).height)
            # When the server goes away, blocks 4 and 5 commit meanwhile, and it comes back
            first.cancel()
            await trio.testing.wait_all_tasks_blocked()
            view.commit_block([])
            view.commit_block([tx_raw(5)])
            async with served(view, port=port):
                for _ in range(2):
                    heights.append((await frames.receive()).height)
                # and block 6 commits live
                await view.wait_for_waiters(1)
                view.commit_block([])
                heights.append((await frames.receive()).height)

    # Then the client saw every height once, in order, across the restart
    assert heights == [1, 2, 3, 4, 5, 6]


async def test_slow_consumer_is_dropped_by_the_server_and_resumes_without_loss():
    # Given a client following a live chain with a tiny server queue, and a consumer that stalls
    view = chain_of(1)
    config = RpcConfig(event_queue_size=2, close_timeout_s=60)
    heights: list[int] = []
    async with served(view, config) as url, RpcClient(url) as client, \
            client.events(1, retry_delay=0.5) as frames:
        # (the stream connects when first read)
        heights.append((await frames.receive()).height)
        await view.wait_for_waiters(1)
        # When big blocks commit until the server drops the stalled subscriber
        for _ in range(2000):
            view.commit_block([], events=[Event("big", (Attribute("blob", BIG),))])
            await trio.testing.wait_all_tasks_blocked()
            if view.waiters == 0:
                break
        last = view.latest_height()
        # and the consumer then reads on, while two more blocks commit live
        while len(heights) < last:
            heights.append((await frames.receive()).height)
        await view.wait_for_waiters(1)
        view.commit_block([])
        view.commit_block([])
        heights.append((await frames.receive()).height)
        heights.append((await frames.receive()).height)

    # Then the client reconnected (some height was read twice from the store) and the consumer
    # saw every height exactly once, in order
    assert len(view.events_calls) > len(set(view.events_calls))
    assert heights == list(range(1, last + 3))


async def test_event_stream_refusals_raise():
    view = chain_of(2)
    del view.block_events[1]
    async with served(view) as url, RpcClient(url) as client:
        with pytest.raises(RpcError) as bad:
            async with client.events(0) as frames:
                async for _ in frames:
                    pass
        with pytest.raises(RpcError) as gone:
            async with client.events(1) as frames:
                async for _ in frames:
                    pass
    assert (bad.value.status, bad.value.code) == (400, "bad_request")
    assert (gone.value.status, gone.value.code) == (404, "height_unavailable")


async def test_cancelling_the_nursery_stops_the_server_with_open_connections():
    # Given a server with a live subscriber and a broadcast waiting for a block
    view = chain_of(1)
    answered = []
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_rpc, view, "127.0.0.1", 0)
        client = RpcClient(url)

        async def follow() -> None:
            async with client.events() as frames:
                async for _ in frames:
                    pass

        async def wait_for_commit() -> None:
            answered.append(await client.broadcast(tx_raw(1), "commit"))

        nursery.start_soon(follow)
        nursery.start_soon(wait_for_commit)
        await view.wait_for_waiters(1)
        await view.wait_for_pending(1)
        # When the nursery is cancelled
        nursery.cancel_scope.cancel()

    # Then everything in it ended, and the port no longer answers
    assert answered == []
    await client.aclose()
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(url + "/status")


async def test_shutdown_trigger_stops_the_server_gracefully():
    # Given a server with a shutdown trigger
    view = chain_of(1)
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        url = await nursery.start(
            lambda task_status: serve_rpc(view, "127.0.0.1", 0, shutdown_trigger=stop.wait,
                                          task_status=task_status))
        async with RpcClient(url) as client:
            assert (await client.status()).latest_height == 1
        # When the trigger fires
        stop.set()
    # Then serve_rpc returns by itself (the nursery closed without being cancelled)
    assert not nursery.cancel_scope.cancel_called
