"""Peer addresses: `id@host:port`, the form of `persistent_peers` in the node config.

`id` is the 40 lower- or upper-case hex characters of the peer's 20-byte node id (what
`gonka chain show-node-id` prints); the handshake refuses the connection unless the peer proves
that id. `host` is a name, an IPv4 address or a bracketed IPv6 address. Parsing is pure: it never
resolves names or touches the network, and it raises InvalidPeerAddress and nothing else.
"""

from __future__ import annotations

import re

import msgspec

from chain.crypto.ed25519 import ID_LENGTH
from chain.p2p.errors import InvalidPeerAddress

_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9._-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])$")
_HEX = re.compile(r"^[0-9A-Fa-f]*$")


class PeerAddress(msgspec.Struct, frozen=True):
    """Where to dial a peer and which node id it must prove; `str()` gives `id@host:port`."""

    id: bytes
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.id.hex()}@{host}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> PeerAddress:
        return parse_peer_address(text)


def parse_peer_address(text: object) -> PeerAddress:
    """`PeerAddress` from "id@host:port"; InvalidPeerAddress saying which part is wrong."""

    def fail(reason: str) -> InvalidPeerAddress:
        return InvalidPeerAddress(text, reason)

    if not isinstance(text, str):
        raise fail(f"expected a string, got {type(text).__name__}")
    text_ = text.strip()
    node_id, at, host_port = text_.partition("@")
    if not at:
        raise fail("expected id@host:port (the node id is missing)")
    if len(node_id) != 2 * ID_LENGTH or not _HEX.match(node_id):
        raise fail(f"the node id must be {2 * ID_LENGTH} hex characters, got {node_id!r}")
    host, colon, port_text = host_port.rpartition(":")
    if not colon or not host:
        raise fail("expected host:port after the @")
    if not _HOST.match(host):
        raise fail(f"bad host {host!r} (IPv6 addresses go in brackets: [::1]:26656)")
    if not port_text.isascii() or not port_text.isdigit() or len(port_text) > 5:
        raise fail(f"the port must be a number, got {port_text!r}")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise fail(f"the port must be 1..65535, got {port}")
    return PeerAddress(id=bytes.fromhex(node_id), host=host.strip("[]"), port=port)


def parse_peer_list(text: str) -> tuple[PeerAddress, ...]:
    """Comma-separated addresses (blank entries ignored); the first bad one raises."""
    return tuple(parse_peer_address(p) for p in text.split(",") if p.strip())
