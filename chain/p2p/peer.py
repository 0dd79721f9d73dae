"""One established peer connection: its bounded send queue, its writer and reader tasks.

A `Peer` never blocks its callers: `try_send` queues already-encoded bytes or reports that the
queue is full (the message is dropped for this peer only). There are two queues of the same
bound: consensus and block-sync messages (`urgent`) always leave before tx gossip, so a flood of
txs can delay other txs but never a proposal or a vote. The writer sends a Ping when idle
and gives up on a peer that does not read a frame within the write timeout; the reader gives up
on a peer silent past the read timeout and on any protocol violation. Either way the peer ends
with a `close_reason`, and its tasks end with it: they live in a nursery inside `run`, which
the network awaits from the connection's own task.

Decoding and routing of what arrives is the network's: `run` calls the `deliver` it is given.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable

import trio

from chain.p2p.errors import P2PError, ProtocolViolation
from chain.p2p.handshake import NodeInfo
from chain.p2p.messages import Ping, encode_message
from chain.p2p.secret_connection import SecretConnection
from chain.p2p.seen import SeenCache

log = logging.getLogger("chain.p2p")

_PING = encode_message(Ping())

Deliver = Callable[["Peer", bytes], Awaitable[None]]


class Peer:
    """A connected, authenticated peer; `id` is its proven node id."""

    def __init__(self, conn: SecretConnection, *, outbound: bool, our_id: bytes, remote: str,
                 queue_size: int, known_size: int) -> None:
        assert conn.peer_info is not None, "a Peer is made from a completed handshake"
        self.conn = conn
        self.id: bytes = conn.peer_id
        self.info: NodeInfo = conn.peer_info
        self.outbound = outbound
        self.remote = remote
        # Who opened the TCP connection: the tie-break between duplicate connections uses it.
        self.dialer_id = our_id if outbound else self.id
        self.known = SeenCache(known_size)
        self.dropped = 0
        self.close_reason: str | None = None
        self.misbehaved = False
        self._queue_size = queue_size
        self._urgent: deque[bytes] = deque()
        self._bulk: deque[bytes] = deque()
        self._queued = trio.Event()
        self._scope = trio.CancelScope()

    def __repr__(self) -> str:
        return f"<Peer {self.id.hex()} {'out' if self.outbound else 'in'} {self.remote}>"

    def try_send(self, payload: bytes, *, urgent: bool = False) -> bool:
        """Queue an encoded message; False (message dropped) if its queue is full or closed."""
        if self.close_reason is not None:
            return False
        queue = self._urgent if urgent else self._bulk
        if len(queue) >= self._queue_size:
            self.dropped += 1
            log.debug("send queue of peer %s full: dropped a message (%d so far)",
                      self.id.hex(), self.dropped)
            return False
        queue.append(payload)
        self._queued.set()
        return True

    def close(self, reason: str, *, misbehaved: bool = False) -> None:
        """End the connection (idempotent: the first reason is kept)."""
        if self.close_reason is None:
            self.close_reason = reason
            self.misbehaved = misbehaved
        self._scope.cancel()

    async def run(self, deliver: Deliver, *, ping_interval: float, read_timeout: float,
                  write_timeout: float) -> str:
        """Read and write until the connection ends; returns why it ended."""
        with self._scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._write_loop, ping_interval, write_timeout)
                nursery.start_soon(self._read_loop, deliver, read_timeout)
        self._urgent.clear()
        self._bulk.clear()
        return self.close_reason or "closed"

    async def _read_loop(self, deliver: Deliver, read_timeout: float) -> None:
        try:
            while True:
                frame = await self.conn.receive_frame(idle_timeout=read_timeout)
                await deliver(self, frame)
        except ProtocolViolation as e:
            self.close(e.reason, misbehaved=True)
        except P2PError as e:
            self.close(e.reason)

    async def _write_loop(self, ping_interval: float, write_timeout: float) -> None:
        try:
            while True:
                if not (self._urgent or self._bulk):
                    # A fresh event, made after seeing both queues empty: any later try_send
                    # sets it, and a stale one set earlier cannot wake us for nothing.
                    self._queued = trio.Event()
                    with trio.move_on_after(ping_interval):
                        await self._queued.wait()
                if self._urgent:
                    payload = self._urgent.popleft()
                elif self._bulk:
                    payload = self._bulk.popleft()
                else:
                    payload = _PING
                await self.conn.send_frame(payload, timeout=write_timeout)
        except P2PError as e:
            self.close(e.reason)
