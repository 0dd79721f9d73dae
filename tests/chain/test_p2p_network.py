"""The p2p service with real sockets on 127.0.0.1: connecting, gossip, redialing, shutdown."""

from __future__ import annotations

import pytest
import trio

from chain.p2p import (
    Network,
    PeerConnected,
    PeerDisconnected,
    Received,
    StatusMsg,
    TxMsg,
    encode_message,
    open_network,
)
from tests.chain.p2p_support import (
    KEYS,
    address_at,
    address_of,
    every_message,
    fast_config,
    guarded,
    listener_from,
    next_event,
    node_kwargs,
    raw_peer,
    reserve_port,
    watch_logs,
)

A, B, C, RAW = KEYS[0], KEYS[1], KEYS[2], KEYS[5]


@pytest.fixture(autouse=True)
def logs():
    with watch_logs() as watcher:
        yield watcher


def dialing(*peers: Network, **config) -> dict:
    """Network kwargs for a node that keeps `peers` as persistent peers."""
    return node_kwargs(fast_config(persistent_peers=tuple(address_of(p) for p in peers),
                                   **config))


@guarded
async def test_two_nodes_connect_and_exchange_every_message_type():
    # Given B listening and A dialing it as a persistent peer,
    async with open_network(B, **node_kwargs()) as b, open_network(A, **dialing(b)) as a:
        # then each sees the other connect, A outbound and B inbound, with its NodeInfo,
        up_a = await next_event(a, PeerConnected)
        up_b = await next_event(b, PeerConnected)
        assert (up_a.peer_id, up_a.outbound, up_a.info.moniker) == (B.id, True, "node")
        assert (up_b.peer_id, up_b.outbound) == (A.id, False)
        assert set(a.peers) == {B.id} and set(b.peers) == {A.id}
        # and every message kind arrives intact, in both directions.
        for mine, theirs in zip(every_message(0), every_message(1), strict=True):
            assert a.send(B.id, mine)
            assert await next_event(b, Received) == Received(A.id, mine)
            assert b.send(A.id, theirs)
            assert await next_event(a, Received) == Received(B.id, theirs)


@guarded
async def test_three_nodes_relay_gossip_along_a_line():
    # Given A - B - C (A and C both dial B),
    async with (
        open_network(B, **node_kwargs()) as b,
        open_network(A, **dialing(b)) as a,
        open_network(C, **dialing(b)) as c,
    ):
        await next_event(a, PeerConnected)
        await next_event(c, PeerConnected)
        assert {(await next_event(b, PeerConnected)).peer_id for _ in range(2)} == {A.id, C.id}
        # when A broadcasts each gossip kind and B's node relays what it receives,
        for msg in every_message()[:3]:
            assert a.broadcast(msg) == 1
            got = await next_event(b, Received)
            assert got == Received(A.id, msg)
            assert b.broadcast(got.msg, except_peer=got.peer_id) == 1
            # then C receives it from B.
            assert await next_event(c, Received) == Received(B.id, msg)


@guarded
async def test_relayed_gossip_reaches_each_node_exactly_once():
    # Given a triangle whose node shells relay every new tx to all other peers and then send a
    # marker (StatusMsg) to every peer,
    async with (
        open_network(A, **node_kwargs()) as a,
        open_network(B, **dialing(a)) as b,
        open_network(C, **dialing(a, b)) as c,
    ):
        nets = {"a": a, "b": b, "c": c}
        for net in nets.values():
            for _ in range(2):
                await next_event(net, PeerConnected)
        received = {name: [] for name in nets}
        tx = TxMsg(tx=b"pay carol 5")
        marker = StatusMsg(height=1, base_height=1)

        async def shell(name: str, net: Network) -> None:
            markers = set()
            while len(markers) < 2:
                event = await net.events.receive()
                assert isinstance(event, Received), event
                if isinstance(event.msg, TxMsg):
                    received[name].append(event.peer_id)
                    net.broadcast(event.msg, except_peer=event.peer_id)
                    net.broadcast(marker)
                else:
                    markers.add(event.peer_id)

        async with trio.open_nursery() as nursery:
            for name, net in nets.items():
                nursery.start_soon(shell, name, net)
            # when A broadcasts the tx (and its marker after it),
            assert a.broadcast(tx) == 2
            a.broadcast(marker)
        # then B and C each got it once (markers follow every relay on each link, so any
        # duplicate would have arrived before the last marker), and it never came back to A.
        assert len(received["b"]) == 1 and len(received["c"]) == 1
        assert received["a"] == []


@guarded
async def test_gossip_a_peer_repeats_is_delivered_once_and_not_sent_back():
    async with open_network(B, **node_kwargs()) as b:
        raw = await raw_peer(b, RAW)
        assert (await next_event(b, PeerConnected)).peer_id == RAW.id
        # Given a peer that sends the same tx twice, then a status,
        tx = TxMsg(tx=b"once")
        for msg in (tx, tx, StatusMsg(height=3, base_height=1)):
            await raw.send_frame(encode_message(msg))
        # then B's node sees the tx once, then the status (non-gossip is never de-duplicated),
        assert await next_event(b, Received) == Received(RAW.id, tx)
        assert await next_event(b, Received) == Received(RAW.id, StatusMsg(height=3, base_height=1))
        # and broadcasting the tx skips the peer that sent it, while a new one goes out.
        assert b.broadcast(tx) == 0
        assert b.broadcast(TxMsg(tx=b"new")) == 1
        assert await raw.receive_frame() == encode_message(TxMsg(tx=b"new"))
        await raw.aclose()


