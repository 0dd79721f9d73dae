"""Messages of the participants module: a host registers (or updates) itself and declares its ML
nodes and the models each serves.

Stateless checks only (URL shape, key lengths, unique node ids). Whether the models exist is
decided against the model registry by the handler.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

import msgspec

from chain.types.common import AccountPubKey, Address, check_address
from chain.types.msgs.base import BaseMsg

MAX_ML_NODES = 64
MAX_NODE_MODELS = 16
MAX_URL_CHARS = 256

# A model id as the registry spells it, e.g. "Qwen/Qwen2.5-7B-Instruct".
ModelId = Annotated[str, msgspec.Meta(min_length=1, max_length=128,
                                      pattern=r"^[A-Za-z0-9][A-Za-z0-9._/:-]*$")]
NodeName = Annotated[str, msgspec.Meta(min_length=1, max_length=64,
                                       pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
Ed25519Key = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]


def check_url(field: str, url: str) -> None:
    """An absolute http(s) URL with a host, no credentials, no fragment."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a bad port
    except ValueError as e:
        raise ValueError(f"{field}: {e}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{field}: {url!r} is not an http(s) URL with a host")
    if parts.username is not None or parts.password is not None or parts.fragment:
        raise ValueError(f"{field}: {url!r} must not carry credentials or a fragment")
    del port


class MlNodeSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One ML node of a host (its id is the host's own name for it) and the models it serves."""

    node_id: NodeName
    models: Annotated[tuple[ModelId, ...], msgspec.Meta(max_length=MAX_NODE_MODELS)] = ()

    def __post_init__(self) -> None:
        if len(set(self.models)) != len(self.models):
            raise ValueError(f"node {self.node_id} lists a model twice")


class MsgRegisterParticipant(BaseMsg, tag="participants/MsgRegisterParticipant"):
    """Register `participant`, or update its URL, keys and ML nodes (its history is kept)."""

    participant: Address
    inference_url: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_URL_CHARS)]
    # ed25519 consensus key: the participant's voting power is given to this key.
    validator_key: Ed25519Key
    ml_nodes: Annotated[tuple[MlNodeSpec, ...], msgspec.Meta(max_length=MAX_ML_NODES)] = ()
    # The compressed secp256k1 key of the host's warm (operational) account, published so that
    # others can tell which account acts for it. It grants nothing: the authority to act for
    # the host is an authz grant from this (cold) account.
    worker_key: AccountPubKey | None = None

    def __post_init__(self) -> None:
        check_address("participant", self.participant)
        check_url("inference_url", self.inference_url)
        ids = [n.node_id for n in self.ml_nodes]
        if len(set(ids)) != len(ids):
            raise ValueError("two ML nodes share a node_id")

    @property
    def signers(self) -> tuple[str, ...]:
        return (self.participant,)
