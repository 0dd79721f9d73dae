"""Peers that lie, tamper, flood or stall: each is refused or cut off, logged, and the node goes on
serving everyone else."""

from __future__ import annotations

import logging
import random

import pytest
import trio

from chain.p2p import (
    PeerClosed,
    PeerConnected,
    PeerDisconnected,
    Received,
    StatusMsg,
    TxMsg,
    WrongChain,
    open_network,
    secret_handshake,
)
from chain.p2p.frames import LENGTH_BYTES
from tests.chain.p2p_support import (
    KEYS,
    address_at,
    address_of,
    fast_config,
    guarded,
    info_for,
    listener_from,
    next_event,
    node_kwargs,
    raw_connect,
    raw_peer,
    reserve_port,
    scripted_handshake,
    wait_closed,
    watch_logs,
)

A, B, C, RAW = KEYS[0], KEYS[1], KEYS[2], KEYS[5]


@pytest.fixture(autouse=True)
def logs():
    with watch_logs() as watcher:
        yield watcher


def dialing(*peers) -> dict:
    return node_kwargs(fast_config(persistent_peers=tuple(address_of(p) for p in peers)))


def no_event(network) -> bool:
    try:
        network.events.receive_nowait()
    except trio.WouldBlock:
        return True
    return False


async def still_serving(a, b) -> None:
    """A (connected to B) still gets a message through, and B still completes new handshakes."""
    assert a.send(B.id, StatusMsg(height=4, base_height=1))
    assert await next_event(b, Received) == Received(A.id, StatusMsg(height=4, base_height=1))
    newcomer = await raw_peer(b, KEYS[4])
    assert (await next_event(b, PeerConnected)).peer_id == KEYS[4].id
    await newcomer.aclose()
    assert (await next_event(b, PeerDisconnected)).peer_id == KEYS[4].id


# ---- refused at the handshake ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("info_kw", "words"),
    [({"chain_id": "another-chain"}, "chain id"), ({"genesis_hash": bytes(32)}, "genesis hash")],
    ids=["chain-id", "genesis"],
)
@guarded
async def test_a_peer_of_another_chain_is_refused(logs, info_kw, words):
    async with open_network(B, **node_kwargs()) as b:
        # Given a peer of another chain or genesis connecting to B,
        stream = await raw_connect(b)
        with pytest.raises(WrongChain):
            await secret_handshake(stream, RAW, info_for(RAW, **info_kw), max_frame_bytes=1 << 16)
        # then B refuses it too (its log says why) and its node never hears of it.
        await wait_closed(stream)
        assert logs.matching(f"handshake with inbound 127.0.0.1:{stream.socket.getsockname()[1]}"
                             f" failed: {words}")
        assert no_event(b) and b.peers == {}


@guarded
async def test_a_node_answering_for_another_id_is_refused(logs):
    async with open_network(B, **node_kwargs()) as b:
        # Given A told that C lives at B's address,
        impostor = address_at(C, b.listen_address[1])
        async with open_network(A, **node_kwargs(fast_config(persistent_peers=(impostor,)))) as a:
            # then A refuses whoever proves another key there, and keeps trying (C may come).
            await logs.wait_for(f"dialed {C.id.hex()} but the peer proved {B.id.hex()}")
            assert a.peers == {} and no_event(a)


@guarded
async def test_a_peer_whose_node_info_claims_another_id_is_refused(logs):
    async with open_network(B, **node_kwargs()) as b:
        # Given a peer proving RAW's key but naming C in its NodeInfo,
        stream = await raw_connect(b)
        await scripted_handshake(stream, RAW, info_for(RAW, node_id=C.id))
        # then B hangs up on it and says why.
        await wait_closed(stream)
        assert logs.matching(f"NodeInfo names {C.id.hex()} but the key proves {RAW.id.hex()}")
        assert no_event(b)


@guarded
async def test_a_peer_with_a_bad_session_signature_is_refused(logs):
    async with open_network(B, **node_kwargs()) as b:
        stream = await raw_connect(b)
        with pytest.raises(PeerClosed):
            conn = await scripted_handshake(stream, RAW, info_for(RAW), sign_other_challenge=True)
            await conn.receive_frame()
        assert logs.matching("signature of the session challenge is invalid")
        assert no_event(b)


@guarded
async def test_a_node_that_lists_itself_as_a_peer_stops_dialing_itself(logs):
    # Given A whose persistent peers include its own address and id,
    sock = await reserve_port()
    me = address_at(A, sock.getsockname()[1])
    async with open_network(A, **node_kwargs(fast_config(persistent_peers=(me,))),
                            listeners=[listener_from(sock)]) as a:
        # then the self-connection is refused and A gives up on that address, loudly.
        await logs.wait_for("is this node itself: no longer dialing it", logging.ERROR)
        assert a.peers == {} and no_event(a)


@guarded
async def test_inbound_connections_over_the_limit_are_closed_at_once():
    async with open_network(B, **node_kwargs(fast_config(max_inbound_peers=1))) as b:
        first = await raw_peer(b, RAW)
        with pytest.raises(PeerClosed):
            await raw_peer(b, KEYS[4])
        assert list(b.peers) == [RAW.id]
        await first.aclose()


# ---- cut off after the handshake -------------------------------------------------------------


