"""MsgClaimRewards: a participant collects what `epoch`'s settlement gave it by revealing the
secret seed it committed to for that epoch; the chain replays the seed's validation duty.

Checks, in order (any failure changes nothing and the SettleAmount stays until the next
settlement burns it):
1. a SettleAmount of the participant for exactly this epoch exists (1001 NothingToClaim);
2. seed_commitment(participant, epoch, seed) equals the stored commitment (1002 WrongSeed).
   A stored commitment b"" means the host had no seed for the epoch: then it had no group
   weight, hence no reward coins and no validation duty; its work coins are claimable with any
   seed. Reward coins without a commitment (only possible if a group was carried over to a host
   that committed no seed) cannot be claimed (1004 NoSeedCommitment);
3. every id in validation.selection.required_validations(store, epoch, participant, seed)
   satisfies validation.state.has_validated (1003 ValidationsMissing).
Then work is paid from "work" and reward from "rewards": at once when the params' vesting
period is 0, else into "vesting" over that many epochs. The SettleAmount is deleted.
"""

from __future__ import annotations

from chain.app.bank.state import release
from chain.app.context import Context
from chain.app.rewards import state
from chain.app.rewards.errors import NoSeedCommitment, NothingToClaim, ValidationsMissing, WrongSeed
from chain.app.rewards.vesting import add_vested
from chain.app.validation.selection import required_validations
from chain.app.validation.state import has_validated
from chain.store.kv import KVReader
from chain.types.inference import seed_commitment
from chain.types.msgs import MsgClaimRewards


def missing_validations(store: KVReader, epoch: int, validator: str,
                        seed: bytes) -> tuple[list[bytes], int]:
    """(ids `validator` had to validate in `epoch` and did not, how many were required)."""
    required = required_validations(store, epoch, validator, seed)
    missing = [i for i in sorted(required) if not has_validated(store, epoch, validator, i)]
    return missing, len(required)


def pay(ctx: Context, module: str, address: str, amount: int, vesting_epochs: int) -> None:
    if vesting_epochs == 0:
        release(ctx, module, address, amount)
    else:
        add_vested(ctx, module, address, amount, vesting_epochs)


def handle_claim(ctx: Context, msg: MsgClaimRewards) -> None:
    amount = state.get_settle_amount(ctx.store, msg.participant)
    if amount is None or amount.epoch != msg.epoch:
        raise NothingToClaim(msg.participant, msg.epoch,
                             None if amount is None else amount.epoch)
    if amount.seed_commitment:
        if seed_commitment(msg.participant, msg.epoch, msg.seed) != amount.seed_commitment:
            raise WrongSeed(msg.participant, msg.epoch)
        missing, required = missing_validations(ctx.store, msg.epoch, msg.participant, msg.seed)
        if missing:
            raise ValidationsMissing(msg.participant, msg.epoch, len(missing), required,
                                     missing[0])
    elif amount.reward > 0:
        raise NoSeedCommitment(msg.participant, msg.epoch, amount.reward)
    params = state.rewards_params(ctx.store)
    pay(ctx, state.WORK_ACCOUNT, msg.participant, amount.work, params.work_vesting_epochs)
    pay(ctx, state.REWARDS_ACCOUNT, msg.participant, amount.reward, params.reward_vesting_epochs)
    state.delete_settle_amount(ctx.store, msg.participant)
    state.add_totals(ctx.store, claimed_work=amount.work, claimed_reward=amount.reward)
    ctx.emit("rewards_claimed", participant=msg.participant, epoch=msg.epoch, work=amount.work,
             reward=amount.reward, work_vesting_epochs=params.work_vesting_epochs,
             reward_vesting_epochs=params.reward_vesting_epochs)


HANDLERS = {MsgClaimRewards: handle_claim}
