"""State of the validator set.

Keys: `validators/by_key/<32-byte ed25519 pubkey>` -> Validator,
      `validators/by_operator/<operator address>/<pubkey>` -> b"" (index for voting power).

The table changes immediately (gov tallies see it at once); consensus applies the matching
ValidatorUpdate two heights later, as chain.app.abci says.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from chain.app.abci import ValidatorUpdate
from chain.app.context import Context, get_value, put_value
from chain.store.kv import KVReader, Overlay, scan_prefix
from chain.types.common import Address

BY_KEY = b"validators/by_key/"
BY_OPERATOR = b"validators/by_operator/"


class Validator(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pubkey: Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
    power: Annotated[int, msgspec.Meta(ge=0)]
    operator: Address
    name: str = ""


def get_validator(store: KVReader, pubkey: bytes) -> Validator | None:
    return get_value(store, BY_KEY + pubkey, Validator)


def all_validators(store: KVReader) -> list[Validator]:
    """The validators with power > 0, sorted by public key."""
    return [msgspec.msgpack.decode(v, type=Validator) for _, v in scan_prefix(store, BY_KEY)]


def total_power(store: KVReader) -> int:
    return sum(v.power for v in all_validators(store))


def power_of_operator(store: KVReader, operator: str) -> int:
    """Voting power of an account: the sum over the validators it operates."""
    total = 0
    for key, _ in scan_prefix(store, BY_OPERATOR + operator.encode() + b"/"):
        validator = get_validator(store, key[-32:])
        if validator is not None:
            total += validator.power
    return total


def store_validator(store: Overlay, validator: Validator) -> None:
    """Write `validator` (power 0 removes it) without telling consensus: genesis only."""
    old = get_validator(store, validator.pubkey)
    if old is not None:
        store.delete(BY_OPERATOR + old.operator.encode() + b"/" + old.pubkey)
        store.delete(BY_KEY + old.pubkey)
    if validator.power > 0:
        put_value(store, BY_KEY + validator.pubkey, validator)
        store.set(BY_OPERATOR + validator.operator.encode() + b"/" + validator.pubkey, b"")


def set_validator(ctx: Context, validator: Validator) -> None:
    """Add, change or (power 0) remove a validator, and report it to consensus."""
    store_validator(ctx.store, validator)
    ctx.validator_updates.append(ValidatorUpdate(pubkey=validator.pubkey, power=validator.power))
    ctx.emit("validator_update", pubkey=validator.pubkey.hex(), power=validator.power,
             operator=validator.operator)
