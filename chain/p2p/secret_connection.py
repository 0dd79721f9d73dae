"""The trio shell of the secret connection: the handshake over a stream, then encrypted frames.

`secret_handshake(stream, ...)` runs the protocol described in `chain.p2p.handshake` inside a cancel
scope and returns a `SecretConnection` whose peer has proven its node id and belongs to our chain,
or raises (HandshakeFailed, ProtocolViolation, PeerClosed). `SecretConnection.send_frame` and
`receive_frame` move plaintexts; one task may send while another receives, never two of a kind.

Every failure the remote side can cause is a `P2PError`: stream breakage becomes PeerClosed,
silence past a timeout PeerTimeout. This module never decodes messages beyond the handshake's,
never retries, and never leaves a task behind: everything runs in the caller's task.
"""

from __future__ import annotations

import os

import trio

from chain.crypto import ed25519
from chain.p2p import handshake as hs
from chain.p2p.errors import BadMessage, HandshakeTimeout, PeerClosed, PeerTimeout
from chain.p2p.frames import FrameOpener, FrameSealer
from chain.types.codec import DecodeError, decode, encode

# Read ahead at most this much beyond the frame in progress: buffering stays bounded.
_READ_CHUNK = 64 << 10
_MAX_READ = 1 << 20


def _lost(e: BaseException) -> PeerClosed:
    return PeerClosed(f"connection lost ({type(e).__name__}: {e})")


async def _receive_exactly(stream: trio.abc.Stream, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        try:
            chunk = await stream.receive_some(n - len(data))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as e:
            raise _lost(e) from None
        if not chunk:
            raise PeerClosed(f"closed during the handshake after {len(data)} of {n} bytes")
        data += chunk
    return bytes(data)


class SecretConnection:
    """Authenticated, encrypted frames over `stream` with a peer of proven id and NodeInfo."""

    def __init__(self, stream: trio.abc.Stream, keys: hs.SessionKeys, max_frame_bytes: int) -> None:
        self.stream = stream
        self._sealer = FrameSealer(keys.send_key, max_frame_bytes)
        self._opener = FrameOpener(keys.receive_key, max_frame_bytes)
        # Set by the handshake once proven.
        self.peer_id: bytes = b""
        self.peer_info: hs.NodeInfo | None = None

    def set_max_frame_bytes(self, n: int) -> None:
        self._sealer.max_frame_bytes = n
        self._opener.max_frame_bytes = n

    async def send_frame(self, plaintext: bytes, *, timeout: float = float("inf")) -> None:
        """Seal and send one frame; PeerTimeout if the peer would not take it within `timeout`."""
        frame = self._sealer.seal(plaintext)
        with trio.move_on_after(timeout) as scope:
            try:
                await self.stream.send_all(frame)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as e:
                raise _lost(e) from None
        if scope.cancelled_caught:
            raise PeerTimeout(f"the peer did not read a {len(frame)}-byte frame within "
                              f"{timeout:g} s")

    async def receive_frame(self, *, idle_timeout: float = float("inf")) -> bytes:
        """The next frame's plaintext.

        Raises ProtocolViolation for an oversized (checked before its body is read), short or
        forged frame, PeerClosed at end of stream, PeerTimeout after `idle_timeout` seconds
        without a byte.
        """
        while True:
            frame = self._opener.next_frame()
            if frame is not None:
                return frame
            want = min(max(self._opener.wanted(), _READ_CHUNK), _MAX_READ)
            with trio.move_on_after(idle_timeout) as scope:
                try:
                    data = await self.stream.receive_some(want)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as e:
                    raise _lost(e) from None
            if scope.cancelled_caught:
                raise PeerTimeout(f"nothing received for {idle_timeout:g} s")
            if not data:
                where = f" in a frame ({self._opener.buffered} bytes in)" \
                    if self._opener.buffered else ""
                raise PeerClosed(f"the peer closed the connection{where}")
            self._opener.feed(data)

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.stream)


async def secret_handshake(
    stream: trio.abc.Stream,
    key: ed25519.PrivateKey,
    our_info: hs.NodeInfo,
    *,
    expected_peer_id: bytes | None = None,
    timeout: float = 10.0,
    max_frame_bytes: int,
    ephemeral_secret: bytes | None = None,
) -> SecretConnection:
    """Authenticate, encrypt and check the peer within `timeout` seconds.

    `expected_peer_id` is the id we dialed (None for an inbound connection). The stream is left
    open on failure; the caller owns and closes it. `ephemeral_secret` is for tests only.
    """
    if our_info.node_id != key.id:
        raise ValueError("our NodeInfo must name our own node id")
    with trio.move_on_after(timeout) as scope:
        return await _handshake(stream, key, our_info, expected_peer_id, max_frame_bytes,
                                ephemeral_secret or os.urandom(32))
    assert scope.cancelled_caught
    raise HandshakeTimeout(timeout)


async def _handshake(stream: trio.abc.Stream, key: ed25519.PrivateKey, our_info: hs.NodeInfo,
                     expected_peer_id: bytes | None, max_frame_bytes: int,
                     secret: bytes) -> SecretConnection:
    our_public = hs.ephemeral_public_key(secret)
    # Both sides send before they read: 32 bytes always fit in the socket buffer, so the
    # simultaneous send cannot deadlock.
    try:
        await stream.send_all(our_public)
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as e:
        raise _lost(e) from None
    their_public = await _receive_exactly(stream, hs.EPHEMERAL_KEY_BYTES)
    keys = hs.derive_session(secret, our_public, their_public)
    conn = SecretConnection(stream, keys, hs.HANDSHAKE_MAX_FRAME_BYTES)

    await conn.send_frame(encode(hs.auth_message(key, keys.challenge)))
    auth = _decode_handshake(await conn.receive_frame(), hs.AuthMessage)
    peer_id = hs.verify_auth(auth, keys.challenge)
    hs.check_identity(peer_id, key.id, expected_peer_id)

    await conn.send_frame(encode(our_info))
    info = _decode_handshake(await conn.receive_frame(), hs.NodeInfo)
    hs.check_node_info(our_info, info, peer_id)

    conn.peer_id = peer_id
    conn.peer_info = info
    conn.set_max_frame_bytes(max_frame_bytes)
    return conn


def _decode_handshake(data: bytes, type_: type) -> object:
    try:
        return decode(data, type_, max_size=hs.HANDSHAKE_MAX_FRAME_BYTES)
    except DecodeError as e:
        raise BadMessage(str(e)) from e
