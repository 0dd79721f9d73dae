"""Errors of the p2p layer; each carries what is needed to explain it in one log line.

Everything a remote peer can make this package raise is a `P2PError`. The split that matters to
callers: `ProtocolViolation` means the peer broke the wire protocol (disconnect it and log why),
`HandshakeFailed` means no session was established (its subclass `PeerRefused` when the peer
proved who it is but may not connect), `PeerClosed` means the other side went away.
This module must never hold behaviour beyond building messages.
"""

from __future__ import annotations


class P2PError(Exception):
    """Base of every error of `chain.p2p`; `reason` is the short human explanation."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidPeerAddress(P2PError, ValueError):
    """A peer address that is not `id@host:port`; `text` is what was given."""

    def __init__(self, text: object, reason: str) -> None:
        super().__init__(f"invalid peer address {text!r}: {reason}")
        self.text = text


class PeerClosed(P2PError):
    """The peer closed the connection (possibly in the middle of a frame)."""


class PeerTimeout(P2PError):
    """The peer sent nothing for too long, or did not read what we sent for too long."""


class ProtocolViolation(P2PError):
    """The peer sent something the protocol forbids; the connection is unusable afterwards."""


class FrameTooLarge(ProtocolViolation):
    """A length prefix over the limit, refused before a byte of the body was read."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"frame of {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit


class FrameTooShort(ProtocolViolation):
    def __init__(self, size: int, minimum: int) -> None:
        super().__init__(f"frame of {size} bytes is shorter than the {minimum}-byte MAC")
        self.size = size


class BadMac(ProtocolViolation):
    """A frame whose authentication tag does not verify: tampered, replayed or reordered."""

    def __init__(self, frame_index: int) -> None:
        super().__init__(f"frame {frame_index} failed authentication (bad MAC)")
        self.frame_index = frame_index


class BadMessage(ProtocolViolation):
    """A frame that decrypted fine but is not a valid canonical message of the expected type."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"undecodable message: {detail}")
        self.detail = detail


class HandshakeFailed(P2PError):
    """No authenticated session: bad keys, a bad signature, a timeout or a refusal."""


class HandshakeTimeout(HandshakeFailed):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"handshake did not complete within {seconds:g} s")
        self.seconds = seconds


class BadAuthentication(HandshakeFailed):
    """The peer failed to prove its key: a bad signature, a degenerate ephemeral key."""


class PeerRefused(HandshakeFailed):
    """The peer proved its identity but may not connect; `peer_id` is the proven id (or None)."""

    def __init__(self, reason: str, peer_id: bytes | None = None) -> None:
        super().__init__(reason)
        self.peer_id = peer_id


class WrongChain(PeerRefused):
    """The peer runs another chain id, genesis or protocol version."""


class UnexpectedPeer(PeerRefused):
    """The proven id is not the one dialed, or not the one the peer's NodeInfo names."""


class SelfConnection(PeerRefused):
    """We reached ourselves (our own address in persistent_peers, or a loop through a proxy)."""


class PeerBanned(PeerRefused):
    """The peer is banned for a while (it misbehaved)."""
