"""State of the rewards module: settled amounts waiting to be claimed, the running totals of the
emission, and vesting schedules.

Keys:
    rewards/settle/<address>   -> SettleAmount (at most one per participant: the last settlement)
    rewards/totals             -> Totals
    rewards/vesting/<address>  -> VestingSchedule

Where the coins are: the work part of every SettleAmount sits in the "work" module account, the
reward part in "rewards", and every schedule's slots in "vesting". Functions here only read and
write records; coins move in settlement, claims and vesting through chain.app.bank.state.
"""

from __future__ import annotations

import msgspec

from chain.app.context import get_value, put_value
from chain.app.params.state import get_params
from chain.app.rewards.params import RewardsParams
from chain.store.kv import KVReader, Overlay, scan_prefix

WORK_ACCOUNT = "work"
REWARDS_ACCOUNT = "rewards"
VESTING_ACCOUNT = "vesting"

SETTLE = b"rewards/settle/"
TOTALS = b"rewards/totals"
VESTING = b"rewards/vesting/"


class SettleAmount(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What `participant` may claim for `epoch` until the next settlement burns it.
    `seed_commitment` is the commitment its claim's seed must open (b"": it had none)."""

    participant: str
    epoch: int
    work: int
    reward: int
    seed_commitment: bytes = b""


class Totals(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Running totals since genesis (ngonka). `minted` is what the emission cap counts;
    `burned` covers expired claims and forfeited work; `claimed_*` what claims paid out (directly
    or into vesting)."""

    minted: int = 0
    burned: int = 0
    claimed_work: int = 0
    claimed_reward: int = 0


class VestingSchedule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """slots[0] is paid at the next settlement, slots[1] at the one after, and so on."""

    address: str
    slots: tuple[int, ...]


def rewards_params(store: KVReader) -> RewardsParams:
    return get_params(store, "rewards", RewardsParams)


# -- settle amounts --------------------------------------------------------------------------

def get_settle_amount(store: KVReader, address: str) -> SettleAmount | None:
    return get_value(store, SETTLE + address.encode(), SettleAmount)


def put_settle_amount(store: Overlay, amount: SettleAmount) -> None:
    put_value(store, SETTLE + amount.participant.encode(), amount)


def delete_settle_amount(store: Overlay, address: str) -> None:
    store.delete(SETTLE + address.encode())


def all_settle_amounts(store: KVReader) -> list[SettleAmount]:
    """Every unclaimed SettleAmount, sorted by participant address."""
    return [msgspec.msgpack.decode(v, type=SettleAmount) for _, v in scan_prefix(store, SETTLE)]


def unclaimed_work_total(store: KVReader) -> int:
    """Work coins settled but not yet claimed: part of what the "work" account must hold (with
    the participants' coin_balance and the coins on hold for disputed inferences)."""
    return sum(a.work for a in all_settle_amounts(store))


def unclaimed_reward_total(store: KVReader) -> int:
    """Reward coins settled but not yet claimed: exactly what the "rewards" account holds."""
    return sum(a.reward for a in all_settle_amounts(store))


# -- totals ----------------------------------------------------------------------------------

def get_totals(store: KVReader) -> Totals:
    return get_value(store, TOTALS, Totals) or Totals()


def add_totals(store: Overlay, *, minted: int = 0, burned: int = 0, claimed_work: int = 0,
               claimed_reward: int = 0) -> None:
    t = get_totals(store)
    put_value(store, TOTALS, Totals(minted=t.minted + minted, burned=t.burned + burned,
                                    claimed_work=t.claimed_work + claimed_work,
                                    claimed_reward=t.claimed_reward + claimed_reward))


# -- vesting schedules -----------------------------------------------------------------------

def get_schedule(store: KVReader, address: str) -> VestingSchedule | None:
    return get_value(store, VESTING + address.encode(), VestingSchedule)


def put_schedule(store: Overlay, schedule: VestingSchedule) -> None:
    """Store a schedule; one with nothing left is deleted."""
    key = VESTING + schedule.address.encode()
    if sum(schedule.slots) == 0:
        store.delete(key)
    else:
        put_value(store, key, schedule)


def all_schedules(store: KVReader) -> list[VestingSchedule]:
    """Every vesting schedule, sorted by address."""
    return [msgspec.msgpack.decode(v, type=VestingSchedule)
            for _, v in scan_prefix(store, VESTING)]


def vesting_total(store: KVReader) -> int:
    """Sum of every schedule's slots: exactly what the "vesting" account holds."""
    return sum(sum(s.slots) for s in all_schedules(store))