async def _tampering_proxy(target: tuple[str, int], armed: list[bool], *,
                           task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Forwards TCP to `target`; while `armed[0]`, flips the last byte of one client chunk."""

    async def pump(src, dst, tamper: bool, done: trio.CancelScope) -> None:
        try:
            while data := await src.receive_some(1 << 16):
                # Past the 4-byte prefix, the last byte is ciphertext or tag, never a length.
                if tamper and armed[0] and len(data) > LENGTH_BYTES:
                    armed[0] = False
                    data = data[:-1] + bytes([data[-1] ^ 0x01])
                await dst.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        done.cancel()

    async def relay(client: trio.SocketStream) -> None:
        server = await trio.open_tcp_stream(*target)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(pump, client, server, True, nursery.cancel_scope)
                nursery.start_soon(pump, server, client, False, nursery.cancel_scope)
        finally:
            await trio.aclose_forcefully(server)
            await trio.aclose_forcefully(client)

    await trio.serve_tcp(relay, 0, host="127.0.0.1", task_status=task_status)


@guarded
async def test_a_tampered_frame_gets_the_peer_disconnected_and_it_reconnects(logs):
    async with open_network(B, **node_kwargs()) as b, trio.open_nursery() as nursery:
        # Given A reaching B through a man in the middle,
        armed = [False]
        listeners = await nursery.start(_tampering_proxy, b.listen_address, armed)
        via_proxy = address_at(B, listeners[0].socket.getsockname()[1])
        async with open_network(A, **node_kwargs(fast_config(persistent_peers=(via_proxy,)))) as a:
            await next_event(a, PeerConnected)
            await next_event(b, PeerConnected)
            # when it flips one bit of A's next frame,
            armed[0] = True
            assert a.send(B.id, TxMsg(tx=b"pay mallory"))
            # then B refuses the frame (the third of the session, after the two of the
            # handshake) and drops A, logging the bad MAC,
            gone = await next_event(b, PeerDisconnected)
            assert gone.peer_id == A.id and "bad MAC" in gone.reason
            assert logs.matching("misbehaved, disconnected: frame 2 failed authentication",
                                 logging.WARNING)
            # and A, seeing the connection end, dials again and gets a clean session.
            assert (await next_event(a, PeerDisconnected)).peer_id == B.id
            assert (await next_event(a, PeerConnected)).peer_id == B.id
            assert (await next_event(b, PeerConnected)).peer_id == A.id
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("send", "reason"),
    [
        (lambda conn: conn.stream.send_all((2**32 - 1).to_bytes(LENGTH_BYTES, "big")),
         "frame of 4294967295 bytes exceeds the limit"),
        (lambda conn: conn.stream.send_all((100).to_bytes(LENGTH_BYTES, "big")
                                           + random.Random(7).randbytes(100)), "bad MAC"),
        (lambda conn: conn.send_frame(b"\xc1 not msgpack"), "undecodable message"),
        (lambda conn: conn.send_frame(b"\x81\xa4type\xa8p2p/Nope"), "undecodable message"),
    ],
    ids=["oversized-prefix", "forged-frame", "not-msgpack", "unknown-message"],
)
@guarded
async def test_bad_frames_after_the_handshake_get_the_peer_disconnected(logs, send, reason):
    async with open_network(B, **node_kwargs()) as b, open_network(A, **dialing(b)) as a:
        await next_event(a, PeerConnected)
        await next_event(b, PeerConnected)
        raw = await raw_peer(b, RAW)
        assert (await next_event(b, PeerConnected)).peer_id == RAW.id
        # Given a peer that sends a bad frame (for the oversized prefix: no body at all),
        await send(raw)
        # then B hangs up without waiting for more, says why,
        await wait_closed(raw.stream)
        gone = await next_event(b, PeerDisconnected)
        assert gone.peer_id == RAW.id and reason in gone.reason
        assert logs.matching(f"peer {RAW.id.hex()} misbehaved", logging.WARNING)
        # and keeps serving everyone else.
        await still_serving(a, b)


@pytest.mark.parametrize("garbage", [b"GET / HTTP/1.1\r\n\r\n", random.Random(3).randbytes(5000)],
                         ids=["short-then-eof", "random"])
@guarded
async def test_garbage_instead_of_a_handshake_does_not_disturb_the_node(logs, garbage):
    async with open_network(B, **node_kwargs()) as b, open_network(A, **dialing(b)) as a:
        await next_event(a, PeerConnected)
        await next_event(b, PeerConnected)
        # Given a connection that sends garbage instead of a handshake,
        stream = await raw_connect(b)
        await stream.send_all(garbage)
        await stream.send_eof()
        # then B closes it, logs the failed handshake, tells its node nothing,
        await wait_closed(stream)
        assert logs.matching("handshake with inbound")
        assert no_event(b)
        # and goes on serving.
        await still_serving(a, b)


@guarded
async def test_a_peer_that_never_reads_neither_blocks_broadcasts_nor_stays_connected():
    # Given B with small per-peer queues and a short write timeout, A reading normally, and a
    # peer that completes the handshake and then never reads,
    config = fast_config(send_queue_size=4, write_timeout_s=0.5)
    async with (
        open_network(B, **node_kwargs(config)) as b,
        open_network(A, **dialing(b)) as a,
    ):
        await next_event(a, PeerConnected)
        stalled = await raw_peer(b, RAW)
        # when B broadcasts far more than the socket buffers hold,
        for i in range(64):
            msg = TxMsg(tx=bytes([i]) * (512 << 10))
            assert b.broadcast(msg) >= 1
            # then A receives every message as it goes (broadcast never waits on the staller),
            assert await next_event(a, Received) == Received(B.id, msg)
        # and the staller is disconnected for not reading.
        events = [await next_event(b) for _ in range(3)]
        assert [type(e) for e in events] == [PeerConnected, PeerConnected, PeerDisconnected]
        assert events[2].peer_id == RAW.id and "did not read" in events[2].reason
        await stalled.aclose()
