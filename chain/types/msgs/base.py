"""What every transaction message is: a frozen, tagged struct that knows who must sign it.

The tag (`type` field, e.g. "bank/MsgSend") selects the message type when a transaction is
decoded; the full set of tags is the registry in `chain.types.msgs`. A message carries data and
stateless checks only: it must never look at chain state (balances, grants), which is the job of
the module handlers in `chain.app`.
"""

from __future__ import annotations

import msgspec


class BaseMsg(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type"):
    """Base of the transaction messages; subclasses pass `tag="module/MsgName"`."""

    @property
    def signers(self) -> tuple[str, ...]:
        """Addresses whose signature the message needs (the tx signer must be each of them)."""
        raise NotImplementedError(f"{type(self).__name__} does not say who signs it")


def msg_tag(cls: type[BaseMsg]) -> str:
    """The wire tag of a message type, e.g. "bank/MsgSend"."""
    tag = cls.__struct_config__.tag
    if not isinstance(tag, str):
        raise TypeError(f"{cls.__name__} has no string tag")
    return tag
