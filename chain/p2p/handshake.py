"""The pure half of the p2p handshake: session keys, the authentication proof, NodeInfo checks.

The handshake (run over a socket by `secret_connection.handshake`) goes:

1. Each side sends a fresh X25519 ephemeral public key (32 raw bytes).
2. Both compute the X25519 shared secret and, with the two ephemeral keys sorted (lo, hi),
   derive 96 bytes with BLAKE3 in key-derivation mode (context `KDF_CONTEXT`) over
   shared || lo || hi: the key for frames lo -> hi, the key for frames hi -> lo, and a 32-byte
   challenge that binds this one session (both ephemeral keys and the secret only the two
   endpoints know).
3. Over the now encrypted channel each side sends `AuthMessage(pubkey, signature)`: its ed25519
   node key and its signature of AUTH_DOMAIN || challenge. A man in the middle runs two sessions
   with two different challenges, so it cannot relay a valid proof from one to the other.
4. Each side sends its `NodeInfo`; the receiver refuses a peer whose NodeInfo names another id
   than the proven key, another protocol version, chain id or genesis, a connection to itself,
   or (when it dialed) a peer other than the one it meant to reach.

No I/O, no clock and no randomness here: the ephemeral secret is passed in.
"""

from __future__ import annotations

from typing import Annotated

import blake3
import msgspec
import nacl.bindings
import nacl.exceptions

from chain.crypto import ed25519
from chain.p2p.errors import BadAuthentication, SelfConnection, UnexpectedPeer, WrongChain
from chain.types.common import ChainId, Hash32, NodeId

PROTOCOL_VERSION = 1
KDF_CONTEXT = "gonka p2p secret connection v1 2025-01 session keys"
AUTH_DOMAIN = b"gonka/p2p-auth/v1\x00"
EPHEMERAL_KEY_BYTES = 32
# Handshake frames (AuthMessage, NodeInfo) are a few hundred bytes; refuse anything larger early.
HANDSHAKE_MAX_FRAME_BYTES = 4096


class AuthMessage(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Proof of the node key: its public key and its signature of the session challenge."""

    pubkey: Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
    signature: Annotated[bytes, msgspec.Meta(min_length=64, max_length=64)]


class NodeInfo(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a node says about itself once its key is proven; compared field by field."""

    protocol_version: Annotated[int, msgspec.Meta(ge=0, le=2**16)]
    node_id: NodeId
    chain_id: ChainId
    genesis_hash: Hash32
    # Where others may dial it (host:port); informational until peer exchange exists.
    listen_address: Annotated[str, msgspec.Meta(max_length=300)]
    moniker: Annotated[str, msgspec.Meta(max_length=64)]


class SessionKeys(msgspec.Struct, frozen=True):
    send_key: bytes
    receive_key: bytes
    challenge: bytes


def ephemeral_public_key(secret: bytes) -> bytes:
    """The X25519 public key of a 32-byte ephemeral secret."""
    return nacl.bindings.crypto_scalarmult_base(secret)


def derive_session(our_secret: bytes, our_public: bytes, their_public: bytes) -> SessionKeys:
    """Directional frame keys and the challenge; BadAuthentication for a degenerate peer key."""
    if len(their_public) != EPHEMERAL_KEY_BYTES:
        raise BadAuthentication(f"ephemeral key of {len(their_public)} bytes")
    if their_public == our_public:
        # A reflected key would make both directions share one key stream.
        raise BadAuthentication("the peer echoed our ephemeral key")
    try:
        shared = nacl.bindings.crypto_scalarmult(our_secret, their_public)
    except nacl.exceptions.RuntimeError:
        # libsodium refuses low-order points (an all-zero secret anyone could compute).
        raise BadAuthentication("the peer's ephemeral key is a low-order point") from None
    lo, hi = sorted((our_public, their_public))
    okm = blake3.blake3(shared + lo + hi, derive_key_context=KDF_CONTEXT).digest(length=96)
    lo_to_hi, hi_to_lo, challenge = okm[:32], okm[32:64], okm[64:]
    if our_public == lo:
        return SessionKeys(send_key=lo_to_hi, receive_key=hi_to_lo, challenge=challenge)
    return SessionKeys(send_key=hi_to_lo, receive_key=lo_to_hi, challenge=challenge)


def auth_message(key: ed25519.PrivateKey, challenge: bytes) -> AuthMessage:
    return AuthMessage(pubkey=key.public_key, signature=key.sign(AUTH_DOMAIN + challenge))


def verify_auth(auth: AuthMessage, challenge: bytes) -> bytes:
    """The node id `auth` proves for this session; BadAuthentication if the signature fails."""
    if not ed25519.verify(auth.pubkey, AUTH_DOMAIN + challenge, auth.signature):
        raise BadAuthentication("the peer's signature of the session challenge is invalid")
    return ed25519.node_id(auth.pubkey)


def check_identity(proven_id: bytes, our_id: bytes, expected_id: bytes | None) -> None:
    """Refuse ourselves and, when we dialed a known id, anyone else."""
    if proven_id == our_id:
        raise SelfConnection("connected to ourselves", proven_id)
    if expected_id is not None and proven_id != expected_id:
        raise UnexpectedPeer(
            f"dialed {expected_id.hex()} but the peer proved {proven_id.hex()}", proven_id)


def check_node_info(ours: NodeInfo, theirs: NodeInfo, proven_id: bytes) -> None:
    """Refuse a peer whose NodeInfo lies about its id or belongs to another network."""
    if theirs.node_id != proven_id:
        raise UnexpectedPeer(
            f"NodeInfo names {theirs.node_id.hex()} but the key proves {proven_id.hex()}",
            proven_id)
    if theirs.protocol_version != ours.protocol_version:
        raise WrongChain(
            f"protocol version {theirs.protocol_version}, we speak {ours.protocol_version}",
            proven_id)
    if theirs.chain_id != ours.chain_id:
        raise WrongChain(f"chain id {theirs.chain_id!r}, ours is {ours.chain_id!r}", proven_id)
    if theirs.genesis_hash != ours.genesis_hash:
        raise WrongChain(
            f"genesis hash {theirs.genesis_hash.hex()}, ours is {ours.genesis_hash.hex()}",
            proven_id)
