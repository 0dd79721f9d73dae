"""Punishing a validator that double-signed (PROTOCOL.md, "evidence").

Consensus admits a `DuplicateVoteEvidence` into a block only if it proves something (two
conflicting votes, both signed by a validator of that height's set, recent, not on chain yet);
`finalize_block` hands the block's evidence here before any tx runs. For each piece, in block
order:

1. the 20-byte validator id is mapped to a consensus key the chain knows: a key of the
   validator table, or a participant's registered key (the table forgets keys at power 0);
   an unknown id, or a key tombstoned already, changes nothing (event `double_sign_ignored`);
2. the host = the key's registered participant, else the validator's operator;
3. its weight in the effective epoch's group (and in the next epoch's group if formed) goes to
   0 and the key's validator power to 0 at once (validator updates of this block, applied by
   consensus two heights later) - unless that would leave no validator with power (nor, for
   the next group, no member with weight): a set of one Byzantine validator cannot be mended
   by removing it, and an empty set would halt the chain, so its power then stays;
4. `slash_double_sign_bps` of the host's collateral (active and unbonding) is burned;
5. the key is tombstoned (state.DoubleSign) and `double_sign` is emitted.

Integers only; the outcome depends on the block's evidence and state alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from chain.app.collateral.state import collateral_params, slash
from chain.app.context import Context
from chain.app.epochs.state import (
    effective_epoch,
    get_group,
    get_member,
    members,
    remove_member,
)
from chain.app.evidence.state import DoubleSign, get_tombstone, put_tombstone
from chain.app.participants.state import BY_VALIDATOR_KEY, owner_of_validator_key
from chain.app.validators.state import BY_KEY, get_validator, set_validator, total_power
from chain.crypto.ed25519 import node_id
from chain.store.kv import KVReader, scan_prefix
from chain.types.evidence import DuplicateVoteEvidence

REASON = "double_sign"


def known_keys(store: KVReader) -> dict[bytes, bytes]:
    """Validator id -> consensus key, over the validator table and participants' keys."""
    keys = {}
    for prefix in (BY_VALIDATOR_KEY, BY_KEY):
        for key, _ in scan_prefix(store, prefix):
            pubkey = key[len(prefix):]
            if len(pubkey) == 32:
                keys[node_id(pubkey)] = pubkey
    return keys


def punish_double_signs(ctx: Context, evidence: Sequence[DuplicateVoteEvidence]) -> None:
    """Apply every piece of the block's evidence, in block order."""
    if not evidence:
        return
    keys = known_keys(ctx.store)
    for item in evidence:
        punish(ctx, item, keys)


def punish(ctx: Context, evidence: DuplicateVoteEvidence,
           keys: dict[bytes, bytes]) -> DoubleSign | None:
    """Punish the validator of `evidence` (None if it was ignored); `keys` from `known_keys`."""
    pubkey = keys.get(evidence.validator)
    if pubkey is None:
        _ignored(ctx, evidence, "unknown validator")
        return None
    if get_tombstone(ctx.store, pubkey) is not None:
        _ignored(ctx, evidence, "already punished")
        return None
    store = ctx.store
    validator = get_validator(store, pubkey)
    host = owner_of_validator_key(store, pubkey) or (validator.operator if validator else "")
    power = validator.power if validator is not None else 0
    removed = False
    if _leaves_power(store, host, pubkey):
        effective = effective_epoch(store)
        if host:
            remove_member(ctx, effective, host, REASON)
            if _others_weigh(store, effective + 1, host):
                remove_member(ctx, effective + 1, host, REASON)
        validator = get_validator(store, pubkey)  # remove_member zeroes the member's own key
        if validator is not None:
            set_validator(ctx, msgspec.structs.replace(validator, power=0))
        removed = True
    bps = collateral_params(store).slash_double_sign_bps
    burned = slash(ctx, host, bps, REASON) if host else 0
    record = DoubleSign(
        validator=evidence.validator, pubkey=pubkey, participant=host,
        evidence_hash=evidence.hash, evidence_height=evidence.height, height=ctx.height,
        power=power, power_removed=removed, collateral_burned=burned, slash_bps=bps)
    put_tombstone(store, record)
    ctx.emit("double_sign", validator=evidence.validator.hex(), pubkey=pubkey.hex(),
             participant=host, evidence_height=evidence.height, round=evidence.vote_a.round,
             vote_type=evidence.vote_a.type.name.lower(), power=power, power_removed=removed,
             collateral_burned=burned, slash_bps=bps, evidence=evidence.hash.hex())
    return record


def _leaves_power(store: KVReader, host: str, pubkey: bytes) -> bool:
    """Whether some validator keeps power once `pubkey` and the key of `host`'s member record
    in the effective epoch are at 0."""
    gone = {pubkey}
    member = get_member(store, effective_epoch(store), host)
    if member is not None and member.weight > 0:
        gone.add(member.validator_key)
    lost = 0
    for key in gone:
        validator = get_validator(store, key)
        lost += validator.power if validator is not None else 0
    return total_power(store) > lost


def _others_weigh(store: KVReader, epoch: int, host: str) -> bool:
    """Whether `epoch`'s group is formed and a member other than `host` has weight in it (it
    becomes the validator set at the switch, which must not be empty)."""
    return get_group(store, epoch) is not None and any(
        m.weight > 0 and m.address != host for m in members(store, epoch))


def _ignored(ctx: Context, evidence: DuplicateVoteEvidence, reason: str) -> None:
    ctx.emit("double_sign_ignored", validator=evidence.validator.hex(),
             evidence_height=evidence.height, evidence=evidence.hash.hex(), reason=reason)
