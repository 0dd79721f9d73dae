"""The p2p service: listens, dials persistent peers, keeps one connection per peer, routes messages.

`Network.run` (or `open_network`) owns every task of the layer in one nursery: the listener, one
dial loop per persistent peer, and one task per connection (handshake, then the peer's reader and
writer). Cancelling it closes every socket and leaves nothing running.

Towards the node shell the contract is small and never blocks the caller: `broadcast` and `send`
queue already-encoded bytes per peer (full queue = dropped for that peer), `disconnect` and
`ban` end a connection, and every event arrives, in order per peer, on one bounded channel,
`events`: PeerConnected, then Received messages, then PeerDisconnected. If the node stops reading
`events`, readers stop reading their sockets (back-pressure), they do not buffer without bound.

Gossip de-duplication lives here: a tx, vote or proposal reaches `events` once however many peers
relay it, and `broadcast` skips peers known to have it. Whether a message is valid is not this
module's business; the node calls `disconnect`/`ban` for a peer that sent an invalid signature.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import msgspec
import trio

from chain.crypto import ed25519
from chain.p2p.address import PeerAddress
from chain.p2p.backoff import Backoff
from chain.p2p.errors import P2PError, PeerBanned, PeerTimeout, SelfConnection
from chain.p2p.handshake import PROTOCOL_VERSION, NodeInfo
from chain.p2p.messages import (
    MAX_MESSAGE_BYTES,
    Message,
    Ping,
    TxMsg,
    decode_message,
    encode_message,
    is_gossip,
    message_hash,
)
from chain.p2p.peer import Peer
from chain.p2p.secret_connection import secret_handshake
from chain.p2p.seen import SeenCache

log = logging.getLogger("chain.p2p")

DEFAULT_BAN_S = 600.0


class NetworkConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Settings of the p2p layer (the node builds it from `[p2p]` in config.toml)."""

    listen_host: str = "0.0.0.0"
    listen_port: int = 26656  # 0: an ephemeral port (tests)
    # host:port others should dial us at; "" = the bound listen address.
    external_address: str = ""
    moniker: str = "node"
    persistent_peers: tuple[PeerAddress, ...] = ()
    # Largest message plaintext in a frame; a BlockResponse needs block + commit + framing.
    max_frame_bytes: int = MAX_MESSAGE_BYTES
    handshake_timeout_s: float = 10.0
    dial_timeout_s: float = 10.0
    dial_backoff_initial_s: float = 0.5
    dial_backoff_max_s: float = 30.0
    dial_backoff_jitter: float = 0.2
    # Messages queued per peer before gossip to it is dropped.
    send_queue_size: int = 512
    events_queue_size: int = 1024
    seen_cache_size: int = 100_000
    known_per_peer: int = 4096
    max_inbound_peers: int = 40
    ping_interval_s: float = 10.0
    # A peer silent this long (it pings every ping_interval_s) is dead.
    read_timeout_s: float = 45.0
    # A peer that takes this long to accept one frame is too slow to keep.
    write_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        # Checked here so a bad setting fails at start-up, not in a dial loop minutes later.
        if not 0 < self.dial_backoff_initial_s <= self.dial_backoff_max_s:
            raise ValueError("need 0 < dial_backoff_initial_s <= dial_backoff_max_s")
        if not 0 <= self.dial_backoff_jitter < 1:
            raise ValueError("dial_backoff_jitter must be in [0, 1)")
        if not 0 <= self.listen_port <= 65535:
            raise ValueError(f"listen_port {self.listen_port} is not a port")
        if self.max_frame_bytes < 1024:
            raise ValueError("max_frame_bytes below 1024 cannot carry a vote")
        for name in ("send_queue_size", "events_queue_size", "seen_cache_size",
                     "known_per_peer", "max_inbound_peers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("handshake_timeout_s", "dial_timeout_s", "ping_interval_s",
                     "read_timeout_s", "write_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")


class PeerConnected(msgspec.Struct, frozen=True):
    peer_id: bytes
    info: NodeInfo
    outbound: bool
    remote_address: str


class PeerDisconnected(msgspec.Struct, frozen=True):
    peer_id: bytes
    reason: str


class Received(msgspec.Struct, frozen=True):
    peer_id: bytes
    msg: Message


