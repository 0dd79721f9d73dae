"""Queries of the rewards module (read committed state only).

    rewards/settlement {address}  -> the participant's unclaimed SettleAmount (3 if none)
    rewards/emission {epoch}      -> {epoch, amount (before the cap), capped (what settling it
                                      now would mint at most)}
    rewards/totals                -> Totals {minted, burned, claimed_work, claimed_reward}
    rewards/vesting {address}     -> {address, slots, total} (empty slots if none)
    rewards/invariants            -> module account balances against the records
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from chain.app.auth.state import module_address
from chain.app.bank.state import balance
from chain.app.errors import NotFound
from chain.app.queryparams import address_param, int_param
from chain.app.rewards import state
from chain.app.rewards.emission import capped_emission, epoch_emission
from chain.store.kv import KVReader


class EmissionView(msgspec.Struct, frozen=True):
    epoch: int
    amount: int
    capped: int


class VestingView(msgspec.Struct, frozen=True):
    address: str
    slots: tuple[int, ...]
    total: int


class InvariantsView(msgspec.Struct, frozen=True):
    """`rewards_balance == unclaimed_rewards` and `vesting_balance == vesting_scheduled` must
    hold; `unclaimed_work` is this module's part of what the "work" account holds."""

    rewards_balance: int
    unclaimed_rewards: int
    vesting_balance: int
    vesting_scheduled: int
    unclaimed_work: int
    ok: bool


def query_settlement(store: KVReader, params: Mapping[str, str]) -> state.SettleAmount:
    address = address_param(params, "address")
    amount = state.get_settle_amount(store, address)
    if amount is None:
        raise NotFound(f"{address} has no unclaimed settlement")
    return amount


def query_emission(store: KVReader, params: Mapping[str, str]) -> EmissionView:
    epoch = int_param(params, "epoch")
    p = state.rewards_params(store)
    return EmissionView(epoch=epoch, amount=epoch_emission(p, epoch),
                        capped=capped_emission(p, epoch, state.get_totals(store).minted))


def query_totals(store: KVReader, params: Mapping[str, str]) -> state.Totals:
    del params
    return state.get_totals(store)


def query_vesting(store: KVReader, params: Mapping[str, str]) -> VestingView:
    address = address_param(params, "address")
    schedule = state.get_schedule(store, address)
    slots = schedule.slots if schedule else ()
    return VestingView(address=address, slots=slots, total=sum(slots))


def invariants(store: KVReader) -> InvariantsView:
    rewards_balance = balance(store, module_address(state.REWARDS_ACCOUNT))
    unclaimed_rewards = state.unclaimed_reward_total(store)
    vesting_balance = balance(store, module_address(state.VESTING_ACCOUNT))
    scheduled = state.vesting_total(store)
    return InvariantsView(
        rewards_balance=rewards_balance, unclaimed_rewards=unclaimed_rewards,
        vesting_balance=vesting_balance, vesting_scheduled=scheduled,
        unclaimed_work=state.unclaimed_work_total(store),
        ok=rewards_balance == unclaimed_rewards and vesting_balance == scheduled)


def query_invariants(store: KVReader, params: Mapping[str, str]) -> InvariantsView:
    del params
    return invariants(store)


QUERIES = {"settlement": query_settlement, "emission": query_emission, "totals": query_totals,
           "vesting": query_vesting, "invariants": query_invariants}
