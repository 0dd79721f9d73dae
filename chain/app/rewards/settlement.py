"""Settlement of an ending epoch: called by the epoch clock at the end of the set-new-validators
block of epoch E+1, while E is still the effective epoch, for E (nothing for E = 0).

In order:
(a) every SettleAmount still unclaimed (claim window: until this settlement) is burned, its work
    part from "work", its reward part from "rewards";
(b) vesting advances: slot 0 of every schedule is paid;
(c) emission: capped_emission(E) is split over E's group members with weight > 0 that are
    participants not INVALID: reward_i = w_i * fixed // sum_w, the remainder to the first of
    them (address order) with a positive reward; the total is minted into "rewards";
(d) every participant (address order, no page cut-off): work = coin_balance, or forfeited
    (burned from "work") if INVALID; downtime slashing; the epoch is recorded for reputation
    (not for INVALID hosts); epochs_completed += 1 unless INVALID; coin_balance, stats and
    consecutive_invalid are reset and INVALID becomes ACTIVE (INVALID cost the epoch's coins,
    collateral and group weight; the next epoch starts clean);
(e) a SettleAmount {work, reward, seed commitment for E} for each participant with
    work + reward > 0.
Coins are created here only by the mint in (c) and destroyed only by burns; this function must
never move coins of an account other than the module accounts and the vesting owners.
"""

from __future__ import annotations

import msgspec

from chain.app.bank.state import burn, mint, supply
from chain.app.collateral.state import collateral_params, slash
from chain.app.context import Context
from chain.app.epochs import state as epochs
from chain.app.participants.state import (
    ACTIVE,
    INVALID,
    EpochStats,
    all_participants,
    get_participant,
    put_participant,
)
from chain.app.reputation.score import record_epoch
from chain.app.rewards import state
from chain.app.rewards.emission import capped_emission
from chain.app.rewards.vesting import advance_vesting
from chain.store.kv import KVReader
from chain.types.common import MAX_AMOUNT


def split_rewards(weights: dict[str, int], total: int) -> dict[str, int]:
    """reward_i = w_i * total // sum_w; the remainder goes to the first address (sorted) with a
    positive reward. Empty when no weight."""
    sum_w = sum(weights.values())
    if sum_w == 0 or total == 0:
        return {}
    rewards = {a: weights[a] * total // sum_w for a in sorted(weights)}
    remainder = total - sum(rewards.values())
    first = next((a for a, r in rewards.items() if r > 0), None)
    if first is None:
        # Only when total < sum_w and every share floors to 0 (the last ngonka before the
        # cap): the whole amount to the heaviest member (first address among equals) rather
        # than never minting it.
        first = min(weights, key=lambda a: (-weights[a], a))
    rewards[first] += remainder
    return rewards


def reward_weights(store: KVReader, epoch: int) -> dict[str, int]:
    """Weights of `epoch`'s members that earn reward coins: weight > 0, participant, not
    INVALID."""
    out = {}
    for member in epochs.members(store, epoch):
        participant = get_participant(store, member.address)
        if member.weight > 0 and participant is not None and participant.status != INVALID:
            out[member.address] = member.weight
    return out


def seed_commitment_for(store: KVReader, epoch: int, address: str) -> bytes:
    """The commitment a claim for `epoch` must open: the seed `address` committed for `epoch`
    (what its group member record copies), else its member record's, else b""."""
    committed = epochs.get_seed_commitment(store, epoch, address)
    if committed is not None:
        return committed
    member = epochs.get_member(store, epoch, address)
    return member.seed_commitment if member is not None else b""


def burn_expired(ctx: Context) -> tuple[int, int]:
    """Burn every unclaimed SettleAmount; (work burned, reward burned)."""
    work = reward = 0
    for amount in state.all_settle_amounts(ctx.store):
        burn(ctx, state.WORK_ACCOUNT, amount.work)
        burn(ctx, state.REWARDS_ACCOUNT, amount.reward)
        state.delete_settle_amount(ctx.store, amount.participant)
        work += amount.work
        reward += amount.reward
        ctx.emit("settle_expired", participant=amount.participant, epoch=amount.epoch,
                 work=amount.work, reward=amount.reward)
    state.add_totals(ctx.store, burned=work + reward)
    return work, reward


def settle(ctx: Context, epoch: int) -> None:
    """Settle every participant for `epoch` (see the module docstring)."""
    if epoch == 0:
        return
    expired_work, expired_reward = burn_expired(ctx)
    vested = advance_vesting(ctx)

    params = state.rewards_params(ctx.store)
    fixed = capped_emission(params, epoch, state.get_totals(ctx.store).minted)
    # Never past the largest supply the bank allows (a mint refused here would halt the chain).
    fixed = min(fixed, MAX_AMOUNT - supply(ctx.store))
    rewards = split_rewards(reward_weights(ctx.store, epoch), fixed)
    minted = sum(rewards.values())
    if minted:
        mint(ctx, state.REWARDS_ACCOUNT, minted)
        state.add_totals(ctx.store, minted=minted)

    collateral = collateral_params(ctx.store)
    total_work = forfeited = settled = 0
    for participant in all_participants(ctx.store):
        address = participant.address
        invalid = participant.status == INVALID
        stats = participant.stats
        work = participant.coin_balance
        if invalid and work:
            burn(ctx, state.WORK_ACCOUNT, work)
            forfeited += work
            ctx.emit("work_forfeited", participant=address, epoch=epoch, amount=work)
            work = 0
        served, missed = stats.inference_count, stats.missed_requests
        if served + missed > 0 and missed * 10_000 > collateral.downtime_missed_bps * (served
                                                                                     + missed):
            slash(ctx, address, collateral.slash_downtime_bps, "downtime")
        if not invalid:
            record_epoch(ctx, address, served, missed)
        put_participant(ctx.store, msgspec.structs.replace(
            participant, coin_balance=0, stats=EpochStats(), consecutive_invalid=0,
            status=ACTIVE if invalid else participant.status,
            epochs_completed=participant.epochs_completed + (0 if invalid else 1)))
        reward = rewards.get(address, 0)
        if work + reward > 0:
            state.put_settle_amount(ctx.store, state.SettleAmount(
                participant=address, epoch=epoch, work=work, reward=reward,
                seed_commitment=seed_commitment_for(ctx.store, epoch, address)))
            settled += 1
        total_work += work
        ctx.emit("settlement", participant=address, epoch=epoch, work=work, reward=reward,
                 invalid=invalid, served=served, missed=missed)
    if forfeited:
        state.add_totals(ctx.store, burned=forfeited)
    ctx.emit("settlement_summary", epoch=epoch, emission=fixed, minted=minted,
             work=total_work, forfeited=forfeited, settle_amounts=settled,
             expired_work=expired_work, expired_reward=expired_reward, vested_paid=vested)
