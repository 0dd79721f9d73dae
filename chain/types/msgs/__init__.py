"""Transaction messages and their registry: the one place that lists every message type.

To add a message (MsgPocCommit, MsgStartInference, ...): define it in its module's file here as a
`BaseMsg` subclass with a `tag="module/MsgName"` and a `signers` property, then add it to
`MESSAGE_TYPES` below. The union `Msg`, the tag table `MSG_TYPES` and the set of types that authz
may grant all follow from that tuple. Messages carry data and stateless checks only; they must
never read chain state.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Union

from chain.types.msgs.authz import MsgExec, MsgGrant, MsgRevoke
from chain.types.msgs.bank import MsgSend
from chain.types.msgs.base import BaseMsg, msg_tag
from chain.types.msgs.epochs import MsgSubmitSeed, MsgSubmitUnitOfComputePriceProposal
from chain.types.msgs.gov import MsgDeposit, MsgSubmitProposal, MsgVote
from chain.types.msgs.inference import MsgFinishInference, MsgStartInference
from chain.types.msgs.participants import MlNodeSpec, MsgRegisterParticipant
from chain.types.msgs.poc import MsgPocCommit, MsgPocValidation
from chain.types.msgs.rewards import MsgClaimRewards, MsgDepositCollateral, MsgWithdrawCollateral
from chain.types.msgs.validation import MsgValidation

MESSAGE_TYPES: tuple[type[BaseMsg], ...] = (
    MsgSend,
    MsgGrant,
    MsgRevoke,
    MsgExec,
    MsgSubmitProposal,
    MsgDeposit,
    MsgVote,
    MsgRegisterParticipant,
    MsgSubmitSeed,
    MsgSubmitUnitOfComputePriceProposal,
    MsgPocCommit,
    MsgPocValidation,
    MsgStartInference,
    MsgFinishInference,
    MsgValidation,
    MsgClaimRewards,
    MsgDepositCollateral,
    MsgWithdrawCollateral,
)

# The tagged union a transaction's messages are decoded as.
Msg = Union[MESSAGE_TYPES]  # type: ignore[valid-type]  # noqa: UP007 - built from a tuple

MSG_TYPES: Mapping[str, type[BaseMsg]] = MappingProxyType({msg_tag(t): t for t in MESSAGE_TYPES})
if len(MSG_TYPES) != len(MESSAGE_TYPES):
    raise RuntimeError("two message types share a tag")

__all__ = [
    "BaseMsg",
    "MlNodeSpec",
    "MsgClaimRewards",
    "MsgDepositCollateral",
    "MsgFinishInference",
    "MsgPocCommit",
    "MsgPocValidation",
    "MsgRegisterParticipant",
    "MsgStartInference",
    "MsgSubmitSeed",
    "MsgSubmitUnitOfComputePriceProposal",
    "MsgValidation",
    "MsgWithdrawCollateral",
    "MESSAGE_TYPES",
    "MSG_TYPES",
    "Msg",
    "MsgDeposit",
    "MsgExec",
    "MsgGrant",
    "MsgRevoke",
    "MsgSend",
    "MsgSubmitProposal",
    "MsgVote",
    "msg_tag",
]
