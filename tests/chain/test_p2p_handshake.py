"""The secret connection over real sockets: who gets in, who is refused, and why."""

from __future__ import annotations

import pytest
import trio

from chain.crypto import ed25519
from chain.p2p import (
    BadAuthentication,
    FrameTooLarge,
    HandshakeTimeout,
    P2PError,
    PeerClosed,
    PeerTimeout,
    SelfConnection,
    UnexpectedPeer,
    WrongChain,
    secret_handshake,
)
from chain.p2p.frames import LENGTH_BYTES
from tests.chain.p2p_support import KEYS, info_for, scripted_handshake

A, B, C = KEYS[0], KEYS[1], KEYS[2]
LIMIT = 1 << 16


def _socket_pair() -> tuple[trio.SocketStream, trio.SocketStream]:
    a, b = trio.socket.socketpair()
    return trio.SocketStream(a), trio.SocketStream(b)


async def _shake(stream, key: ed25519.PrivateKey, results: dict, name: str, **kw) -> None:
    info_kw = {k: kw.pop(k) for k in ("chain_id", "genesis_hash") if k in kw}
    try:
        results[name] = await secret_handshake(
            stream, key, info_for(key, **info_kw), max_frame_bytes=LIMIT, **kw)
    except P2PError as e:
        results[name] = e
        await stream.aclose()  # what a caller does: the peer then sees the connection end


async def _pair_with(a_kw: dict, b_kw: dict, a_key=A, b_key=B):
    results: dict = {}
    sa, sb = _socket_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: _shake(sa, a_key, results, "a", **a_kw))
        nursery.start_soon(lambda: _shake(sb, b_key, results, "b", **b_kw))
    return results["a"], results["b"]


async def test_two_nodes_prove_their_ids_and_exchange_encrypted_frames():
    # Given A dialing B by B's id,
    a, b = await _pair_with({"expected_peer_id": B.id}, {})
    # then each knows the other's proven id and NodeInfo,
    assert (a.peer_id, b.peer_id) == (B.id, A.id)
    assert a.peer_info == info_for(B) and b.peer_info == info_for(A)
    # and frames flow both ways, larger than the handshake's own limit.
    big = bytes(range(256)) * 200
    await a.send_frame(big)
    await b.send_frame(b"pong")
    assert await b.receive_frame() == big
    assert await a.receive_frame() == b"pong"


@pytest.mark.parametrize(
    ("b_kw", "words"),
    [({"chain_id": "another-chain"}, "chain id"), ({"genesis_hash": bytes(32)}, "genesis")],
    ids=["chain-id", "genesis"],
)
async def test_a_peer_of_another_chain_is_refused_by_both_sides(b_kw, words):
    a, b = await _pair_with({}, b_kw)
    assert isinstance(a, WrongChain) and words in a.reason
    assert isinstance(b, WrongChain) and words in b.reason


async def test_a_peer_that_is_not_the_one_dialed_is_refused():
    # Given A dialing "C" at an address where B answers (B has its own, valid key),
    a, b = await _pair_with({"expected_peer_id": C.id}, {})
    # then A refuses it by the id B proved, and B sees A hang up.
    assert isinstance(a, UnexpectedPeer) and a.peer_id == B.id
    assert isinstance(b, PeerClosed)


async def test_dialing_ourselves_is_refused():
    a, b = await _pair_with({}, {}, a_key=A, b_key=A)
    assert isinstance(a, SelfConnection) and isinstance(b, SelfConnection)


async def test_a_peer_whose_node_info_names_another_id_is_refused():
    # Given B holding its own key but claiming C's node id in its NodeInfo,
    results: dict = {}
    sa, sb = _socket_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: _shake(sa, A, results, "a"))
        liar = await scripted_handshake(sb, B, info_for(B, node_id=C.id))
    # then A refuses it: the key proves B, not C.
    assert isinstance(results["a"], UnexpectedPeer)
    assert "NodeInfo names" in results["a"].reason
    await liar.aclose()


async def test_a_peer_that_cannot_sign_the_session_challenge_is_refused():
    # Given B presenting its public key with a signature of some other challenge (a replayed or
    # relayed proof),
    results: dict = {}
    sa, sb = _socket_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: _shake(sa, A, results, "a"))
        with pytest.raises(PeerClosed):  # A hangs up before B gets to send its NodeInfo
            conn = await scripted_handshake(sb, B, info_for(B), sign_other_challenge=True)
            await conn.receive_frame()
    # then A refuses it as unauthenticated.
    assert isinstance(results["a"], BadAuthentication)


async def test_a_silent_peer_times_the_handshake_out(autojump_clock):
    # Given a connection whose other end never says a word,
    sa, _sb = _socket_pair()
    # when A handshakes with a 5 s limit, then it gives up with HandshakeTimeout.
    with pytest.raises(HandshakeTimeout):
        await secret_handshake(sa, A, info_for(A), timeout=5, max_frame_bytes=LIMIT)


async def test_an_oversized_length_prefix_is_refused_before_its_body_is_sent():
    a, b = await _pair_with({}, {})
    # Given only a length prefix announcing 4 GiB (no body will ever follow),
    await a.stream.send_all((2**32 - 1).to_bytes(LENGTH_BYTES, "big"))
    # then the receiver refuses it without waiting for the body.
    with pytest.raises(FrameTooLarge):
        await b.receive_frame()


async def test_silence_after_the_handshake_is_a_timeout_and_eof_is_a_close(autojump_clock):
    a, b = await _pair_with({}, {})
    with pytest.raises(PeerTimeout):
        await b.receive_frame(idle_timeout=30)
    await a.aclose()
    with pytest.raises(PeerClosed):
        await b.receive_frame()
