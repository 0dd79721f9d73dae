"""P2P: authenticated, encrypted TCP connections between chain nodes, gossip and block sync.

Wire (DESIGN.md sections 3-4): an X25519 + BLAKE3 + ChaCha20-Poly1305 secret connection in which
each node proves its ed25519 node key (`handshake`, `secret_connection`, `frames`), then frames of
one canonical MessagePack message each (`messages`), each frame at most `max_frame_bytes`.

Contract with the node shell (`Network`, in `network`):

    net = Network(node_key, chain_id=genesis.chain_id, genesis_hash=genesis.hash,
                  config=NetworkConfig(listen_host=..., listen_port=..., moniker=...,
                                       persistent_peers=parse_peer_list(...)))
    async with trio.open_nursery() as n:
        await n.start(net.run)              # or: async with open_network(key, ...) as net
        async for event in net.events:     # the node's one receive loop
            match event:
                case PeerConnected(peer_id, info, outbound, remote): ...
                case Received(peer_id, TxMsg(tx)): ...      # also ProposalMsg, VoteMsg,
                case PeerDisconnected(peer_id, reason): ...  # StatusMsg, BlockRequest, ...

* `events` is one bounded channel; per peer, PeerConnected comes before that peer's messages
  and PeerDisconnected after them. The node must keep reading it: when it is full, peers'
  readers wait (back-pressure), they never buffer without bound.
* `broadcast(msg, except_peer=None) -> int` and `send(peer_id, msg) -> bool` are synchronous and
  never block: each peer has a bounded queue and a full queue drops the message for that peer.
  A peer that does not read for `write_timeout_s` is disconnected.
* Gossip (TxMsg, ProposalMsg, VoteMsg) is de-duplicated by the hash of its canonical bytes: a
  message reaches `events` once however many peers relay it, and what we broadcast or were sent
  never comes back. So the node relays freshly valid gossip with
  `broadcast(msg, except_peer=sender)` without creating loops.
* `disconnect(peer_id, reason)` and `ban(peer_id, reason, duration_s)` are for the node's
  verdicts (an invalid signature, a block that fails validation): p2p checks frames, keys and
  encodings, never signatures of votes or txs, never chain rules.
* Block sync: StatusMsg announces a node's height range; BlockRequest is answered with
  BlockResponse(block, commit) or NoBlockResponse(height) by whoever owns the block store.
* Persistent peers are redialed forever with capped, jittered exponential back-off; there is one
  connection per peer id (crossed dials resolved alike on both ends, silently: no extra
  PeerConnected/PeerDisconnected). Delivery is best effort: what is queued on a connection that
  drops, or that loses a duplicate tie-break, is lost; consensus re-gossips and block sync
  re-requests, as in Tendermint.
* `peers` (id -> PeerStatus), `wait_peers(condition)`, `wait_connected(peer_id)` and
  `wait_disconnected(peer_id)` for status and tests; `run` may be called once per Network.
* Building the config from the node's `[p2p]` section (chain.node.config.P2PConfig):
  `host, port = split_host_port(p2p.listen)`; `NetworkConfig(listen_host=host,
  listen_port=port, external_address=p2p.external_address, moniker=config.moniker,
  persistent_peers=tuple(parse_peer_address(p) for p in p2p.persistent_peers),
  max_frame_bytes=p2p.max_frame_bytes, dial_backoff_max_s=p2p.dial_backoff_max_s)`.

This package must never check consensus or application validity, never block the caller of
`broadcast`/`send`, and never run a task outside the nursery of `Network.run`.
"""

from chain.p2p.address import PeerAddress, parse_peer_address, parse_peer_list
from chain.p2p.errors import (
    BadAuthentication,
    BadMac,
    BadMessage,
    FrameTooLarge,
    FrameTooShort,
    HandshakeFailed,
    HandshakeTimeout,
    InvalidPeerAddress,
    P2PError,
    PeerBanned,
    PeerClosed,
    PeerRefused,
    PeerTimeout,
    ProtocolViolation,
    SelfConnection,
    UnexpectedPeer,
    WrongChain,
)
from chain.p2p.handshake import PROTOCOL_VERSION, NodeInfo
from chain.p2p.messages import (
    MAX_MESSAGE_BYTES,
    BlockRequest,
    BlockResponse,
    EvidenceMsg,
    Message,
    NoBlockResponse,
    ProposalMsg,
    StatusMsg,
    TxMsg,
    VoteMsg,
    decode_message,
    encode_message,
)
from chain.p2p.network import (
    Network,
    NetworkConfig,
    NetworkEvent,
    PeerConnected,
    PeerDisconnected,
    PeerStatus,
    Received,
    open_network,
)
from chain.p2p.secret_connection import SecretConnection, secret_handshake

__all__ = [
    "BadAuthentication",
    "BadMac",
    "BadMessage",
    "BlockRequest",
    "BlockResponse",
    "EvidenceMsg",
    "FrameTooLarge",
    "FrameTooShort",
    "HandshakeFailed",
    "HandshakeTimeout",
    "InvalidPeerAddress",
    "MAX_MESSAGE_BYTES",
    "Message",
    "Network",
    "NetworkConfig",
    "NetworkEvent",
    "NoBlockResponse",
    "NodeInfo",
    "P2PError",
    "PROTOCOL_VERSION",
    "PeerAddress",
    "PeerBanned",
    "PeerClosed",
    "PeerConnected",
    "PeerDisconnected",
    "PeerRefused",
    "PeerStatus",
    "PeerTimeout",
    "ProposalMsg",
    "ProtocolViolation",
    "Received",
    "SecretConnection",
    "SelfConnection",
    "StatusMsg",
    "TxMsg",
    "UnexpectedPeer",
    "VoteMsg",
    "WrongChain",
    "decode_message",
    "encode_message",
    "secret_handshake",
    "open_network",
    "parse_peer_address",
    "parse_peer_list",
]
