"""Shared pieces of the p2p tests: fixed keys, fast configs, a log watcher, scripted raw peers.

Waiting is always on events (a connection, a log record, end of stream), never on sleeps.
`HANG_GUARD_S` only turns a hang into a failure; no assertion depends on it.
"""

from __future__ import annotations

import functools
import logging
import os
from contextlib import contextmanager

import msgspec
import trio

from chain.crypto import ed25519
from chain.crypto.hashing import blake3_256
from chain.p2p import (
    BlockRequest,
    BlockResponse,
    NetworkConfig,
    NoBlockResponse,
    NodeInfo,
    PeerAddress,
    ProposalMsg,
    SecretConnection,
    StatusMsg,
    TxMsg,
    VoteMsg,
    secret_handshake,
)
from chain.p2p import handshake as hs
from chain.p2p.handshake import PROTOCOL_VERSION
from chain.types import Proposal, sign_proposal, sign_vote
from chain.types.codec import encode
from tests.chain.builders import (
    CHAIN_ID as TYPES_CHAIN_ID,
)
from tests.chain.builders import (
    T0,
    VALIDATORS,
    block_id,
    chain_of_two,
    commit_for,
    unsigned_vote,
)

CHAIN_ID = "gonka-p2p-test"
GENESIS_HASH = blake3_256(b"p2p test genesis")
KEYS = [ed25519.PrivateKey(bytes([40 + i]) * 32) for i in range(6)]
HANG_GUARD_S = 30


def guarded(test):
    """Run an async test under the hang guard (a hang becomes a failure, not a stuck run)."""

    @functools.wraps(test)
    async def run(*args, **kwargs):
        with trio.fail_after(HANG_GUARD_S):
            return await test(*args, **kwargs)

    return run


def every_message(variant: int = 0) -> list:
    """One valid message of each kind the node exchanges (signed with the wire-type test keys);
    gossip differs between variants (0..3), so it is not taken for a repeat."""
    b1, b2 = chain_of_two()
    key = VALIDATORS[variant]
    vote = sign_vote(TYPES_CHAIN_ID, unsigned_vote(bid=block_id(1), index=variant), key)
    proposal = sign_proposal(TYPES_CHAIN_ID, Proposal(
        height=1, round=variant, pol_round=-1, block_id=block_id(1), time_ns=T0,
        proposer=key.id, signature=bytes(64)), key)
    return [TxMsg(tx=bytes([1, variant])), ProposalMsg(proposal=proposal, block=b1),
            VoteMsg(vote=vote), StatusMsg(height=9, base_height=1), BlockRequest(height=2),
            BlockResponse(block=b2, commit=commit_for(2, block_id(3))),
            NoBlockResponse(height=7)]


def fast_config(**overrides: object) -> NetworkConfig:
    """Loopback, an ephemeral port, quick redials; long pings so tests see only their frames."""
    base = NetworkConfig(
        listen_host="127.0.0.1", listen_port=0, dial_backoff_initial_s=0.01,
        dial_backoff_max_s=0.05, handshake_timeout_s=5.0, ping_interval_s=3600.0,
        read_timeout_s=3600.0, write_timeout_s=3600.0)
    return msgspec.structs.replace(base, **overrides)


def node_kwargs(config: NetworkConfig | None = None, **kw: object) -> dict:
    return {"chain_id": CHAIN_ID, "genesis_hash": GENESIS_HASH,
            "config": config or fast_config(), **kw}


def address_of(network, key=None) -> PeerAddress:
    host, port = network.listen_address
    return PeerAddress(id=(key or network.key).id, host=host, port=port)


def address_at(key: ed25519.PrivateKey, port: int, host: str = "127.0.0.1") -> PeerAddress:
    return PeerAddress(id=key.id, host=host, port=port)


def info_for(key: ed25519.PrivateKey, *, chain_id: str = CHAIN_ID,
             genesis_hash: bytes = GENESIS_HASH, node_id: bytes | None = None) -> NodeInfo:
    return NodeInfo(protocol_version=PROTOCOL_VERSION, node_id=node_id or key.id,
                    chain_id=chain_id, genesis_hash=genesis_hash,
                    listen_address="127.0.0.1:1", moniker="raw")


async def reserve_port() -> trio.socket.SocketType:
    """A bound socket that does not listen yet: dials to its port are refused until `listen()`."""
    sock = trio.socket.socket()
    sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_REUSEADDR, 1)
    await sock.bind(("127.0.0.1", 0))
    return sock


def listener_from(sock: trio.socket.SocketType) -> trio.SocketListener:
    sock.listen(16)
    return trio.SocketListener(sock)


async def raw_connect(network) -> trio.SocketStream:
    host, port = network.listen_address
    return await trio.open_tcp_stream(host, port)


async def raw_peer(network, key: ed25519.PrivateKey = KEYS[5], **info_kw) -> SecretConnection:
    """A hand-driven peer that completes a real handshake with `network` and then obeys the test."""
    stream = await raw_connect(network)
    return await secret_handshake(stream, key, info_for(key, **info_kw),
                                  expected_peer_id=network.id,
                                  max_frame_bytes=network.config.max_frame_bytes)


async def scripted_handshake(stream: trio.abc.Stream, key: ed25519.PrivateKey, info: NodeInfo,
                             *, sign_other_challenge: bool = False) -> SecretConnection:
    """The handshake done by hand, able to lie: a NodeInfo naming another id, a bad signature."""
    secret = os.urandom(32)
    public = hs.ephemeral_public_key(secret)
    await stream.send_all(public)
    theirs = b""
    while len(theirs) < 32:
        chunk = await stream.receive_some(32 - len(theirs))
        assert chunk, "closed during the handshake"
        theirs += chunk
    keys = hs.derive_session(secret, public, theirs)
    conn = SecretConnection(stream, keys, hs.HANDSHAKE_MAX_FRAME_BYTES)
    challenge = bytes(32) if sign_other_challenge else keys.challenge
    await conn.send_frame(encode(hs.auth_message(key, challenge)))
    await conn.receive_frame()  # their AuthMessage
    await conn.send_frame(encode(info))
    return conn


async def wait_closed(stream: trio.abc.Stream) -> None:
    """Return once the other end has closed `stream` (end of stream or reset)."""
    while True:
        try:
            if not await stream.receive_some(1 << 16):
                return
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return


async def next_event(network, *types):
    """The next event of `network` (asserting its type when `types` are given)."""
    event = await network.events.receive()
    if types:
        assert isinstance(event, types), f"expected {types}, got {event!r}"
    return event


class LogWatcher(logging.Handler):
    """Collects `chain.p2p` records; `await wait_for(text)` returns once one contains `text`."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._changed = trio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        # Called in the trio thread by the code under test: setting an Event is safe here.
        self._changed.set()
        self._changed = trio.Event()

    def messages(self, level: int = logging.DEBUG) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= level]

    def matching(self, text: str, level: int = logging.DEBUG) -> list[str]:
        return [m for m in self.messages(level) if text in m]

    async def wait_for(self, text: str, level: int = logging.DEBUG, count: int = 1) -> list[str]:
        """Wait until `count` records contain `text`; returns them."""
        while len(self.matching(text, level)) < count:
            await self._changed.wait()
        return self.matching(text, level)


@contextmanager
def watch_logs():
    logger = logging.getLogger("chain.p2p")
    watcher = LogWatcher()
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(watcher)
    try:
        yield watcher
    finally:
        logger.removeHandler(watcher)
        logger.setLevel(old_level)
    # A bug reached by peer input is logged as "internal error": no test may cause one.
    assert not watcher.matching("internal error"), watcher.matching("internal error")