NetworkEvent = PeerConnected | PeerDisconnected | Received


class PeerStatus(msgspec.Struct, frozen=True):
    id: bytes
    info: NodeInfo
    outbound: bool
    remote_address: str
    dropped: int


class Network:
    """The p2p layer of one node; run it once with `run` or `open_network`."""

    def __init__(self, key: ed25519.PrivateKey, *, chain_id: str, genesis_hash: bytes,
                 config: NetworkConfig | None = None, rng: random.Random | None = None,
                 listeners: Sequence[trio.SocketListener] | None = None) -> None:
        self.key = key
        self.id: bytes = key.id
        self.chain_id = chain_id
        self.genesis_hash = genesis_hash
        self.config = config = config if config is not None else NetworkConfig()
        self._rng = rng if rng is not None else random.Random()
        # Pre-opened listeners (tests reserve a port before the node exists); else we open ours.
        self._listeners = list(listeners) if listeners is not None else None
        self._events_send, self.events = trio.open_memory_channel[NetworkEvent](
            config.events_queue_size)
        self._peers: dict[bytes, Peer] = {}
        self._seen = SeenCache(config.seen_cache_size)
        self._banned: dict[bytes, float] = {}
        self._changed = trio.Event()
        self._inbound = 0
        self.listen_address: tuple[str, int] | None = None
        self.node_info: NodeInfo | None = None

    # ---- the service -------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[Network] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Listen and dial until cancelled; `task_status.started(self)` once listening."""
        cfg = self.config
        listeners = self._listeners
        if listeners is None:
            listeners = await trio.open_tcp_listeners(cfg.listen_port, host=cfg.listen_host)
        try:
            host, port = listeners[0].socket.getsockname()[:2]
            self.listen_address = (host, port)
            self.node_info = NodeInfo(
                protocol_version=PROTOCOL_VERSION, node_id=self.id, chain_id=self.chain_id,
                genesis_hash=self.genesis_hash,
                listen_address=cfg.external_address or f"{host}:{port}", moniker=cfg.moniker)
            async with trio.open_nursery() as nursery:
                await nursery.start(trio.serve_listeners, self._accept, listeners)
                dialed: set[bytes] = set()
                for address in cfg.persistent_peers:
                    # Two loops for one id would fight over the connection.
                    if address.id not in dialed:
                        dialed.add(address.id)
                        nursery.start_soon(self._keep_dialing, address)
                log.info("p2p node %s listening on %s:%d", self.id.hex(), host, port)
                task_status.started(self)
        finally:
            self._events_send.close()
            for listener in listeners:
                await trio.aclose_forcefully(listener)

    # ---- what the node calls -----------------------------------------------------------------

    def broadcast(self, msg: Message, *, except_peer: bytes | None = None) -> int:
        """Queue `msg` for every peer (but `except_peer`); returns how many took it. Never blocks.

        Gossip (tx, vote, proposal) is remembered as seen, so it is not delivered back to us, and
        skips peers known to have it already.
        """
        payload = self._encode(msg)
        digest = message_hash(payload) if is_gossip(msg) else None
        if digest is not None:
            self._seen.add(digest)
        queued = 0
        for peer in list(self._peers.values()):
            if peer.id == except_peer or (digest is not None and digest in peer.known):
                continue
            if peer.try_send(payload, urgent=not isinstance(msg, TxMsg)):
                queued += 1
                if digest is not None:
                    peer.known.add(digest)
        return queued

    def send(self, peer_id: bytes, msg: Message) -> bool:
        """Queue `msg` for one peer; False if it is not connected or its queue is full."""
        peer = self._peers.get(peer_id)
        if peer is None:
            return False
        payload = self._encode(msg)
        if not peer.try_send(payload, urgent=not isinstance(msg, TxMsg)):
            return False
        if is_gossip(msg):
            digest = message_hash(payload)
            self._seen.add(digest)
            peer.known.add(digest)
        return True

    def disconnect(self, peer_id: bytes, reason: str) -> bool:
        """End the connection to `peer_id` (a persistent peer is redialed); False if none."""
        peer = self._peers.get(peer_id)
        if peer is None:
            return False
        log.warning("disconnecting peer %s: %s", peer_id.hex(), reason)
        peer.close(reason)
        return True

    def ban(self, peer_id: bytes, reason: str, duration_s: float = DEFAULT_BAN_S) -> None:
        """Disconnect `peer_id` and refuse it (inbound and dialing) for `duration_s` seconds."""
        now = trio.current_time()
        self._banned = {p: t for p, t in self._banned.items() if t > now}
        self._banned[peer_id] = max(self._banned.get(peer_id, now), now + duration_s)
        log.warning("banning peer %s for %g s: %s", peer_id.hex(), duration_s, reason)
        peer = self._peers.get(peer_id)
        if peer is not None:
            peer.close(f"banned: {reason}")

    def is_banned(self, peer_id: bytes) -> bool:
        return self._banned.get(peer_id, float("-inf")) > trio.current_time()

    @property
    def peers(self) -> dict[bytes, PeerStatus]:
        return {p.id: PeerStatus(p.id, p.info, p.outbound, p.remote, p.dropped)
                for p in self._peers.values()}

    async def wait_peers(self, condition: Callable[[dict[bytes, PeerStatus]], bool]) -> None:
        """Return once `condition(self.peers)` holds (checked whenever a peer comes or goes)."""
        await self._wait_until(lambda: condition(self.peers))

    async def wait_connected(self, peer_id: bytes) -> None:
        await self._wait_until(lambda: peer_id in self._peers)

    async def wait_disconnected(self, peer_id: bytes) -> None:
        await self._wait_until(lambda: peer_id not in self._peers)

    # ---- internals ---------------------------------------------------------------------------

    def _encode(self, msg: Message) -> bytes:
        if isinstance(msg, Ping):
            raise ValueError("Ping is the p2p layer's own keep-alive")
        payload = encode_message(msg)
        if len(payload) > self.config.max_frame_bytes:
            raise ValueError(f"a {len(payload)}-byte {type(msg).__name__} exceeds max_frame_bytes "
                             f"{self.config.max_frame_bytes}")
        return payload

    def _pulse(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _wait_until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            await self._changed.wait()

    async def _accept(self, stream: trio.SocketStream) -> None:
        remote = _remote(stream)
        if self._inbound >= self.config.max_inbound_peers:
            log.info("refusing inbound connection from %s: %d inbound peers already",
                     remote, self._inbound)
            await trio.aclose_forcefully(stream)
            return
        self._inbound += 1
        try:
            await self._serve_connection(stream, outbound=False, expected_id=None, remote=remote)
        except P2PError:
            pass  # logged where it happened; the listener goes on
        except Exception:
            # One peer must never take the node down: a bug its bytes reach is logged loudly.
            log.exception("internal error serving inbound connection from %s", remote)
        finally:
            self._inbound -= 1

    async def _serve_connection(self, stream: trio.SocketStream, *, outbound: bool,
                                expected_id: bytes | None, remote: str) -> bool:
        """Handshake, then run the peer until it ends; True if a peer was established.

        Raises the P2PError that failed the handshake (after logging it). Always closes `stream`.
        """
        assert self.node_info is not None
        cfg = self.config
        try:
            try:
                conn = await secret_handshake(
                    stream, self.key, self.node_info, expected_peer_id=expected_id,
                    timeout=cfg.handshake_timeout_s, max_frame_bytes=cfg.max_frame_bytes)
                if self.is_banned(conn.peer_id):
                    raise PeerBanned("the peer is banned", conn.peer_id)
            except P2PError as e:
                level = logging.ERROR if isinstance(e, SelfConnection) else logging.INFO
                log.log(level, "handshake with %s %s failed: %s",
                        "outbound" if outbound else "inbound", remote, e.reason)
                raise
            peer = Peer(conn, outbound=outbound, our_id=self.id, remote=remote,
                        queue_size=cfg.send_queue_size, known_size=cfg.known_per_peer)
            await self._run_peer(peer)
            return True
        finally:
            await trio.aclose_forcefully(stream)

    async def _run_peer(self, peer: Peer) -> None:
        existing = self._peers.get(peer.id)
        if existing is not None and not _preferred(peer, existing):
            log.info("dropping duplicate connection %r: keeping %r", peer, existing)
            return
        self._peers[peer.id] = peer
        self._pulse()
        if existing is not None:
            # The other side applies the same rule, so both keep the same TCP connection.
            log.info("duplicate connection %r replaces %r", peer, existing)
            existing.close("replaced by a duplicate connection")
        try:
            if existing is None:
                log.info("connected to peer %s (%s, %s, moniker %r)", peer.id.hex(), peer.remote,
                         "outbound" if peer.outbound else "inbound", peer.info.moniker)
                await self._events_send.send(
                    PeerConnected(peer.id, peer.info, peer.outbound, peer.remote))
            cfg = self.config
            reason = await peer.run(self._deliver, ping_interval=cfg.ping_interval_s,
                                    read_timeout=cfg.read_timeout_s,
                                    write_timeout=cfg.write_timeout_s)
        finally:
            current = self._peers.get(peer.id) is peer
            if current:
                del self._peers[peer.id]
                self._pulse()
        if peer.misbehaved:
            log.warning("peer %s misbehaved, disconnected: %s", peer.id.hex(), reason)
        else:
            log.info("peer %s disconnected: %s", peer.id.hex(), reason)
        if current:
            await self._events_send.send(PeerDisconnected(peer.id, reason))

    async def _deliver(self, peer: Peer, frame: bytes) -> None:
        msg = decode_message(frame, max_size=self.config.max_frame_bytes)
        if isinstance(msg, Ping):
            return
        if is_gossip(msg):
            digest = message_hash(frame)
            peer.known.add(digest)
            if not self._seen.add(digest):
                return  # already delivered (or sent by us): this is what stops gossip loops
        await self._events_send.send(Received(peer.id, msg))

    async def _keep_dialing(self, address: PeerAddress) -> None:
        cfg = self.config
        backoff = Backoff(initial=cfg.dial_backoff_initial_s, maximum=cfg.dial_backoff_max_s,
                          jitter=cfg.dial_backoff_jitter, rng=self._rng)
        while True:
            await self.wait_disconnected(address.id)
            banned_until = self._banned.get(address.id, float("-inf"))
            if banned_until > trio.current_time():
                await trio.sleep_until(banned_until)
                continue
            try:
                if await self._dial(address):
                    backoff.reset()
            except SelfConnection:
                log.error("persistent peer %s is this node itself: no longer dialing it", address)
                return
            except (P2PError, OSError) as e:
                # The first failure in a row is worth an operator's attention, the rest are noise.
                level = logging.INFO if backoff.attempts == 0 else logging.DEBUG
                log.log(level, "dialing %s failed: %s", address, e)
            except Exception:
                # As for inbound connections: a bug reached through one peer must not stop the
                # node; it is logged loudly and the peer redialed like any failure.
                log.exception("internal error dialing %s", address)
            await trio.sleep(backoff.next_delay())

    async def _dial(self, address: PeerAddress) -> bool:
        stream: trio.SocketStream | None = None
        with trio.move_on_after(self.config.dial_timeout_s):
            stream = await trio.open_tcp_stream(address.host, address.port)
        if stream is None:
            raise PeerTimeout(f"connecting to {address} took over {self.config.dial_timeout_s} s")
        return await self._serve_connection(stream, outbound=True, expected_id=address.id,
                                            remote=f"{address.host}:{address.port}")


def _preferred(new: Peer, old: Peer) -> bool:
    """Which of two connections to one peer survives, decided alike on both ends.

    Crossed dials (each side dialed the other): the one dialed by the lower node id. Two
    connections from one dialer: the newer, since the dialer only redials once it considers the
    old one dead.
    """
    if new.dialer_id != old.dialer_id:
        return new.dialer_id < old.dialer_id
    return True


def _remote(stream: trio.SocketStream) -> str:
    try:
        host, port = stream.socket.getpeername()[:2]
    except OSError:
        return "?"
    return f"{host}:{port}"


@asynccontextmanager
async def open_network(key: ed25519.PrivateKey, **kwargs: object) -> AsyncIterator[Network]:
    """`Network(key, **kwargs)` running in a nursery of its own; cancelled when the block exits."""
    network = Network(key, **kwargs)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        await nursery.start(network.run)
        try:
            yield network
        finally:
            nursery.cancel_scope.cancel()
