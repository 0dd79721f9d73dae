"""Messages of the authz module: an account (granter) lets another (grantee) send named message
types on its behalf. This is how a host's cold key lets its warm key, held by the API node, act for
it (DESIGN.md section 3, warm keys).

The checks here are stateless: known tags, no duplicates, granter differs from grantee, no MsgExec
inside MsgExec. Whether a grant exists and has not expired is decided by the auth handler against
state, never here.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

# The registry (`Msg`, `MSG_TYPES`) is defined by the package, which imports this module first.
# Importing the package object here is safe during that circular import; its attributes are only
# read later: `Msg` when a decoder resolves the string annotation of `MsgExec.msgs`, `MSG_TYPES`
# when a message is checked.
import chain.types.msgs
from chain.types.common import Address, Height, check_address
from chain.types.msgs.base import BaseMsg

EXEC_TAG = "authz/MsgExec"
# A valid list names each known tag at most once; the cap bounds the work before that check and
# leaves room for the registry to grow.
MAX_GRANT_MSG_TYPES = 256
MAX_EXEC_MSGS = 64

MsgTypes = Annotated[
    tuple[Annotated[str, msgspec.Meta(min_length=1, max_length=64)], ...],
    msgspec.Meta(min_length=1, max_length=MAX_GRANT_MSG_TYPES),
]


def _check_parties(granter: str, grantee: str) -> None:
    check_address("granter", granter)
    check_address("grantee", grantee)
    if granter == grantee:
        raise ValueError(f"granter and grantee are the same account {granter}")


def _check_msg_types(msg_types: tuple[str, ...]) -> None:
    known = chain.types.msgs.MSG_TYPES
    if not msg_types:
        raise ValueError("msg_types is empty")
    seen: set[str] = set()
    for tag in msg_types:
        if tag not in known:
            raise ValueError(f"unknown message type {tag!r} in msg_types")
        if tag == EXEC_TAG:
            # MsgExec cannot be nested, so a grant of it could never be used.
            raise ValueError(f"{EXEC_TAG} cannot be granted")
        if tag in seen:
            raise ValueError(f"message type {tag!r} appears twice in msg_types")
        seen.add(tag)


class MsgGrant(BaseMsg, tag="authz/MsgGrant"):
    """`granter` allows `grantee` to send `msg_types` for it, until `expiration_height` if set."""

    granter: Address
    grantee: Address
    msg_types: MsgTypes
    expiration_height: Height | None

    def __post_init__(self) -> None:
        _check_parties(self.granter, self.grantee)
        _check_msg_types(self.msg_types)

    @property
    def signers(self) -> tuple[str, ...]:
        return (self.granter,)


class MsgRevoke(BaseMsg, tag="authz/MsgRevoke"):
    """`granter` withdraws the grants of `msg_types` it gave `grantee`."""

    granter: Address
    grantee: Address
    msg_types: MsgTypes

    def __post_init__(self) -> None:
        _check_parties(self.granter, self.grantee)
        _check_msg_types(self.msg_types)

    @property
    def signers(self) -> tuple[str, ...]:
        return (self.granter,)


class MsgExec(BaseMsg, tag=EXEC_TAG):
    """`grantee` sends `msgs` on behalf of their signers (the granters), under their grants.

    The grantee signs the transaction; each inner message names its granter as its own signer,
    and the state machine checks a grant from that signer to the grantee for its type.
    """

    grantee: Address
    # `Msg` includes MsgExec itself and exists only once every message is defined; with
    # `from __future__ import annotations` this stays a string until a decoder resolves it.
    msgs: Annotated[
        tuple[chain.types.msgs.Msg, ...], msgspec.Meta(min_length=1, max_length=MAX_EXEC_MSGS)
    ]

    def __post_init__(self) -> None:
        check_address("grantee", self.grantee)
        if not self.msgs:
            raise ValueError("MsgExec has no messages")
        for i, msg in enumerate(self.msgs):
            if isinstance(msg, MsgExec):
                raise ValueError(f"MsgExec cannot contain MsgExec (msgs[{i}])")

    @property
    def signers(self) -> tuple[str, ...]:
        return (self.grantee,)
