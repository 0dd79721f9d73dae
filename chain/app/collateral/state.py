"""Collateral: coins a host locks to back its PoC weight, slashable while locked.

Keys:
    collateral/active/<address>                         -> int (ngonka)
    collateral/unbonding/<u64 completion epoch><address> -> int (ngonka)

Coins sit in the `collateral` module account: its balance always equals the sum of active and
unbonding amounts. A withdrawal leaves the active balance at once and is paid when epoch
`current + unbonding_epochs` becomes effective; it can be slashed until then. Slashed coins are
burned.
"""

from __future__ import annotations

import msgspec

from chain.app.bank.state import burn, escrow, release
from chain.app.collateral.params import CollateralParams
from chain.app.context import Context, get_int, put_int, u64
from chain.app.errors import TxError
from chain.app.params.state import get_params
from chain.store.kv import KVReader, scan_prefix

MODULE_NAME = "collateral"
ACTIVE = b"collateral/active/"
UNBONDING = b"collateral/unbonding/"


class CollateralError(TxError):
    codespace = "collateral"


class InsufficientCollateral(CollateralError):
    code = 1101

    def __init__(self, address: str, active: int, amount: int) -> None:
        super().__init__(f"{address} has {active} ngonka of active collateral, cannot withdraw "
                         f"{amount}")
        self.address, self.active, self.amount = address, active, amount


class Unbonding(msgspec.Struct, frozen=True):
    completion_epoch: int
    amount: int


def collateral_params(store: KVReader) -> CollateralParams:
    return get_params(store, "collateral", CollateralParams)


def active(store: KVReader, address: str) -> int:
    return get_int(store, ACTIVE + address.encode())


def unbonding(store: KVReader, address: str) -> list[Unbonding]:
    out = []
    for key, raw in scan_prefix(store, UNBONDING):
        if key[len(UNBONDING) + 8:].decode() == address:
            out.append(Unbonding(completion_epoch=int.from_bytes(key[len(UNBONDING):][:8], "big"),
                                 amount=msgspec.msgpack.decode(raw, type=int)))
    return out


def total_held(store: KVReader) -> int:
    """Active plus unbonding over every host (what the module account must hold)."""
    return (sum(msgspec.msgpack.decode(v, type=int) for _, v in scan_prefix(store, ACTIVE))
            + sum(msgspec.msgpack.decode(v, type=int) for _, v in scan_prefix(store, UNBONDING)))


def deposit(ctx: Context, address: str, amount: int) -> None:
    escrow(ctx, address, MODULE_NAME, amount)
    put_int(ctx.store, ACTIVE + address.encode(), active(ctx.store, address) + amount)
    ctx.emit("collateral_deposit", participant=address, amount=amount)


def withdraw(ctx: Context, address: str, amount: int, current_epoch: int) -> int:
    """Move `amount` from active to unbonding; returns the epoch at which it is paid."""
    have = active(ctx.store, address)
    if amount > have:
        raise InsufficientCollateral(address, have, amount)
    put_int(ctx.store, ACTIVE + address.encode(), have - amount)
    completion = current_epoch + collateral_params(ctx.store).unbonding_epochs
    key = UNBONDING + u64(completion) + address.encode()
    put_int(ctx.store, key, get_int(ctx.store, key) + amount)
    ctx.emit("collateral_withdraw", participant=address, amount=amount,
             completion_epoch=completion)
    return completion


def advance_epoch(ctx: Context, new_effective: int) -> None:
    """Pay every unbonding entry whose completion epoch is <= the new effective epoch."""
    for key, raw in scan_prefix(ctx.store, UNBONDING):
        completion = int.from_bytes(key[len(UNBONDING):][:8], "big")
        if completion > new_effective:
            break
        address = key[len(UNBONDING) + 8:].decode()
        amount = msgspec.msgpack.decode(raw, type=int)
        ctx.store.delete(key)
        release(ctx, MODULE_NAME, address, amount)
        ctx.emit("collateral_unbonded", participant=address, amount=amount)


def slash(ctx: Context, address: str, fraction_bps: int, reason: str) -> int:
    """Burn floor(amount x fraction) of the active balance and of each unbonding entry; returns
    the total burned."""
    burned = 0
    key = ACTIVE + address.encode()
    cut = active(ctx.store, address) * fraction_bps // 10_000
    if cut:
        put_int(ctx.store, key, active(ctx.store, address) - cut)
        burned += cut
    for entry in unbonding(ctx.store, address):
        cut = entry.amount * fraction_bps // 10_000
        if cut:
            ukey = UNBONDING + u64(entry.completion_epoch) + address.encode()
            put_int(ctx.store, ukey, entry.amount - cut)
            burned += cut
    if burned:
        burn(ctx, MODULE_NAME, burned)
    ctx.emit("collateral_slash", participant=address, amount=burned, reason=reason,
             fraction_bps=fraction_bps)
    return burned


def adjust_weight(store: KVReader, address: str, weight: int, epoch: int) -> int:
    """The weight collateral lets a host keep in `epoch`: all of it until the grace period ends,
    then base_ratio x weight plus what its active collateral backs (at most the rest)."""
    params = collateral_params(store)
    if epoch <= params.grace_period_end_epoch:
        return weight
    base = weight * params.base_weight_ratio_bps // 10_000
    backed = active(store, address) // params.collateral_per_weight_unit
    return base + min(weight - base, backed)
