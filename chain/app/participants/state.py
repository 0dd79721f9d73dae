"""State of the participants module: one record per registered host.

Keys:
    participants/p/<address>              -> Participant
    participants/by_validator_key/<32 B>  -> address (a consensus key belongs to one host)

`coin_balance` is the host's unsettled work coins (ngonka, never negative: every debit is of
coins credited in the same settlement period); `stats` counts this settlement period's work and
is reset at settlement. Other modules read and update records through these functions only.
"""

from __future__ import annotations

from typing import Literal

import msgspec

import native
from chain.app.auth.state import GRANT, get_account, get_grant
from chain.app.context import Context, get_value, put_value
from chain.app.errors import TxError
from chain.crypto.address import address_from_pubkey
from chain.store.kv import KVReader, Overlay, scan_prefix
from chain.types.msgs.participants import MlNodeSpec

PARTICIPANT = b"participants/p/"
BY_VALIDATOR_KEY = b"participants/by_validator_key/"

Status = Literal["active", "ramping", "invalid"]
ACTIVE: Status = "active"
RAMPING: Status = "ramping"
INVALID: Status = "invalid"


class ParticipantError(TxError):
    codespace = "participants"


class ParticipantNotFound(ParticipantError):
    code = 501

    def __init__(self, address: str, role: str = "participant") -> None:
        super().__init__(f"{role} {address} is not a registered participant")
        self.address, self.role = address, role


class EpochStats(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Work in the current settlement period (reset when it is settled)."""

    inference_count: int = 0        # completed inferences it executed
    missed_requests: int = 0        # inferences assigned to it that expired unfinished
    validated: int = 0              # its inferences that passed validation
    invalidated: int = 0            # its inferences invalidated by vote
    earned: int = 0                 # work coins credited (before validators' shares)


class Participant(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    address: str
    inference_url: str
    validator_key: bytes
    ml_nodes: tuple[MlNodeSpec, ...]
    join_height: int
    status: Status = ACTIVE
    worker_key: bytes | None = None
    coin_balance: int = 0
    consecutive_invalid: int = 0
    epochs_completed: int = 0
    stats: EpochStats = EpochStats()


def get_participant(store: KVReader, address: str) -> Participant | None:
    return get_value(store, PARTICIPANT + address.encode(), Participant)


def require_participant(store: KVReader, address: str, role: str = "participant") -> Participant:
    participant = get_participant(store, address)
    if participant is None:
        raise ParticipantNotFound(address, role)
    return participant


def put_participant(store: Overlay, participant: Participant) -> None:
    if participant.coin_balance < 0:
        raise ValueError(f"coin_balance of {participant.address} would be negative")
    put_value(store, PARTICIPANT + participant.address.encode(), participant)


def all_participants(store: KVReader) -> list[Participant]:
    """Every participant, sorted by address."""
    return [msgspec.msgpack.decode(v, type=Participant)
            for _, v in scan_prefix(store, PARTICIPANT)]


def owner_of_validator_key(store: KVReader, key: bytes) -> str | None:
    raw = store.get(BY_VALIDATOR_KEY + key)
    return None if raw is None else raw.decode()


def set_validator_key_owner(store: Overlay, old: bytes | None, new: bytes, address: str) -> None:
    if old is not None and old != new:
        store.delete(BY_VALIDATOR_KEY + old)
    store.set(BY_VALIDATOR_KEY + new, address.encode())


def signing_keys(ctx: Context, address: str, msg_type: str) -> list[bytes]:
    """Public keys whose signature counts as `address`'s for messages of `msg_type`: its own
    account key and those of its grantees holding a usable grant of that type (warm keys).

    A grantee's key is its account's recorded key; a warm key that has not signed a tx yet has
    none, so the participant's published `worker_key` stands in for it when it is that grantee's
    key (the grant, not the publication, is what authorises it)."""
    keys = []
    account = get_account(ctx.store, address)
    if account is not None and account.pubkey is not None:
        keys.append(account.pubkey)
    participant = get_participant(ctx.store, address)
    worker_key = participant.worker_key if participant is not None else None
    prefix = GRANT + address.encode() + b"/"
    for key, _ in scan_prefix(ctx.store, prefix):
        grantee, _, tag = key[len(prefix):].decode().partition("/")
        if tag != msg_type:
            continue
        grant = get_grant(ctx.store, address, grantee, tag)
        if grant is None or (grant.expiration_height is not None
                             and grant.expiration_height < ctx.height):
            continue
        grantee_account = get_account(ctx.store, grantee)
        if grantee_account is not None and grantee_account.pubkey is not None:
            keys.append(grantee_account.pubkey)
        elif worker_key is not None and address_from_pubkey(worker_key) == grantee:
            keys.append(worker_key)
    return keys


def signed_by(ctx: Context, address: str, msg_type: str, message: bytes, signature: bytes) -> bool:
    """True if `signature` over `message` verifies under one of `signing_keys(...)`."""
    return any(native.verify_secp256k1(key, message, signature)
               for key in signing_keys(ctx, address, msg_type))
