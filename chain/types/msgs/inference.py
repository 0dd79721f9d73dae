"""Messages of the inference module: the transfer agent's start record and the executor's finish
record of one inference. They carry hashes and token counts, never payloads. Either may arrive
first; each carries what is needed to check the developer's and transfer agent's signatures
(chain.types.inference). Stateless checks only.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from chain.crypto.address import address_from_pubkey
from chain.types.common import AccountPubKey, Address, Hash32, Signature, TimeNs, check_address
from chain.types.msgs.base import BaseMsg
from chain.types.msgs.participants import ModelId

# Token counts: far above any context window, far below overflow when multiplied by a price.
MAX_TOKENS = 10_000_000
Tokens = Annotated[int, msgspec.Meta(ge=0, le=MAX_TOKENS)]
MaxTokens = Annotated[int, msgspec.Meta(ge=1, le=MAX_TOKENS)]
RequestTime = Annotated[int, msgspec.Meta(ge=1)]


def _check_parties(msg: msgspec.Struct, *fields: str) -> None:
    for name in fields:
        check_address(name, getattr(msg, name))
    # The developer need never have sent a tx: its key travels with the record.
    if address_from_pubkey(msg.requester_pubkey) != msg.requested_by:  # type: ignore[attr-defined]
        raise ValueError("requester_pubkey is not the key of requested_by")


class MsgStartInference(BaseMsg, tag="inference/MsgStartInference"):
    transfer_agent: Address
    # The developer's signature over request_sign_bytes: the inference's id.
    inference_id: Signature
    requested_by: Address
    requester_pubkey: AccountPubKey
    executor: Address
    model: ModelId
    prompt_hash: Hash32
    prompt_tokens: Tokens
    max_tokens: MaxTokens
    request_timestamp_ns: RequestTime
    transfer_signature: Signature

    def __post_init__(self) -> None:
        _check_parties(self, "transfer_agent", "requested_by", "executor")

    @property
    def signers(self) -> tuple[str, ...]:
        return (self.transfer_agent,)


class MsgFinishInference(BaseMsg, tag="inference/MsgFinishInference"):
    executor: Address
    inference_id: Signature
    requested_by: Address
    requester_pubkey: AccountPubKey
    transfer_agent: Address
    model: ModelId
    prompt_hash: Hash32
    request_timestamp_ns: RequestTime
    transfer_signature: Signature
    response_hash: Hash32
    prompt_tokens: Tokens
    completion_tokens: Tokens
    executor_signature: Signature

    def __post_init__(self) -> None:
        _check_parties(self, "executor", "requested_by", "transfer_agent")

    @property
    def signers(self) -> tuple[str, ...]:
        return (self.executor,)


__all__ = ["MsgFinishInference", "MsgStartInference", "TimeNs"]
