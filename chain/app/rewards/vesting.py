"""Stream vesting of claimed coins (reference 7.7): a claim with a vesting period of N epochs moves
the coins into the "vesting" account and spreads them over the next N settlements.

add_vested(amount, N): the schedule is padded to N slots; each of the first N slots gets
amount // N and slot 0 also gets amount % N; amounts merge into slots already there. Each
settlement pays slot 0 of every schedule and drops it (empty schedules are deleted), so the
first part unlocks at the first settlement after the claim. The "vesting" account always holds
exactly the sum of all slots; nothing here creates or destroys coins.
"""

from __future__ import annotations

from chain.app.auth.state import module_address
from chain.app.bank.state import escrow, release
from chain.app.context import Context
from chain.app.rewards.state import (
    VESTING_ACCOUNT,
    VestingSchedule,
    all_schedules,
    get_schedule,
    put_schedule,
)


def spread(slots: tuple[int, ...], amount: int, epochs: int) -> tuple[int, ...]:
    """`slots` with `amount` added over the first `epochs` slots (remainder to slot 0)."""
    if epochs < 1:
        raise ValueError(f"a vesting period is at least 1 epoch, got {epochs}")
    out = list(slots) + [0] * max(epochs - len(slots), 0)
    share, rest = divmod(amount, epochs)
    for i in range(epochs):
        out[i] += share
    out[0] += rest
    return tuple(out)


def add_vested(ctx: Context, from_module: str, address: str, amount: int, epochs: int) -> None:
    """Move `amount` from `from_module`'s account into vesting for `address` over `epochs`."""
    if amount == 0:
        return
    escrow(ctx, module_address(from_module), VESTING_ACCOUNT, amount)
    old = get_schedule(ctx.store, address)
    slots = spread(old.slots if old else (), amount, epochs)
    put_schedule(ctx.store, VestingSchedule(address=address, slots=slots))
    ctx.emit("vesting_added", participant=address, amount=amount, epochs=epochs,
             source=from_module)


def advance_vesting(ctx: Context) -> int:
    """Pay slot 0 of every schedule (address order) and drop it; returns the total paid."""
    paid = 0
    for schedule in all_schedules(ctx.store):
        first, rest = schedule.slots[0], schedule.slots[1:]
        if first:
            release(ctx, VESTING_ACCOUNT, schedule.address, first)
            paid += first
            ctx.emit("vesting_paid", participant=schedule.address, amount=first,
                     slots_left=len(rest))
        put_schedule(ctx.store, VestingSchedule(address=schedule.address, slots=rest))
    return paid