@guarded
async def test_a_persistent_peer_down_at_start_is_connected_once_it_comes_up(logs):
    # Given B's port reserved but not listening, and A dialing it,
    sock = await reserve_port()
    down = address_at(B, sock.getsockname()[1])
    async with open_network(A, **node_kwargs(fast_config(persistent_peers=(down,)))) as a:
        # when A's dials fail (refused), and it backs off and fails again,
        await logs.wait_for(f"dialing {down} failed", count=3)
        assert a.peers == {}
        # and B then comes up on that port,
        async with open_network(B, **node_kwargs(), listeners=[listener_from(sock)]) as b:
            # then A connects to it.
            assert (await next_event(a, PeerConnected)).peer_id == B.id
            assert (await next_event(b, PeerConnected)).peer_id == A.id


@guarded
async def test_a_persistent_peer_that_drops_the_connection_is_redialed():
    async with open_network(B, **node_kwargs()) as b, open_network(A, **dialing(b)) as a:
        await next_event(a, PeerConnected)
        await next_event(b, PeerConnected)
        # Given B cutting A off,
        assert b.disconnect(A.id, "testing the redial")
        # then both see the disconnection, with B's reason on B's side,
        assert (await next_event(b, PeerDisconnected)).reason == "testing the redial"
        assert (await next_event(a, PeerDisconnected)).peer_id == B.id
        # and A dials again, and the new connection carries messages.
        assert (await next_event(a, PeerConnected)).peer_id == B.id
        assert (await next_event(b, PeerConnected)).peer_id == A.id
        assert a.send(B.id, StatusMsg(height=1, base_height=1))
        assert (await next_event(b, Received)).peer_id == A.id


@guarded
async def test_two_nodes_dialing_each_other_settle_on_one_connection():
    # Given A and B with each other as persistent peers (their dials may cross),
    sock_a, sock_b = await reserve_port(), await reserve_port()
    async with (
        open_network(A, **node_kwargs(fast_config(
            persistent_peers=(address_at(B, sock_b.getsockname()[1]),))),
            listeners=[listener_from(sock_a)]) as a,
        open_network(B, **node_kwargs(fast_config(
            persistent_peers=(address_at(A, sock_a.getsockname()[1]),))),
            listeners=[listener_from(sock_b)]) as b,
    ):
        # then each reports the peer connected once (a duplicate is resolved silently),
        assert (await next_event(a, PeerConnected)).peer_id == B.id
        assert (await next_event(b, PeerConnected)).peer_id == A.id
        # both end up on the connection the lower node id dialed,
        a_dials = A.id < B.id
        await a.wait_peers(lambda p: B.id in p and p[B.id].outbound == a_dials)
        await b.wait_peers(lambda p: A.id in p and p[A.id].outbound != a_dials)
        # and messages flow both ways over it.
        assert a.send(B.id, StatusMsg(height=1, base_height=1))
        assert b.send(A.id, StatusMsg(height=2, base_height=1))
        assert await next_event(b, Received) == Received(A.id, StatusMsg(height=1, base_height=1))
        assert await next_event(a, Received) == Received(B.id, StatusMsg(height=2, base_height=1))


@guarded
async def test_a_banned_peer_is_cut_off_and_refused_when_it_redials(logs):
    async with open_network(B, **node_kwargs()) as b, open_network(A, **dialing(b)) as a:
        await next_event(a, PeerConnected)
        await next_event(b, PeerConnected)
        # Given B banning A (say, for an invalid vote signature),
        b.ban(A.id, "invalid vote signature", duration_s=3600)
        assert "invalid vote signature" in (await next_event(b, PeerDisconnected)).reason
        # then A's redials are refused after the handshake,
        await logs.wait_for("the peer is banned")
        assert b.is_banned(A.id) and A.id not in b.peers
        # and nothing more reaches B's node from A.
        with pytest.raises(trio.WouldBlock):
            b.events.receive_nowait()


@guarded
async def test_shutdown_cancels_every_task_and_closes_every_socket():
    tasks_before = trio.lowlevel.current_statistics().tasks_living
    async with open_network(B, **node_kwargs()) as b:
        # Given A connected to B,
        async with open_network(A, **dialing(b)) as a:
            await next_event(a, PeerConnected)
            await next_event(b, PeerConnected)
            host, port = a.listen_address
        # when A shuts down, then B sees it go and A's port no longer answers.
        assert (await next_event(b, PeerDisconnected)).peer_id == A.id
        with pytest.raises(OSError):
            await trio.open_tcp_stream(host, port)
    # and once B is gone too, not one task is left behind.
    assert trio.lowlevel.current_statistics().tasks_living == tasks_before
