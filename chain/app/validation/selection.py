"""Which inferences a validator must re-execute: one pure function shared by the chain (claims)
and the API node (its validation worker). Being built: see chain/app/PROTOCOL.md, validation."""

from __future__ import annotations

from chain.store.kv import KVReader


def required_validations(store: KVReader, epoch: int, validator: str, seed: bytes) -> list[bytes]:
    """Ids of `epoch`'s inferences that `validator`, whose revealed seed for `epoch` is `seed`,
    had to validate (MsgValidation) before it may claim `epoch`'s rewards. Sorted."""
    del store, epoch, validator, seed
    return []
